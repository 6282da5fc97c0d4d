/* Model files on disk that change or mislead: the path rule for links (a Hugging Face hub cache
 * loads; links leading anywhere else are refused), files truncated or replaced between open,
 * shard load and generation (an error naming the file, never SIGBUS), and the bounds of the
 * JSON reader. Runs on the CPU plugin (any x86 CPU: the reference kernels serve where AVX-512
 * is missing). */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>

#include "exo.h"
#include "model/config.h"
#include "model/json_file.h"
#include "model/model_path.h"
#include "model/safetensors.h"
#include "model_test_util.h"
#include "tokenizer/tokenizer.h"

#define LICENSES EXO_TEST_SOURCE_DIR "/models/tiny-llama-licenses"
#define LLAMA EXO_TEST_DATA "/hf-tiny/llama"

/* ------------------------------------------------------------------ helpers */

static void copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    ck_assert_ptr_nonnull(in);
    ck_assert_ptr_nonnull(out);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

/* Every regular file of src copied into dst (the fixtures are flat directories). */
static void copy_dir(const char *src, const char *dst) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cp -p '%s'/* '%s'/", src, dst);
    ck_assert_int_eq(system(cmd), 0);
}

static void make_dir(const char *path) { ck_assert_int_eq(mkdir(path, 0755), 0); }

/* A hub cache repository for src under root: root/models--org--NAME/{blobs/<n>, snapshots/REV/<file>
 * -> ../../blobs/<n>}, as huggingface_hub lays it out. Returns the snapshot directory. */
static char *make_hub_repo(const char *root, const char *name, const char *src) {
    char repo[4096], blobs[4096], snaps[4096], *snap = malloc(4096);
    snprintf(repo, sizeof repo, "%s/models--org--%s", root, name);
    snprintf(blobs, sizeof blobs, "%s/blobs", repo);
    snprintf(snaps, sizeof snaps, "%s/snapshots", repo);
    snprintf(snap, 4096, "%s/0123abcd", snaps);
    make_dir(repo);
    make_dir(blobs);
    make_dir(snaps);
    make_dir(snap);
    char refs[4096];
    snprintf(refs, sizeof refs, "%s/refs", repo);
    make_dir(refs);
    char cmd[8192];
    /* Blob names stand in for the content hashes; each snapshot entry is a relative link. */
    snprintf(cmd, sizeof cmd,
             "cd '%s' && i=0 && for f in *; do i=$((i+1)); cp -p \"$f\" '%s'/blob$i; "
             "ln -s ../../blobs/blob$i '%s'/\"$f\"; done",
             src, blobs, snap);
    ck_assert_int_eq(system(cmd), 0);
    return snap;
}

typedef struct loaded {
    exo_runtime *rt;
    exo_model *model;
    exo_shard *shard;
    uint32_t vocab;
} loaded;

static loaded load(const char *dir) {
    loaded l = {0};
    ck_assert_int_eq(exo_runtime_create(NULL, &l.rt), EXO_OK);
    ck_assert_msg(exo_model_open(l.rt, dir, &l.model) == EXO_OK, "%s", exo_last_error());
    ck_assert_msg(exo_shard_load(l.model, NULL, &l.shard) == EXO_OK, "%s", exo_last_error());
    exo_model_info info;
    EXO_STRUCT_INIT(&info);
    ck_assert_int_eq(exo_model_get_info(l.model, &info), EXO_OK);
    l.vocab = info.vocab_size;
    return l;
}

static void unload(loaded *l) {
    exo_shard_destroy(l->shard);
    exo_model_destroy(l->model);
    exo_runtime_destroy(l->rt);
}

