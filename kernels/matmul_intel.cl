/* matmul_intel.cl — MATMUL on Intel GPUs: sub-group block reads (cl_intel_subgroups,
 * cl_intel_subgroups_short) for decode and the matrix engines (XMX, through
 * cl_intel_subgroup_matrix_multiply_accumulate: DPAS) for prompts. dst[M,N] = x[M,K] @ W[N,K]^T
 * (+ bias[N]), the parameter lists of kernels/matmul.cl's float kernels (x, W, bias, has_bias, dst,
 * m, k, n; MLX weights as words, scales, biases and, at the end, q_type and group).
 *
 * Compiled only where the build defines EXO_INTEL_SUBGROUPS, the GEMM where it also defines
 * EXO_INTEL_DPAS (plugins/gpu_common/gpu_intel.c decides from the device's extensions and
 * EXO_GPU_XMX, which is off by default: these kernels have not run on an Intel GPU yet;
 * docs/performance.md 5.6). EXO_XMX_SG is the sub-group size, 8 where the device
 * has it (Xe-HPG, dg2: DPAS is SIMD8 there) else 16 (Xe-HPC pvc, Xe2). EXO_XMX_EMULATE runs the
 * same kernels on any OpenCL 1.2 device (PoCL in the tests), each sub-group builtin replaced by
 * local memory and barriers, so the arithmetic and the indexing are checked where no Intel GPU is.
 *
 *  exo_matmul_sgblock_bf16  decode (m <= 4 tokens): a sub-group per two weight rows; each step
 *                           block-reads 8 x EXO_XMX_SG consecutive bf16 of both rows and the same
 *                           x elements (one ushort8 / uint8 per lane), then one sub-group sum.
 *  exo_matmul_sgblock_mlx4  the same over MLX 4-bit words (4 x EXO_XMX_SG words a step, 8 codes
 *                           each, its group's scale and bias).
 *  exo_matmul_xmx_bf16      prompts: a sub-group computes 32 tokens x 2*EXO_XMX_SG weight rows
 *                           with intel_sub_group_bf16_bf16_matrix_mad_k16 (8 x 16 by 16 x SG per
 *                           call), K in steps of 16. bf16 weights are DPAS operands as they are;
 *                           each f32 activation is split into EXO_XMX_PARTS bf16 parts (3: x0 =
 *                           bf16(x), x1 = bf16(x - x0), x2 = bf16(x - x0 - x1), 24 bits as f32 has),
 *                           each multiplied, so the products are f32 matmul's; one bf16 part, or
 *                           TF32, would round x to 8 or 11 significant bits. */
#ifdef EXO_INTEL_SUBGROUPS

#ifndef EXO_XMX_SG
#define EXO_XMX_SG 16
#endif
#if EXO_XMX_SG != 8 && EXO_XMX_SG != 16
#error "EXO_XMX_SG must be 8 or 16"
#endif
/* bf16 parts per f32 activation in the GEMM: 3 (default) keep x to 24 bits, f32's own precision;
 * 2 to 16 (|error| <= 2^-17 |x|, two thirds of the DPAS work; -DEXO_XMX_PARTS=2, e.g. through
 * EXO_OPENCL_DEFINES, to compare). */
#ifndef EXO_XMX_PARTS
#define EXO_XMX_PARTS 3
#endif
#if EXO_XMX_PARTS != 2 && EXO_XMX_PARTS != 3
#error "EXO_XMX_PARTS must be 2 or 3"
#endif
#define EXO_XMX_SGS 4                          /* sub-groups per work-group */
#define EXO_XMX_WG (EXO_XMX_SG * EXO_XMX_SGS) /* work-group size (dimension 0) */
/* Every helper is inlined, also in the SPIR-V build, which is -O0 (clang then marks functions
 * noinline, and an out-of-line DPAS or block read per call is what the matrix engines cannot
 * afford). */
#define EXO_XMX_INLINE static inline __attribute__((always_inline))
#define EXO_XMX_TM 32                          /* tokens per sub-group tile of the GEMM (4 x 8) */
/* Local floats the emulation needs per work-group: 8 rows x 16 k of A per sub-group (DPAS) and
 * one float per item (sums). */
