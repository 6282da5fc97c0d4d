/* Sizes a model file controls (vocab, head_dim, intermediate_size, max_position_embeddings)
 * must not drive allocations past what a step needs or what the machine holds: synthetic
 * adversarial llama models, written here, load with O(vocab) logits memory, are refused with a
 * clear error when even their smallest form does not fit, and have defaulted sizes shrunk to
 * fit a given amount of memory. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "check_run.h"
#include "model_test_util.h"

#include "exo.h"
#include "run/model_internal.h"
#include "run/shard_memory.h"

typedef struct shape {
    uint32_t vocab, hidden, inter, heads, kv_heads, head_dim, layers;
} shape;

/* One bf16 tensor's header entry and its size. */
static size_t add_tensor(char *hdr, size_t cap, size_t off, const char *name, uint64_t rows, uint64_t cols) {
    size_t n = (size_t)(rows * cols * 2);
    size_t len = strlen(hdr);
    if (cols)
        snprintf(hdr + len, cap - len, "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%llu,%llu],\"data_offsets\":[%zu,%zu]}",
                 len > 1 ? "," : "", name, (unsigned long long)rows, (unsigned long long)cols, off, off + n);
    else {
        n = (size_t)(rows * 2);
        snprintf(hdr + len, cap - len, "%s\"%s\":{\"dtype\":\"BF16\",\"shape\":[%llu],\"data_offsets\":[%zu,%zu]}",
                 len > 1 ? "," : "", name, (unsigned long long)rows, off, off + n);
    }
    return off + n;
}

/* A llama model directory of the given shape with small, varied bf16 weights and tied embeddings. */
static char *write_model(shape s) {
    char *dir = mtu_tmpdir();
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"model_type\":\"llama\",\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":%u,"
             "\"intermediate_size\":%u,\"num_hidden_layers\":%u,\"num_attention_heads\":%u,"
             "\"num_key_value_heads\":%u,\"head_dim\":%u,\"vocab_size\":%u,\"max_position_embeddings\":1073741824,"
             "\"rms_norm_eps\":1e-5,\"tie_word_embeddings\":true,\"bos_token_id\":0,\"eos_token_id\":1}",
             s.hidden, s.inter, s.layers, s.heads, s.kv_heads, s.head_dim, s.vocab);
    mtu_write(mtu_path(dir, "config.json"), cfg, strlen(cfg));
    size_t cap = 4096 + 1024 * (size_t)s.layers;
    char *hdr = calloc(1, cap);
    ck_assert_ptr_nonnull(hdr);
    strcpy(hdr, "{");
    size_t off = add_tensor(hdr, cap, 0, "model.embed_tokens.weight", s.vocab, s.hidden);
    off = add_tensor(hdr, cap, off, "model.norm.weight", s.hidden, 0);
    uint64_t q = (uint64_t)s.heads * s.head_dim, kv = (uint64_t)s.kv_heads * s.head_dim;
    for (uint32_t l = 0; l < s.layers; l++) {
        char n[128];
#define T(suffix, r, c) (snprintf(n, sizeof n, "model.layers.%u.%s", l, suffix), off = add_tensor(hdr, cap, off, n, r, c))
        T("input_layernorm.weight", s.hidden, 0);
        T("post_attention_layernorm.weight", s.hidden, 0);
        T("self_attn.q_proj.weight", q, s.hidden);
        T("self_attn.k_proj.weight", kv, s.hidden);
        T("self_attn.v_proj.weight", kv, s.hidden);
        T("self_attn.o_proj.weight", s.hidden, q);
        T("mlp.gate_proj.weight", s.inter, s.hidden);
        T("mlp.up_proj.weight", s.inter, s.hidden);
        T("mlp.down_proj.weight", s.hidden, s.inter);
#undef T
    }
    strcat(hdr, "}");
    size_t hl = strlen(hdr);
    unsigned char *file = malloc(8 + hl + off);
    ck_assert_ptr_nonnull(file);
    for (int i = 0; i < 8; i++) file[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(file + 8, hdr, hl);
    /* bf16 values of either sign between about 0.03 and 0.06: finite logits that vary by token. */
    for (size_t i = 0; i < off / 2; i++) {
        uint16_t v = (uint16_t)(0x3d00 + (i * 7919u) % 128u) | (uint16_t)((i % 3 == 0) << 15);
        file[8 + hl + 2 * i] = (unsigned char)v;
        file[8 + hl + 2 * i + 1] = (unsigned char)(v >> 8);
    }
    mtu_write(mtu_path(dir, "model.safetensors"), file, 8 + hl + off);
    free(file);
    free(hdr);
    return dir;
}