/* The last row's logits for a fixed prompt, on a fresh session. */
static float *logits_of(loaded *l) {
    static const int32_t ids[] = {1, 15043, 29892, 920, 526, 366, 29973};
    exo_session *s = NULL;
    ck_assert_int_eq(exo_session_create(l->shard, 0, &s), EXO_OK);
    float *out = malloc(l->vocab * sizeof *out);
    int32_t tokens[7];
    for (int i = 0; i < 7; i++) tokens[i] = ids[i] % (int32_t)l->vocab;
    ck_assert_msg(exo_session_forward_tokens(s, tokens, 7, EXO_FORWARD_LAST_ONLY, out, l->vocab) == EXO_OK, "%s",
                  exo_last_error());
    exo_session_destroy(s);
    return out;
}

static float *reference_logits(const char *dir) {
    loaded l = load(dir);
    float *out = logits_of(&l);
    unload(&l);
    return out;
}

/* ------------------------------------------------------------------ the hub cache */

START_TEST(hub_snapshot_of_a_sharded_model_loads_and_gives_identical_logits) {
    float *want = reference_logits(LICENSES);
    char *root = mtu_tmpdir();
    char *snap = make_hub_repo(root, "licenses", LICENSES);
    loaded l = load(snap);
    float *got = logits_of(&l);
    ck_assert_int_eq(memcmp(got, want, l.vocab * sizeof *got), 0);
    /* The tokenizer came through its link too. */
    exo_model_info info;
    EXO_STRUCT_INIT(&info);
    exo_model_get_info(l.model, &info);
    ck_assert(info.has_tokenizer);
    unload(&l);
    free(got);
    free(want);
    free(snap);
    mtu_rmdir(root);
}
END_TEST

START_TEST(hub_snapshot_of_a_single_file_model_opens) {
    char *root = mtu_tmpdir();
    char *snap = make_hub_repo(root, "llama", LLAMA);
    exo_weights *w = NULL;
    ck_assert_msg(exo_weights_open(snap, &w) == EXO_OK, "%s", exo_error_message());
    const exo_st_tensor *t;
    ck_assert_int_eq(exo_weights_get(w, "model.embed_tokens.weight", &t), EXO_OK);
    exo_weights_close(w);
    exo_model_config c;
    ck_assert_int_eq(exo_model_config_load(snap, &c), EXO_OK);
    exo_tokenizer *tok = NULL;
    ck_assert_int_eq(exo_tokenizer_load(snap, &tok), EXO_OK);
    exo_tokenizer_free(tok);
    free(snap);
    mtu_rmdir(root);
}
END_TEST

/* ------------------------------------------------------------------ refused links */

START_TEST(weights_linked_to_etc_passwd_are_refused_unread) {
    char *dir = mtu_tmpdir();
    ck_assert_int_eq(symlink("/etc/passwd", mtu_path(dir, "model.safetensors")), 0);
    exo_weights *w = NULL;
    mtu_assert_error(exo_weights_open(dir, &w), EXO_ERR_FORMAT, "model.safetensors", "'/etc/passwd'", "outside");
    ck_assert_ptr_null(strstr(exo_error_message(), "root"));
    mtu_rmdir(dir);
}
END_TEST

START_TEST(config_and_tokenizer_follow_the_same_rule) {
    char *dir = mtu_tmpdir();
    copy_dir(LLAMA, dir);
    exo_model_config c;
    remove(mtu_path(dir, "config.json"));
    ck_assert_int_eq(symlink("/etc/passwd", mtu_path(dir, "config.json")), 0);
    mtu_assert_error(exo_model_config_load(dir, &c), EXO_ERR_FORMAT, "config.json", "'/etc/passwd'", "outside");
    ck_assert_ptr_null(strstr(exo_error_message(), "root"));
    remove(mtu_path(dir, "config.json"));
    copy_file(LLAMA "/config.json", mtu_path(dir, "config.json"));

    exo_tokenizer *tok = NULL;
    remove(mtu_path(dir, "tokenizer.json"));
    ck_assert_int_eq(symlink("/etc/passwd", mtu_path(dir, "tokenizer.json")), 0);
    mtu_assert_error(exo_tokenizer_load(dir, &tok), EXO_ERR_FORMAT, "tokenizer.json", "outside");
    remove(mtu_path(dir, "tokenizer.json"));
    copy_file(LLAMA "/tokenizer.json", mtu_path(dir, "tokenizer.json"));
    remove(mtu_path(dir, "generation_config.json"));
    ck_assert_int_eq(symlink("/etc/passwd", mtu_path(dir, "generation_config.json")), 0);
    mtu_assert_error(exo_tokenizer_load(dir, &tok), EXO_ERR_FORMAT, "generation_config.json", "outside");
    mtu_rmdir(dir);
}
END_TEST

