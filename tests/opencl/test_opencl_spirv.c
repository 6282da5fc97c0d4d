/* The SPIR-V module the Level Zero plugin embeds computes what the OpenCL C the OpenCL plugin
 * builds computes. PoCL cannot load SPIR-V, so the module goes back to LLVM bitcode at build
 * time (llvm-spirv-15 -r, plugins/gpu_common/CMakeLists.txt) and loads as SPIR ("-x spir",
 * cl_khr_spir); the same kernels (matmul decode and prefill, attention, rope) then run from both
 * programs on identical inputs and their outputs are compared. */
#define CL_TARGET_OPENCL_VERSION 300
#include <CL/cl.h>

#include "exo_kernels_cl.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_run.h"

static cl_context context;
static cl_device_id device;
static cl_command_queue queue;
static cl_program from_source, from_spirv;

#define CHECK_CL(call)                                                                      \
    do {                                                                                    \
        cl_int err_ = (call);                                                               \
        ck_assert_msg(err_ == CL_SUCCESS, "%s failed: %d", #call, err_);                    \
    } while (0)

static void setup(void) {
    cl_platform_id platform;
    cl_uint n = 0;
    if (clGetPlatformIDs(1, &platform, &n) != CL_SUCCESS || n == 0 ||
        clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, &n) != CL_SUCCESS || n == 0) {
        fprintf(stderr, "skip: no OpenCL device\n");
        exit(77);
    }
    char ext[8192] = "";
    clGetDeviceInfo(device, CL_DEVICE_EXTENSIONS, sizeof ext, ext, NULL);
    if (!strstr(ext, "cl_khr_spir")) {
        fprintf(stderr, "skip: the device has no cl_khr_spir\n");
        exit(77);
    }
    cl_int err;
    context = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
    ck_assert_int_eq(err, CL_SUCCESS);
    queue = clCreateCommandQueueWithProperties(context, device, NULL, &err);
    ck_assert_int_eq(err, CL_SUCCESS);

    from_source = clCreateProgramWithSource(context, exo_kernels_cl_count, (const char **)exo_kernels_cl_sources, NULL, &err);
    ck_assert_int_eq(err, CL_SUCCESS);
    CHECK_CL(clBuildProgram(from_source, 1, &device, "-cl-std=CL1.2", NULL, NULL));

    FILE *f = fopen(EXO_KERNELS_ROUNDTRIP_BC, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", EXO_KERNELS_ROUNDTRIP_BC);
    fseek(f, 0, SEEK_END);
    size_t size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *bc = malloc(size);
    ck_assert_uint_eq(fread(bc, 1, size, f), size);
    fclose(f);
    cl_int status;
    from_spirv = clCreateProgramWithBinary(context, 1, &device, &size, (const unsigned char **)&bc, &status, &err);
    free(bc);
    ck_assert_int_eq(err, CL_SUCCESS);
    err = clBuildProgram(from_spirv, 1, &device, "-x spir -spir-std=1.2", NULL, NULL);
    if (err != CL_SUCCESS) {
        char log[4096] = "";
        clGetProgramBuildInfo(from_spirv, device, CL_PROGRAM_BUILD_LOG, sizeof log, log, NULL);
        ck_abort_msg("building the SPIR-V round trip failed: %d: %s", err, log);
    }
}

static void teardown(void) {
    clReleaseProgram(from_source);
    clReleaseProgram(from_spirv);
    clReleaseCommandQueue(queue);
    clReleaseContext(context);
}

/* Kernel arguments: buffers are (data, bytes, is_output) and expand to (cl_mem, uint 0) like the
 * plugins pass them; scalars are 4 bytes. */
typedef struct karg {
    char kind; /* 'b' buffer, 'u' uint, 'i' int, 'f' float */
    const void *data;
    size_t bytes;
    float *out;  /* buffer to read back into (outputs) */
    uint32_t u;
    int32_t i;
    float f;
} karg;

#define BUF(p, n) ((karg){'b', (p), (n), NULL, 0, 0, 0})
#define OUT(p, n) ((karg){'b', NULL, (n), (p), 0, 0, 0})
#define U32(v) ((karg){'u', NULL, 0, NULL, (uint32_t)(v), 0, 0})
#define I32(v) ((karg){'i', NULL, 0, NULL, 0, (int32_t)(v), 0})
#define F32(v) ((karg){'f', NULL, 0, NULL, 0, 0, (float)(v)})

static void run(cl_program program, const char *name, karg *args, int n_args, cl_uint dims, const size_t *global,
                const size_t *local) {
    cl_int err;
    cl_kernel k = clCreateKernel(program, name, &err);
    ck_assert_msg(err == CL_SUCCESS, "clCreateKernel(%s): %d", name, err);
    cl_mem mems[16];
    int n_mems = 0;
    cl_uint index = 0, zero = 0;
    for (int a = 0; a < n_args; a++) {
        karg *g = &args[a];
        if (g->kind == 'b') {
            cl_mem m = clCreateBuffer(context, CL_MEM_READ_WRITE | (g->data ? CL_MEM_COPY_HOST_PTR : 0), g->bytes,
                                      (void *)g->data, &err);
            ck_assert_int_eq(err, CL_SUCCESS);
            if (!g->data) {
                float z = 0;
                CHECK_CL(clEnqueueFillBuffer(queue, m, &z, sizeof z, 0, g->bytes, 0, NULL, NULL));
            }
            mems[n_mems++] = m;
            CHECK_CL(clSetKernelArg(k, index++, sizeof m, &m));
            CHECK_CL(clSetKernelArg(k, index++, sizeof zero, &zero));
        } else if (g->kind == 'u') {
            CHECK_CL(clSetKernelArg(k, index++, 4, &g->u));
        } else if (g->kind == 'i') {
            CHECK_CL(clSetKernelArg(k, index++, 4, &g->i));
        } else {
            CHECK_CL(clSetKernelArg(k, index++, 4, &g->f));
        }
    }
    CHECK_CL(clEnqueueNDRangeKernel(queue, k, dims, NULL, global, local, 0, NULL, NULL));
    for (int a = 0, m = 0; a < n_args; a++) {
        if (args[a].kind != 'b') continue;
        if (args[a].out) CHECK_CL(clEnqueueReadBuffer(queue, mems[m], CL_TRUE, 0, args[a].bytes, args[a].out, 0, NULL, NULL));
        m++;
    }
    for (int m = 0; m < n_mems; m++) clReleaseMemObject(mems[m]);
    clReleaseKernel(k);
}

static void random_floats(float *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)((seed >> 8) / 16777216.0) * 2.0f - 1.0f;
    }
}

