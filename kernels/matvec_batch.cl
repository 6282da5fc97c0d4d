/* matvec_batch.cl — MATMUL at a batched decode step's row counts: dst[M,N] = x[M,K] @ W[N,K]^T
 * (+ bias) for M up to EXO_MVB_TOKENS_MAX tokens (one per sequence of the step), each weight
 * read once for all of them. Between the one-token matvecs (kernels/matmul.cl, exo_matmul_vec16*,
 * which keep one accumulator per token and re-read x per weight row) and the prefill GEMM (tiles
 * of 64..128 tokens, mostly padding at 8): at 8 rows the GEMM took 30 ms a Llama 3.2 1B step on
 * an H100, one token 2.1 ms (docs/performance.md 7.5).
 *
 * Geometry: the vec16 kernels' (gpu_build_go_matvec_batch: local size (lanes, EXO_MVB_WG /
 * lanes)); `lanes` items share a group of R consecutive weight rows and stride over K in the
 * vec16 storages' 8-element chunks (kernels/matmul.cl "Weight storage of the vec16 kernels":
 * f32, f16, bf16, MLX 4- and 8-bit, each chunk widened to a float8 once, an MLX one as s * q + b,
 * EXO_G_CHUNK_*). Per chunk an item loads its R rows' chunks, then each token's 8 x elements
 * once, feeding R x TOK accumulators in registers: a weight load serves every token, an x load
 * every row of the group. Then through local memory: the upper half of the lanes adds its R x TOK
 * sums to the lower half's, and each output (row, token) is summed over those by one item.
 *
 * Variants per storage SFX, TOK tokens at most (the host picks the smallest that holds m):
 *  exo_matmul_vecb<TOK>_<SFX>    one matmul, + residual when has_res (the vec16 + ADD fusion's
 *                                (x.w + b) + r), parameters as exo_matmul_vec16_<SFX>;
 *  exo_matmul_vecb<TOK>x3_<SFX>  up to three matmuls sharing x (q/k/v, gate/up), parameters as
 *                                exo_matmul_vec16x3_<SFX>; each row group lies in one member.
 * TOK 8 takes R = 4 rows per item, TOK 16 R = 2: 32 accumulators either way. `rpi` is R (the
 * host passes it, so the x3 row-group count per member is ceil(n_i / R) on both sides). */
#define EXO_MVB_WG 256
#define EXO_MVB_TOKENS_MAX 16

/* R weight chunks c (float8 each) of rows row0 .. row0 + R - 1 of weight P (storage SFX, n
 * rows; rows past n read row n - 1, their sums are never written). */
#define EXO_MVB_LOAD(SFX, P, R, row0, n, c, wch, at)                                               \
    for (uint r_ = 0; r_ < (R); r_++) {                                                            \
        EXO_W_ROW_##SFX(P, min((row0) + r_, (n) - 1u))                                             \
        wch[(at) + r_] = EXO_G_CHUNK_##SFX(P, (c));                                                \
    }
/* The chunks of an item's NR accumulator rows: R rows of P, then (NR = 2R: gate and up) the
 * same R rows of Q. */
#define EXO_MVB_LOAD_ALL(SFX, P, Q, R, NR, row0, n, c, wch)                                        \
    EXO_MVB_LOAD(SFX, P, R, row0, n, c, wch, 0u)                                                   \
    if ((NR) > (R)) {                                                                              \
        EXO_MVB_LOAD(SFX, Q, R, row0, n, c, wch, (R))                                              \
    }

/* acc[r][mm] += wch[r] . x row mm's chunk c, for the R accumulator rows and the m tokens: x read
 * once per chunk and token. With a folded RMS norm (`norm`, the x3 and GLU kernels): x times the
 * norm's weight here, each token's sum of squares of its raw x in sq[mm], and the 1 / rms at the
 * output (EXO_MVB_REDUCE): rms(x) . (W . (x * nw)) is the norm's (x * inv) * nw then W, rounded
 * in another order. */