START_TEST(a_link_into_another_hub_repository_is_refused) {
    char *root = mtu_tmpdir();
    char *snap = make_hub_repo(root, "llama", LLAMA);
    char *other = make_hub_repo(root, "other", LLAMA);
    remove(mtu_path(snap, "model.safetensors"));
    char target[4096];
    /* A relative link that climbs out of this repository into the other one's blobs. */
    snprintf(target, sizeof target, "../../../models--org--other/blobs/blob1");
    char have[4096];
    snprintf(have, sizeof have, "%s/../../../models--org--other/blobs/blob1", snap);
    struct stat sb;
    ck_assert_int_eq(stat(have, &sb), 0);
    ck_assert_int_eq(symlink(target, mtu_path(snap, "model.safetensors")), 0);
    exo_weights *w = NULL;
    mtu_assert_error(exo_weights_open(snap, &w), EXO_ERR_FORMAT, "model.safetensors", "models--org--other",
                     "hub repository");
    free(snap);
    free(other);
    mtu_rmdir(root);
}
END_TEST

START_TEST(links_outside_a_plain_directory_are_refused) {
    char *dir = mtu_tmpdir(), *outside = mtu_tmpdir();
    copy_file(LLAMA "/model.safetensors", mtu_path(outside, "model.safetensors"));
    char target[4096];
    snprintf(target, sizeof target, "%s/model.safetensors", outside);
    ck_assert_int_eq(symlink(target, mtu_path(dir, "model.safetensors")), 0);
    exo_weights *w = NULL;
    mtu_assert_error(exo_weights_open(dir, &w), EXO_ERR_FORMAT, "model.safetensors", outside, "outside");
    /* The same file through a relative ../ escape. */
    remove(mtu_path(dir, "model.safetensors"));
    snprintf(target, sizeof target, "../%s/model.safetensors", strrchr(outside, '/') + 1);
    ck_assert_int_eq(symlink(target, mtu_path(dir, "model.safetensors")), 0);
    mtu_assert_error(exo_weights_open(dir, &w), EXO_ERR_FORMAT, "model.safetensors", "outside");
    /* A link that stays inside is fine. */
    remove(mtu_path(dir, "model.safetensors"));
    copy_file(LLAMA "/model.safetensors", mtu_path(dir, "real.bin"));
    ck_assert_int_eq(symlink("real.bin", mtu_path(dir, "model.safetensors")), 0);
    ck_assert_int_eq(exo_weights_open(dir, &w), EXO_OK);
    exo_weights_close(w);
    mtu_rmdir(dir);
    mtu_rmdir(outside);
}
END_TEST

START_TEST(a_dangling_link_is_an_error_naming_it) {
    char *dir = mtu_tmpdir();
    ck_assert_int_eq(symlink("gone.safetensors", mtu_path(dir, "model.safetensors")), 0);
    exo_weights *w = NULL;
    mtu_assert_error(exo_weights_open(dir, &w), EXO_ERR_IO, "model.safetensors", "gone.safetensors",
                     "cannot be resolved");
    mtu_rmdir(dir);
}
END_TEST

