/* Which devices get Intel's sub-group and XMX kernels (plugins/gpu_common/gpu_intel.h,
 * kernels/matmul_intel.cl), from fake extension strings and sub-group sizes as Intel's, NVIDIA's and
 * PoCL's drivers report them, under each EXO_GPU_XMX value; and which MATMULs the kernels then take
 * (gpu_intel_matmul against a backend that records its launches). No device is needed: the kernels'
 * arithmetic is test_opencl_ops' intel case (opencl_ops_intel_emulate*). */
#include "check_run.h"
#include "gpu_intel.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* As Intel's driver reports an Arc A770 (Xe-HPG, dg2) and a Data Center GPU Max (Xe-HPC, pvc). */
#define ARC_EXT                                                                                     \
    "cl_khr_fp16 cl_khr_subgroups cl_intel_subgroups cl_intel_subgroups_short cl_intel_subgroups_char " \
    "cl_intel_required_subgroup_size cl_intel_subgroup_matrix_multiply_accumulate "                 \
    "cl_intel_subgroup_split_matrix_multiply_accumulate cl_intel_device_attribute_query"
static const uint32_t arc_sizes[] = {8, 16, 32}, pvc_sizes[] = {16, 32};
/* An older Intel iGPU (Xe-LP): sub-groups, no DPAS. */
#define XE_LP_EXT "cl_khr_fp16 cl_intel_subgroups cl_intel_subgroups_short cl_intel_required_subgroup_size"
#define NVIDIA_EXT "cl_khr_fp64 cl_khr_subgroups cl_nv_device_attribute_query cl_khr_fp16"
#define POCL_EXT                                                                                    \
    "cl_khr_byte_addressable_store cl_khr_global_int32_base_atomics cl_khr_3d_image_writes "        \
    "cl_khr_command_buffer cl_khr_spir cl_khr_fp64"

START_TEST(off_without_exo_gpu_xmx) {
    gpu_intel_choice c;
    const char *values[] = {NULL, "", "0"};
    for (int i = 0; i < 3; i++) {
        gpu_intel_choose(ARC_EXT, arc_sizes, 3, values[i], &c);
        ck_assert_uint_eq(c.kernels, 0);
        ck_assert_str_eq(c.defines, "");
        ck_assert_ptr_nonnull(strstr(c.why, "off until they have run on an Intel GPU"));
    }
    gpu_intel_choose(ARC_EXT, arc_sizes, 3, "yes", &c); /* only 1, emulate, emulate8 mean on */
    ck_assert_uint_eq(c.kernels, 0);
    ck_assert_ptr_nonnull(strstr(c.why, "EXO_GPU_XMX=yes"));
}
END_TEST

START_TEST(intel_devices_with_exo_gpu_xmx) {
    gpu_intel_choice c;
    gpu_intel_choose(ARC_EXT, arc_sizes, 3, "1", &c); /* dg2: DPAS is SIMD8 */
    ck_assert_uint_eq(c.kernels, GPU_INTEL_SGBLOCK | GPU_INTEL_DPAS);
    ck_assert_uint_eq(c.sub_group, 8);
    ck_assert_int_eq(c.emulated, 0);
    ck_assert_str_eq(c.defines, " -DEXO_INTEL_SUBGROUPS -DEXO_INTEL_DPAS -DEXO_XMX_SG=8");
    gpu_intel_choose(ARC_EXT, pvc_sizes, 2, "1", &c); /* pvc, Xe2: no 8-lane sub-groups */
    ck_assert_uint_eq(c.kernels, GPU_INTEL_SGBLOCK | GPU_INTEL_DPAS);
    ck_assert_uint_eq(c.sub_group, 16);
    ck_assert_str_eq(c.defines, " -DEXO_INTEL_SUBGROUPS -DEXO_INTEL_DPAS -DEXO_XMX_SG=16");
    gpu_intel_choose(XE_LP_EXT, arc_sizes, 3, "1", &c); /* block reads, no matrix engines */
    ck_assert_uint_eq(c.kernels, GPU_INTEL_SGBLOCK);
    ck_assert_str_eq(c.defines, " -DEXO_INTEL_SUBGROUPS -DEXO_XMX_SG=8");
    ck_assert_ptr_nonnull(strstr(c.why, "no XMX GEMM"));
}
END_TEST