#define EXO_MVB_FMA(TOK, R, c, wch)                                                                \
    {                                                                                              \
        float4 nwl = (float4)(1.0f), nwh = (float4)(1.0f);                                         \
        if (norm) {                                                                                \
            exo_load8(nw, nw_off + 8u * (c), nw_type, &nwl, &nwh);                                 \
            if (one_plus) {                                                                        \
                nwl += 1.0f;                                                                       \
                nwh += 1.0f;                                                                       \
            }                                                                                      \
        }                                                                                          \
        for (uint mm = 0; mm < (TOK); mm++)                                                        \
            if (mm < m) {                                                                          \
                uint xi = xc + ((mm * k) >> 2) + 2u * (c);                                         \
                float4 a = xv[xi], b = xv[xi + 1u];                                                \
                if (norm) {                                                                        \
                    sq[mm] += dot(a, a) + dot(b, b);                                               \
                    a *= nwl;                                                                      \
                    b *= nwh;                                                                      \
                }                                                                                  \
                for (uint r_ = 0; r_ < (R); r_++) acc[r_][mm] += dot(wch[r_].lo, a) + dot(wch[r_].hi, b); \
            }                                                                                      \
    }

/* The partial sums of row group `g` (rows g * R ..) of weight P (and, NR = 2R, of Q) against
 * x's m rows, into the work-group's `partial` ([lanes / 2 per row group][NR * TOK + 1]: a row per
 * lane pair, padded so that both the writes here and the reads of EXO_MVB_REDUCE fall in distinct
 * banks; 16.5 KiB: a row per item, 33.8 KiB, made PoCL abort the launch under the Level Zero test
 * driver (setup_kernel_arg_array_with_locals), as did 4 KiB more for the norm's sums of squares
 * (so those go through `partial` first, into inv_l: TOK floats), and half the local memory leaves
 * room for more work-groups per multiprocessor). Two chunk steps per iteration where NR is 2, so four weight
 * loads are in flight per item either way. */
#define EXO_MVB_PARTIALS(SFX, P, Q, TOK, R, NR, g, n, partial, inv_l)                              \
    uint lane = get_local_id(0), lanes = get_local_size(0);                                        \
    uint slot = get_local_id(1) * lanes + lane;                                                    \
    float acc[NR][TOK], sq[TOK];                                                                   \
    for (uint mm = 0; mm < (TOK); mm++) sq[mm] = 0.0f;                                             \
    for (uint r_ = 0; r_ < (NR); r_++)                                                             \
        for (uint mm = 0; mm < (TOK); mm++) acc[r_][mm] = 0.0f;                                    \
    if ((g) * (R) < (n)) {                                                                         \
        __global const float4 *xv = (__global const float4 *)x;                                    \
        uint chunks = k >> 3, xc = x_off >> 2, row0 = (g) * (R), c = lane;                         \
        float8 wch[NR], wch2[NR];                                                                  \
        for (; (NR) <= 2u && c + lanes < chunks; c += 2u * lanes) {                                \
            EXO_MVB_LOAD_ALL(SFX, P, Q, R, NR, row0, n, c, wch)                                    \
            EXO_MVB_LOAD_ALL(SFX, P, Q, R, NR, row0, n, c + lanes, wch2)                           \
            EXO_MVB_FMA(TOK, NR, c, wch)                                                           \
            EXO_MVB_FMA(TOK, NR, c + lanes, wch2)                                                  \
        }                                                                                          \
        for (; c < chunks; c += lanes) {                                                           \
            EXO_MVB_LOAD_ALL(SFX, P, Q, R, NR, row0, n, c, wch)                                    \
            EXO_MVB_FMA(TOK, NR, c, wch)                                                           \
        }                                                                                          \
    }                                                                                              \
    /* The upper half of a row group's lanes hands its sums to the lower half, which adds them   \
     * and leaves the lot in `partial`: half the local memory of one row per item. */              \
    uint pairs = lanes / 2u, hslot = get_local_id(1) * pairs + (lane & (pairs - 1u));              \
    __local float *mine = partial + hslot * ((NR) * (TOK) + 1u);                                   \
    /* A folded norm: every row group's lanes saw all of x, so row group 0's sums of squares,    \
     * added over its lanes through `partial` first, give each token's 1 / rms in inv_l. */       \
    if (norm) {                                                                                    \
        if (lane >= pairs)                                                                         \
            for (uint mm = 0; mm < (TOK); mm++) mine[mm] = sq[mm];                                 \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        if (lane < pairs)                                                                          \
            for (uint mm = 0; mm < (TOK); mm++) mine[mm] += sq[mm];                                \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        if (slot < (TOK)) {                                                                        \
            float ss_ = 0.0f;                                                                      \
            for (uint l_ = 0; l_ < pairs; l_++) ss_ += partial[l_ * ((NR) * (TOK) + 1u) + slot];   \
            inv_l[slot] = rsqrt(ss_ / (float)k + eps);                                             \
        }                                                                                          \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
    }                                                                                              \
    if (lane >= pairs)                                                                             \
        for (uint r_ = 0; r_ < (NR); r_++)                                                         \
            for (uint mm = 0; mm < (TOK); mm++) mine[r_ * (TOK) + mm] = acc[r_][mm];               \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                  \
    if (lane < pairs) /* its own partner's row: read, then written, by this item only */         \
        for (uint r_ = 0; r_ < (NR); r_++)                                                         \
            for (uint mm = 0; mm < (TOK); mm++) mine[r_ * (TOK) + mm] += acc[r_][mm];              \
    barrier(CLK_LOCAL_MEM_FENCE);

