/* decode.cl — the one-token matrix-vector products of a decode step, exo_dmv_<storage>
 * (f32, bf16, mlx4, mlx8), in the forms the executor's fusions launch (plugins/gpu_common/
 * gpu_fusions.c): up to three matmuls sharing x (q/k/v), gate and up with their GLU, a matmul
 * with its residual ADD, and any of them after the RMS_NORM that feeds them.
 *
 * Why a kernel of its own beside exo_matmul_vec16_*: at one token a decode step is bound by
 * latency, not arithmetic (docs/performance.md 5.3: a 4-bit q/k/v launch moved 3.5 MB in 18 us),
 * and the vec16 family reads 8 weights per load (a single 4-byte word of 4-bit codes), reloads
 * the chunk's x and the folded norm's weight from global memory for every row, and waits for
 * each step's loads before the next. Here:
 *  - every weight load is 16 bytes: 4 f32, 8 bf16, 32 4-bit or 16 8-bit codes (MLX groups are 32 codes
 *    or more, so a chunk has one scale and one bias);
 *  - x is staged in local memory once per work-group, normalised there when a norm is folded in
 *    (the inverse RMS computed as exo_rms_norm computes it), so the loop reads x from local
 *    memory and each x chunk feeds four weight rows from registers;
 *  - each item owns EXO_DMV_SLOTS (4) rows: two pairs of consecutive rows, of one member (q/k/v)
 *    or the same two rows of gate and of up (GLU); the weights of its first two chunks are
 *    loaded before x is staged, so their latency hides behind the staging, and each later step
 *    issues two chunks' loads of all four rows before using any;
 *  - 4- and 8-bit codes become floats without an int-to-float conversion (exo_dmv_u2f).
 * Local size (lanes, EXO_DMV_WG / lanes): `lanes` items split a row's chunks (the host picks
 * ~2 chunks per item, 32 at least; EXO_GPU_DMV_LANES overrides), exo_dmv_lane_sums adds them. k <= EXO_DMV_KMAX (the host checks). */
#define EXO_DMV_WG 256
#define EXO_DMV_KMAX 8192
/* exo_dmv_k2048_*: the same kernels staging at most 2,048 elements of x (12 KB of local memory a
 * work-group instead of 36), for k <= 2048 - every matmul of a 1B-class layer but down_proj, and
 * the lm_head: local memory is one of the limits on how many work-groups a compute unit holds
 * at once (EXO_GPU_DMV_K2048=0: the 8,192-element kernels for every k, to compare). */
#define EXO_DMV_KSMALL 2048
#define EXO_DMV_SLOTS 4

/* q as float for q < 2^23, exactly: 0x4B000000 is 2^23, so its mantissa holds q. An OR and a
 * subtraction instead of a conversion instruction, which runs at a fraction of the FMA rate. */
static inline float exo_dmv_u2f(uint q) { return as_float(q | 0x4B000000u) - 8388608.0f; }

/* s + the 8 4-bit codes of word w . (a, b), and the 4 8-bit codes of w . a. */
static inline float exo_dmv_q4w(uint w, float4 a, float4 b, float s) {
    s = fma(exo_dmv_u2f(w & 15u), a.x, s);
    s = fma(exo_dmv_u2f((w >> 4) & 15u), a.y, s);
    s = fma(exo_dmv_u2f((w >> 8) & 15u), a.z, s);
    s = fma(exo_dmv_u2f((w >> 12) & 15u), a.w, s);
    s = fma(exo_dmv_u2f((w >> 16) & 15u), b.x, s);
    s = fma(exo_dmv_u2f((w >> 20) & 15u), b.y, s);
    s = fma(exo_dmv_u2f((w >> 24) & 15u), b.z, s);
    return fma(exo_dmv_u2f(w >> 28), b.w, s);
}
static inline float exo_dmv_q8w(uint w, float4 a, float s) {
    s = fma(exo_dmv_u2f(w & 255u), a.x, s);
    s = fma(exo_dmv_u2f((w >> 8) & 255u), a.y, s);
    s = fma(exo_dmv_u2f((w >> 16) & 255u), a.z, s);
    return fma(exo_dmv_u2f(w >> 24), a.w, s);
}
/* The two bf16 weights of word w (little-endian: the first in the low half) times (a, b). */
static inline float exo_dmv_bf16w(uint w, float a, float b, float s) {
    return fma(as_float(w & 0xffff0000u), b, fma(as_float(w << 16), a, s));
}

