/* matmul.cl — MATMUL: dst[M,N] = x[M,K] @ W[N,K]^T (+ bias[N]), W in f32 / f16 / bf16, f32
 * accumulation. Three shapes of kernel, each stamped out per weight type (suffix _f32/_f16/_bf16):
 *
 *  exo_matmul_vec_*     decode (M <= EXO_MV_MAX_M): one work-group of EXO_MV_WG items per weight
 *                       row; each item strides over K with 4-wide loads, then a local-memory tree
 *                       sums the partials. Weight rows are read once per row, whatever M is.
 *  exo_matmul_vec_sg_*  the same with subgroup reductions (EXO_SUBGROUPS): a work-group of
 *                       EXO_MV_WG items covers EXO_SG_ROWS rows, one subgroup per row at a time,
 *                       no local memory and no barriers.
 *  exo_matmul_vec16_*   decode on aligned data (host checks: k, the weight offset multiples of 8 and
 *                       the x offset of 4 elements): 16-byte weight loads (8 bf16/f16 or 2x4 f32)
 *                       so a GPU issues full-width coalesced reads. A work-group of EXO_MV16_WG
 *                       items is a 2-D (lanes, rows) block: `lanes` items share one weight row
 *                       (the host picks 32..128 to fill the device), a local tree sums them.
 *  exo_matmul_vec16x3_* the same for up to three matvecs sharing x, in one launch.
 *  exo_matmul_vec16_glu_* one token's gate and up rows together, written as act(gate) * up.
 *                       The vec16 family also takes MLX affine 4- and 8-bit weights (suffix
 *                       _mlx4/_mlx8, "Weight storage of the vec16 kernels" below), so quantized
 *                       decode fuses as float decode does.
 *  exo_matmul_tiled_*   prefill: 64x64 output blocks per 16x16 work-group (4x4 per item), K in
 *                       steps of 16 through local memory, so each loaded weight serves 64 tokens. */
#define EXO_MV_WG 64
#define EXO_MV16_WG 256
#define EXO_MV_MAX_M 4
#define EXO_SG_ROWS 4
#define EXO_GEMM_TS 16
#define EXO_GEMM_BM 64
#define EXO_GEMM_BK 16

/* Accumulates x[mm, j..] . W[row_base + j..] for mm < m over this item's share of K (start,
 * step). Weights are addressed by index from w, never by an offset pointer (see common.cl). */
#define EXO_ROW_DOT(SFX, row_base, start, step)                                                    \
    uint k4 = k & ~3u;                                                                             \
    for (uint j = (start) * 4u; j < k4; j += (step) * 4u) {                                        \
        float4 wv = exo_load4_##SFX(w, (row_base) + j);                                            \
        for (uint mm = 0; mm < m; mm++) acc[mm] += dot(wv, vload4(0, x + x_off + (size_t)mm * k + j)); \
    }                                                                                              \
    for (uint j = k4 + (start); j < k; j += (step)) {                                              \
        float wv = exo_load1_##SFX(w, (row_base) + j);                                             \
        for (uint mm = 0; mm < m; mm++) acc[mm] += wv * x[x_off + (size_t)mm * k + j];             \
    }

#define EXO_DEFINE_MATVEC(SFX, WT)                                                                 \
    __kernel void exo_matmul_vec_##SFX(__global const float *x, uint x_off, __global const WT *w,  \
                                       uint w_off, __global const float *bias, uint bias_off,      \
                                       int has_bias, __global float *dst, uint dst_off, uint m,    \
                                       uint k, uint n) {                                           \
        __local float partial[EXO_MV_MAX_M * EXO_MV_WG];                                           \
        uint row = get_group_id(0), lid = get_local_id(0);                                         \
        float acc[EXO_MV_MAX_M] = {0.0f, 0.0f, 0.0f, 0.0f};                                        \
        if (row < n) {                                                                             \
            EXO_ROW_DOT(SFX, w_off + row * k, lid, EXO_MV_WG)                                      \
        }                                                                                          \
        for (uint mm = 0; mm < EXO_MV_MAX_M; mm++) partial[mm * EXO_MV_WG + lid] = acc[mm];        \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        for (uint s = EXO_MV_WG / 2; s > 0; s >>= 1) {                                             \
            if (lid < s)                                                                           \
                for (uint mm = 0; mm < EXO_MV_MAX_M; mm++)                                         \
                    partial[mm * EXO_MV_WG + lid] += partial[mm * EXO_MV_WG + lid + s];            \
            barrier(CLK_LOCAL_MEM_FENCE);                                                          \
        }                                                                                          \
        if (lid == 0 && row < n) {                                                                 \
            float b = has_bias ? bias[bias_off + row] : 0.0f;                                      \
            for (uint mm = 0; mm < m; mm++) dst[dst_off + (size_t)mm * n + row] = partial[mm * EXO_MV_WG] + b; \
        }                                                                                          \
    }

/* Straight-line pieces of the MLX decode kernels (no private arrays: GPU compilers put
 * dynamically indexed ones in slow stack memory). q . x of the 8 4-bit codes of word wd against
 * x elements (a, b), of the 4 8-bit codes of wd against a, and a float4's sum. */
static inline float exo_dot8_q4(uint wd, float4 a, float4 b) {
    return (float)(wd & 15u) * a.x + (float)((wd >> 4) & 15u) * a.y + (float)((wd >> 8) & 15u) * a.z +
           (float)((wd >> 12) & 15u) * a.w + (float)((wd >> 16) & 15u) * b.x + (float)((wd >> 20) & 15u) * b.y +
           (float)((wd >> 24) & 15u) * b.z + (float)(wd >> 28) * b.w;
}
static inline float exo_dot4_q8(uint wd, float4 a) {
    return (float)(wd & 255u) * a.x + (float)((wd >> 8) & 255u) * a.y + (float)((wd >> 16) & 255u) * a.z +
           (float)(wd >> 24) * a.w;
}
static inline float exo_sum4(float4 a) { return (a.x + a.y) + (a.z + a.w); }

/* ---- Weight storage of the vec16 kernels (exo_matmul_vec16*_<SFX>). One kernel body serves
 * every storage; what differs is how a weight operand named P reaches the kernel and how the
 * body reads one 8-element chunk of its row. Per storage SFX:
 *  EXO_W_PARAMS_SFX(P)     P's kernel parameters: P, P_off (in elements of its type; in words
 *                          for MLX), and for MLX its scales and biases P_sc, P_sc_off, P_bi,
 *                          P_bi_off (offsets in elements of the launch's q_type);
 *  EXO_Q_PARAMS_SFX        what all weights of one launch share, closing the parameter list
 *                          (MLX: q_type, the scales' and biases' dtype, and group; float: none);
 *  EXO_W_SELECT_SFX(P, sel, P0, P1, P2)   declares P as operand P0, P1 or P2 (exo_matmul_vec16x3_*);
 *  EXO_W_ROW_SFX(P, row)   declares where row `row` (k elements) starts: P_c (and for MLX P_g,
 *                          the row's first group, and P_gs, chunks per group as a shift);
 *  EXO_WCH_SFX             the type of a loaded chunk;
 *  EXO_W_LOAD_SFX(P, c)    chunk c of that row, loads only, so the body issues several loads
 *                          before it uses any (bytes in flight are what a matvec lives on);
 *  EXO_W_DOT_SFX(ch, a, b) chunk ch . the same eight x elements (float4s a, b).
 * Float storages (f32, f16, bf16) read a chunk as one aligned 16-byte load (two for f32).
 * MLX affine (mlx4, mlx8: 4- and 8-bit codes; other widths straddle words and run
 * exo_matmul_vec_mlx alone): a chunk's codes are one word (4-bit) or one aligned 8-byte pair
 * (8-bit; the host checks the words' offset is even), plus its group's scale and bias -- a
 * group of 32..128 elements is 4..16 consecutive chunks, read by neighbouring lanes, so those
 * loads hit the same cache lines. The dot is s * (q . x) + b * sum(x), the sum regrouped as in
 * exo_mlx_block_dot, so each code costs one multiply-add. */