START_TEST(a_shard_swapped_for_a_link_after_open_is_refused_at_use) {
    char *dir = mtu_tmpdir();
    copy_dir(LICENSES, dir);
    exo_weights *w = NULL;
    ck_assert_int_eq(exo_weights_open(dir, &w), EXO_OK);
    remove(mtu_path(dir, "model-00002-of-00003.safetensors"));
    ck_assert_int_eq(symlink("/etc/passwd", mtu_path(dir, "model-00002-of-00003.safetensors")), 0);
    mtu_assert_error(exo_weights_load_begin(w), EXO_ERR_FORMAT, "model-00002-of-00003.safetensors", "outside");
    /* A tensor of that shard (mapped lazily) is refused too; the first shard still serves. */
    const char *in_two = NULL;
    {
        FILE *fp = fopen(mtu_path(dir, "model.safetensors.index.json"), "rb");
        static char text[1 << 20];
        size_t n = fread(text, 1, sizeof text - 1, fp);
        fclose(fp);
        text[n] = '\0';
        cJSON *root = cJSON_Parse(text);
        const cJSON *e;
        cJSON_ArrayForEach(e, cJSON_GetObjectItem(root, "weight_map")) {
            if (strcmp(e->valuestring, "model-00002-of-00003.safetensors") == 0) {
                in_two = strdup(e->string);
                break;
            }
        }
        cJSON_Delete(root);
    }
    ck_assert_ptr_nonnull(in_two);
    const exo_st_tensor *t;
    mtu_assert_error(exo_weights_get(w, in_two, &t), EXO_ERR_FORMAT, "model-00002-of-00003.safetensors",
                     "outside");
    /* Replaced by another regular file (same name, new inode): not mixed in silently either. */
    remove(mtu_path(dir, "model-00002-of-00003.safetensors"));
    copy_file(LICENSES "/model-00002-of-00003.safetensors", mtu_path(dir, "model-00002-of-00003.safetensors"));
    mtu_assert_error(exo_weights_get(w, in_two, &t), EXO_ERR_IO, "model-00002-of-00003.safetensors", "replaced");
    free((void *)in_two);
    exo_weights_close(w);
    mtu_rmdir(dir);
}
END_TEST

/* ------------------------------------------------------------------ truncation and replacement */

static void truncate_to(const char *path, off_t size) { ck_assert_int_eq(truncate(path, size), 0); }

START_TEST(populate_of_a_truncated_mapping_is_an_error_not_sigbus) {
    char *dir = mtu_tmpdir();
    copy_file(LLAMA "/model.safetensors", mtu_path(dir, "model.safetensors"));
    exo_st_file *f = NULL;
    ck_assert_int_eq(exo_st_file_open(mtu_path(dir, "model.safetensors"), &f), EXO_OK);
    const exo_st_tensor *t = exo_st_file_find(f, "model.embed_tokens.weight");
    ck_assert_ptr_nonnull(t);
    /* Cut the file at the tensor's first byte: every page of it is now past the end. */
    off_t at = (off_t)(((const char *)t->data - (const char *)exo_st_file_map(f)) & ~(off_t)4095);
    truncate_to(mtu_path(dir, "model.safetensors"), at);
    mtu_assert_error(exo_st_populate(f, "tensor 'model.embed_tokens.weight''s bytes", t->data, t->nbytes), EXO_ERR_IO,
                     "model.safetensors", "model.embed_tokens.weight", "truncated");
    /* The fallback for kernels without MADV_POPULATE_READ reaches the same verdict. */
    mtu_assert_error(exo_st_file_check_extent(f, "tensor 'x'", (uint64_t)at + 1), EXO_ERR_IO, "truncated");
    mtu_assert_error(exo_st_file_revalidate(f), EXO_ERR_IO, "model.safetensors", "truncated");
    exo_st_file_close(f);
    mtu_rmdir(dir);
}
END_TEST

START_TEST(weights_get_after_truncation_is_an_error) {
    char *dir = mtu_tmpdir();
    copy_file(LLAMA "/model.safetensors", mtu_path(dir, "model.safetensors"));
    exo_weights *w = NULL;
    ck_assert_int_eq(exo_weights_open(dir, &w), EXO_OK);
    truncate_to(mtu_path(dir, "model.safetensors"), 4096);
    const exo_st_tensor *t;
    mtu_assert_error(exo_weights_get(w, "model.norm.weight", &t), EXO_ERR_IO, "model.safetensors",
                     "model.norm.weight", "truncated");
    exo_weights_close(w);
    mtu_rmdir(dir);
}
END_TEST