/* The outputs of the work-group's row groups: output o = (row group rg, row r of it, token mm)
 * summed over its lane pairs' partials by item o, two sums in flight; with NR = 2R also the
 * column R * TOK further on (the up row beside the gate row); with a folded norm both times
 * token mm's 1 / rms (inv_l). OUT(R, gg, r, mm, y, y2) stores y (and y2), the sums for row r of
 * global row group gg, token mm < m (the store checks the row). */
#define EXO_MVB_REDUCE(TOK, R, NR, partial, inv_l, OUT)                                            \
    {                                                                                              \
        uint per_group = (R) * (TOK), stride = (NR) * (TOK) + 1u, groups = get_local_size(1);      \
        for (uint o = slot; o < groups * per_group; o += EXO_MVB_WG) {                             \
            uint rg = o / per_group, v = o % per_group, mm = v % (TOK);                            \
            if (mm >= m) continue;                                                                 \
            __local const float *p = partial + rg * pairs * stride + v;                            \
            float s0 = 0.0f, s1 = 0.0f, t0 = 0.0f;                                                 \
            uint l = 0;                                                                            \
            for (; l + 1u < pairs; l += 2u) {                                                      \
                s0 += p[l * stride];                                                               \
                s1 += p[(l + 1u) * stride];                                                        \
            }                                                                                      \
            if (l < pairs) s0 += p[l * stride];                                                    \
            if ((NR) > (R))                                                                        \
                for (l = 0; l < pairs; l++) t0 += p[l * stride + per_group];                       \
            float inv_ = norm ? inv_l[mm] : 1.0f;                                                  \
            OUT(R, get_group_id(1) * groups + rg, v / (TOK), mm, (s0 + s1) * inv_, t0 * inv_)      \
        }                                                                                          \
    }

/* One matmul: row r of row group gg is weight row gg * R + r; bias, then the residual when
 * has_res, as exo_matmul_vec16_* adds them. */
#define EXO_MVB_OUT_ONE(R, gg, r, mm, y, y2)                                                       \
    {                                                                                              \
        uint row_ = (gg) * (R) + (r);                                                              \
        if (row_ < n) {                                                                            \
            size_t o_ = (size_t)(mm) * n + row_;                                                   \
            float y_ = (y) + (has_bias ? bias[bias_off + row_] : 0.0f);                            \
            dst[dst_off + o_] = has_res ? y_ + res[res_off + o_] : y_;                             \
        }                                                                                          \
    }