static long peak_rss_mib(void) {
    struct rusage ru;
    ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
    return ru.ru_maxrss / 1024;
}

static uint32_t argmax(const float *x, uint32_t n) {
    /* (one assertion at the end: check records every assertion it passes) */
    uint32_t best = 0, bad = UINT32_MAX;
    for (uint32_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) && bad == UINT32_MAX) bad = i;
        if (x[i] > x[best]) best = i;
    }
    ck_assert_msg(bad == UINT32_MAX, "logit %u is %f", bad, bad == UINT32_MAX ? 0.0 : x[bad]);
    return best;
}

/* vocab 2^20 with hidden 8: 16 MiB of file, and max_tokens 4096 rows of logits would be 16 GiB. */
START_TEST(logits_of_a_huge_vocabulary_cost_the_rows_asked_for_not_max_tokens) {
    shape sh = {.vocab = 1u << 20, .hidden = 8, .inter = 16, .heads = 2, .kv_heads = 1, .head_dim = 4, .layers = 1};
    char *dir = write_model(sh);
    exo_runtime *rt;
    exo_model *m;
    exo_shard *shard;
    exo_session *s;
    ck_assert_int_eq(exo_runtime_create(NULL, &rt), EXO_OK);
    ck_assert_int_eq(exo_model_open(rt, dir, &m), EXO_OK);
    exo_shard_options o = EXO_SHARD_OPTIONS_INIT;
    o.end_layer = sh.layers;
    o.max_tokens = 4096;
    ck_assert_msg(exo_shard_load(m, &o, &shard) == EXO_OK, "%s", exo_model_last_error(m));
    exo_shard_info info;
    memset(&info, 0, sizeof info);
    EXO_STRUCT_INIT(&info);
    ck_assert_int_eq(exo_shard_get_info(shard, &info), EXO_OK);
    ck_assert_uint_eq(info.max_tokens, 4096);
    ck_assert_uint_eq(info.output_width, sh.vocab);
    ck_assert_int_eq(exo_session_create(shard, 0, &s), EXO_OK);

    /* Generation's path: the prompt's last row, then one token a step. */
    float *logits = malloc((size_t)3 * sh.vocab * sizeof *logits);
    ck_assert_ptr_nonnull(logits);
    int32_t prompt[5] = {0, 17, 4242, 99999, 1048575};
    ck_assert_int_eq(exo_session_forward_tokens(s, prompt, 5, EXO_FORWARD_LAST_ONLY, logits, sh.vocab), EXO_OK);
    for (int i = 0; i < 8; i++) {
        int32_t next = (int32_t)argmax(logits, sh.vocab);
        ck_assert_int_eq(exo_session_forward_tokens(s, &next, 1, EXO_FORWARD_LAST_ONLY, logits, sh.vocab), EXO_OK);
    }
    /* Every row when asked (exo-golden's case): three rows, the last equal to the last-row form. */
    float *last = malloc((size_t)sh.vocab * sizeof *last);
    ck_assert_ptr_nonnull(last);
    int32_t three[3] = {5, 6, 7};
    uint32_t at = exo_session_position(s);
    ck_assert_int_eq(exo_session_forward_tokens(s, three, 3, 0, logits, (uint64_t)3 * sh.vocab), EXO_OK);
    ck_assert_int_eq(exo_session_truncate(s, at), EXO_OK);
    ck_assert_int_eq(exo_session_forward_tokens(s, three, 3, EXO_FORWARD_LAST_ONLY, last, sh.vocab), EXO_OK);
    argmax(logits, 3 * sh.vocab);
    for (uint32_t i = 0; i < sh.vocab; i += 997)
        ck_assert_float_eq_tol(logits[(size_t)2 * sh.vocab + i], last[i], 1e-4f * (1.0f + fabsf(last[i])));
    long rss = peak_rss_mib();
    ck_assert_msg(rss < 400, "peak RSS %ld MiB: the logits took more than the rows asked for", rss);
    free(last);
    free(logits);
    exo_session_destroy(s);
    exo_shard_destroy(shard);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
    mtu_rmdir(dir);
}
END_TEST