START_TEST(truncation_between_open_and_shard_load_is_a_clear_error) {
    char *dir = mtu_tmpdir();
    copy_dir(LLAMA, dir);
    exo_runtime *rt = NULL;
    exo_model *m = NULL;
    exo_shard *s = NULL;
    ck_assert_int_eq(exo_runtime_create(NULL, &rt), EXO_OK);
    ck_assert_int_eq(exo_model_open(rt, dir, &m), EXO_OK);
    struct stat sb;
    ck_assert_int_eq(stat(mtu_path(dir, "model.safetensors"), &sb), 0);
    truncate_to(mtu_path(dir, "model.safetensors"), sb.st_size / 2);
    mtu_assert_error(exo_shard_load(m, NULL, &s), EXO_ERR_IO, "model.safetensors", "truncated");
    ck_assert_ptr_null(s);
    ck_assert_ptr_nonnull(strstr(exo_model_last_error(m), "truncated"));
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
    mtu_rmdir(dir);
}
END_TEST

START_TEST(replacing_files_by_rename_after_load_keeps_the_same_logits) {
    char *dir = mtu_tmpdir();
    copy_dir(LICENSES, dir);
    float *want = reference_logits(LICENSES);
    loaded l = load(dir);
    /* What `mv` and the hub do: a new file renamed over each shard. The CPU device runs from the
     * old inodes' mapping, which stays whole. */
    const char *shards[] = {"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                            "model-00003-of-00003.safetensors"};
    for (int i = 0; i < 3; i++) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s/new.tmp", dir);
        mtu_write(tmp, "garbage", 7);
        ck_assert_int_eq(rename(tmp, mtu_path(dir, shards[i])), 0);
    }
    float *got = logits_of(&l);
    ck_assert_int_eq(memcmp(got, want, l.vocab * sizeof *got), 0);
    /* A new shard from the changed directory is refused, not built from a mix of files. */
    exo_shard *again = NULL;
    mtu_assert_error(exo_shard_load(l.model, NULL, &again), EXO_ERR_IO, "model-0000", "replaced");
    unload(&l);
    free(got);
    free(want);
    mtu_rmdir(dir);
}
END_TEST

/* ------------------------------------------------------------------ JSON bounds */

