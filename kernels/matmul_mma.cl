/* matmul_mma.cl — the prompt GEMM on NVIDIA tensor cores: dst[M,N] = x[M,K] @ W[N,K]^T (+ bias)
 * for bf16 W, through inline PTX (mma.sync m16n8k16, bf16 x bf16 -> f32), which NVIDIA's OpenCL
 * compiler accepts as hashcat's kernels use it. Compiled only where the OpenCL plugin defines
 * EXO_NV_MMA (an NVIDIA platform; plugins/opencl/backend.c), and the plugin rebuilds without it
 * if that build fails; PoCL, the SPIR-V module and every other device see an empty file.
 *
 * x is f32 and the goldens want 1e-4, so each activation is split into bf16 parts,
 * x = x1 + x2 (+ x3): x1 = bf16(x), x2 = bf16(x - x1), x3 = bf16(x - x1 - x2), each rounded to
 * nearest (the differences are exact in f32). Three parts carry all 24 bits of x's mantissa
 * (each holds 8 significant bits plus a sign), so x . w with bf16 w is exact up to the f32
 * accumulation of the tensor cores; two parts leave ~2^-17 relative error per product. One mma
 * per part (`parts`, 2 or 3: EXO_GPU_MMA_PARTS), the smallest part first.
 *
 * Block: BM = 64 tokens x BN weight rows (64 or 128) per work-group of 128 items = 4 warps in a
 * 2x2 grid, a warp 32 x BN/2 outputs (2 m16 tiles x BN/16 n8 tiles of f32 accumulators in
 * registers). K in steps of 32: x as float4s split into the parts and W as 16-byte chunks stored
 * in local memory as packed bf16 pairs [row][k/2] (rows of 20 words: the fragment reads of a
 * warp - 8 rows x 4 pairs - hit 32 distinct banks); the next step's global loads are issued
 * before the current step's mma. Host (plugins/gpu_common/gpu_gemm.c): k a multiple of 32, the
 * weight's element offset a multiple of 8, x's of 4. */
#ifdef EXO_NV_MMA
#define EXO_MMA_BM 64
#define EXO_MMA_BK 32
#define EXO_MMA_LD 20 /* words per local row: 16 pairs + 4 */
#define EXO_MMA_ITEMS 128
#define EXO_MMA_MAX_PARTS 3