START_TEST(other_devices_keep_the_portable_kernels) {
    gpu_intel_choice c;
    static const uint32_t nv_sizes[] = {32};
    gpu_intel_choose(NVIDIA_EXT, nv_sizes, 1, "1", &c);
    ck_assert_uint_eq(c.kernels, 0);
    ck_assert_ptr_nonnull(strstr(c.why, "lacks cl_intel_subgroups"));
    gpu_intel_choose(POCL_EXT, NULL, 0, "1", &c);
    ck_assert_uint_eq(c.kernels, 0);
    ck_assert_str_eq(c.defines, "");
    /* Whole extension names only: a longer name that starts with a needed one does not count. */
    gpu_intel_choose("cl_intel_subgroups_char cl_intel_subgroups_short cl_intel_required_subgroup_size", arc_sizes, 3,
                     "1", &c);
    ck_assert_uint_eq(c.kernels, 0);
    ck_assert_ptr_nonnull(strstr(c.why, "lacks cl_intel_subgroups"));
    gpu_intel_choose(ARC_EXT, NULL, 0, "1", &c); /* sub-group sizes unknown */
    ck_assert_uint_eq(c.kernels, 0);
    gpu_intel_choose(ARC_EXT, nv_sizes, 1, "1", &c); /* 32 lanes only */
    ck_assert_uint_eq(c.kernels, 0);
}
END_TEST

START_TEST(emulation_on_any_device) {
    gpu_intel_choice c;
    gpu_intel_choose(POCL_EXT, NULL, 0, "emulate", &c);
    ck_assert_uint_eq(c.kernels, GPU_INTEL_SGBLOCK | GPU_INTEL_DPAS);
    ck_assert_uint_eq(c.sub_group, 16);
    ck_assert_int_eq(c.emulated, 1);
    ck_assert_str_eq(c.defines, " -DEXO_INTEL_SUBGROUPS -DEXO_INTEL_DPAS -DEXO_XMX_SG=16 -DEXO_XMX_EMULATE");
    gpu_intel_choose(POCL_EXT, NULL, 0, "emulate8", &c);
    ck_assert_uint_eq(c.sub_group, 8);
    ck_assert_str_eq(c.defines, " -DEXO_INTEL_SUBGROUPS -DEXO_INTEL_DPAS -DEXO_XMX_SG=8 -DEXO_XMX_EMULATE");
}
END_TEST

/* ---- which MATMULs take the kernels: a view over fake tensors, launches recorded */

static gpu_launch last;
static int launches;
static exo_status record(void *ctx, const gpu_launch *l) {
    (void)ctx;
    last = *l;
    launches++;
    return EXO_OK;
}

enum { X, W, SCALES, BIASES, Y, N_TENSORS };

typedef struct fake_view {
    gpu_backend be;
    exo_tensor t[N_TENSORS];
    gpu_mem *mem[N_TENSORS];
    uint64_t offset[N_TENSORS];
    gpu_exec_view v;
    exo_node nd;
} fake_view;

static void tensor(exo_tensor *t, exo_dtype dtype, int64_t ne0, int64_t ne1) {
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->n_dims = 2;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
}

/* x [K, tokens] @ W [K, N] at `tokens` tokens, W of dtype `wt` (MLX_AFFINE: 4-bit, group 64),
 * W at byte offset `w_offset`, on a backend with Intel kernels `intel` of `lanes` lanes. */
static void fake_matmul(fake_view *f, exo_dtype wt, int64_t K, int64_t N, uint32_t tokens, uint64_t w_offset,
                        uint32_t intel, uint32_t lanes) {
    memset(f, 0, sizeof *f);
    f->be.name = "fake";
    f->be.launch = record;
    f->be.features.intel = intel;
    f->be.features.intel_sub_group = lanes;
    tensor(&f->t[X], EXO_DTYPE_F32, K, EXO_DIM_TOKENS);
    tensor(&f->t[W], wt, K, N);
    tensor(&f->t[SCALES], EXO_DTYPE_BF16, K / 64, N);
    tensor(&f->t[BIASES], EXO_DTYPE_BF16, K / 64, N);
    tensor(&f->t[Y], EXO_DTYPE_F32, N, EXO_DIM_TOKENS);
    if (wt == EXO_DTYPE_MLX_AFFINE) {
        f->t[W].q_bits = 4;
        f->t[W].q_group = 64;
        f->t[W].q_scales = SCALES;
        f->t[W].q_biases = BIASES;
    }
    f->offset[W] = w_offset;
    f->v.be = &f->be;
    f->v.tensors = f->t;
    f->v.mem = f->mem;
    f->v.offset = f->offset;
    f->v.n_tokens = tokens;
    f->nd.op = EXO_OP_MATMUL;
    f->nd.dst = Y;
    f->nd.n_src = 2;
    f->nd.src[0] = X;
    f->nd.src[1] = W;
}