#define EXO_SEL3(sel, a, b, c) ((sel) == 0u ? (a) : (sel) == 1u ? (b) : (c))

/* Eight consecutive weights (chunk c, counted in 8-element steps from w); the chunk is 16-byte
 * aligned (32 for f32), so these are single wide loads. bf16 pairs sit in one uint
 * little-endian: the even element in the low half. */
static inline float8 exo_chunk8_bf16(__global const ushort *w, uint c) {
    uint4 u = ((__global const uint4 *)w)[c];
    return (float8)(as_float4((uint4)(u.x << 16, u.x & 0xffff0000u, u.y << 16, u.y & 0xffff0000u)),
                    as_float4((uint4)(u.z << 16, u.z & 0xffff0000u, u.w << 16, u.w & 0xffff0000u)));
}
static inline float8 exo_chunk8_f16(__global const ushort *w, uint c) { return vloada_half8(c, (__global const half *)w); }
static inline float8 exo_chunk8_f32(__global const float *w, uint c) {
    __global const float4 *p = (__global const float4 *)w;
    return (float8)(p[2u * c], p[2u * c + 1u]);
}

#define EXO_W_PARAMS_FLOAT(WT, P) __global const WT *P, uint P##_off
#define EXO_W_SELECT_FLOAT(WT, P, sel, P0, P1, P2)                                                 \
    __global const WT *P = EXO_SEL3(sel, P0, P1, P2);                                              \
    uint P##_off = EXO_SEL3(sel, P0##_off, P1##_off, P2##_off);
#define EXO_W_ROW_FLOAT(P, row) uint P##_c = (P##_off + (row) * k) >> 3;
#define EXO_W_DOT_FLOAT(ch, a, b) (dot((ch).lo, (a)) + dot((ch).hi, (b)))

#define EXO_W_PARAMS_f32(P) EXO_W_PARAMS_FLOAT(float, P)
#define EXO_W_PARAMS_f16(P) EXO_W_PARAMS_FLOAT(ushort, P)
#define EXO_W_PARAMS_bf16(P) EXO_W_PARAMS_FLOAT(ushort, P)
#define EXO_Q_PARAMS_f32
#define EXO_Q_PARAMS_f16
#define EXO_Q_PARAMS_bf16
#define EXO_W_SELECT_f32(P, sel, P0, P1, P2) EXO_W_SELECT_FLOAT(float, P, sel, P0, P1, P2)
#define EXO_W_SELECT_f16(P, sel, P0, P1, P2) EXO_W_SELECT_FLOAT(ushort, P, sel, P0, P1, P2)
#define EXO_W_SELECT_bf16(P, sel, P0, P1, P2) EXO_W_SELECT_FLOAT(ushort, P, sel, P0, P1, P2)
#define EXO_W_ROW_f32(P, row) EXO_W_ROW_FLOAT(P, row)
#define EXO_W_ROW_f16(P, row) EXO_W_ROW_FLOAT(P, row)
#define EXO_W_ROW_bf16(P, row) EXO_W_ROW_FLOAT(P, row)
#define EXO_WCH_f32 float8
#define EXO_WCH_f16 float8
#define EXO_WCH_bf16 float8
#define EXO_W_LOAD_f32(P, c) exo_chunk8_f32(P, P##_c + (c))
#define EXO_W_LOAD_f16(P, c) exo_chunk8_f16(P, P##_c + (c))
#define EXO_W_LOAD_bf16(P, c) exo_chunk8_bf16(P, P##_c + (c))
#define EXO_W_DOT_f32(ch, a, b) EXO_W_DOT_FLOAT(ch, a, b)
#define EXO_W_DOT_f16(ch, a, b) EXO_W_DOT_FLOAT(ch, a, b)
#define EXO_W_DOT_bf16(ch, a, b) EXO_W_DOT_FLOAT(ch, a, b)

/* An MLX chunk: its codes (q.y unused at 4 bits), its group's scale and bias. */
typedef struct {
    uint2 q;
    float s, b;
} exo_qchunk;
/* Chunk c of the MLX row whose words start at word wc (even at 8 bits); sci / bii: its group's
 * element index in the scales / biases. `bits` is a literal at every call, so the branch folds. */
static inline exo_qchunk exo_qchunk_load(__global const uint *w, uint wc, uint c, uint bits, __global const uchar *sc,
                                         uint sci, __global const uchar *bi, uint bii, int q_type) {
    exo_qchunk ch;
    ch.q = bits == 4u ? (uint2)(w[wc + c], 0u) : ((__global const uint2 *)w)[(wc >> 1) + c];
    ch.s = exo_load(sc, sci, q_type);
    ch.b = exo_load(bi, bii, q_type);
    return ch;
}
static inline float exo_qchunk_dot(exo_qchunk ch, uint bits, float4 a, float4 b) {
    float qd = bits == 4u ? exo_dot8_q4(ch.q.x, a, b) : exo_dot4_q8(ch.q.x, a) + exo_dot4_q8(ch.q.y, b);
    return ch.s * qd + ch.b * (exo_sum4(a) + exo_sum4(b));
}

#define EXO_W_PARAMS_Q(P)                                                                          \
    __global const uint *P, uint P##_off, __global const uchar *P##_sc, uint P##_sc_off,            \
        __global const uchar *P##_bi, uint P##_bi_off
#define EXO_W_SELECT_Q(P, sel, P0, P1, P2)                                                         \
    __global const uint *P = EXO_SEL3(sel, P0, P1, P2);                                            \
    uint P##_off = EXO_SEL3(sel, P0##_off, P1##_off, P2##_off);                                    \
    __global const uchar *P##_sc = EXO_SEL3(sel, P0##_sc, P1##_sc, P2##_sc);                       \
    uint P##_sc_off = EXO_SEL3(sel, P0##_sc_off, P1##_sc_off, P2##_sc_off);                        \
    __global const uchar *P##_bi = EXO_SEL3(sel, P0##_bi, P1##_bi, P2##_bi);                       \
    uint P##_bi_off = EXO_SEL3(sel, P0##_bi_off, P1##_bi_off, P2##_bi_off);
/* A row is k * bits / 32 words and k / group groups; a group is group / 8 chunks (a power of
 * two: the validator admits groups 32, 64 and 128), so a chunk's group is a shift. */
#define EXO_W_ROW_Q(P, row, bits)                                                                  \
    uint P##_c = P##_off + (row) * (k / 32u * (bits)), P##_g = (row) * (k / group);                \
    uint P##_gs = 28u - clz(group);