/* Per storage: elements per 16-byte chunk (EXO_DMV_CE_*), the x registers of chunk c
 * (EXO_DMV_X_*, from the float4 view xs4 of the staged x) and one row's contribution of the
 * chunk, codes q (uint4) with scale s and bias b for MLX (EXO_DMV_DOT_*). */
#define EXO_DMV_CE_f32 4u
#define EXO_DMV_CE_bf16 8u
#define EXO_DMV_CE_mlx4 32u
#define EXO_DMV_CE_mlx8 16u
#define EXO_DMV_X_f32(c) float4 x0 = xs4[(c)];
#define EXO_DMV_DOT_f32(q, s, b) dot(as_float4(q), x0)
#define EXO_DMV_X_bf16(c)                                                                          \
    float4 x0 = xs4[2u * (c)], x1 = xs4[2u * (c) + 1u];
#define EXO_DMV_DOT_bf16(q, s, b)                                                                  \
    exo_dmv_bf16w(q.w, x1.z, x1.w, exo_dmv_bf16w(q.z, x1.x, x1.y,                                   \
                  exo_dmv_bf16w(q.y, x0.z, x0.w, exo_dmv_bf16w(q.x, x0.x, x0.y, 0.0f))))
#define EXO_DMV_X_mlx4(c)                                                                          \
    __local const float4 *xp = xs4 + 8u * (c);                                                     \
    float4 x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3], x4 = xp[4], x5 = xp[5], x6 = xp[6], x7 = xp[7]; \
    float xsum = exo_sum4((x0 + x1) + (x2 + x3)) + exo_sum4((x4 + x5) + (x6 + x7));
#define EXO_DMV_DOT_mlx4(q, s, b)                                                                  \
    fma(s, exo_dmv_q4w(q.w, x6, x7, exo_dmv_q4w(q.z, x4, x5, exo_dmv_q4w(q.y, x2, x3, exo_dmv_q4w(q.x, x0, x1, 0.0f)))), \
        (b) * xsum)
#define EXO_DMV_X_mlx8(c)                                                                          \
    __local const float4 *xp = xs4 + 4u * (c);                                                     \
    float4 x0 = xp[0], x1 = xp[1], x2 = xp[2], x3 = xp[3];                                         \
    float xsum = exo_sum4((x0 + x1) + (x2 + x3));
#define EXO_DMV_DOT_mlx8(q, s, b)                                                                  \
    fma(s, exo_dmv_q8w(q.w, x3, exo_dmv_q8w(q.z, x2, exo_dmv_q8w(q.y, x1, exo_dmv_q8w(q.x, x0, 0.0f)))), (b) * xsum)

/* Weight parameters: bf16 as ushort elements (offset in elements, a multiple of 8), MLX as the
 * vec16 kernels take it (words, offset in words, a multiple of 4; scales; biases). */
#define EXO_DMV_W_f32(P) __global const float *P, uint P##_off
#define EXO_DMV_W_bf16(P) __global const ushort *P, uint P##_off
#define EXO_DMV_W_mlx4(P)                                                                          \
    __global const uint *P, uint P##_off, __global const uchar *P##_sc, uint P##_sc_off,            \
        __global const uchar *P##_bi, uint P##_bi_off
#define EXO_DMV_W_mlx8(P) EXO_DMV_W_mlx4(P)
#define EXO_DMV_Q_f32
#define EXO_DMV_Q_bf16
#define EXO_DMV_Q_mlx4 , int q_type, uint group
#define EXO_DMV_Q_mlx8 , int q_type, uint group
#define EXO_DMV_IS_Q_f32 0
#define EXO_DMV_IS_Q_bf16 0
#define EXO_DMV_IS_Q_mlx4 1
#define EXO_DMV_IS_Q_mlx8 1
/* Float storages have no scales: the names the MLX paths use, never read. */
#define EXO_DMV_QDECL_bf16                                                                         \
    const int q_type = EXO_F32;                                                                    \
    const uint group = EXO_DMV_CE_bf16;