#define EXO_DEFINE_MATVEC_BATCH(SFX, TOK, R)                                                       \
    __kernel void exo_matmul_vecb##TOK##_##SFX(__global const float *x, uint x_off, EXO_W_PARAMS_##SFX(w), \
                                               __global const float *bias, uint bias_off, int has_bias, \
                                               __global float *dst, uint dst_off, uint m, uint k, uint n, \
                                               __global const float *res, uint res_off, int has_res, \
                                               uint rpi EXO_Q_PARAMS_##SFX) {                      \
        __local float partial[EXO_MVB_WG / 2 * ((R) * (TOK) + 1)];                                 \
        __local float *inv_l = partial; /* never read: no norm */                                  \
        EXO_NO_NORM                                                                                \
        EXO_MVB_PARTIALS(SFX, w, w, TOK, R, R, (uint)get_global_id(1), n, partial, inv_l)          \
        EXO_MVB_REDUCE(TOK, R, R, partial, inv_l, EXO_MVB_OUT_ONE)                                 \
    }

/* Member of row group g in an x3 launch: ceil(n_i / R) row groups each, in member order. */
#define EXO_MVB_MEMBER(R, g) ((g) < (n0 + (R) - 1u) / (R) ? 0u : (g) < (n0 + (R) - 1u) / (R) + (n1 + (R) - 1u) / (R) ? 1u : 2u)
#define EXO_MVB_FIRST_GROUP(R, sel) EXO_SEL3(sel, 0u, (n0 + (R) - 1u) / (R), (n0 + (R) - 1u) / (R) + (n1 + (R) - 1u) / (R))
/* Row r of global row group gg: its member's row (gg - that member's first group) * R + r. */
#define EXO_MVB_OUT_X3(R, gg, r, mm, y, y2)                                                        \
    {                                                                                              \
        uint so_ = EXO_MVB_MEMBER(R, gg), no_ = EXO_SEL3(so_, n0, n1, n2);                         \
        uint row_ = ((gg) - EXO_MVB_FIRST_GROUP(R, so_)) * (R) + (r);                              \
        if (row_ < no_) {                                                                          \
            __global float *d_ = EXO_SEL3(so_, d0, d1, d2);                                        \
            __global const float *b_ = EXO_SEL3(so_, b0, b1, b2);                                  \
            int hb_ = EXO_SEL3(so_, hb0, hb1, hb2);                                                \
            uint bo_ = EXO_SEL3(so_, b0_off, b1_off, b2_off), do_ = EXO_SEL3(so_, d0_off, d1_off, d2_off); \
            d_[do_ + (size_t)(mm) * no_ + row_] = (y) + (hb_ ? b_[bo_ + row_] : 0.0f);             \
        }                                                                                          \
    }

/* The norm arguments as exo_matmul_vec16x3_*: the RMS norm of x folded in (per token, see
 * EXO_MVB_FMA), or norm 0. */