START_TEST(json_limits_follow_real_file_sizes) {
    ck_assert_uint_eq(exo_json_file_limit("tokenizer.json"), 64u << 20);
    ck_assert_uint_eq(exo_json_file_limit("/m/model.safetensors.index.json"), 64u << 20);
    ck_assert_uint_eq(exo_json_file_limit("config.json"), 4u << 20);
    ck_assert_uint_le(exo_json_file_limit("tokenizer_config.json"), 16u << 20);
    /* A sparse file past the limit is refused before anything is read or allocated. */
    char *dir = mtu_tmpdir();
    int fd = open(mtu_path(dir, "tokenizer.json"), O_CREAT | O_WRONLY, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(ftruncate(fd, (64 << 20) + 1), 0);
    close(fd);
    cJSON *root = NULL;
    mtu_assert_error(exo_json_file_load(dir, "tokenizer.json", &root), EXO_ERR_FORMAT, "tokenizer.json",
                     "too large");
    mtu_rmdir(dir);
}
END_TEST

START_TEST(a_parse_that_cannot_fit_in_memory_is_refused) {
    mtu_assert_error(exo_json_parse_fits("/m/tokenizer.json", 20u << 20, 512u << 20), EXO_ERR_NO_MEMORY,
                     "/m/tokenizer.json", "MiB");
    ck_assert_int_eq(exo_json_parse_fits("/m/tokenizer.json", 20u << 20, 1024u << 20), EXO_OK);
}
END_TEST

/* The factor the memory check uses is cJSON's real worst case (many tiny numbers), measured. */
START_TEST(the_parse_factor_bounds_cjson_worst_case) {
#if defined(__SANITIZE_ADDRESS__)
    return; /* ASan's allocator keeps its own books: mallinfo2 sees nothing */
#endif
    size_t n = 1u << 20;
    char *text = malloc(n + 1);
    text[0] = '[';
    for (size_t i = 1; i + 1 < n; i += 2) {
        text[i] = '0';
        text[i + 1] = ',';
    }
    text[n - 1] = ']';
    if (text[n - 2] == ',') text[n - 2] = '0';
    struct mallinfo2 before = mallinfo2();
    cJSON *root = cJSON_ParseWithLength(text, n);
    struct mallinfo2 after = mallinfo2();
    ck_assert_ptr_nonnull(root);
    size_t used = (after.uordblks + after.hblkhd) - (before.uordblks + before.hblkhd);
    ck_assert_uint_ge(used, (size_t)30 * n); /* the worst case really is this bad */
    ck_assert_uint_le(used + n, (size_t)EXO_JSON_PARSE_BYTES_PER_BYTE * n);
    cJSON_Delete(root);
    free(text);
}
END_TEST

START_TEST(malformed_json_names_line_and_column) {
    char *dir = mtu_tmpdir();
    mtu_write(mtu_path(dir, "config.json"), "{\n  \"a\": 1,\n  oops\n}", 21);
    cJSON *root = NULL;
    mtu_assert_error(exo_json_file_load(dir, "config.json", &root), EXO_ERR_FORMAT, "config.json", "line 3");
    mtu_write(mtu_path(dir, "config.json"), "{} {}", 5);
    mtu_assert_error(exo_json_file_load(dir, "config.json", &root), EXO_ERR_FORMAT, "config.json", "column 4");
    mtu_assert_error(exo_json_file_load(dir, "absent.json", &root), EXO_ERR_NOT_FOUND, "absent.json");
    mtu_rmdir(dir);
}
END_TEST

static Suite *model_files_suite(void) {
    Suite *s = suite_create("model_files");
    TCase *hub = tcase_create("hub");
    tcase_set_timeout(hub, 120);
    tcase_add_test(hub, hub_snapshot_of_a_sharded_model_loads_and_gives_identical_logits);
    tcase_add_test(hub, hub_snapshot_of_a_single_file_model_opens);
    suite_add_tcase(s, hub);
    TCase *links = tcase_create("links");
    tcase_add_test(links, weights_linked_to_etc_passwd_are_refused_unread);
    tcase_add_test(links, config_and_tokenizer_follow_the_same_rule);
    tcase_add_test(links, a_link_into_another_hub_repository_is_refused);
    tcase_add_test(links, links_outside_a_plain_directory_are_refused);
    tcase_add_test(links, a_dangling_link_is_an_error_naming_it);
    tcase_add_test(links, a_shard_swapped_for_a_link_after_open_is_refused_at_use);
    suite_add_tcase(s, links);
    TCase *trunc = tcase_create("truncation");
    tcase_set_timeout(trunc, 120);
    tcase_add_test(trunc, populate_of_a_truncated_mapping_is_an_error_not_sigbus);
    tcase_add_test(trunc, weights_get_after_truncation_is_an_error);
    tcase_add_test(trunc, truncation_between_open_and_shard_load_is_a_clear_error);
    tcase_add_test(trunc, replacing_files_by_rename_after_load_keeps_the_same_logits);
    suite_add_tcase(s, trunc);
    TCase *json = tcase_create("json");
    tcase_add_test(json, json_limits_follow_real_file_sizes);
    tcase_add_test(json, a_parse_that_cannot_fit_in_memory_is_refused);
    tcase_add_test(json, the_parse_factor_bounds_cjson_worst_case);
    tcase_add_test(json, malformed_json_names_line_and_column);
    suite_add_tcase(s, json);
    return s;
}

MTU_MAIN(model_files_suite)