static double nmse(const float *a, const float *b, size_t n) {
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    ck_assert(r > 0);
    return e / r;
}

/* Runs `name` on both programs; args with outputs get fresh result arrays per program. */
static void compare(const char *name, karg *args, int n_args, cl_uint dims, const size_t *global, const size_t *local,
                    float *out_a, float *out_b, size_t n_out) {
    for (int a = 0; a < n_args; a++)
        if (args[a].kind == 'b' && !args[a].data) args[a].out = out_a;
    run(from_source, name, args, n_args, dims, global, local);
    for (int a = 0; a < n_args; a++)
        if (args[a].kind == 'b' && !args[a].data) args[a].out = out_b;
    run(from_spirv, name, args, n_args, dims, global, local);
    double e = nmse(out_b, out_a, n_out);
    printf("spirv-vs-source %-24s NMSE %.3e\n", name, e);
    ck_assert_msg(e <= 1e-12, "%s: SPIR-V and OpenCL C results differ: NMSE %.3e", name, e);
}

START_TEST(matmul_from_spirv_matches_opencl_c) {
    setup();
    enum { K = 130, N = 70, M = 9 };
    static float x[M * K], w[N * K], bias[N], a[M * N], b[M * N];
    random_floats(x, M * K, 1);
    random_floats(w, N * K, 2);
    random_floats(bias, N, 3);
    karg args[] = {BUF(x, sizeof x), BUF(w, sizeof w), BUF(bias, sizeof bias), I32(1), OUT(NULL, sizeof a),
                   U32(M), U32(K), U32(N)};
    size_t g_tiled[2] = {(N + 63) / 64 * 16, (M + 63) / 64 * 16}, l_tiled[2] = {16, 16};
    compare("exo_matmul_tiled_f32", args, 8, 2, g_tiled, l_tiled, a, b, M * N);
    args[5] = U32(3); /* decode-sized */
    size_t g_vec = N * 64, l_vec = 64;
    compare("exo_matmul_vec_f32", args, 8, 1, &g_vec, &l_vec, a, b, 3 * N);
    teardown();
}
END_TEST

/* Over a pool of two caches (ABI 1.6): the tokens alternate slots, each at its own position; in
 * each cache dtype (ABI 1.7: exo_attention, _bf16, _f16 and the same of the split kernel). */