/* The kernel gpu_intel_matmul launched for the fake MATMUL, or NULL when it declined. */
static const char *taken(fake_view *f) {
    launches = 0;
    exo_status st = EXO_ERR_INTERNAL;
    if (!gpu_intel_matmul(&f->v, &f->nd, &st)) {
        ck_assert_int_eq(launches, 0);
        return NULL;
    }
    ck_assert_int_eq(st, EXO_OK);
    ck_assert_int_eq(launches, 1);
    return last.kernel;
}

START_TEST(matmuls_that_take_the_kernels) {
    fake_view f;
    const uint32_t all = GPU_INTEL_SGBLOCK | GPU_INTEL_DPAS;
    fake_matmul(&f, EXO_DTYPE_BF16, 2048, 100, 1, 0, all, 16);
    ck_assert_str_eq(taken(&f), "exo_matmul_sgblock_bf16");
    /* Two rows per 16-lane sub-group, four sub-groups per work-group: 13 groups for 100 rows. */
    ck_assert_uint_eq(last.local[0], 64);
    ck_assert_uint_eq(last.global[0], 13 * 64);
    ck_assert_uint_eq(last.n_args, 8); /* x, W, bias, has_bias, y, m, k, n */
    fake_matmul(&f, EXO_DTYPE_MLX_AFFINE, 2048, 100, 4, 32, all, 8);
    ck_assert_str_eq(taken(&f), "exo_matmul_sgblock_mlx4");
    ck_assert_uint_eq(last.local[0], 32);
    ck_assert_uint_eq(last.n_args, 12); /* + scales, biases, q_type, group */
    fake_matmul(&f, EXO_DTYPE_BF16, 2048, 100, 70, 0, all, 16);
    ck_assert_str_eq(taken(&f), "exo_matmul_xmx_bf16");
    /* 128 rows (4 sub-groups x 2 x 16) by 32 tokens per work-group. */
    ck_assert_uint_eq(last.global[0], 64);
    ck_assert_uint_eq(last.global[1], 3);
    ck_assert_uint_eq(last.local[1], 1);

    /* Declined: no Intel kernels, f32/f16 weights, MLX words off 16 bytes, MLX prompts, unaligned
     * weights, k not a multiple of 16 for the GEMM, the GEMM not built (no DPAS). */
    fake_matmul(&f, EXO_DTYPE_BF16, 2048, 100, 1, 0, 0, 0);
    ck_assert_ptr_null(taken(&f));
    fake_matmul(&f, EXO_DTYPE_F32, 2048, 100, 1, 0, all, 16);
    ck_assert_ptr_null(taken(&f));
    fake_matmul(&f, EXO_DTYPE_F16, 2048, 100, 70, 0, all, 16);
    ck_assert_ptr_null(taken(&f));
    fake_matmul(&f, EXO_DTYPE_MLX_AFFINE, 2048, 100, 1, 12, all, 16);
    ck_assert_ptr_null(taken(&f));
    fake_matmul(&f, EXO_DTYPE_MLX_AFFINE, 2048, 100, 70, 0, all, 16); /* MLX prompts: the portable GEMM */
    ck_assert_ptr_null(taken(&f));
    fake_matmul(&f, EXO_DTYPE_BF16, 2048, 100, 1, 6, all, 16);
    ck_assert_ptr_null(taken(&f));
    fake_matmul(&f, EXO_DTYPE_BF16, 200, 100, 70, 0, all, 16);
    ck_assert_ptr_null(taken(&f));
    fake_matmul(&f, EXO_DTYPE_BF16, 2048, 100, 70, 0, GPU_INTEL_SGBLOCK, 16);
    ck_assert_ptr_null(taken(&f));
    fake_matmul(&f, EXO_DTYPE_BF16, 2048, 100, 1, 0, GPU_INTEL_SGBLOCK, 16);
    ck_assert_str_eq(taken(&f), "exo_matmul_sgblock_bf16");
}
END_TEST

int main(void) {
    Suite *s = suite_create("gpu_intel_choice");
    TCase *tc = tcase_create("choice");
    tcase_add_test(tc, off_without_exo_gpu_xmx);
    tcase_add_test(tc, intel_devices_with_exo_gpu_xmx);
    tcase_add_test(tc, other_devices_keep_the_portable_kernels);
    tcase_add_test(tc, emulation_on_any_device);
    tcase_add_test(tc, matmuls_that_take_the_kernels);
    suite_add_tcase(s, tc);
    return exo_check_run(s, CK_FORK_GETENV);
}