#define EXO_DMV_QDECL_f32 EXO_DMV_QDECL_bf16
#define EXO_DMV_QDECL_mlx4
#define EXO_DMV_QDECL_mlx8

/* Where slot i's row lives: its chunks as uint4s from wp[i] + wc[i], its group's scale and
 * bias at element sg[i] (+ chunk >> gs) of scp[i] / bip[i] (MLX only). */
#define EXO_DMV_BIND_bf16(i, P, row)                                                               \
    wp[i] = (__global const uint4 *)P;                                                             \
    wc[i] = (P##_off >> 3) + (row) * (k >> 3);                                                     \
    scp[i] = bip[i] = (__global const uchar *)P;                                                   \
    sgi[i] = bgi[i] = 0u;
#define EXO_DMV_BIND_f32(i, P, row)                                                                \
    wp[i] = (__global const uint4 *)P;                                                             \
    wc[i] = (P##_off >> 2) + (row) * (k >> 2);                                                     \
    scp[i] = bip[i] = (__global const uchar *)P;                                                   \
    sgi[i] = bgi[i] = 0u;
#define EXO_DMV_BIND_mlx4(i, P, row)                                                               \
    wp[i] = (__global const uint4 *)P;                                                             \
    wc[i] = (P##_off >> 2) + (row) * (k >> 5);                                                     \
    scp[i] = P##_sc;                                                                               \
    bip[i] = P##_bi;                                                                               \
    sgi[i] = P##_sc_off + (row) * (k / group);                                                     \
    bgi[i] = P##_bi_off + (row) * (k / group);
#define EXO_DMV_BIND_mlx8(i, P, row)                                                               \
    EXO_DMV_BIND_mlx4(i, P, row)                                                                   \
    wc[i] = (P##_off >> 2) + (row) * (k >> 4);

/* Loads of chunk c of every slot into q##i, s##i, b##i (an index past the row's chunks reads
 * chunk `lane` again, never used: every address stays inside the row). */
#define EXO_DMV_LOAD(SFX, qv, sv, bv, c)                                                           \
    {                                                                                              \
        uint cc_ = (c) < chunks ? (c) : 0u; /* chunk 0 always exists: past the row is past the buffer */ \
        for (uint i = 0; i < EXO_DMV_SLOTS; i++) {                                                 \
            qv[i] = wp[i][wc[i] + cc_];                                                            \
            if (EXO_DMV_IS_Q_##SFX) {                                                              \
                sv[i] = exo_load(scp[i], sgi[i] + (cc_ >> gs), q_type);                            \
                bv[i] = exo_load(bip[i], bgi[i] + (cc_ >> gs), q_type);                            \
            }                                                                                      \
        }                                                                                          \
    }
/* acc[i] += slot i's share of chunk c (loaded into qv, sv, bv), when c is one of the row's. */
#define EXO_DMV_USE(SFX, qv, sv, bv, c)                                                            \
    if ((c) < chunks) {                                                                            \
        EXO_DMV_X_##SFX(c)                                                                         \
        for (uint i = 0; i < EXO_DMV_SLOTS; i++) acc[i] += EXO_DMV_DOT_##SFX(qv[i], sv[i], bv[i]); \
    }

/* The work-group's sums. A barrier-per-step tree in local memory; on NVIDIA a warp sums by
 * butterfly shuffles first (exo_warp_sum, common.cl), so a slot's lanes take 1-2 barriers instead
 * of log2(lanes) + 1, and the norm's sum 1 instead of 9: on the H100 a bf16 decode step went
 * 2.10 -> 1.87 ms, goldens 21/21 (docs/performance.md 5.5.2). lanes >= 32 (the host's choice), so
 * a warp holds one row group's lanes.
 *
 * The sum of v over the work-group's EXO_DMV_WG items, returned to every item (red[0 .. 7] or
 * red[0] hold it: free again after the caller's next barrier). Both helpers hold barriers, so
 * they are inlined even in the -O0 SPIR-V module (EXO_KERNEL_BODY, common.cl: out of line,
 * PoCL mis-ran such a helper's barriers, b4c2012). */
static inline __attribute__((always_inline)) float exo_dmv_wg_sum(float v, uint tid, __local float *red) {
#ifdef EXO_WARP_SHFL
    v = exo_warp_sum(v);
    if ((tid & 31u) == 0u) red[tid >> 5] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    float s = 0.0f;
    for (uint w = 0; w < EXO_DMV_WG / 32u; w++) s += red[w];
    return s;
#else
    red[tid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = EXO_DMV_WG / 2; s > 0; s >>= 1) {
        if (tid < s) red[tid] += red[tid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return red[0];
#endif
}

/* Each slot's sum over the `lanes` items of row group `base` (tid - lane) into
 * red[slot * EXO_DMV_WG + base], visible to the whole group on return. */
EXO_KERNEL_BODY exo_dmv_lane_sums(const float acc[EXO_DMV_SLOTS], uint lane, uint lanes, uint tid, uint base,
                                   __local float *red) {
#ifdef EXO_WARP_SHFL
    float w[EXO_DMV_SLOTS];
    for (uint i = 0; i < EXO_DMV_SLOTS; i++) w[i] = exo_warp_sum(acc[i]);
    if ((lane & 31u) == 0u)
        for (uint i = 0; i < EXO_DMV_SLOTS; i++) red[i * EXO_DMV_WG + tid] = w[i];
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lanes > 32u) {
        /* Lane i < SLOTS adds slot i's warps: only it reads or writes that slot's entries. */
        if (lane < EXO_DMV_SLOTS) {
            float s = 0.0f;
            for (uint o = 0; o < lanes; o += 32u) s += red[lane * EXO_DMV_WG + base + o];
            red[lane * EXO_DMV_WG + base] = s;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
#else
    for (uint i = 0; i < EXO_DMV_SLOTS; i++) red[i * EXO_DMV_WG + tid] = acc[i];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint s = lanes / 2; s > 0; s >>= 1) {
        if (lane < s)
            for (uint i = 0; i < EXO_DMV_SLOTS; i++) red[i * EXO_DMV_WG + tid] += red[i * EXO_DMV_WG + tid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
#endif
}

/* x of an o_proj launch straight from the split decode attention's partial states (kernels/
 * attention.cl, exo_attention_split: per head h and split s, (acc[hd], m, l) at (h * ns + s) *
 * (hd + 2), one token), merged as exo_attention_combine merges them while x is staged: the
 * combine's own launch is saved (one a layer). k = heads x hd. Each split's m goes into red and
 * its l into xs (x is not staged yet), then one item per head turns them into the split's weight
 * exp(m_s - M) / denominator (M the largest logit, a sink's included; an empty split, m = -inf,
 * weighs 0) in red, and x[j] = sum_s acc_s[j] x weight_s. The host
 * admits heads x ns <= EXO_DMV_SLOTS x EXO_DMV_WG (red's size). Inlined even in the -O0 SPIR-V
 * build (EXO_KERNEL_BODY, common.cl): out of line, its barriers broke the merge of two or more
 * splits on PoCL running that module (the Level Zero test driver; held-out prompts of 203 tokens). */
EXO_KERNEL_BODY exo_dmv_stage_attention(__global const float *part, uint part_off, uint ns,
                                           __global const float *sinks, uint sinks_off, int has_sinks, uint hd,
                                           uint k, uint tid, __local float *xs, __local float *red) {
    uint heads = k / hd, stride = hd + 2u, hs = heads * ns;
    __global const float *pp = part + part_off;
    for (uint i = tid; i < hs; i += EXO_DMV_WG) {
        red[i] = pp[(size_t)i * stride + hd];
        xs[i] = pp[(size_t)i * stride + hd + 1u];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint h = tid; h < heads; h += EXO_DMV_WG) {
        __local float *mh = red + h * ns;
        float big = has_sinks ? sinks[sinks_off + h] : -INFINITY;
        for (uint s = 0; s < ns; s++) big = fmax(big, mh[s]);
        float denom = has_sinks ? exp(sinks[sinks_off + h] - big) : 0.0f;
        for (uint s = 0; s < ns; s++) denom += mh[s] == -INFINITY ? 0.0f : xs[h * ns + s] * exp(mh[s] - big);
        float inv = denom > 0.0f ? 1.0f / denom : 0.0f;
        for (uint s = 0; s < ns; s++) mh[s] = mh[s] == -INFINITY ? 0.0f : exp(mh[s] - big) * inv;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    /* Four elements of x per pass (j, j + WG, ...; an element past k repeats element tid, never
     * stored), four splits of each per step: sixteen loads in flight, not four. */
    for (uint j0 = tid; j0 < k; j0 += 4u * EXO_DMV_WG) {
        __global const float *ph[4];
        __local const float *wh[4];
        for (uint e = 0; e < 4u; e++) {
            uint j = j0 + e * EXO_DMV_WG < k ? j0 + e * EXO_DMV_WG : j0, h = j / hd;
            ph[e] = pp + (size_t)h * ns * stride + (j - h * hd);
            wh[e] = red + h * ns;
        }
        float a[4] = {0.0f, 0.0f, 0.0f, 0.0f}, b[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        uint s = 0;
        for (; s + 4u <= ns; s += 4u) {
            float pv[4][4];
            for (uint e = 0; e < 4u; e++)
                for (uint i = 0; i < 4u; i++) pv[e][i] = ph[e][(size_t)(s + i) * stride];
            for (uint e = 0; e < 4u; e++) {
                a[e] = fma(pv[e][0], wh[e][s], a[e]);
                b[e] = fma(pv[e][1], wh[e][s + 1u], b[e]);
                a[e] = fma(pv[e][2], wh[e][s + 2u], a[e]);
                b[e] = fma(pv[e][3], wh[e][s + 3u], b[e]);
            }
        }
        for (; s < ns; s++)
            for (uint e = 0; e < 4u; e++) a[e] = fma(ph[e][(size_t)s * stride], wh[e][s], a[e]);
        for (uint e = 0; e < 4u; e++)
            if (j0 + e * EXO_DMV_WG < k) xs[j0 + e * EXO_DMV_WG] = a[e] + b[e];
    }
}

/* The kernel. Members 0..2 (weights, bias, has_bias, dst, rows); global dimension 1 counts
 * items: glu < 0: ceil(n0/4) + ceil(n1/4) + ceil(n2/4), each item 4 consecutive rows of one
 * member, written with its bias, plus res[row] when has_res (member 0 only: the residual ADD
 * folded in, (x.w + b) + r as the two nodes round); glu >= 0 (the activation, EXO_GLU_I_ACT's
 * SiLU 0 / GELU-tanh 1): ceil(n0/2) items, rows 2g, 2g+1 of member 0 (gate) and of member 1 (up),
 * written act(gate + bias) * (up + bias) to d0. rope >= 0 (EXO_ROPE_NORMAL 0 / NEOX 1; members
 * q, k, v, n_rot = head_dim): a layer's RoPE and KV writes in the epilogue — q rotated into d0, k
 * rotated and v as it is stored at position pos[0] (of slot slots[0] when n_slots > 0) into the
 * caches d1 and d2 (dtype kv, rows of n1 elements, cache_rows rows per slot), each item holding
 * the rows its rotation pairs. norm: x is the RMS_NORM's raw input, nw its weight (nw_type, eps,
 * one_plus). att != 0 (no RoPE, no norm): x is merged from the split attention's partial states
 * (exo_dmv_stage_attention): the x argument is the partials, |att| their splits per head of
 * head_dim, att < 0 with the sinks at inv_freq + freq_off. (Arguments are reused, not added: the
 * Level Zero test driver takes at most 64 parameters, as some drivers do.) */
#define EXO_DEFINE_DMV(SFX, NAME, XMAX)                                                            \
    __kernel void NAME(                                                                            \
        __global const float *x, uint x_off, uint k,                                               \
        EXO_DMV_W_##SFX(w0), __global const float *b0, uint b0_off, int hb0, __global float *d0, uint d0_off, uint n0, \
        EXO_DMV_W_##SFX(w1), __global const float *b1, uint b1_off, int hb1, __global float *d1, uint d1_off, uint n1, \
        EXO_DMV_W_##SFX(w2), __global const float *b2, uint b2_off, int hb2, __global float *d2, uint d2_off, uint n2, \
        __global const float *res, uint res_off, int has_res, int glu, int rope, __global const int *pos, \
        uint pos_off, __global const int *slots, uint slots_off, uint n_slots, __global const float *inv_freq, \
        uint freq_off, uint head_dim, float attn_factor, uint cache_rows, int kv, int norm,       \
        __global const uchar *nw, uint nw_off, int nw_type, float eps, int one_plus, int att EXO_DMV_Q_##SFX) {   \
        EXO_DMV_QDECL_##SFX                                                                        \
        /* Declared as float4s, so the float4 view is aligned. */                                \
        __local float4 xs4_[(XMAX) / 4];                                                           \
        __local float red[EXO_DMV_SLOTS * EXO_DMV_WG];                                             \
        __local float *xs = (__local float *)xs4_;                                                 \
        __local const float4 *xs4 = xs4_;                                                          \
        uint lane = get_local_id(0), lanes = get_local_size(0);                                    \
        uint tid = get_local_id(1) * lanes + lane, g = get_global_id(1);                           \
        uint chunks = k / EXO_DMV_CE_##SFX;                                                        \
        /* The item's two row pairs: member sel[p], first row r0[p]. */                            \
        uint h0 = (n0 + 3u) / 4u, h1 = (n1 + 3u) / 4u;                                             \
        uint sel[2], r0[2];                                                                        \
        if (glu >= 0) {                                                                            \
            sel[0] = 0u;                                                                           \
            sel[1] = 1u;                                                                           \
            r0[0] = r0[1] = 2u * g;                                                                \
        } else {                                                                                   \
            uint m_ = g < h0 ? 0u : g < h0 + h1 ? 1u : 2u;                                         \
            uint first = 4u * (g - (m_ == 0u ? 0u : m_ == 1u ? h0 : h0 + h1));                     \
            sel[0] = sel[1] = m_;                                                                  \
            r0[0] = first;                                                                         \
            r0[1] = first + 2u;                                                                    \
            if (rope == 1 && m_ < 2u) {                                                            \
                /* NEOX pairs (d, d + head_dim / 2) in one item: rows d, d + 1 and their partners. */ \
                uint per_head = head_dim / 4u, hd_ = first / 4u / per_head;                        \
                r0[0] = hd_ * head_dim + 2u * (first / 4u - hd_ * per_head);                       \
                r0[1] = r0[0] + head_dim / 2u;                                                     \
            }                                                                                      \
        }                                                                                          \
        __global const uint4 *wp[EXO_DMV_SLOTS];                                                   \
        __global const uchar *scp[EXO_DMV_SLOTS], *bip[EXO_DMV_SLOTS];                             \
        uint wc[EXO_DMV_SLOTS], sgi[EXO_DMV_SLOTS], bgi[EXO_DMV_SLOTS], row[EXO_DMV_SLOTS];       \
        bool live[EXO_DMV_SLOTS];                                                                  \
        uint gs = EXO_DMV_IS_Q_##SFX ? 31u - clz(EXO_DMV_IS_Q_##SFX ? group / EXO_DMV_CE_##SFX : 1u) : 0u; \
        for (uint i = 0; i < EXO_DMV_SLOTS; i++) {                                                 \
            uint p = i >> 1, s_ = sel[p], n_ = EXO_SEL3(s_, n0, n1, n2);                           \
            row[i] = r0[p] + (i & 1u);                                                             \
            live[i] = row[i] < n_;                                                                 \
            /* A row past the member's end reads the member's row 0 (never written). */            \
            uint rr = live[i] ? row[i] : 0u;                                                       \
            if (s_ == 0u) {                                                                        \
                EXO_DMV_BIND_##SFX(i, w0, rr)                                                      \
            } else if (s_ == 1u) {                                                                 \
                EXO_DMV_BIND_##SFX(i, w1, rr)                                                      \
            } else {                                                                               \
                EXO_DMV_BIND_##SFX(i, w2, rr)                                                      \
            }                                                                                      \
        }                                                                                          \
        /* The first two chunks' weights, in flight while x is staged. */                          \
        uint4 qa[EXO_DMV_SLOTS], qb[EXO_DMV_SLOTS];                                                \
        float sa[EXO_DMV_SLOTS], ba[EXO_DMV_SLOTS], sb[EXO_DMV_SLOTS], bb[EXO_DMV_SLOTS];          \
        for (uint i = 0; i < EXO_DMV_SLOTS; i++) sa[i] = ba[i] = sb[i] = bb[i] = 0.0f;             \
        uint c = lane;                                                                             \
        EXO_DMV_LOAD(SFX, qa, sa, ba, c)                                                           \
        EXO_DMV_LOAD(SFX, qb, sb, bb, c + lanes)                                                   \
        /* x into local memory, normalised as exo_rms_norm would (same sums; in the same order     \
         * but where the warps' shuffles sum, exo_dmv_wg_sum). */                                  \
        float inv = 1.0f;                                                                          \
        if (norm) {                                                                                \
            float sq = 0.0f;                                                                       \
            for (uint j = tid; j < k; j += EXO_DMV_WG) sq += x[x_off + j] * x[x_off + j];          \
            inv = rsqrt(exo_dmv_wg_sum(sq, tid, red) / (float)k + eps);                            \
        }                                                                                          \
        if (att != 0) {                                                                            \
            exo_dmv_stage_attention(x, x_off, (uint)abs(att), inv_freq, freq_off, att < 0, head_dim, k, tid, xs, red); \
        } else {                                                                                   \
            for (uint j = tid; j < k; j += EXO_DMV_WG) {                                           \
                float v = x[x_off + j];                                                            \
                if (norm) {                                                                        \
                    float wj = exo_load(nw, nw_off + j, nw_type);                                  \
                    v = v * inv * (one_plus ? wj + 1.0f : wj);                                     \
                }                                                                                  \
                xs[j] = v;                                                                         \
            }                                                                                      \
        }                                                                                          \
        barrier(CLK_LOCAL_MEM_FENCE);                                                              \
        float acc[EXO_DMV_SLOTS] = {0.0f, 0.0f, 0.0f, 0.0f};                                       \
        for (;;) {                                                                                 \
            EXO_DMV_USE(SFX, qa, sa, ba, c)                                                        \
            EXO_DMV_USE(SFX, qb, sb, bb, c + lanes)                                                \
            c += 2u * lanes;                                                                       \
            if (c >= chunks) break;                                                                \
            EXO_DMV_LOAD(SFX, qa, sa, ba, c)                                                       \
            EXO_DMV_LOAD(SFX, qb, sb, bb, c + lanes)                                               \
        }                                                                                          \
        /* Sum the lanes of each slot into red[slot * WG + base] (red is free: the norm's last     \
         * read preceded a barrier). */                                                            \
        uint base = tid - lane;                                                                    \
        exo_dmv_lane_sums(acc, lane, lanes, tid, base, red);                                       \
        if (glu >= 0) {                                                                            \
            /* Lanes 0 and 1: gate row (slot lane) and up row (slot lane + 2). */                  \
            if (lane < 2u && live[lane] && live[lane + 2u]) {                                      \
                uint r = row[lane];                                                                \
                float gv = red[lane * EXO_DMV_WG + base] + (hb0 ? b0[b0_off + r] : 0.0f);           \
                float uv = red[(lane + 2u) * EXO_DMV_WG + base] + (hb1 ? b1[b1_off + r] : 0.0f);    \
                d0[d0_off + r] = exo_glu_act(gv, glu) * uv;                                        \
            }                                                                                      \
        } else if (lane < EXO_DMV_SLOTS && live[lane]) {                                           \
            uint r = row[lane], s_ = sel[lane >> 1];                                               \
            __global const float *bias = EXO_SEL3(s_, b0, b1, b2);                                 \
            uint bias_off = EXO_SEL3(s_, b0_off, b1_off, b2_off);                                  \
            int hb = EXO_SEL3(s_, hb0, hb1, hb2);                                                  \
            float y = red[lane * EXO_DMV_WG + base] + (hb ? bias[bias_off + r] : 0.0f);            \
            if (has_res && s_ == 0u) y += res[res_off + r];                                        \
            __global float *dst = EXO_SEL3(s_, d0, d1, d2);                                        \
            uint dst_off = EXO_SEL3(s_, d0_off, d1_off, d2_off);                                   \
            if (rope < 0) {                                                                        \
                dst[dst_off + r] = y;                                                              \
            } else {                                                                               \
                /* q, k rotate with the partner row the item holds (NEOX: slot ^ 2, NORMAL:      \
                 * slot ^ 1), as exo_rope_value does; q is written, k and v go into their cache  \
                 * rows at the token's position (d1, d2 are the caches, dtype kv). */             \
                int p = pos[pos_off];                                                              \
                if (s_ < 2u) {                                                                     \
                    uint pl = rope == 1 ? lane ^ 2u : lane ^ 1u, d = r % head_dim, half_ = head_dim / 2u; \
                    float yp = red[pl * EXO_DMV_WG + base] + (hb ? bias[bias_off + row[pl]] : 0.0f); \
                    bool first_ = rope == 1 ? d < half_ : (d & 1u) == 0u;                          \
                    uint fi = rope == 1 ? (first_ ? d : d - half_) : d / 2u;                       \
                    float angle = (float)p * inv_freq[freq_off + fi];                              \
                    float cs = cos(angle) * attn_factor, sn = sin(angle) * attn_factor;            \
                    y = first_ ? y * cs - yp * sn : y * cs + yp * sn;                              \
                }                                                                                  \
                if (s_ == 0u) {                                                                    \
                    dst[dst_off + r] = y;                                                          \
                } else {                                                                           \
                    long row0 = exo_slot_row0(slots, slots_off, n_slots, 0u, cache_rows);          \
                    if (p >= 0 && (uint)p < cache_rows && row0 >= 0)                               \
                        exo_kv_store((__global uchar *)dst, dst_off + (size_t)(row0 + p) * n1 + r, y, kv); \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

EXO_DEFINE_DMV(f32, exo_dmv_f32, EXO_DMV_KMAX)
EXO_DEFINE_DMV(bf16, exo_dmv_bf16, EXO_DMV_KMAX)
EXO_DEFINE_DMV(mlx4, exo_dmv_mlx4, EXO_DMV_KMAX)
EXO_DEFINE_DMV(mlx8, exo_dmv_mlx8, EXO_DMV_KMAX)
/* Not in the SPIR-V module (EXO_SPIRV; the Level Zero plugin never asks for them): with them in
 * it, PoCL - which runs that module's -O0 bitcode in the tests - failed an assertion on its 1 MB
 * of local memory when launching any kernel of the module, as if each kernel were given room for
 * every kernel's work-group arrays. */
#ifndef EXO_SPIRV
EXO_DEFINE_DMV(f32, exo_dmv_k2048_f32, EXO_DMV_KSMALL)
EXO_DEFINE_DMV(bf16, exo_dmv_k2048_bf16, EXO_DMV_KSMALL)
EXO_DEFINE_DMV(mlx4, exo_dmv_k2048_mlx4, EXO_DMV_KSMALL)
EXO_DEFINE_DMV(mlx8, exo_dmv_k2048_mlx8, EXO_DMV_KSMALL)
#endif