START_TEST(attention_from_spirv_matches_opencl_c) {
    setup();
    enum { NH = 4, NKV = 2, HD = 64, T = 5, CTX = 40, SLOTS = 2, SPLIT = 16, SPLITS = 2, CACHE = SLOTS * CTX * NKV * HD };
    static float q[T * NH * HD], kc[CACHE], vc[CACHE], a[T * NH * HD], b[T * NH * HD];
    static uint16_t kc16[CACHE], vc16[CACHE];
    static float pa[T * NH * SPLITS * (HD + 2)], pb[T * NH * SPLITS * (HD + 2)];
    int32_t pos[T] = {30, 17, 32, 20, 34}, slots[T] = {1, 0, 1, 0, 0};
    random_floats(q, sizeof q / 4, 4);
    random_floats(kc, CACHE, 5);
    random_floats(vc, CACHE, 6);
    static float sinks[NH];
    random_floats(sinks, NH, 7); /* gpt_oss's per-head sink logits: the denominator's extra term */
    static const char *const suffixes[] = {"", "_bf16", "_f16"};
    for (int dt = 0; dt < 3; dt++) {
        const void *k = kc, *v = vc;
        size_t bytes = sizeof kc;
        if (dt > 0) { /* the caches' values in 16 bits (bf16 truncated: any bits will do here) */
            for (int i = 0; i < CACHE; i++) {
                _Float16 hk = (_Float16)kc[i], hv = (_Float16)vc[i];
                uint32_t bk, bv;
                memcpy(&bk, &kc[i], 4);
                memcpy(&bv, &vc[i], 4);
                if (dt == 1) {
                    kc16[i] = (uint16_t)(bk >> 16);
                    vc16[i] = (uint16_t)(bv >> 16);
                } else {
                    memcpy(&kc16[i], &hk, 2);
                    memcpy(&vc16[i], &hv, 2);
                }
            }
            k = kc16;
            v = vc16;
            bytes = sizeof kc16;
        }
        char name[48];
        karg args[] = {BUF(q, sizeof q), BUF(k, bytes), BUF(v, bytes), BUF(pos, sizeof pos), BUF(slots, sizeof slots),
                       U32(SLOTS), BUF(sinks, sizeof sinks), I32(1), OUT(NULL, sizeof a), I32(NH), I32(NKV), I32(HD),
                       I32(0), F32(0.125f), F32(0.0f), I32(CTX)};
        size_t g[2] = {NH * 64, T}, l[2] = {64, 1};
        snprintf(name, sizeof name, "exo_attention%s", suffixes[dt]);
        compare(name, args, 16, 2, g, l, a, b, sizeof a / 4);
        /* The split decode kernel over the same tokens: every token's rows fill both splits of 16. */
        karg split_args[] = {BUF(q, sizeof q), BUF(k, bytes), BUF(v, bytes), BUF(pos, sizeof pos),
                             BUF(slots, sizeof slots), U32(SLOTS), OUT(NULL, sizeof pa), I32(NH), I32(NKV), I32(HD),
                             I32(0), F32(0.125f), F32(0.0f), I32(CTX), I32(SPLIT)};
        size_t gs[3] = {SPLITS * 64, NH, T}, ls[3] = {64, 1, 1};
        snprintf(name, sizeof name, "exo_attention_split%s", suffixes[dt]);
        compare(name, split_args, 15, 3, gs, ls, pa, pb, sizeof pa / 4);
        /* The grouped-query kernels the module holds (kernels/attention_gqa.cl): a work-group per
         * KV head, the 2 variant holding the group of 2, the 4 variant with heads to spare. */
        size_t gg[3] = {SPLITS * 64, NKV, T};
        for (int gm = 2; gm <= 4; gm *= 2) {
            snprintf(name, sizeof name, "exo_attention_split_g%d%s", gm, suffixes[dt]);
            compare(name, split_args, 15, 3, gg, ls, pa, pb, sizeof pa / 4);
        }
    }
    teardown();
}
END_TEST

START_TEST(rope_from_spirv_matches_opencl_c) {
    setup();
    enum { HD = 64, NH = 3, T = 4 };
    static float x[T * NH * HD], freq[HD / 2], a[T * NH * HD], b[T * NH * HD];
    int32_t pos[T] = {0, 7, 300, 4095};
    random_floats(x, sizeof x / 4, 7);
    for (int i = 0; i < HD / 2; i++) freq[i] = powf(10000.0f, -2.0f * (float)i / HD);
    karg args[] = {BUF(x, sizeof x), BUF(pos, sizeof pos), BUF(freq, sizeof freq), OUT(NULL, sizeof a),
                   U32(HD), U32(NH), I32(HD), I32(1), F32(1.0f)};
    size_t g[3] = {HD, NH, T}, l[3] = {32, 1, 1};
    compare("exo_rope", args, 9, 3, g, l, a, b, sizeof a / 4);
    teardown();
}
END_TEST

int main(void) {
    Suite *s = suite_create("opencl_spirv");
    TCase *tc = tcase_create("spirv");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, matmul_from_spirv_matches_opencl_c);
    tcase_add_test(tc, attention_from_spirv_matches_opencl_c);
    tcase_add_test(tc, rope_from_spirv_matches_opencl_c);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