static inline uint exo_mma_bf16_rn(float f) {
    uint u = as_uint(f);
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

/* Two activations as their parts: word p holds part p of a (low half) and of b (high half). */
static inline void exo_mma_split2(float a, float b, uint out[EXO_MMA_MAX_PARTS]) {
    for (uint p = 0; p < EXO_MMA_MAX_PARTS; p++) {
        uint ha = exo_mma_bf16_rn(a), hb = exo_mma_bf16_rn(b);
        out[p] = ha | (hb << 16);
        a -= as_float(ha << 16);
        b -= as_float(hb << 16);
    }
}

#ifndef EXO_MMA_EMULATE
/* Loops of a constant trip count over fragments and accumulators: unrolled, so they stay in
 * registers. */
#define EXO_MMA_UNROLL _Pragma("unroll")
#define EXO_MMA_SCRATCH_DECL
static inline void exo_mma_bf16_16816(float4 *c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1) {
    float c0 = c->x, c1 = c->y, c2 = c->z, c3 = c->w;
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(c0), "+f"(c1), "+f"(c2), "+f"(c3)
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    *c = (float4)(c0, c1, c2, c3);
}
#else
/* The same warp-wide product without tensor cores, for checking the fragment layouts on any
 * device (PoCL): each lane publishes its registers in local memory, then computes its four
 * outputs from the whole warp's (PTX ISA, "Matrix Fragments for mma.m16n8k16": A row g / g + 8,
 * k pairs 2t and 2t + 8; B k pairs 2t and 2t + 8 of column g; C row g / g + 8, columns 2t, 2t + 1,
 * with g = lane / 4, t = lane % 4, the lower k in the low half of a word). Every item calls it
 * the same number of times (barriers). */
#define EXO_MMA_UNROLL
#define EXO_MMA_SCRATCH_DECL __local uint mma_frag[EXO_MMA_ITEMS * 6];
static inline float exo_mma_half(uint word, uint k) { return as_float((k & 1u) ? word & 0xffff0000u : word << 16); }
static inline void exo_mma_bf16_16816_emu(float4 *c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1,
                                          __local uint *frag) {
    uint tid = get_local_id(0), lane = tid & 31u, g = lane >> 2, t = lane & 3u;
    __local uint *wf = frag + (tid - lane) * 6u;
    barrier(CLK_LOCAL_MEM_FENCE);
    wf[lane * 6u + 0u] = a0;
    wf[lane * 6u + 1u] = a1;
    wf[lane * 6u + 2u] = a2;
    wf[lane * 6u + 3u] = a3;
    wf[lane * 6u + 4u] = b0;
    wf[lane * 6u + 5u] = b1;
    barrier(CLK_LOCAL_MEM_FENCE);
    float o[4] = {c->x, c->y, c->z, c->w};
    for (uint e = 0; e < 4u; e++) {
        uint row = g + (e >> 1) * 8u, col = t * 2u + (e & 1u);
        for (uint k = 0; k < 16u; k++) {
            uint kl = (k & 7u) >> 1, hi = k >> 3; /* lane t within the group, register of the k half */
            uint areg = (row >= 8u ? 1u : 0u) + 2u * hi;
            float a = exo_mma_half(wf[((row & 7u) * 4u + kl) * 6u + areg], k);
            float b = exo_mma_half(wf[(col * 4u + kl) * 6u + 4u + hi], k);
            o[e] = fma(a, b, o[e]);
        }
    }
    *c = (float4)(o[0], o[1], o[2], o[3]);
}
#define exo_mma_bf16_16816(c, a0, a1, a2, a3, b0, b1) exo_mma_bf16_16816_emu(c, a0, a1, a2, a3, b0, b1, mma_frag)
#endif

/* Global loads of one K step (k0) into registers: x rows tid/8 + 16 l as float4 tid%8; weight
 * rows tid/4 + 32 l as 8-element chunk tid%4, read through matmul.cl's chunk loaders (MLX codes
 * dequantized to s * q + b in f32 there); rows past m or n load zeros. */
#define EXO_MMA_LOAD(SFX, BN, k0)                                                                  \
    EXO_MMA_UNROLL for (uint l = 0; l < 4u; l++) {                                                 \
        uint gm = m0 + (tid >> 3) + 16u * l;                                                       \
        xr[l] = gm < m ? xv[((x_off + gm * k + (k0)) >> 2) + (tid & 7u)] : (float4)(0.0f);          \
    }                                                                                              \
    EXO_MMA_UNROLL for (uint l = 0; l < (BN) / 32u; l++) {                                         \
        uint gn = n0 + (tid >> 2) + 32u * l;                                                       \
        EXO_W_ROW_##SFX(w, gn < n ? gn : 0u)                                                       \
        wr[l] = gn < n ? EXO_G_CHUNK_##SFX(w, ((k0) >> 3) + (tid & 3u)) : (float8)(0.0f);          \
    }
/* The registers into local memory as bf16 parts: x in EXO_MMA_MAX_PARTS, W in WP. */
#define EXO_MMA_STORE(BN, WP)                                                                      \
    EXO_MMA_UNROLL for (uint l = 0; l < 4u; l++) {                                                 \
        uint r = (tid >> 3) + 16u * l, c = (tid & 7u) * 2u;                                        \
        uint lo[EXO_MMA_MAX_PARTS], hi[EXO_MMA_MAX_PARTS];                                         \
        exo_mma_split2(xr[l].x, xr[l].y, lo);                                                      \
        exo_mma_split2(xr[l].z, xr[l].w, hi);                                                      \
        EXO_MMA_UNROLL for (uint p = 0; p < EXO_MMA_MAX_PARTS; p++)                                \
            vstore2((uint2)(lo[p], hi[p]), 0, as + (p * EXO_MMA_BM + r) * EXO_MMA_LD + c);          \
    }                                                                                              \
    EXO_MMA_UNROLL for (uint l = 0; l < (BN) / 32u; l++) {                                         \
        uint r = (tid >> 2) + 32u * l;                                                             \
        uint q0[EXO_MMA_MAX_PARTS], q1[EXO_MMA_MAX_PARTS], q2[EXO_MMA_MAX_PARTS], q3[EXO_MMA_MAX_PARTS]; \
        exo_mma_split2(wr[l].s0, wr[l].s1, q0);                                                    \
        exo_mma_split2(wr[l].s2, wr[l].s3, q1);                                                    \
        exo_mma_split2(wr[l].s4, wr[l].s5, q2);                                                    \
        exo_mma_split2(wr[l].s6, wr[l].s7, q3);                                                    \
        EXO_MMA_UNROLL for (uint p = 0; p < (WP); p++)                                             \
            vstore4((uint4)(q0[p], q1[p], q2[p], q3[p]), 0, ws + (p * (BN) + r) * EXO_MMA_LD + (tid & 3u) * 4u); \
    }

/* exo_matmul_mma64x<BN>_<SFX>: SFX a weight storage of matmul.cl (bf16: WP = 1 part, exact;
 * f16: 2 parts, exact, an f16 holding 11 significant bits; mlx4 / mlx8: each weight s * q + b in
 * f32, 2 parts: ~17 bits). Products x part px by W part pw for px + pw < parts (the dropped
 * ones are below 2^-(8 parts) of a product), smallest first. */
#define EXO_DEFINE_GEMM_MMA(SFX, BN, WP)                                                           \
    __kernel __attribute__((reqd_work_group_size(EXO_MMA_ITEMS, 1, 1))) void                       \
        exo_matmul_mma64x##BN##_##SFX(__global const float *x, uint x_off, EXO_W_PARAMS_##SFX(w),  \
                                      __global const float *bias, uint bias_off, int has_bias,     \
                                      __global float *dst, uint dst_off, uint m, uint k, uint n,   \
                                      uint parts EXO_Q_PARAMS_##SFX) {                             \
        __local uint as[EXO_MMA_MAX_PARTS * EXO_MMA_BM * EXO_MMA_LD];                              \
        __local uint ws[(WP) * (BN) * EXO_MMA_LD];                                                 \
        EXO_MMA_SCRATCH_DECL                                                                       \
        uint tid = get_local_id(0), lane = tid & 31u, warp = tid >> 5;                             \
        uint g = lane >> 2, t = lane & 3u, wm = warp >> 1, wn = warp & 1u;                         \
        uint n0 = get_group_id(0) * (BN), m0 = get_group_id(1) * EXO_MMA_BM;                       \
        float4 acc[2][(BN) / 16];                                                                  \
        EXO_MMA_UNROLL for (uint i = 0; i < 2u; i++)                                               \
            EXO_MMA_UNROLL for (uint j = 0; j < (BN) / 16u; j++) acc[i][j] = (float4)(0.0f);       \
        float4 xr[4];                                                                              \
        float8 wr[(BN) / 32];                                                                      \
        __global const float4 *xv = (__global const float4 *)x;                                   \
        EXO_MMA_LOAD(SFX, BN, 0u)                                                                  \
        for (uint k0 = 0;; k0 += EXO_MMA_BK) {                                                     \
            EXO_MMA_STORE(BN, WP)                                                                  \
            barrier(CLK_LOCAL_MEM_FENCE);                                                          \
            uint k1 = k0 + EXO_MMA_BK;                                                             \
            if (k1 < k) {                                                                          \
                EXO_MMA_LOAD(SFX, BN, k1)                                                          \
            }                                                                                      \
            EXO_MMA_UNROLL for (uint kk = 0; kk < 2u; kk++) {                                      \
                uint b0[WP][(BN) / 16], b1[WP][(BN) / 16];                                         \
                EXO_MMA_UNROLL for (uint pw = 0; pw < (WP); pw++)                                  \
                    EXO_MMA_UNROLL for (uint j = 0; j < (BN) / 16u; j++) {                         \
                        __local const uint *br =                                                   \
                            ws + (pw * (BN) + wn * (BN) / 2u + j * 8u + g) * EXO_MMA_LD + kk * 8u + t; \
                        b0[pw][j] = br[0];                                                         \
                        b1[pw][j] = br[4];                                                         \
                    }                                                                              \
                EXO_MMA_UNROLL for (uint px = EXO_MMA_MAX_PARTS; px-- > 0;) {                      \
                    EXO_MMA_UNROLL for (uint i = 0; i < 2u; i++) {                                 \
                        if (px >= parts) continue;                                                 \
                        __local const uint *ar =                                                   \
                            as + (px * EXO_MMA_BM + wm * 32u + i * 16u + g) * EXO_MMA_LD + kk * 8u + t; \
                        uint a0 = ar[0], a1 = ar[8u * EXO_MMA_LD], a2 = ar[4], a3 = ar[8u * EXO_MMA_LD + 4u]; \
                        EXO_MMA_UNROLL for (uint pw = (WP); pw-- > 0;) {                           \
                            if (px + pw >= parts) continue;                                        \
                            EXO_MMA_UNROLL for (uint j = 0; j < (BN) / 16u; j++)                   \
                                exo_mma_bf16_16816(&acc[i][j], a0, a1, a2, a3, b0[pw][j], b1[pw][j]); \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            if (k1 >= k) break;                                                                    \
            barrier(CLK_LOCAL_MEM_FENCE);                                                          \
        }                                                                                          \
        EXO_MMA_UNROLL for (uint i = 0; i < 2u; i++)                                               \
            EXO_MMA_UNROLL for (uint j = 0; j < (BN) / 16u; j++) {                                 \
                uint gn = n0 + wn * (BN) / 2u + j * 8u + t * 2u;                                   \
                float bb0 = has_bias && gn < n ? bias[bias_off + gn] : 0.0f;                       \
                float bb1 = has_bias && gn + 1u < n ? bias[bias_off + gn + 1u] : 0.0f;             \
                EXO_MMA_UNROLL for (uint h = 0; h < 2u; h++) {                                     \
                    uint gm = m0 + wm * 32u + i * 16u + g + 8u * h;                                \
                    if (gm >= m) continue;                                                         \
                    float v0 = h ? acc[i][j].z : acc[i][j].x, v1 = h ? acc[i][j].w : acc[i][j].y;  \
                    if (gn < n) dst[dst_off + (size_t)gm * n + gn] = v0 + bb0;                     \
                    if (gn + 1u < n) dst[dst_off + (size_t)gm * n + gn + 1u] = v1 + bb1;           \
                }                                                                                  \
            }                                                                                      \
    }
#define EXO_DEFINE_GEMM_MMA_ALL(SFX, WP)                                                           \
    EXO_DEFINE_GEMM_MMA(SFX, 128, WP)                                                              \
    EXO_DEFINE_GEMM_MMA(SFX, 64, WP)
EXO_DEFINE_GEMM_MMA_ALL(bf16, 1)
EXO_DEFINE_GEMM_MMA_ALL(f16, 2)
EXO_DEFINE_GEMM_MMA_ALL(mlx4, 2)
EXO_DEFINE_GEMM_MMA_ALL(mlx8, 2)
#endif