/* head_dim 16384 with hidden 8: a 4 MiB file whose KV cache at the asked max_ctx is 8 TiB. */
static const shape wide_heads = {.vocab = 64, .hidden = 8, .inter = 16, .heads = 2, .kv_heads = 2, .head_dim = 16384,
                                 .layers = 2};

START_TEST(a_kv_cache_no_machine_holds_is_refused_before_allocation) {
    char *dir = write_model(wide_heads);
    exo_runtime *rt;
    exo_model *m;
    exo_shard *shard = NULL;
    ck_assert_int_eq(exo_runtime_create(NULL, &rt), EXO_OK);
    ck_assert_int_eq(exo_model_open(rt, dir, &m), EXO_OK);
    exo_shard_options o = EXO_SHARD_OPTIONS_INIT;
    o.end_layer = wide_heads.layers;
    o.max_ctx = 1u << 24;
    o.kv_dtype = EXO_KV_DTYPE_F32;
    mtu_assert_error(exo_shard_load(m, &o, &shard), EXO_ERR_NO_MEMORY, dir, "KV cache 8796093022208 for max_ctx 16777216",
                     "MemAvailable", "layers [0, 2)");
    ck_assert_ptr_null(shard);
    /* The default bf16 cache is counted at its own element size: half of that. */
    o.kv_dtype = EXO_KV_DTYPE_DEFAULT;
    mtu_assert_error(exo_shard_load(m, &o, &shard), EXO_ERR_NO_MEMORY, dir, "KV cache 4398046511104 for max_ctx 16777216",
                     "MemAvailable", "layers [0, 2)");
    ck_assert_ptr_null(shard);
    long rss = peak_rss_mib();
    ck_assert_msg(rss < 200, "peak RSS %ld MiB for a refused shard", rss);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
    mtu_rmdir(dir);
}
END_TEST

/* Builds the plans exo_shard_load would (whole model, head included). */
static void build_plans(exo_model *m, uint32_t max_tokens, uint32_t max_ctx, exo_graph_plan *full,
                        exo_graph_plan *last) {
    exo_graph_ends ends = {.embeds = true, .head = true, .last_row_only = false};
    ck_assert_int_eq(exo_graph_plan_build(&m->cfg, m->weights, m->dir, 0, m->cfg.n_layers, ends, max_tokens, max_ctx,
                                          full), EXO_OK);
    ends.last_row_only = true;
    ck_assert_int_eq(exo_graph_plan_build(&m->cfg, m->weights, m->dir, 0, m->cfg.n_layers, ends, max_tokens, max_ctx,
                                          last), EXO_OK);
}

START_TEST(a_defaulted_context_shrinks_to_the_memory_there_is) {
    char *dir = write_model(wide_heads);
    exo_runtime *rt;
    exo_model *m;
    ck_assert_int_eq(exo_runtime_create(NULL, &rt), EXO_OK);
    ck_assert_int_eq(exo_model_open(rt, dir, &m), EXO_OK);
    exo_graph_plan full, last;
    build_plans(m, 512, 4096, &full, &last);
    exo_shard_memory mem;
    exo_shard_memory_measure(&full, &last, 1, 64, 512, 4096, &mem);
    /* 2 layers x K and V x 2 heads x 16384 floats a position */
    ck_assert_uint_eq(mem.kv_per_ctx, 2ull * 2 * 2 * 16384 * 4);
    ck_assert_uint_eq(mem.kv, mem.kv_per_ctx * 4096);
    ck_assert_uint_gt(mem.scratch, 512ull * 2 * 16384 * 4); /* at least q of every row */
    uint64_t avail = mem.scratch + mem.io + mem.weights + 1000 * mem.kv_per_ctx;

    ck_assert(exo_shard_memory_fit(&full, &last, 1, 64, avail, true, 512, false, 4096, false, 256, &mem));
    ck_assert_uint_eq(mem.max_tokens, 512);
    ck_assert_uint_eq(mem.max_ctx, 768); /* the largest multiple of 256 within 1000 positions */
    ck_assert_uint_le(exo_shard_memory_need(&mem, true), avail);
    /* A context the caller fixed is never cut: the prefill chunk shrinks instead, or nothing fits. */
    ck_assert(!exo_shard_memory_fit(&full, &last, 1, 64, avail, true, 512, true, 4096, true, 256, &mem));
    ck_assert(exo_shard_memory_fit(&full, &last, 1, 64, avail + 3000 * mem.kv_per_ctx, true, 512, false, 4096, true,
                                   256, &mem));
    ck_assert_uint_eq(mem.max_ctx, 4096);
    ck_assert_uint_lt(mem.max_tokens, 512);
    /* Not even 256 positions and one row: refused. */
    ck_assert(!exo_shard_memory_fit(&full, &last, 1, 64, 100 * mem.kv_per_ctx, true, 512, false, 4096, false, 256,
                                    &mem));
    exo_graph_plan_free(&full);
    exo_graph_plan_free(&last);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
    mtu_rmdir(dir);
}
END_TEST