#define EXO_DEFINE_MATVEC_BATCH_X3(SFX, TOK, R)                                                    \
    __kernel void exo_matmul_vecb##TOK##x3_##SFX(                                                  \
        __global const float *x, uint x_off, uint m, uint k,                                       \
        EXO_W_PARAMS_##SFX(w0), __global const float *b0, uint b0_off, int hb0,                    \
        __global float *d0, uint d0_off, uint n0,                                                  \
        EXO_W_PARAMS_##SFX(w1), __global const float *b1, uint b1_off, int hb1,                    \
        __global float *d1, uint d1_off, uint n1,                                                  \
        EXO_W_PARAMS_##SFX(w2), __global const float *b2, uint b2_off, int hb2,                    \
        __global float *d2, uint d2_off, uint n2, int norm, __global const uchar *nw, uint nw_off, \
        int nw_type, float eps, int one_plus, uint rpi EXO_Q_PARAMS_##SFX) {                       \
        __local float partial[EXO_MVB_WG / 2 * ((R) * (TOK) + 1)], inv_l[TOK];                     \
        uint g = get_global_id(1), sel = EXO_MVB_MEMBER(R, g);                                     \
        EXO_W_SELECT_##SFX(w, sel, w0, w1, w2)                                                     \
        uint n = EXO_SEL3(sel, n0, n1, n2);                                                        \
        EXO_MVB_PARTIALS(SFX, w, w, TOK, R, R, g - EXO_MVB_FIRST_GROUP(R, sel), n, partial, inv_l) \
        EXO_MVB_REDUCE(TOK, R, R, partial, inv_l, EXO_MVB_OUT_X3)                                  \
    }

/* Gate and up rows g * R .. of the same row group in one item (2R accumulator rows), written as
 * act(gate + bias) * (up + bias): the MLP's two matmuls and its GLU in one launch, gate and up
 * never in memory, as exo_matmul_vec16_glu_* does at one token (its act codes: 0 SiLU, 1 GELU
 * tanh). */
#define EXO_MVB_OUT_GLU(R, gg, r, mm, y, y2)                                                       \
    {                                                                                              \
        uint row_ = (gg) * (R) + (r);                                                              \
        if (row_ < n) {                                                                            \
            float g_ = (y) + (hbg ? bg[bg_off + row_] : 0.0f), u_ = (y2) + (hbu ? bu[bu_off + row_] : 0.0f); \
            dst[dst_off + (size_t)(mm) * n + row_] = exo_glu_act(g_, act) * u_;                    \
        }                                                                                          \
    }
#define EXO_DEFINE_MATVEC_BATCH_GLU(SFX, TOK, R)                                                   \
    __kernel void exo_matmul_vecb##TOK##_glu_##SFX(                                                \
        __global const float *x, uint x_off, uint m, uint k, EXO_W_PARAMS_##SFX(wg),               \
        __global const float *bg, uint bg_off, int hbg, EXO_W_PARAMS_##SFX(wu),                    \
        __global const float *bu, uint bu_off, int hbu, __global float *dst, uint dst_off, uint n,  \
        int act, int norm, __global const uchar *nw, uint nw_off, int nw_type, float eps,          \
        int one_plus EXO_Q_PARAMS_##SFX) {                                                         \
        __local float partial[EXO_MVB_WG / 2 * (2 * (R) * (TOK) + 1)], inv_l[TOK];                 \
        EXO_MVB_PARTIALS(SFX, wg, wu, TOK, R, 2 * (R), (uint)get_global_id(1), n, partial, inv_l)  \
        EXO_MVB_REDUCE(TOK, R, 2 * (R), partial, inv_l, EXO_MVB_OUT_GLU)                           \
    }

#define EXO_DEFINE_MATVEC_BATCH_ALL(SFX)                                                           \
    EXO_DEFINE_MATVEC_BATCH(SFX, 8, 4)                                                             \
    EXO_DEFINE_MATVEC_BATCH(SFX, 16, 2)                                                            \
    EXO_DEFINE_MATVEC_BATCH_X3(SFX, 8, 4)                                                          \
    EXO_DEFINE_MATVEC_BATCH_X3(SFX, 16, 2)                                                         \
    EXO_DEFINE_MATVEC_BATCH_GLU(SFX, 8, 2)                                                         \
    EXO_DEFINE_MATVEC_BATCH_GLU(SFX, 16, 1)
EXO_DEFINE_MATVEC_BATCH_ALL(f32)
EXO_DEFINE_MATVEC_BATCH_ALL(f16)
EXO_DEFINE_MATVEC_BATCH_ALL(bf16)
EXO_DEFINE_MATVEC_BATCH_ALL(mlx4)
EXO_DEFINE_MATVEC_BATCH_ALL(mlx8)