#define EXO_XMX_LDS (EXO_XMX_SGS * 8 * 16)

/* The A operand of one DPAS: 8 rows x 16 k of bf16, 16 / EXO_XMX_SG per lane and row (SG16: one
 * short, k = lane; SG8: a ushort2 as an int, k = 2 lane, 2 lane + 1, the even one low). */
#if EXO_XMX_SG == 16
typedef short8 exo_xmx_a;
#define EXO_XMX_A_PER_LANE 1
#else
typedef int8 exo_xmx_a;
#define EXO_XMX_A_PER_LANE 2
#endif

#ifdef EXO_XMX_EMULATE
/* Sub-groups are EXO_XMX_SG consecutive items of dimension 0, as on Intel GPUs (the work-group's
 * linear order); every emulated builtin that crosses lanes goes through `lds` between barriers,
 * so the kernels below call them in uniform control flow only (they must on hardware too). */
#define EXO_XMX_ATTR
#define EXO_XMX_LDS_DECL __local float lds[EXO_XMX_LDS];
EXO_XMX_INLINE uint exo_xmx_lane(void) { return get_local_id(0) % EXO_XMX_SG; }
EXO_XMX_INLINE uint exo_xmx_sg(void) { return get_local_id(0) / EXO_XMX_SG; }
EXO_XMX_INLINE ushort8 exo_xmx_read_us8(__global const ushort *p) {
    uint l = exo_xmx_lane();
    return (ushort8)(p[l], p[l + EXO_XMX_SG], p[l + 2 * EXO_XMX_SG], p[l + 3 * EXO_XMX_SG], p[l + 4 * EXO_XMX_SG],
                     p[l + 5 * EXO_XMX_SG], p[l + 6 * EXO_XMX_SG], p[l + 7 * EXO_XMX_SG]);
}
EXO_XMX_INLINE uint4 exo_xmx_read_ui4(__global const uint *p) {
    uint l = exo_xmx_lane();
    return (uint4)(p[l], p[l + EXO_XMX_SG], p[l + 2 * EXO_XMX_SG], p[l + 3 * EXO_XMX_SG]);
}
EXO_XMX_INLINE uint8 exo_xmx_read_ui8(__global const uint *p) {
    uint l = exo_xmx_lane();
    return (uint8)(p[l], p[l + EXO_XMX_SG], p[l + 2 * EXO_XMX_SG], p[l + 3 * EXO_XMX_SG], p[l + 4 * EXO_XMX_SG],
                   p[l + 5 * EXO_XMX_SG], p[l + 6 * EXO_XMX_SG], p[l + 7 * EXO_XMX_SG]);
}
EXO_XMX_INLINE float exo_xmx_sum(float v, __local float *lds) {
    uint lid = get_local_id(0), base = exo_xmx_sg() * EXO_XMX_SG;
    lds[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    float s = 0.0f;
    for (uint i = 0; i < EXO_XMX_SG; i++) s += lds[base + i];
    barrier(CLK_LOCAL_MEM_FENCE);
    return s;
}
EXO_XMX_INLINE float exo_xmx_bf16(uint bits) { return as_float(bits << 16); }
/* acc[r] (lane n) += sum_k A[r][k] * B[k][n]: the lanes' A parts meet in local memory; B is this
 * lane's column, k pairs packed low-even (the VNNI order DPAS reads). */
EXO_XMX_INLINE float8 exo_xmx_mad(exo_xmx_a a, int8 b, float8 acc, __local float *lds) {
    __local float *rows = lds + exo_xmx_sg() * 128u;
    uint l = exo_xmx_lane();
    uint ab[8];
    vstore8(as_uint8(convert_int8(a)), 0, ab); /* SG16: sign-extended shorts; the low 16 bits count */
    for (uint r = 0; r < 8; r++) {
#if EXO_XMX_SG == 16
        rows[r * 16u + l] = exo_xmx_bf16(ab[r] & 0xffffu);
#else
        rows[r * 16u + 2u * l] = exo_xmx_bf16(ab[r] & 0xffffu);
        rows[r * 16u + 2u * l + 1u] = exo_xmx_bf16(ab[r] >> 16);
#endif
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    uint bw[8];
    vstore8(as_uint8(b), 0, bw);
    float out[8];
    vstore8(acc, 0, out);
    for (uint r = 0; r < 8; r++)
        for (uint kk = 0; kk < 16; kk++) {
            uint pair = bw[kk >> 1];
            out[r] = fma(rows[r * 16u + kk], exo_xmx_bf16((kk & 1u) ? pair >> 16 : pair & 0xffffu), out[r]);
        }
    barrier(CLK_LOCAL_MEM_FENCE);
    return vload8(0, out);
}
#else
#pragma OPENCL EXTENSION cl_intel_subgroups : enable
#pragma OPENCL EXTENSION cl_intel_subgroups_short : enable
#define EXO_XMX_ATTR __attribute__((intel_reqd_sub_group_size(EXO_XMX_SG)))
#define EXO_XMX_LDS_DECL __local float *lds = 0; /* unused: the builtins cross lanes themselves */
/* Intel's compiler declares the DPAS builtins with the extension; clang (the SPIR-V build) does
 * not, so they are declared as Intel's opencl-c header does (IGC resolves the calls by their
 * mangled names against its builtin library). */
#if defined(EXO_INTEL_DPAS) && !defined(cl_intel_subgroup_matrix_multiply_accumulate)
float8 __attribute__((overloadable)) intel_sub_group_bf16_bf16_matrix_mad_k16(short8 a, int8 b, float8 acc);
float8 __attribute__((overloadable)) intel_sub_group_bf16_bf16_matrix_mad_k16(int8 a, int8 b, float8 acc);
#endif
EXO_XMX_INLINE uint exo_xmx_lane(void) { return get_sub_group_local_id(); }
EXO_XMX_INLINE uint exo_xmx_sg(void) { return get_sub_group_id(); }
EXO_XMX_INLINE ushort8 exo_xmx_read_us8(__global const ushort *p) { return intel_sub_group_block_read_us8(p); }
EXO_XMX_INLINE uint4 exo_xmx_read_ui4(__global const uint *p) { return intel_sub_group_block_read4(p); }
EXO_XMX_INLINE uint8 exo_xmx_read_ui8(__global const uint *p) { return intel_sub_group_block_read8(p); }
EXO_XMX_INLINE float exo_xmx_sum(float v, __local float *lds) {
    (void)lds;
    return sub_group_reduce_add(v);
}
#ifdef EXO_INTEL_DPAS
EXO_XMX_INLINE float8 exo_xmx_mad(exo_xmx_a a, int8 b, float8 acc, __local float *lds) {
    (void)lds;
    return intel_sub_group_bf16_bf16_matrix_mad_k16(a, b, acc);
}
#endif
#endif

/* Decode, bf16 weights. Host conditions (gpu_intel.c): k, the weight offset multiples of 8 and x's
 * of 4 (block reads want 16-byte aligned addresses), m <= 4. Work-groups of EXO_XMX_WG items,
 * two rows per sub-group: global EXO_XMX_WG * ceil(n / (2 * EXO_XMX_SGS)). */
__kernel EXO_XMX_ATTR void exo_matmul_sgblock_bf16(__global const float *x, uint x_off, __global const ushort *w,
                                                   uint w_off, __global const float *bias, uint bias_off,
                                                   int has_bias, __global float *dst, uint dst_off, uint m, uint k,
                                                   uint n) {
    EXO_XMX_LDS_DECL
    uint lane = exo_xmx_lane();
    uint row_a = (get_group_id(0) * EXO_XMX_SGS + exo_xmx_sg()) * 2u, row_b = row_a + 1u;
    /* Rows past n read the last row (uniform control flow) and store nothing. */
    __global const ushort *wa = w + w_off + (size_t)min(row_a, n - 1u) * k;
    __global const ushort *wb = w + w_off + (size_t)min(row_b, n - 1u) * k;
    float acc_a[4] = {0.0f, 0.0f, 0.0f, 0.0f}, acc_b[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const uint step = 8u * EXO_XMX_SG, k_main = k - k % step;
    for (uint j = 0; j < k_main; j += step) {
        float8 wfa = as_float8(convert_uint8(exo_xmx_read_us8(wa + j)) << 16);
        float8 wfb = as_float8(convert_uint8(exo_xmx_read_us8(wb + j)) << 16);
        for (uint mm = 0; mm < m; mm++) {
            float8 xv = as_float8(exo_xmx_read_ui8((__global const uint *)(x + x_off + (size_t)mm * k + j)));
            acc_a[mm] += dot(wfa.lo, xv.lo) + dot(wfa.hi, xv.hi);
            acc_b[mm] += dot(wfb.lo, xv.lo) + dot(wfb.hi, xv.hi);
        }
    }
    for (uint j = k_main + lane; j < k; j += EXO_XMX_SG) { /* the tail, element by element */
        float fa = as_float((uint)wa[j] << 16), fb = as_float((uint)wb[j] << 16);
        for (uint mm = 0; mm < m; mm++) {
            float xv = x[x_off + (size_t)mm * k + j];
            acc_a[mm] += fa * xv;
            acc_b[mm] += fb * xv;
        }
    }
    for (uint mm = 0; mm < 4u; mm++) {
        float sa = exo_xmx_sum(acc_a[mm], lds), sb = exo_xmx_sum(acc_b[mm], lds);
        if (lane == 0u && mm < m) {
            if (row_a < n) dst[dst_off + (size_t)mm * n + row_a] = sa + (has_bias ? bias[bias_off + row_a] : 0.0f);
            if (row_b < n) dst[dst_off + (size_t)mm * n + row_b] = sb + (has_bias ? bias[bias_off + row_b] : 0.0f);
        }
    }
}

/* One MLX 4-bit word (8 codes) of a row against x[e .. e + 8): s * (q . x) + b * sum(x), the
 * regrouping kernels/matmul.cl's MLX kernels use. */
EXO_XMX_INLINE float exo_xmx_word_q4(uint wd, __global const float *xe, float s, float b) {
    float4 lo = vload4(0, xe), hi = vload4(1, xe);
    float q = (float)(wd & 15u) * lo.x + (float)((wd >> 4) & 15u) * lo.y + (float)((wd >> 8) & 15u) * lo.z +
              (float)((wd >> 12) & 15u) * lo.w + (float)((wd >> 16) & 15u) * hi.x +
              (float)((wd >> 20) & 15u) * hi.y + (float)((wd >> 24) & 15u) * hi.z + (float)(wd >> 28) * hi.w;
    return s * q + b * ((lo.x + lo.y) + (lo.z + lo.w) + (hi.x + hi.y) + (hi.z + hi.w));
}

/* Decode, MLX 4-bit weights (groups of 32, 64 or 128). Host conditions: the words' offset a
 * multiple of 4 words (16 bytes; k is a multiple of the group, so every row starts aligned), x's
 * offset of 4, m <= 4. The geometry of exo_matmul_sgblock_bf16. */
__kernel EXO_XMX_ATTR void exo_matmul_sgblock_mlx4(__global const float *x, uint x_off, __global const uint *w,
                                                   uint w_off, __global const uchar *sc, uint sc_off,
                                                   __global const uchar *bi, uint bi_off, __global const float *bias,
                                                   uint bias_off, int has_bias, __global float *dst, uint dst_off,
                                                   uint m, uint k, uint n, int q_type, uint group) {
    EXO_XMX_LDS_DECL
    uint lane = exo_xmx_lane();
    uint row_a = (get_group_id(0) * EXO_XMX_SGS + exo_xmx_sg()) * 2u, row_b = row_a + 1u;
    uint ra = min(row_a, n - 1u), rb = min(row_b, n - 1u), words = k / 8u, groups = k / group;
    uint wpg_shift = 28u - clz(group); /* words per group = group / 8, a power of two */
    __global const uint *wa = w + w_off + (size_t)ra * words, *wb = w + w_off + (size_t)rb * words;
    uint ga = sc_off + ra * groups, gb = sc_off + rb * groups, ba = bi_off + ra * groups, bb = bi_off + rb * groups;
    float acc_a[4] = {0.0f, 0.0f, 0.0f, 0.0f}, acc_b[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const uint step = 4u * EXO_XMX_SG, main_words = words - words % step;
    for (uint c0 = 0; c0 < main_words; c0 += step) {
        uint4 qa = exo_xmx_read_ui4(wa + c0), qb = exo_xmx_read_ui4(wb + c0);
        uint qa_[4], qb_[4];
        vstore4(qa, 0, qa_);
        vstore4(qb, 0, qb_);
        for (uint i = 0; i < 4u; i++) {
            uint c = c0 + i * EXO_XMX_SG + lane, g = c >> wpg_shift; /* the word this lane got, its group */
            float sa = exo_load(sc, ga + g, q_type), bia = exo_load(bi, ba + g, q_type);
            float sb = exo_load(sc, gb + g, q_type), bib = exo_load(bi, bb + g, q_type);
            for (uint mm = 0; mm < m; mm++) {
                __global const float *xe = x + x_off + (size_t)mm * k + (size_t)c * 8u;
                acc_a[mm] += exo_xmx_word_q4(qa_[i], xe, sa, bia);
                acc_b[mm] += exo_xmx_word_q4(qb_[i], xe, sb, bib);
            }
        }
    }
    for (uint c = main_words + lane; c < words; c += EXO_XMX_SG) { /* the tail, word by word */
        uint g = c >> wpg_shift;
        float sa = exo_load(sc, ga + g, q_type), bia = exo_load(bi, ba + g, q_type);
        float sb = exo_load(sc, gb + g, q_type), bib = exo_load(bi, bb + g, q_type);
        for (uint mm = 0; mm < m; mm++) {
            __global const float *xe = x + x_off + (size_t)mm * k + (size_t)c * 8u;
            acc_a[mm] += exo_xmx_word_q4(wa[c], xe, sa, bia);
            acc_b[mm] += exo_xmx_word_q4(wb[c], xe, sb, bib);
        }
    }
    for (uint mm = 0; mm < 4u; mm++) {
        float sa = exo_xmx_sum(acc_a[mm], lds), sb = exo_xmx_sum(acc_b[mm], lds);
        if (lane == 0u && mm < m) {
            if (row_a < n) dst[dst_off + (size_t)mm * n + row_a] = sa + (has_bias ? bias[bias_off + row_a] : 0.0f);
            if (row_b < n) dst[dst_off + (size_t)mm * n + row_b] = sb + (has_bias ? bias[bias_off + row_b] : 0.0f);
        }
    }
}

#ifdef EXO_INTEL_DPAS
/* x's bf16 parts for one DPAS A operand: rows t0 .. t0 + 7 (clamped to m - 1: rows past m compute
 * what no one stores), k0 .. k0 + 15 split across the lanes. Part 0 rounds x to nearest even, each
 * next part the exact remainder of the ones before (EXO_XMX_PARTS of them, 2 or 3). */
EXO_XMX_INLINE exo_xmx_a exo_xmx_pack(const uint *w) {
#if EXO_XMX_SG == 16
    return as_short8(convert_ushort8(vload8(0, w)));
#else
    return as_int8(vload8(0, w));
#endif
}
EXO_XMX_INLINE void exo_xmx_split_a(__global const float *x, uint x_off, uint k, uint m, uint t0, uint k0,
                                   exo_xmx_a *a0, exo_xmx_a *a1, exo_xmx_a *a2) {
    uint l = exo_xmx_lane();
    uint p0[8], p1[8], p2[8];
    for (uint r = 0; r < 8u; r++) {
        __global const float *xr = x + x_off + (size_t)min(t0 + r, m - 1u) * k + k0 + l * EXO_XMX_A_PER_LANE;
        uint w0 = 0, w1 = 0, w2 = 0;
        for (uint e = 0; e < EXO_XMX_A_PER_LANE; e++) {
            float v = xr[e];
            ushort b0 = exo_f32_to_bf16(v);
            float r1 = v - as_float((uint)b0 << 16); /* exact */
            ushort b1 = exo_f32_to_bf16(r1);
            ushort b2 = exo_f32_to_bf16(r1 - as_float((uint)b1 << 16));
            w0 |= (uint)b0 << (16u * e);
            w1 |= (uint)b1 << (16u * e);
            w2 |= (uint)b2 << (16u * e);
        }
        p0[r] = w0;
        p1[r] = w1;
        p2[r] = w2;
    }
    *a0 = exo_xmx_pack(p0);
    *a1 = exo_xmx_pack(p1);
    *a2 = exo_xmx_pack(p2);
}

/* Prompts, bf16 weights. Host conditions: k a multiple of 16, the weight offset of 8 elements
 * (each lane's 16 k of a row is one 32-byte load), x's of 4. Work-group (EXO_XMX_WG, 1): sub-group
 * s covers weight rows [(group0 * EXO_XMX_SGS + s) * 2 * SG, + 2 * SG), dimension 1 tokens
 * [group1 * 32, + 32). The B operand is 16 k of lane n's weight row, which in memory is already
 * DPAS's packed pair order (two consecutive bf16 per uint, the even k low). */
__kernel EXO_XMX_ATTR void exo_matmul_xmx_bf16(__global const float *x, uint x_off, __global const ushort *w,
                                               uint w_off, __global const float *bias, uint bias_off, int has_bias,
                                               __global float *dst, uint dst_off, uint m, uint k, uint n) {
    EXO_XMX_LDS_DECL
    uint lane = exo_xmx_lane();
    uint row0 = (get_group_id(0) * EXO_XMX_SGS + exo_xmx_sg()) * (2u * EXO_XMX_SG), t0 = get_group_id(1) * EXO_XMX_TM;
    uint r0 = min(row0 + lane, n - 1u), r1 = min(row0 + EXO_XMX_SG + lane, n - 1u);
    __global const uint *w0 = (__global const uint *)(w + w_off + (size_t)r0 * k);
    __global const uint *w1 = (__global const uint *)(w + w_off + (size_t)r1 * k);
    float8 acc[4][2];
    for (uint i = 0; i < 4u; i++) acc[i][0] = acc[i][1] = (float8)(0.0f);
    for (uint k0 = 0; k0 < k; k0 += 16u) {
        int8 b0 = as_int8(vload8(0, w0 + k0 / 2u)), b1 = as_int8(vload8(0, w1 + k0 / 2u));
        for (uint i = 0; i < 4u; i++) {
            exo_xmx_a a0, a1, a2;
            exo_xmx_split_a(x, x_off, k, m, t0 + 8u * i, k0, &a0, &a1, &a2);
            acc[i][0] = exo_xmx_mad(a0, b0, acc[i][0], lds);
            acc[i][0] = exo_xmx_mad(a1, b0, acc[i][0], lds);
            acc[i][1] = exo_xmx_mad(a0, b1, acc[i][1], lds);
            acc[i][1] = exo_xmx_mad(a1, b1, acc[i][1], lds);
#if EXO_XMX_PARTS == 3
            acc[i][0] = exo_xmx_mad(a2, b0, acc[i][0], lds);
            acc[i][1] = exo_xmx_mad(a2, b1, acc[i][1], lds);
#endif
        }
    }
    for (uint nb = 0; nb < 2u; nb++) {
        uint row = row0 + nb * EXO_XMX_SG + lane;
        if (row >= n) continue;
        float b = has_bias ? bias[bias_off + row] : 0.0f;
        for (uint i = 0; i < 4u; i++) {
            float out[8];
            vstore8(acc[i][nb], 0, out);
            for (uint r = 0; r < 8u; r++) {
                uint t = t0 + 8u * i + r;
                if (t < m) dst[dst_off + (size_t)t * n + row] = out[r] + b;
            }
        }
    }
}
#endif /* EXO_INTEL_DPAS */

#endif /* EXO_INTEL_SUBGROUPS */