/* intermediate_size 2^16 with hidden 8: each MLP row is 256 KiB of scratch, 1 MiB of weights. */
START_TEST(a_defaulted_prefill_chunk_shrinks_when_intermediates_dominate) {
    shape sh = {.vocab = 64, .hidden = 8, .inter = 1u << 16, .heads = 2, .kv_heads = 1, .head_dim = 4, .layers = 1};
    char *dir = write_model(sh);
    exo_runtime *rt;
    exo_model *m;
    ck_assert_int_eq(exo_runtime_create(NULL, &rt), EXO_OK);
    ck_assert_int_eq(exo_model_open(rt, dir, &m), EXO_OK);
    exo_graph_plan full, last;
    build_plans(m, 512, 4096, &full, &last);
    exo_shard_memory big, mem;
    exo_shard_memory_measure(&full, &last, 1, 64, 512, 4096, &big);
    ck_assert_uint_gt(big.scratch, big.kv);
    uint64_t avail = big.weights + big.kv + big.scratch / 16;
    ck_assert(exo_shard_memory_fit(&full, &last, 1, 64, avail, true, 512, false, 4096, false, 256, &mem));
    ck_assert_uint_eq(mem.max_ctx, 4096);
    ck_assert_uint_le(mem.max_tokens, 32);
    ck_assert_uint_ge(mem.max_tokens, 1);
    ck_assert_uint_le(exo_shard_memory_need(&mem, true), avail);
    exo_graph_plan_free(&full);
    exo_graph_plan_free(&last);
    exo_model_destroy(m);
    exo_runtime_destroy(rt);
    mtu_rmdir(dir);
}
END_TEST

START_TEST(size_arithmetic_saturates_instead_of_wrapping) {
    ck_assert_uint_eq(exo_mul_sat(UINT64_MAX / 2, 3), UINT64_MAX);
    ck_assert_uint_eq(exo_mul_sat(1ull << 32, 1ull << 32), UINT64_MAX);
    ck_assert_uint_eq(exo_mul_sat(1ull << 31, 1ull << 32), 1ull << 63);
    ck_assert_uint_eq(exo_add_sat(UINT64_MAX - 1, 2), UINT64_MAX);
    ck_assert_uint_eq(exo_add_sat(40, 2), 42);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shard_memory");
    TCase *tc = tcase_create("sizes");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, logits_of_a_huge_vocabulary_cost_the_rows_asked_for_not_max_tokens);
    tcase_add_test(tc, a_kv_cache_no_machine_holds_is_refused_before_allocation);
    tcase_add_test(tc, a_defaulted_context_shrinks_to_the_memory_there_is);
    tcase_add_test(tc, a_defaulted_prefill_chunk_shrinks_when_intermediates_dominate);
    tcase_add_test(tc, size_arithmetic_saturates_instead_of_wrapping);
    suite_add_tcase(s, tc);
    /* Each case in its own process: peak RSS is per case. */
    return exo_check_run(s, CK_FORK);
}