#define EXO_W_LOAD_Q(P, c, bits)                                                                   \
    exo_qchunk_load(P, P##_c, (c), (bits), P##_sc, P##_sc_off + P##_g + ((c) >> P##_gs), P##_bi,     \
                    P##_bi_off + P##_g + ((c) >> P##_gs), q_type)

#define EXO_W_PARAMS_mlx4(P) EXO_W_PARAMS_Q(P)
#define EXO_W_PARAMS_mlx8(P) EXO_W_PARAMS_Q(P)
#define EXO_Q_PARAMS_mlx4 , int q_type, uint group
#define EXO_Q_PARAMS_mlx8 , int q_type, uint group
#define EXO_W_SELECT_mlx4(P, sel, P0, P1, P2) EXO_W_SELECT_Q(P, sel, P0, P1, P2)
#define EXO_W_SELECT_mlx8(P, sel, P0, P1, P2) EXO_W_SELECT_Q(P, sel, P0, P1, P2)
#define EXO_W_ROW_mlx4(P, row) EXO_W_ROW_Q(P, row, 4u)
#define EXO_W_ROW_mlx8(P, row) EXO_W_ROW_Q(P, row, 8u)
#define EXO_WCH_mlx4 exo_qchunk
#define EXO_WCH_mlx8 exo_qchunk
#define EXO_W_LOAD_mlx4(P, c) EXO_W_LOAD_Q(P, c, 4u)
#define EXO_W_LOAD_mlx8(P, c) EXO_W_LOAD_Q(P, c, 8u)
#define EXO_W_DOT_mlx4(ch, a, b) exo_qchunk_dot((ch), 4u, (a), (b))
#define EXO_W_DOT_mlx8(ch, a, b) exo_qchunk_dot((ch), 8u, (a), (b))

/* acc[mm] += chunk ch (chunk c of the row) . the same eight elements of x row mm. */
#define EXO_MV16_ACC(SFX, c, ch)                                                                   \
    for (uint mm = 0; mm < EXO_MV_MAX_M; mm++)                                                     \
        if (mm < m) {                                                                              \
            uint xi = xc + ((mm * k) >> 2) + 2u * (c);                                             \
            acc[mm] += EXO_W_DOT_##SFX(ch, xv[xi], xv[xi + 1u]);                                   \
        }

/* Fused RMS norm of the matvec input (one token): the kernels that take it read the raw x with
 * the norm's weight nw (element offset nw_off, type nw_type), eps and one_plus, and `norm` set;
 * kernels without it declare the same names with norm = 0. */
#define EXO_NO_NORM                                                                                \
    const int norm = 0, nw_type = 0, one_plus = 0;                                                 \
    const uint nw_off = 0u;                                                                        \
    const float eps = 0.0f;                                                                        \
    __global const uchar *nw = (__global const uchar *)x;

/* 1 / rms(x row 0) over the work-group's EXO_MV16_WG items, the reduction exo_rms_norm does
 * (item-strided sums, then a tree in `scratch`), so the result is the same float. */
#define EXO_MV16_INV_RMS(scratch, slot, inv)                                                       \
    if (norm) {                                                                                    \
        float sq = 0.0f;                                                                           \
        for (uint j = slot; j < k; j += EXO_MV16_WG) sq += x[x_off + j] * x[x_off + j];            \
        scratch[slot] = sq;                                                                        \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        for (uint s = EXO_MV16_WG / 2; s > 0; s >>= 1) {                                           \
            if (slot < s) scratch[slot] += scratch[slot + s];                                      \
            barrier(CLK_LOCAL_MEM_FENCE);                                                          \
        }                                                                                          \
        inv = rsqrt(scratch[0] / (float)k + eps);                                                  \
        barrier(CLK_LOCAL_MEM_FENCE); /* scratch is reused */                                      \
    }

/* x's chunk c (8 elements) as two float4s, normalised when `norm`: (x * inv) * w, with w + 1
 * for one_plus, the order exo_rms_norm rounds in. */
static inline void exo_x_chunk(__global const float4 *xv, uint xc, uint c, int norm, float inv,
                               __global const uchar *nw, uint nw_off, int nw_type, int one_plus, float4 *lo,
                               float4 *hi) {
    *lo = xv[xc + 2u * c];
    *hi = xv[xc + 2u * c + 1u];
    if (norm) {
        float4 wl, wh;
        exo_load8(nw, nw_off + 8u * c, nw_type, &wl, &wh);
        if (one_plus) {
            wl += 1.0f;
            wh += 1.0f;
        }
        *lo = *lo * inv * wl;
        *hi = *hi * inv * wh;
    }
}
#define EXO_XC(c, lo, hi) exo_x_chunk(xv, xc, (c), norm, inv, nw, nw_off, nw_type, one_plus, &lo, &hi)

/* The body of the vec16 kernels: row `row` of weight P (storage SFX, n rows) against x, `lanes`
 * items per row summed through local memory, written with its bias to dst, plus res[same
 * index] when has_res (a residual ADD folded in: (x.w + b) + r, the order the two nodes would
 * round in). Local size (lanes, EXO_MV16_WG / lanes). Every item runs the same number of
 * barriers (lanes and m are uniform), rows past n included. At kernel scope (it declares the
 * local array). */
#define EXO_MV16_BODY(SFX, P, bias, bias_off, has_bias, dst, dst_off, n, row, row2, res, res_off, has_res) \
    __local float partial[EXO_MV_MAX_M * EXO_MV16_WG];                                             \
    uint lane = get_local_id(0), lanes = get_local_size(0);                                        \
    uint slot = get_local_id(1) * lanes + lane;                                                    \
    float acc[EXO_MV_MAX_M] = {0.0f, 0.0f, 0.0f, 0.0f};                                            \
    float inv = 1.0f;                                                                              \
    /* A second row (one token only): its sum travels as acc[1], which one token leaves free. */   \
    bool two = m == 1u && (row2) < n;                                                              \
    EXO_MV16_INV_RMS(partial, slot, inv)                                                           \
    if (row < n) {                                                                                 \
        __global const float4 *xv = (__global const float4 *)x;                                    \
        uint chunks = k >> 3, xc = x_off >> 2, c = lane;                                           \
        EXO_W_ROW_##SFX(P, row)                                                                    \
        if (two) {                                                                                 \
            /* Rows row and row2 against the same x chunks: x (and the folded norm) is read   \
             * once for both, and four weight loads are in flight per step. */                     \
            EXO_W_SELECT_##SFX(P##_b, 0u, P, P, P)                                                  \
            EXO_W_ROW_##SFX(P##_b, row2)                                                            \
            float s0 = 0.0f, s1 = 0.0f, t0 = 0.0f, t1 = 0.0f;                                      \
            for (; c + lanes < chunks; c += 2u * lanes) {                                          \
                EXO_WCH_##SFX ch0 = EXO_W_LOAD_##SFX(P, c);                                        \
                EXO_WCH_##SFX ch1 = EXO_W_LOAD_##SFX(P, c + lanes);                                \
                EXO_WCH_##SFX dh0 = EXO_W_LOAD_##SFX(P##_b, c);                                     \
                EXO_WCH_##SFX dh1 = EXO_W_LOAD_##SFX(P##_b, c + lanes);                             \
                float4 a0, b0, a1, b1;                                                             \
                EXO_XC(c, a0, b0);                                                                 \
                EXO_XC(c + lanes, a1, b1);                                                         \
                s0 += EXO_W_DOT_##SFX(ch0, a0, b0);                                                \
                t0 += EXO_W_DOT_##SFX(dh0, a0, b0);                                                \
                s1 += EXO_W_DOT_##SFX(ch1, a1, b1);                                                \
                t1 += EXO_W_DOT_##SFX(dh1, a1, b1);                                                \
            }                                                                                      \
            if (c < chunks) {                                                                      \
                EXO_WCH_##SFX ch = EXO_W_LOAD_##SFX(P, c);                                         \
                EXO_WCH_##SFX dh = EXO_W_LOAD_##SFX(P##_b, c);                                      \
                float4 a, b;                                                                       \
                EXO_XC(c, a, b);                                                                   \
                s0 += EXO_W_DOT_##SFX(ch, a, b);                                                   \
                t0 += EXO_W_DOT_##SFX(dh, a, b);                                                   \
            }                                                                                      \
            acc[0] = s0 + s1;                                                                      \
            acc[1] = t0 + t1;                                                                      \
        } else if (m == 1u) {                                                                      \
            /* One token (every decode step): four chunks per step, all four loads issued      \
             * before any is used, two independent sums; no per-token loops to keep registers \
             * for. */                                                                             \
            float s0 = 0.0f, s1 = 0.0f;                                                            \
            for (; c + 3u * lanes < chunks; c += 4u * lanes) {                                     \
                EXO_WCH_##SFX ch0 = EXO_W_LOAD_##SFX(P, c);                                        \
                EXO_WCH_##SFX ch1 = EXO_W_LOAD_##SFX(P, c + lanes);                                \
                EXO_WCH_##SFX ch2 = EXO_W_LOAD_##SFX(P, c + 2u * lanes);                           \
                EXO_WCH_##SFX ch3 = EXO_W_LOAD_##SFX(P, c + 3u * lanes);                           \
                float4 a0, b0, a1, b1, a2, b2, a3, b3;                                             \
                EXO_XC(c, a0, b0);                                                                 \
                EXO_XC(c + lanes, a1, b1);                                                         \
                EXO_XC(c + 2u * lanes, a2, b2);                                                    \
                EXO_XC(c + 3u * lanes, a3, b3);                                                    \
                s0 += EXO_W_DOT_##SFX(ch0, a0, b0);                                                \
                s1 += EXO_W_DOT_##SFX(ch1, a1, b1);                                                \
                s0 += EXO_W_DOT_##SFX(ch2, a2, b2);                                                \
                s1 += EXO_W_DOT_##SFX(ch3, a3, b3);                                                \
            }                                                                                      \
            for (; c < chunks; c += lanes) {                                                       \
                EXO_WCH_##SFX ch = EXO_W_LOAD_##SFX(P, c);                                         \
                float4 a, b;                                                                       \
                EXO_XC(c, a, b);                                                                   \
                s0 += EXO_W_DOT_##SFX(ch, a, b);                                                   \
            }                                                                                      \
            acc[0] = s0 + s1;                                                                      \
        } else {                                                                                   \
            /* Two chunks per step, both loads issued before either is used: more bytes in     \
             * flight per item, which is what a bandwidth-bound matvec lives on. */                \
            for (; c + lanes < chunks; c += 2u * lanes) {                                          \
                EXO_WCH_##SFX ch0 = EXO_W_LOAD_##SFX(P, c);                                        \
                EXO_WCH_##SFX ch1 = EXO_W_LOAD_##SFX(P, c + lanes);                                \
                EXO_MV16_ACC(SFX, c, ch0)                                                          \
                EXO_MV16_ACC(SFX, c + lanes, ch1)                                                  \
            }                                                                                      \
            if (c < chunks) {                                                                      \
                EXO_WCH_##SFX ch = EXO_W_LOAD_##SFX(P, c);                                         \
                EXO_MV16_ACC(SFX, c, ch)                                                           \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    for (uint mm = 0; mm < EXO_MV_MAX_M; mm++) partial[mm * EXO_MV16_WG + slot] = acc[mm];         \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                  \
    uint sums = two ? 2u : m;                                                                      \
    for (uint s = lanes / 2; s > 0; s >>= 1) {                                                     \
        if (lane < s)                                                                              \
            for (uint mm = 0; mm < sums; mm++)                                                     \
                partial[mm * EXO_MV16_WG + slot] += partial[mm * EXO_MV16_WG + slot + s];          \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
    }                                                                                              \
    if (lane == 0 && row < n) {                                                                    \
        for (uint mm = 0; mm < sums; mm++) {                                                       \
            /* Token mm of row, or (two) row2 of the one token. */                                 \
            uint r = two && mm == 1u ? (row2) : row;                                               \
            size_t o = two ? (size_t)r : (size_t)mm * n + row;                                     \
            float y = partial[mm * EXO_MV16_WG + slot] + (has_bias ? bias[bias_off + r] : 0.0f);   \
            dst[dst_off + o] = has_res ? y + res[res_off + o] : y;                                 \
        }                                                                                          \
    }

/* Global dimension 1 covers the rows. */
#define EXO_DEFINE_MATVEC16(SFX)                                                                   \
    __kernel void exo_matmul_vec16_##SFX(__global const float *x, uint x_off, EXO_W_PARAMS_##SFX(w), \
                                         __global const float *bias, uint bias_off, int has_bias,  \
                                         __global float *dst, uint dst_off, uint m, uint k, uint n, \
                                         __global const float *res, uint res_off, int has_res,     \
                                         uint rpi EXO_Q_PARAMS_##SFX) {                            \
        /* rpi rows per item (1, or 2 at one token): rows g and g + ceil(n / rpi). */              \
        uint row = get_global_id(1), half_n = (n + rpi - 1u) / rpi;                                \
        EXO_NO_NORM                                                                                \
        EXO_MV16_BODY(SFX, w, bias, bias_off, has_bias, dst, dst_off, n, row, rpi == 2u ? row + half_n : n, \
                      res, res_off, has_res)                                                       \
    }

/* Up to three matvecs that share x (q/k/v, gate/up) in one launch: global dimension 1 covers
 * n0 + n1 + n2 rows, each row computed by the member it falls in (n2 = 0 for a pair). Saves a
 * decode step two launches per layer and their gaps, which cost more than these small matrices.
 * The members share one storage (and for MLX one q_type and group: the host checks). */
#define EXO_DEFINE_MATVEC16X3(SFX)                                                                 \
    __kernel void exo_matmul_vec16x3_##SFX(                                                        \
        __global const float *x, uint x_off, uint m, uint k,                                       \
        EXO_W_PARAMS_##SFX(w0), __global const float *b0, uint b0_off, int hb0,                    \
        __global float *d0, uint d0_off, uint n0,                                                  \
        EXO_W_PARAMS_##SFX(w1), __global const float *b1, uint b1_off, int hb1,                    \
        __global float *d1, uint d1_off, uint n1,                                                  \
        EXO_W_PARAMS_##SFX(w2), __global const float *b2, uint b2_off, int hb2,                    \
        __global float *d2, uint d2_off, uint n2, int norm, __global const uchar *nw, uint nw_off, \
        int nw_type, float eps, int one_plus, uint rpi EXO_Q_PARAMS_##SFX) {                       \
        /* rpi rows per item as in exo_matmul_vec16_*, within each member: global dimension 1    \
         * covers h0 + h1 + h2 items, hi = ceil(ni / rpi). */                                      \
        uint h0 = (n0 + rpi - 1u) / rpi, h1 = (n1 + rpi - 1u) / rpi;                               \
        uint g = get_global_id(1), sel = g < h0 ? 0u : g < h0 + h1 ? 1u : 2u;                      \
        EXO_W_SELECT_##SFX(w, sel, w0, w1, w2)                                                     \
        __global const float *bias = EXO_SEL3(sel, b0, b1, b2);                                    \
        __global float *dst = EXO_SEL3(sel, d0, d1, d2);                                           \
        uint bias_off = EXO_SEL3(sel, b0_off, b1_off, b2_off);                                     \
        uint dst_off = EXO_SEL3(sel, d0_off, d1_off, d2_off);                                      \
        int has_bias = EXO_SEL3(sel, hb0, hb1, hb2);                                               \
        uint n = EXO_SEL3(sel, n0, n1, n2);                                                        \
        uint row = g - EXO_SEL3(sel, 0u, h0, h0 + h1), half_n = (n + rpi - 1u) / rpi;              \
        EXO_MV16_BODY(SFX, w, bias, bias_off, has_bias, dst, dst_off, n, row, rpi == 2u ? row + half_n : n, \
                      x, 0u, 0)                                                                    \
    }

/* The body of every tiled kernel (at kernel scope: it declares the local tiles): the 64x64
 * block of outputs at rows m0.., columns n0.. of an m x n result, one 16x16 work-group with 4x4
 * outputs per item, K in steps of EXO_GEMM_BK through local memory, so each loaded weight serves
 * 64 rows. X_AT(gm, gk) and W_AT(gn, gk) read an element of x (row gm < m) and of the weights
 * (row gn < n); STORE(gm, gn, v) writes an output. Function-like macro names, so the float,
 * quantized and expert-indexed kernels differ only in how they address their operands. */
#define EXO_GEMM_BLOCK(m, n, k, m0, n0, X_AT, W_AT, STORE)                                         \
    __local float xs[EXO_GEMM_BK][EXO_GEMM_BM + 1];                                                \
    __local float ws[EXO_GEMM_BK][EXO_GEMM_BM + 1];                                                \
    uint tx = get_local_id(0), ty = get_local_id(1), tid = ty * EXO_GEMM_TS + tx;                  \
    float acc[4][4];                                                                               \
    for (uint i = 0; i < 4; i++)                                                                   \
        for (uint jj = 0; jj < 4; jj++) acc[i][jj] = 0.0f;                                         \
    for (uint k0 = 0; k0 < (k); k0 += EXO_GEMM_BK) {                                               \
        for (uint l = 0; l < 4; l++) {                                                             \
            uint e_ = tid + l * 256u, r = e_ / EXO_GEMM_BK, c = e_ % EXO_GEMM_BK;                  \
            uint gk = k0 + c, gm = (m0) + r, gn = (n0) + r;                                        \
            xs[c][r] = gm < (m) && gk < (k) ? X_AT(gm, gk) : 0.0f;                                 \
            ws[c][r] = gn < (n) && gk < (k) ? W_AT(gn, gk) : 0.0f;                                 \
        }                                                                                          \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        for (uint kk = 0; kk < EXO_GEMM_BK; kk++) {                                                \
            float a[4], b[4];                                                                      \
            for (uint i = 0; i < 4; i++) a[i] = xs[kk][ty + EXO_GEMM_TS * i];                      \
            for (uint jj = 0; jj < 4; jj++) b[jj] = ws[kk][tx + EXO_GEMM_TS * jj];                 \
            for (uint i = 0; i < 4; i++)                                                           \
                for (uint jj = 0; jj < 4; jj++) acc[i][jj] = fma(a[i], b[jj], acc[i][jj]);         \
        }                                                                                          \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
    }                                                                                              \
    for (uint i = 0; i < 4; i++)                                                                   \
        for (uint jj = 0; jj < 4; jj++) {                                                          \
            uint gm = (m0) + ty + EXO_GEMM_TS * i, gn = (n0) + tx + EXO_GEMM_TS * jj;              \
            if (gm < (m) && gn < (n)) STORE(gm, gn, acc[i][jj]);                                   \
        }

/* Operand access of the plain tiled kernels: x rows of k, weight rows of k, dst rows of n. */
#define EXO_TILED_X(gm, gk) x[x_off + (size_t)(gm) * k + (gk)]
#define EXO_TILED_STORE(gm, gn, v) dst[dst_off + (size_t)(gm) * n + (gn)] = (v) + (has_bias ? bias[bias_off + (gn)] : 0.0f)

#define EXO_DEFINE_TILED(SFX, WT)                                                                  \
    __kernel void exo_matmul_tiled_##SFX(__global const float *x, uint x_off, __global const WT *w, \
                                         uint w_off, __global const float *bias, uint bias_off,    \
                                         int has_bias, __global float *dst, uint dst_off, uint m,  \
                                         uint k, uint n) {                                         \
        EXO_GEMM_BLOCK(m, n, k, get_group_id(1) * EXO_GEMM_BM, get_group_id(0) * EXO_GEMM_BM,      \
                       EXO_TILED_X, EXO_TILED_W_##SFX, EXO_TILED_STORE)                            \
    }
#define EXO_TILED_W_f32(gn, gk) exo_load1_f32(w, w_off + (uint)((size_t)(gn) * k + (gk)))
#define EXO_TILED_W_f16(gn, gk) exo_load1_f16(w, w_off + (uint)((size_t)(gn) * k + (gk)))
#define EXO_TILED_W_bf16(gn, gk) exo_load1_bf16(w, w_off + (uint)((size_t)(gn) * k + (gk)))

EXO_DEFINE_MATVEC(f32, float)
EXO_DEFINE_MATVEC(f16, ushort)
EXO_DEFINE_MATVEC(bf16, ushort)
#define EXO_GLU_PAIRS_f32 1
#define EXO_GLU_PAIRS_f16 1
#define EXO_GLU_PAIRS_bf16 1
#define EXO_GLU_PAIRS_mlx4 0
#define EXO_GLU_PAIRS_mlx8 0
/* One token: row r of the gate and of the up projection in the same items (both read x once),
 * summed through local memory, written as act(gate + bias) * (up + bias): the MLP's two matvecs
 * and its GLU in one launch, without the gate and up vectors ever reaching memory. */
#define EXO_DEFINE_MATVEC16_GLU(SFX)                                                               \
    __kernel void exo_matmul_vec16_glu_##SFX(                                                      \
        __global const float *x, uint x_off, uint k, EXO_W_PARAMS_##SFX(wg),                       \
        __global const float *bg, uint bg_off, int hbg, EXO_W_PARAMS_##SFX(wu),                    \
        __global const float *bu, uint bu_off, int hbu, __global float *dst, uint dst_off, uint n,  \
        int act, int norm, __global const uchar *nw, uint nw_off, int nw_type, float eps,          \
        int one_plus EXO_Q_PARAMS_##SFX) {                                                         \
        __local float pg[EXO_MV16_WG], pu[EXO_MV16_WG];                                            \
        uint lane = get_local_id(0), lanes = get_local_size(0);                                    \
        uint slot = get_local_id(1) * lanes + lane, row = get_global_id(1);                        \
        float sg = 0.0f, su = 0.0f, inv = 1.0f;                                                    \
        EXO_MV16_INV_RMS(pg, slot, inv)                                                            \
        if (row < n) {                                                                             \
            __global const float4 *xv = (__global const float4 *)x;                                \
            uint chunks = k >> 3, xc = x_off >> 2;                                                 \
            EXO_W_ROW_##SFX(wg, row)                                                               \
            EXO_W_ROW_##SFX(wu, row)                                                               \
            /* Float storages: two chunks of both rows per step, all four loads issued before   \
             * any is used (bf16 gate/up of Llama 3.2 1B on an H100: 34.8 -> 32.4 us). MLX ones  \
             * one chunk a step (unrolled they measured 29.6 -> 34.7 us). */                      \
            float sg1 = 0.0f, su1 = 0.0f;                                                          \
            uint c = lane;                                                                         \
            for (; EXO_GLU_PAIRS_##SFX && c + lanes < chunks; c += 2u * lanes) {                   \
                EXO_WCH_##SFX gch0 = EXO_W_LOAD_##SFX(wg, c);                                      \
                EXO_WCH_##SFX uch0 = EXO_W_LOAD_##SFX(wu, c);                                      \
                EXO_WCH_##SFX gch1 = EXO_W_LOAD_##SFX(wg, c + lanes);                              \
                EXO_WCH_##SFX uch1 = EXO_W_LOAD_##SFX(wu, c + lanes);                              \
                float4 xl0, xh0, xl1, xh1;                                                         \
                EXO_XC(c, xl0, xh0);                                                               \
                EXO_XC(c + lanes, xl1, xh1);                                                       \
                sg += EXO_W_DOT_##SFX(gch0, xl0, xh0);                                             \
                su += EXO_W_DOT_##SFX(uch0, xl0, xh0);                                             \
                sg1 += EXO_W_DOT_##SFX(gch1, xl1, xh1);                                            \
                su1 += EXO_W_DOT_##SFX(uch1, xl1, xh1);                                            \
            }                                                                                      \
            for (; c < chunks; c += lanes) {                                                       \
                EXO_WCH_##SFX gch = EXO_W_LOAD_##SFX(wg, c);                                       \
                EXO_WCH_##SFX uch = EXO_W_LOAD_##SFX(wu, c);                                       \
                float4 xl, xh;                                                                     \
                EXO_XC(c, xl, xh);                                                                 \
                sg += EXO_W_DOT_##SFX(gch, xl, xh);                                                \
                su += EXO_W_DOT_##SFX(uch, xl, xh);                                                \
            }                                                                                      \
            sg += sg1;                                                                             \
            su += su1;                                                                             \
        }                                                                                          \
        pg[slot] = sg;                                                                             \
        pu[slot] = su;                                                                             \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        for (uint s = lanes / 2; s > 0; s >>= 1) {                                                 \
            if (lane < s) {                                                                        \
                pg[slot] += pg[slot + s];                                                          \
                pu[slot] += pu[slot + s];                                                          \
            }                                                                                      \
            barrier(CLK_LOCAL_MEM_FENCE);                                                          \
        }                                                                                          \
        if (lane == 0 && row < n) {                                                                \
            float g = pg[slot] + (hbg ? bg[bg_off + row] : 0.0f);                                  \
            float u = pu[slot] + (hbu ? bu[bu_off + row] : 0.0f);                                  \
            dst[dst_off + row] = exo_glu_act(g, act) * u;                                          \
        }                                                                                          \
    }

/* ---- Prefill GEMM on aligned data (exo_matmul_gemm<BM>x<BN>_<SFX>, host: k a multiple of 16
 * and the offsets gpu_view_wide_loads_fit admits): a block of BM tokens x BN weight rows (64 or
 * 128 each) per 16x16 work-group, each item (BM / 16) x (BN / 16) outputs in registers as float4s
 * -- rows ty*4.. (and 64 + ty*4..), columns tx*4.. (and 64 + tx*4..) -- so a float4 of x and one
 * of W read from local memory feed 16 multiply-adds. K goes in steps of 16: x as float4s, W as the
 * vec16 kernels' 8-element chunks (one 16-byte load of bf16/f16, an MLX word or word pair
 * dequantized as it is stored), transposed into local memory [k][row]; the next step's loads are
 * issued into registers before the current step's arithmetic, so global latency hides behind it.
 * Each output is one fma chain over k in order, the sums exo_matmul_tiled_* computes. The host
 * picks the largest block that still gives the device enough work-groups (gpu_kernels.c). */
#define EXO_G_BK 16
/* An MLX chunk as its eight weights, s * q + b. */
static inline float8 exo_qchunk_deq8(exo_qchunk ch, uint bits) {
    float8 q;
    if (bits == 4u) {
        uint w = ch.q.x;
        q = (float8)((float)(w & 15u), (float)((w >> 4) & 15u), (float)((w >> 8) & 15u), (float)((w >> 12) & 15u),
                     (float)((w >> 16) & 15u), (float)((w >> 20) & 15u), (float)((w >> 24) & 15u), (float)(w >> 28));
    } else {
        uint a = ch.q.x, b = ch.q.y;
        q = (float8)((float)(a & 255u), (float)((a >> 8) & 255u), (float)((a >> 16) & 255u), (float)(a >> 24),
                     (float)(b & 255u), (float)((b >> 8) & 255u), (float)((b >> 16) & 255u), (float)(b >> 24));
    }
    return ch.s * q + ch.b;
}
#define EXO_G_CHUNK_f32(P, c) EXO_W_LOAD_f32(P, c)
#define EXO_G_CHUNK_f16(P, c) EXO_W_LOAD_f16(P, c)
#define EXO_G_CHUNK_bf16(P, c) EXO_W_LOAD_bf16(P, c)
#define EXO_G_CHUNK_mlx4(P, c) exo_qchunk_deq8(EXO_W_LOAD_mlx4(P, c), 4u)
#define EXO_G_CHUNK_mlx8(P, c) exo_qchunk_deq8(EXO_W_LOAD_mlx8(P, c), 8u)

/* Global loads of one K step into registers: xr (BM / 64 float4s of x: row tid/4 (+64), float4
 * tid%4) and wr (chunk tid%2 of weight row tid/2, for the 2 * BN items that load one); rows past
 * m or n load zeros. */
#define EXO_G_LOAD(SFX, BM, k0)                                                                    \
    for (uint l = 0; l < (BM) / 64u; l++) {                                                        \
        uint gm = m0 + (tid >> 2) + 64u * l;                                                       \
        xr[l] = gm < m ? xv[((x_off + gm * k + (k0)) >> 2) + (tid & 3u)] : (float4)(0.0f);          \
    }                                                                                              \
    wr = wload ? EXO_G_CHUNK_##SFX(w, ((k0) >> 3) + (tid & 1u)) : (float8)(0.0f);
#define EXO_G_STORE(BM, LDX, LDW)                                                                  \
    for (uint l = 0; l < (BM) / 64u; l++) {                                                        \
        uint r = (tid >> 2) + 64u * l, c = (tid & 3u) * 4u;                                        \
        xs[(c + 0u) * (LDX) + r] = xr[l].x;                                                        \
        xs[(c + 1u) * (LDX) + r] = xr[l].y;                                                        \
        xs[(c + 2u) * (LDX) + r] = xr[l].z;                                                        \
        xs[(c + 3u) * (LDX) + r] = xr[l].w;                                                        \
    }                                                                                              \
    if (wmine) {                                                                                   \
        uint r = tid >> 1, c = (tid & 1u) * 8u;                                                    \
        ws[(c + 0u) * (LDW) + r] = wr.s0;                                                          \
        ws[(c + 1u) * (LDW) + r] = wr.s1;                                                          \
        ws[(c + 2u) * (LDW) + r] = wr.s2;                                                          \
        ws[(c + 3u) * (LDW) + r] = wr.s3;                                                          \
        ws[(c + 4u) * (LDW) + r] = wr.s4;                                                          \
        ws[(c + 5u) * (LDW) + r] = wr.s5;                                                          \
        ws[(c + 6u) * (LDW) + r] = wr.s6;                                                          \
        ws[(c + 7u) * (LDW) + r] = wr.s7;                                                          \
    }

/* Local rows padded by 4 floats: fewer bank conflicts, float4 reads stay aligned. */
#define EXO_DEFINE_GEMM(SFX, BM, BN)                                                               \
    __kernel void exo_matmul_gemm##BM##x##BN##_##SFX(                                              \
        __global const float *x, uint x_off, EXO_W_PARAMS_##SFX(w), __global const float *bias,    \
        uint bias_off, int has_bias, __global float *dst, uint dst_off, uint m, uint k,            \
        uint n EXO_Q_PARAMS_##SFX) {                                                               \
        __local float xs[EXO_G_BK * ((BM) + 4)];                                                   \
        __local float ws[EXO_G_BK * ((BN) + 4)];                                                   \
        uint tx = get_local_id(0), ty = get_local_id(1), tid = ty * 16u + tx;                      \
        uint n0 = get_group_id(0) * (BN), m0 = get_group_id(1) * (BM);                             \
        __global const float4 *xv = (__global const float4 *)x;                                    \
        uint wrow = n0 + (tid >> 1);                                                               \
        bool wmine = (tid >> 1) < (BN), wload = wmine && wrow < n;                                 \
        EXO_W_ROW_##SFX(w, wload ? wrow : 0u)                                                      \
        float4 acc[(BM) / 16][(BN) / 64];                                                          \
        for (uint i = 0; i < (BM) / 16u; i++)                                                      \
            for (uint j = 0; j < (BN) / 64u; j++) acc[i][j] = (float4)(0.0f);                      \
        float4 xr[(BM) / 64];                                                                      \
        float8 wr;                                                                                 \
        EXO_G_LOAD(SFX, BM, 0u)                                                                    \
        for (uint k0 = 0; k0 < k; k0 += EXO_G_BK) {                                                \
            EXO_G_STORE(BM, (BM) + 4u, (BN) + 4u)                                                  \
            barrier(CLK_LOCAL_MEM_FENCE);                                                          \
            if (k0 + EXO_G_BK < k) {                                                               \
                EXO_G_LOAD(SFX, BM, k0 + EXO_G_BK)                                                 \
            }                                                                                      \
            for (uint kk = 0; kk < EXO_G_BK; kk++) {                                               \
                float4 b[(BN) / 64];                                                               \
                for (uint j = 0; j < (BN) / 64u; j++)                                              \
                    b[j] = vload4(0, ws + kk * ((BN) + 4u) + 64u * j + tx * 4u);                   \
                for (uint h = 0; h < (BM) / 64u; h++) {                                            \
                    float4 a = vload4(0, xs + kk * ((BM) + 4u) + 64u * h + ty * 4u);               \
                    for (uint j = 0; j < (BN) / 64u; j++) {                                        \
                        acc[4u * h + 0u][j] = fma((float4)(a.x), b[j], acc[4u * h + 0u][j]);       \
                        acc[4u * h + 1u][j] = fma((float4)(a.y), b[j], acc[4u * h + 1u][j]);       \
                        acc[4u * h + 2u][j] = fma((float4)(a.z), b[j], acc[4u * h + 2u][j]);       \
                        acc[4u * h + 3u][j] = fma((float4)(a.w), b[j], acc[4u * h + 3u][j]);       \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            barrier(CLK_LOCAL_MEM_FENCE);                                                          \
        }                                                                                          \
        for (uint i = 0; i < (BM) / 16u; i++) {                                                    \
            uint gm = m0 + 64u * (i >> 2) + ty * 4u + (i & 3u);                                    \
            if (gm >= m) continue;                                                                 \
            for (uint j = 0; j < (BN) / 64u; j++) {                                                \
                float o[4] = {acc[i][j].x, acc[i][j].y, acc[i][j].z, acc[i][j].w};                 \
                for (uint e = 0; e < 4u; e++) {                                                    \
                    uint gn = n0 + 64u * j + tx * 4u + e;                                          \
                    if (gn < n) dst[dst_off + (size_t)gm * n + gn] = o[e] + (has_bias ? bias[bias_off + gn] : 0.0f); \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }
#define EXO_DEFINE_GEMM_ALL(SFX)                                                                   \
    EXO_DEFINE_GEMM(SFX, 128, 128)                                                                 \
    EXO_DEFINE_GEMM(SFX, 64, 128)                                                                  \
    EXO_DEFINE_GEMM(SFX, 64, 64)

/* The vec16 family per storage: float weights, and MLX affine 4- and 8-bit codes. */
#define EXO_DEFINE_MATVEC16_ALL(SFX)                                                               \
    EXO_DEFINE_MATVEC16(SFX)                                                                       \
    EXO_DEFINE_MATVEC16X3(SFX)                                                                     \
    EXO_DEFINE_MATVEC16_GLU(SFX)
EXO_DEFINE_MATVEC16_ALL(f32)
EXO_DEFINE_MATVEC16_ALL(f16)
EXO_DEFINE_MATVEC16_ALL(bf16)
EXO_DEFINE_MATVEC16_ALL(mlx4)
EXO_DEFINE_MATVEC16_ALL(mlx8)
EXO_DEFINE_GEMM_ALL(f32)
EXO_DEFINE_GEMM_ALL(f16)
EXO_DEFINE_GEMM_ALL(bf16)
EXO_DEFINE_GEMM_ALL(mlx4)
EXO_DEFINE_GEMM_ALL(mlx8)
EXO_DEFINE_TILED(f32, float)
EXO_DEFINE_TILED(f16, ushort)
EXO_DEFINE_TILED(bf16, ushort)

#ifdef EXO_SUBGROUPS
#ifdef EXO_INTEL_SG16
#define EXO_SG_ATTR __attribute__((intel_reqd_sub_group_size(16)))
#else
#define EXO_SG_ATTR
#endif
#define EXO_DEFINE_MATVEC_SG(SFX, WT)                                                              \
    __kernel EXO_SG_ATTR void exo_matmul_vec_sg_##SFX(                                             \
        __global const float *x, uint x_off, __global const WT *w, uint w_off,                    \
        __global const float *bias, uint bias_off, int has_bias, __global float *dst, uint dst_off, \
        uint m, uint k, uint n) {                                                                  \
        uint lane = get_sub_group_local_id(), lanes = get_sub_group_size();                        \
        for (uint r = get_sub_group_id(); r < EXO_SG_ROWS; r += get_num_sub_groups()) {            \
            uint row = get_group_id(0) * EXO_SG_ROWS + r;                                          \
            if (row >= n) break;                                                                   \
            float acc[EXO_MV_MAX_M] = {0.0f, 0.0f, 0.0f, 0.0f};                                    \
            EXO_ROW_DOT(SFX, w_off + row * k, lane, lanes)                                         \
            float b = has_bias ? bias[bias_off + row] : 0.0f;                                      \
            for (uint mm = 0; mm < m; mm++) {                                                      \
                float s = sub_group_reduce_add(acc[mm]);                                           \
                if (lane == 0) dst[dst_off + (size_t)mm * n + row] = s + b;                        \
            }                                                                                      \
        }                                                                                          \
    }
EXO_DEFINE_MATVEC_SG(f32, float)
EXO_DEFINE_MATVEC_SG(f16, ushort)
EXO_DEFINE_MATVEC_SG(bf16, ushort)
#endif

/* MLX affine weights (common.cl's exo_mlx_*; abi/exo_plugin.h "Quantized weights"), dequantized
 * in registers, never in memory. Both take, after x: the packed words (element offset in
 * words), scales and biases (element offsets in their type q_type), bits and group; then bias,
 * has_bias, dst, m, k, n as the float kernels do.
 *
 *  exo_matmul_vec_mlx    decode (M <= EXO_MV_MAX_M): the vec16 geometry, a lane group per row;
 *                        a lane takes whole 32-element blocks (exactly `bits` words, inside one
 *                        group, so one scale and bias), two at a time. Every bit width; the
 *                        fused decode kernels take 4 and 8 bits (exo_matmul_vec16*_mlx4/8).
 *  exo_matmul_tiled_mlx  prefill: exo_matmul_tiled_* with each weight of the tile dequantized as
 *                        it is loaded into local memory. */

/* One 32-element block of an MLX row (`bits` words at p; one scale s and bias b, since a block
 * lies inside one group) against the 32 x elements at xr: sum_j (s * q_j + b) * x_j, computed
 * as s * (q . x) + b * sum(x) -- the same sum regrouped, so each code costs one multiply-add.
 * 4- and 8-bit codes come from whole vector loads; other widths from a 64-bit bit buffer. */
static inline float exo_mlx_block_dot(__global const uint *p, uint bits, float s, float b, __global const float *xr) {
    float4 x0 = vload4(0, xr), x1 = vload4(1, xr), x2 = vload4(2, xr), x3 = vload4(3, xr);
    float4 x4 = vload4(4, xr), x5 = vload4(5, xr), x6 = vload4(6, xr), x7 = vload4(7, xr);
    float xs = ((exo_sum4(x0) + exo_sum4(x1)) + (exo_sum4(x2) + exo_sum4(x3))) +
               ((exo_sum4(x4) + exo_sum4(x5)) + (exo_sum4(x6) + exo_sum4(x7)));
    float qd;
    if (bits == 4u) {
        uint4 v = vload4(0, p);
        qd = (exo_dot8_q4(v.x, x0, x1) + exo_dot8_q4(v.y, x2, x3)) + (exo_dot8_q4(v.z, x4, x5) + exo_dot8_q4(v.w, x6, x7));
    } else if (bits == 8u) {
        uint4 u = vload4(0, p), v = vload4(1, p);
        qd = ((exo_dot4_q8(u.x, x0) + exo_dot4_q8(u.y, x1)) + (exo_dot4_q8(u.z, x2) + exo_dot4_q8(u.w, x3))) +
             ((exo_dot4_q8(v.x, x4) + exo_dot4_q8(v.y, x5)) + (exo_dot4_q8(v.z, x6) + exo_dot4_q8(v.w, x7)));
    } else {
        uint mask = (1u << bits) - 1u, wi = 0, avail = 32u;
        ulong buf = p[wi++];
        qd = 0.0f;
        for (uint j = 0; j < 32u; j++) {
            if (avail < bits) { /* the next word: a code may straddle the two */
                buf |= (ulong)p[wi++] << avail;
                avail += 32u;
            }
            qd += (float)((uint)buf & mask) * xr[j];
            buf >>= bits;
            avail -= bits;
        }
    }
    return s * qd + b * xs;
}

/* Row `row` of an MLX weight . the k elements at xr (one token), over the 32-element blocks
 * start, start + step, ... (a block is exactly `bits` words inside one group: one scale and
 * bias), two blocks at a time with both blocks' loads issued before either is used, so each
 * item keeps more bytes in flight. Scalar sums only: a private array indexed in a loop GPU
 * compilers cannot unroll lives in (slow) stack memory. The group of a block is a shift (the
 * validator admits groups 32, 64 and 128 only). Shared by the dense and the expert matvecs. */
static inline float exo_mlx_row_dot(__global const uint *w, uint w_off, __global const uchar *sc, uint sc_off,
                                    __global const uchar *bi, uint bi_off, int q_type, uint bits, uint group, uint k,
                                    uint row, __global const float *xr, uint start, uint step) {
    uint blocks = k >> 5, shift = 31u - clz(group >> 5);
    __global const uint *rw = w + w_off + (size_t)row * blocks * bits;
    uint g0 = row * (k / group), blk = start;
    float a0 = 0.0f, a1 = 0.0f;
    for (; blk + step < blocks; blk += 2u * step) {
        uint blk2 = blk + step;
        float s0 = exo_load(sc, sc_off + g0 + (blk >> shift), q_type);
        float b0 = exo_load(bi, bi_off + g0 + (blk >> shift), q_type);
        float s1 = exo_load(sc, sc_off + g0 + (blk2 >> shift), q_type);
        float b1 = exo_load(bi, bi_off + g0 + (blk2 >> shift), q_type);
        a0 += exo_mlx_block_dot(rw + blk * bits, bits, s0, b0, xr + blk * 32u);
        a1 += exo_mlx_block_dot(rw + blk2 * bits, bits, s1, b1, xr + blk2 * 32u);
    }
    if (blk < blocks) {
        float s0 = exo_load(sc, sc_off + g0 + (blk >> shift), q_type);
        float b0 = exo_load(bi, bi_off + g0 + (blk >> shift), q_type);
        a0 += exo_mlx_block_dot(rw + blk * bits, bits, s0, b0, xr + blk * 32u);
    }
    return a0 + a1;
}

/* Decode on MLX weights with the vec16 geometry (gpu_build_go_matvec: local size (lanes,
 * EXO_MV16_WG / lanes), one row per lane group, global dimension 1 the rows): lane l takes
 * blocks l, l + lanes, ... of its row (a 4-bit block is one 16-byte load; the lanes of a row
 * read consecutive blocks, so a row streams contiguously). */
__kernel void exo_matmul_vec_mlx(__global const float *x, uint x_off, __global const uint *w, uint w_off,
                                 __global const uchar *sc, uint sc_off, __global const uchar *bi, uint bi_off,
                                 int q_type, uint bits, uint group, __global const float *bias, uint bias_off,
                                 int has_bias, __global float *dst, uint dst_off, uint m, uint k, uint n) {
    __local float partial[EXO_MV_MAX_M * EXO_MV16_WG];
    uint lane = get_local_id(0), lanes = get_local_size(0);
    uint slot = get_local_id(1) * lanes + lane;
    uint row = get_global_id(1);
    float acc[EXO_MV_MAX_M] = {0.0f, 0.0f, 0.0f, 0.0f};
    if (row < n)
        for (uint mm = 0; mm < EXO_MV_MAX_M; mm++) /* a fixed trip count: unrolled, acc stays in registers */
            if (mm < m)
                acc[mm] = exo_mlx_row_dot(w, w_off, sc, sc_off, bi, bi_off, q_type, bits, group, k, row,
                                          x + x_off + mm * k, lane, lanes);
    for (uint mm = 0; mm < EXO_MV_MAX_M; mm++) partial[mm * EXO_MV16_WG + slot] = acc[mm];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = lanes / 2; s > 0; s >>= 1) {
        if (lane < s)
            for (uint mm = 0; mm < EXO_MV_MAX_M; mm++)
                partial[mm * EXO_MV16_WG + slot] += partial[mm * EXO_MV16_WG + slot + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lane == 0 && row < n) {
        float b = has_bias ? bias[bias_off + row] : 0.0f;
        for (uint mm = 0; mm < m; mm++) dst[dst_off + (size_t)mm * n + row] = partial[mm * EXO_MV16_WG + slot] + b;
    }
}

/* The tiled kernel's weight element (gn, gk), dequantized as it is loaded into local memory. */
#define EXO_TILED_W_mlx(gn, gk) exo_mlx_load(w, w_off, sc, sc_off, bi, bi_off, q_type, bits, group, k, (gn), (gk))
__kernel void exo_matmul_tiled_mlx(__global const float *x, uint x_off, __global const uint *w, uint w_off,
                                   __global const uchar *sc, uint sc_off, __global const uchar *bi, uint bi_off,
                                   int q_type, uint bits, uint group, __global const float *bias, uint bias_off,
                                   int has_bias, __global float *dst, uint dst_off, uint m, uint k, uint n) {
    EXO_GEMM_BLOCK(m, n, k, get_group_id(1) * EXO_GEMM_BM, get_group_id(0) * EXO_GEMM_BM, EXO_TILED_X, EXO_TILED_W_mlx,
                   EXO_TILED_STORE)
}
