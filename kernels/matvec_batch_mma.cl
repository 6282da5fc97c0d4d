/* matvec_batch_mma.cl — a batched decode step's matmuls (up to 8 tokens, one per sequence) with
 * bf16 weights on NVIDIA's tensor cores: the exo_matmul_vecb8* kernels of matvec_batch.cl (same
 * parameters, same outputs and fusions: bias, residual, the q/k/v x3 launch, gate/up + GLU, the
 * folded RMS norm), with the products as mma.sync m16n8k16 instead of 8 x 4 fused multiply-adds
 * per weight and item. At 8 tokens those FMAs, not the weight reads, bounded the FMA kernels
 * (an 8-row Llama 3.2 1B step's gate/up/GLU ran at 1.17 TB/s and 9.3 TFLOP/s on an H100,
 * docs/performance.md 7.7). Compiled only with EXO_NV_MMA, as matmul_mma.cl (whose
 * exo_mma_bf16_16816 and its emulation on PoCL it uses), so after that file.
 *
 * The product per warp: a 16-row tile of W (the mma's A, row-major, 16 x 16) times 8 tokens of x
 * (B, 16 x 8), C 16 x 8 in four f32 per lane (rows g and g + 8, tokens 2t and 2t + 1; g = lane /
 * 4, t = lane % 4). A sum over k may take k in any order so long as A and B agree, so each lane
 * reads one 16-byte chunk (eight bf16, k 8t .. 8t + 7 of a 32-wide step) of its rows g and g + 8
 * as they lie in memory, and the same eight x of token g: the chunk's words 0-1 are the first
 * mma's A registers (k pairs "2t" and "2t + 8"), words 2-3 the second's, and B's the same words
 * of x's bf16 parts. bf16 weights are A as loaded, no conversion; x (f32) goes in as three bf16
 * parts, x = x1 + x2 + x3 (exo_mmab_split2: exact for |x| >= 2^-110; below, bits under bf16's
 * smallest step 2^-133 are lost; an infinite x gives NaN, where the FMA kernels give inf), one
 * mma each, the smallest first. What rounds besides: the tensor cores' f32 accumulation (not
 * IEEE round-to-nearest throughout), the folded norm's x * w, and the sum of the 8 warps'
 * partial C: expect a real GPU's error above the emulation's.
 *
 * Work-group: EXO_MMAB_WARPS warps, EXO_MMAB_RT tiles of 16 weight rows (the GLU: tile rows 0-7
 * are gate rows, 8-15 the same up rows, so both land in one lane), the warps taking the K steps
 * round-robin (each warp's loads of two steps in flight before their mma), then their C summed
 * through local memory, one item per output. A warp's RT tiles share its x parts: x, 32 bytes
 * per k for 8 tokens, is read once per RT * 16 weight rows. Two shapes of work-group, each a
 * set of the five kernels (EXO_MMAB_KERNELS): 8 warps on 32 rows (RT 2), and 16 warps on 16
 * rows (RT 1, names with "r16") for weights of few rows, where 32-row groups would leave most of
 * the device's multiprocessors idle (an H100's 132 against a 2048-row o_proj's 64 groups) and
 * too few loads in flight. The host (gpu_launch.c) picks the shape by the weight's rows and
 * passes rpi = EXO_MMAB_ROWS (GLU: half of it are output rows); k a multiple of 32, the
 * weight's element offset of 8, x's of 4 (the wide loads' rule). */
#ifdef EXO_NV_MMA
#define EXO_MMAB_ITEMS (32 * EXO_MMAB_WARPS)
#define EXO_MMAB_ROWS (16 * EXO_MMAB_RT)
#define EXO_MMAB_TOK 8
#define EXO_MMAB_PARTS 3

#ifdef EXO_MMA_EMULATE
#define EXO_MMAB_SCRATCH __local uint mma_frag[EXO_MMAB_ITEMS * 6];
#else
#define EXO_MMAB_SCRATCH
#endif

/* Two activations as three bf16 parts each, word p = part p of a (low half) and of b (high),
 * as exo_mma_split2 but each part truncated rather than rounded: x1 keeps x's top 8 significant
 * bits, x2 the next 8 of what is left, and the remainder (8 bits at most) is x3, exactly, so the
 * parts still sum to x; a mask instead of a rounding add per part (the split is most of a lane's
 * arithmetic here: it runs per 32 weight rows, the prompt GEMM's per 64 tokens). */
static inline void exo_mmab_split2(float a, float b, uint out[EXO_MMA_MAX_PARTS]) {
    for (uint p = 0; p < EXO_MMA_MAX_PARTS; p++) {
        uint ha = as_uint(a) & 0xffff0000u, hb = as_uint(b) & 0xffff0000u;
        out[p] = (ha >> 16) | hb;
        a -= as_float(ha);
        b -= as_float(hb);
    }
}

/* The first 16-byte chunk of row r of an n-row weight at element offset off (rows past n read
 * row n - 1; their sums are never written). */
#define EXO_MMAB_WROW(off, r) (((off) + min((uint)(r), n - 1u) * k) >> 3)

/* Elements j .. j + 3 of token g's x: as stored (EXO_MMAB_X), or merged from the split decode
 * attention's partial states (EXO_MMAB_X_MERGED, the o_proj kernel with the attention's
 * combine: per (token, head) and split, (acc[hd], m, l) at ((g * heads + h) * ns + s) * (hd + 2),
 * weighed by att_w, which the kernel's prologue filled as exo_dmv_stage_attention does). */
#define EXO_MMAB_X(j) xv[xc + (j) / 4u]
#define EXO_MMAB_X_MERGED(j) exo_mmab_merged4(x, x_off, att_w, g, (j), head_dim, k / head_dim, ns)
static inline float4 exo_mmab_merged4(__global const float *part, uint part_off, __local const float *w, uint t,
                                      uint j, uint hd, uint heads, uint ns) {
    uint h = j / hd, th = t * heads + h;
    __global const float *ph = part + part_off + (size_t)th * ns * (hd + 2u) + (j - h * hd);
    float4 a = (float4)(0.0f);
    for (uint s = 0; s < ns; s++) a = fma(vload4(0, ph + (size_t)s * (hd + 2u)), (float4)(w[th * ns + s]), a);
    return a;
}

/* The per-warp products of the work-group's tiles into acc[EXO_MMAB_RT] and, with a folded
 * norm, token g's sum of squares of its raw x into ssq. Tile rt's rows g are row RLO(rt) of
 * weight PLO (element offset OLO), its rows g + 8 row RHI(rt) of PHI (OHI); XLOAD(j) reads x. */
#define EXO_MMAB_PRODUCTS(PLO, OLO, RLO, PHI, OHI, RHI, XLOAD)                                     \
    uint tid = get_local_id(0), lane = tid & 31u, warp = tid >> 5, g = lane >> 2, t = lane & 3u;   \
    uint steps = k >> 5;                                                                           \
    float4 acc[EXO_MMAB_RT];                                                                       \
    float ssq = 0.0f;                                                                              \
    EXO_MMA_UNROLL for (uint rt = 0; rt < EXO_MMAB_RT; rt++) acc[rt] = (float4)(0.0f);             \
    __global const float4 *xv = (__global const float4 *)x;                                       \
    uint xc = (x_off + g * k) >> 2;                                                                \
    uint wlo[EXO_MMAB_RT], whi[EXO_MMAB_RT];                                                       \
    EXO_MMA_UNROLL for (uint rt = 0; rt < EXO_MMAB_RT; rt++) {                                     \
        wlo[rt] = EXO_MMAB_WROW(OLO, RLO(rt));                                                     \
        whi[rt] = EXO_MMAB_WROW(OHI, RHI(rt));                                                     \
    }                                                                                              \
    for (uint s0 = 0; s0 < steps; s0 += 2u * EXO_MMAB_WARPS) {                                     \
        uint4 wa[2][EXO_MMAB_RT], wb[2][EXO_MMAB_RT];                                              \
        float4 xa[2], xb[2];                                                                       \
        EXO_MMA_UNROLL for (uint u = 0; u < 2u; u++) {                                             \
            uint ks = s0 + u * EXO_MMAB_WARPS + warp, c = ks * 4u + t;                             \
            bool on = ks < steps;                                                                  \
            EXO_MMA_UNROLL for (uint rt = 0; rt < EXO_MMAB_RT; rt++) {                             \
                wa[u][rt] = on ? ((__global const uint4 *)(PLO))[wlo[rt] + c] : (uint4)(0u);     \
                wb[u][rt] = on ? ((__global const uint4 *)(PHI))[whi[rt] + c] : (uint4)(0u);     \
            }                                                                                      \
            xa[u] = on && g < m ? XLOAD(8u * c) : (float4)(0.0f);                                  \
            xb[u] = on && g < m ? XLOAD(8u * c + 4u) : (float4)(0.0f);                             \
        }                                                                                          \
        EXO_MMA_UNROLL for (uint u = 0; u < 2u; u++) {                                             \
            if (norm) {                                                                            \
                uint ks = s0 + u * EXO_MMAB_WARPS + warp;                                          \
                float4 nwl = (float4)(1.0f), nwh = (float4)(1.0f);                                 \
                if (ks < steps) exo_load8(nw, nw_off + 8u * (ks * 4u + t), nw_type, &nwl, &nwh);   \
                if (one_plus) {                                                                    \
                    nwl += 1.0f;                                                                   \
                    nwh += 1.0f;                                                                   \
                }                                                                                  \
                ssq += dot(xa[u], xa[u]) + dot(xb[u], xb[u]);                                      \
                xa[u] *= nwl;                                                                      \
                xb[u] *= nwh;                                                                      \
            }                                                                                      \
            uint p01[EXO_MMA_MAX_PARTS], p23[EXO_MMA_MAX_PARTS], p45[EXO_MMA_MAX_PARTS], p67[EXO_MMA_MAX_PARTS]; \
            exo_mmab_split2(xa[u].x, xa[u].y, p01);                                                \
            exo_mmab_split2(xa[u].z, xa[u].w, p23);                                                \
            exo_mmab_split2(xb[u].x, xb[u].y, p45);                                                \
            exo_mmab_split2(xb[u].z, xb[u].w, p67);                                                \
            EXO_MMA_UNROLL for (uint px = EXO_MMAB_PARTS; px-- > 0;)                               \
                EXO_MMA_UNROLL for (uint rt = 0; rt < EXO_MMAB_RT; rt++) {                         \
                    uint4 a = wa[u][rt], b = wb[u][rt];                                            \
                    exo_mma_bf16_16816(&acc[rt], a.x, b.x, a.y, b.y, p01[px], p23[px]);            \
                    exo_mma_bf16_16816(&acc[rt], a.z, b.z, a.w, b.w, p45[px], p67[px]);            \
                }                                                                                  \
        }                                                                                          \
    }                                                                                              \
    /* Every warp's C (and sums of squares) into local memory, then per token 1 / rms. */        \
    EXO_MMA_UNROLL for (uint rt = 0; rt < EXO_MMAB_RT; rt++)                                       \
        vstore4(acc[rt], 0, red + (warp * EXO_MMAB_RT + rt) * 128u + lane * 4u);                   \
    if (norm) sq_l[tid] = ssq;                                                                     \
    barrier(CLK_LOCAL_MEM_FENCE);                                                                  \
    if (norm && tid < EXO_MMAB_TOK) {                                                              \
        float s_ = 0.0f;                                                                           \
        for (uint w_ = 0; w_ < EXO_MMAB_WARPS; w_++)                                               \
            for (uint t_ = 0; t_ < 4u; t_++) s_ += sq_l[w_ * 32u + tid * 4u + t_];                 \
        inv_l[tid] = rsqrt(s_ / (float)k + eps);                                                   \
    }                                                                                              \
    barrier(CLK_LOCAL_MEM_FENCE);

/* C element e (0..3) of lane l in tile rt of a work-group of `warps` warps and `rts` tiles,
 * summed over the warps. */
static inline float exo_mmab_sum(__local const float *red, uint warps, uint rts, uint rt, uint l, uint e) {
    float s = 0.0f;
    for (uint w = 0; w < warps; w++) s += red[(w * rts + rt) * 128u + l * 4u + e];
    return s;
}

/* The split weights of each (token, head) th < n_th into w[th * ns + s]: exp(m_s - M) / the
 * denominator (M the largest logit, a sink's included; an empty split, m = -inf, weighs 0), as
 * exo_dmv_stage_attention and exo_attention_combine weigh them. Ends with a barrier. */
#define EXO_MMAB_ATT_W 2048
static inline void exo_mmab_attention_weights(__global const float *part, uint part_off, __global const float *sinks,
                                              uint sinks_off, int has_sinks, uint n_th, uint heads, uint hd, uint ns,
                                              __local float *w) {
    for (uint th = get_local_id(0); th < n_th; th += get_local_size(0)) {
        __global const float *ph = part + part_off + (size_t)th * ns * (hd + 2u);
        uint h = th % heads;
        float big = has_sinks ? sinks[sinks_off + h] : -INFINITY;
        for (uint s = 0; s < ns; s++) big = fmax(big, ph[(size_t)s * (hd + 2u) + hd]);
        float denom = has_sinks ? exp(sinks[sinks_off + h] - big) : 0.0f;
        for (uint s = 0; s < ns; s++) {
            float ms = ph[(size_t)s * (hd + 2u) + hd];
            denom += ms == -INFINITY ? 0.0f : ph[(size_t)s * (hd + 2u) + hd + 1u] * exp(ms - big);
        }
        float inv = denom > 0.0f ? 1.0f / denom : 0.0f;
        for (uint s = 0; s < ns; s++) {
            float ms = ph[(size_t)s * (hd + 2u) + hd];
            w[th * ns + s] = ms == -INFINITY ? 0.0f : exp(ms - big) * inv;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

/* One output per item: element o = (tile, lane, e) of C is row tile * 16 + lane / 4 (+ 8 for e
 * >= 2) of the work-group's rows, token 2 (lane % 4) + e % 2; OUT as matvec_batch.cl's. */
#define EXO_MMAB_OUTPUTS(OUT)                                                                      \
    for (uint o = tid; o < EXO_MMAB_RT * 128u; o += EXO_MMAB_ITEMS) {                              \
        uint rt = o >> 7, l = (o >> 2) & 31u, e = o & 3u, mm = 2u * (l & 3u) + (e & 1u);           \
        if (mm >= m) continue;                                                                     \
        /* (not y_: EXO_MVB_OUT_ONE declares its own y_, whose initialiser would read itself) */   \
        float ys_ = exo_mmab_sum(red, EXO_MMAB_WARPS, EXO_MMAB_RT, rt, l, e) * (norm ? inv_l[mm] : 1.0f);                       \
        OUT(EXO_MMAB_ROWS, get_group_id(1), rt * 16u + (l >> 2) + (e >> 1) * 8u, mm, ys_, 0.0f)     \
    }

/* Both tile halves from weight w: rows row0 + rt * 16 + g and + 8. */
#define EXO_MMAB_R_LO(rt) (row0 + (rt) * 16u + g)
#define EXO_MMAB_R_HI(rt) (row0 + (rt) * 16u + g + 8u)

/* Gate and up: tile rt's rows g are gate rows row0 + rt * 8 + g, rows g + 8 the same up rows,
 * so a lane's C holds gate (e 0, 1) and up (e 2, 3) of one output row: act(gate) * up there. */
#define EXO_MMAB_R_GLU(rt) (row0 + (rt) * 8u + g)

/* The x3 kernels' start: local arrays, and the member (sel: w, n) and first row (row0) of the
 * work-group's rows (each group's rows lie in one member). */
#define EXO_MMAB_X3_START                                                                          \
    __local float red[EXO_MMAB_WARPS * EXO_MMAB_RT * 128], sq_l[EXO_MMAB_ITEMS], inv_l[EXO_MMAB_TOK]; \
    EXO_MMAB_SCRATCH                                                                               \
    uint gg = get_group_id(1), sel = EXO_MVB_MEMBER(EXO_MMAB_ROWS, gg);                            \
    EXO_W_SELECT_bf16(w, sel, w0, w1, w2)                                                          \
    uint n = EXO_SEL3(sel, n0, n1, n2);                                                            \
    uint row0 = (gg - EXO_MVB_FIRST_GROUP(EXO_MMAB_ROWS, sel)) * EXO_MMAB_ROWS;

/* q/k/v with their RoPE and KV writes (the x3 kernel's rows as rotation pairs): tile rt's rows g
 * are the first rows of the member's rotation pairs row0 / 2 + rt * 8 + g, rows g + 8 their
 * partners (NEOX, rope 1: dims i and i + head_dim / 2 of a head; NORMAL, rope 0: 2i and 2i + 1),
 * so a lane's C holds both rows of a pair for tokens 2t and 2t + 1, and the epilogue rotates
 * them in registers, as exo_dmv_*'s does for one token. */
#define EXO_MMAB_PAIR_LO(p)                                                                        \
    ((p) / (head_dim / 2u) * head_dim + (rope == 1 ? (p) % (head_dim / 2u) : 2u * ((p) % (head_dim / 2u))))
#define EXO_MMAB_PAIR_HI(p) (EXO_MMAB_PAIR_LO(p) + (rope == 1 ? head_dim / 2u : 1u))
#define EXO_MMAB_R_PAIR_LO(rt) EXO_MMAB_PAIR_LO(row0 / 2u + (rt) * 8u + g)
#define EXO_MMAB_R_PAIR_HI(rt) EXO_MMAB_PAIR_HI(row0 / 2u + (rt) * 8u + g)

/* The five kernels of one work-group shape (EXO_MMAB_WARPS, EXO_MMAB_RT as defined where this
 * is expanded), named exo_matmul_mmab8<V>_bf16, ..<V>_att_bf16, ..<V>x3_bf16, ..<V>x3_rope_bf16
 * and ..<V>_glu_bf16. */
#define EXO_MMAB_KERNELS(V) \
__kernel __attribute__((reqd_work_group_size(EXO_MMAB_ITEMS, 1, 1))) void exo_matmul_mmab8##V##_bf16( \
    __global const float *x, uint x_off, EXO_W_PARAMS_bf16(w), __global const float *bias, uint bias_off, \
    int has_bias, __global float *dst, uint dst_off, uint m, uint k, uint n, __global const float *res, \
    uint res_off, int has_res, uint rpi) {                                                         \
    __local float red[EXO_MMAB_WARPS * EXO_MMAB_RT * 128], sq_l[1], inv_l[1]; /* no norm */        \
    EXO_MMAB_SCRATCH                                                                               \
    EXO_NO_NORM                                                                                    \
    uint row0 = get_group_id(1) * EXO_MMAB_ROWS;                                                   \
    EXO_MMAB_PRODUCTS(w, w_off, EXO_MMAB_R_LO, w, w_off, EXO_MMAB_R_HI, EXO_MMAB_X)                \
    EXO_MMAB_OUTPUTS(EXO_MVB_OUT_ONE)                                                              \
}                                                                                                  \
/* The same (o_proj, with its residual) with x merged from the split decode attention's partial  \
 * states (x, x_off: the partials; |att| splits per head of head_dim, att < 0 with sinks): the   \
 * attention's combine launch saved. The host admits m x heads x splits <= EXO_MMAB_ATT_W. */     \
__kernel __attribute__((reqd_work_group_size(EXO_MMAB_ITEMS, 1, 1))) void exo_matmul_mmab8##V##_att_bf16( \
    __global const float *x, uint x_off, EXO_W_PARAMS_bf16(w), __global const float *bias, uint bias_off, \
    int has_bias, __global float *dst, uint dst_off, uint m, uint k, uint n, __global const float *res, \
    uint res_off, int has_res, int att, __global const float *sinks, uint sinks_off, uint head_dim, uint rpi) { \
    __local float red[EXO_MMAB_WARPS * EXO_MMAB_RT * 128], sq_l[1], inv_l[1], att_w[EXO_MMAB_ATT_W]; \
    EXO_MMAB_SCRATCH                                                                               \
    EXO_NO_NORM                                                                                    \
    uint ns = (uint)abs(att), heads = k / head_dim;                                                \
    exo_mmab_attention_weights(x, x_off, sinks, sinks_off, att < 0, m * heads, heads, head_dim, ns, att_w); \
    uint row0 = get_group_id(1) * EXO_MMAB_ROWS;                                                   \
    EXO_MMAB_PRODUCTS(w, w_off, EXO_MMAB_R_LO, w, w_off, EXO_MMAB_R_HI, EXO_MMAB_X_MERGED)         \
    EXO_MMAB_OUTPUTS(EXO_MVB_OUT_ONE)                                                              \
}                                                                                                  \
/* q/k/v (or any up to three matmuls sharing x): a work-group's rows lie in one member. */         \
__kernel __attribute__((reqd_work_group_size(EXO_MMAB_ITEMS, 1, 1))) void exo_matmul_mmab8##V##x3_bf16( \
    __global const float *x, uint x_off, uint m, uint k, EXO_W_PARAMS_bf16(w0), __global const float *b0, \
    uint b0_off, int hb0, __global float *d0, uint d0_off, uint n0, EXO_W_PARAMS_bf16(w1),         \
    __global const float *b1, uint b1_off, int hb1, __global float *d1, uint d1_off, uint n1,      \
    EXO_W_PARAMS_bf16(w2), __global const float *b2, uint b2_off, int hb2, __global float *d2, uint d2_off, \
    uint n2, int norm, __global const uchar *nw, uint nw_off, int nw_type, float eps, int one_plus, uint rpi) { \
    EXO_MMAB_X3_START                                                                              \
    EXO_MMAB_PRODUCTS(w, w_off, EXO_MMAB_R_LO, w, w_off, EXO_MMAB_R_HI, EXO_MMAB_X)                \
    EXO_MMAB_OUTPUTS(EXO_MVB_OUT_X3)                                                               \
}                                                                                                  \
/* The same with q, k rotated at each token's position (pos) and k, v stored into their caches   \
 * d1, d2 (dtype kv; slots of a pooled cache when n_slots > 0), q into d0: exo_rope_kv's work,   \
 * n_rot = head_dim, rows of whole heads. */                                                      \
__kernel __attribute__((reqd_work_group_size(EXO_MMAB_ITEMS, 1, 1))) void exo_matmul_mmab8##V##x3_rope_bf16( \
    __global const float *x, uint x_off, uint m, uint k, EXO_W_PARAMS_bf16(w0), __global const float *b0, \
    uint b0_off, int hb0, __global float *d0, uint d0_off, uint n0, EXO_W_PARAMS_bf16(w1),         \
    __global const float *b1, uint b1_off, int hb1, __global uchar *d1, uint d1_off, uint n1,      \
    EXO_W_PARAMS_bf16(w2), __global const float *b2, uint b2_off, int hb2, __global uchar *d2, uint d2_off, \
    uint n2, int norm, __global const uchar *nw, uint nw_off, int nw_type, float eps, int one_plus, \
    int rope, __global const int *pos, uint pos_off, __global const int *slots, uint slots_off,    \
    uint n_slots, __global const float *inv_freq, uint freq_off, uint head_dim, float attn_factor, \
    uint cache_rows, int kv, uint rpi) {                                                           \
    EXO_MMAB_X3_START                                                                              \
    EXO_MMAB_PRODUCTS(w, w_off, EXO_MMAB_R_PAIR_LO, w, w_off, EXO_MMAB_R_PAIR_HI, EXO_MMAB_X)                  \
    __global const float *b_ = EXO_SEL3(sel, b0, b1, b2);                                          \
    int hb_ = EXO_SEL3(sel, hb0, hb1, hb2);                                                        \
    uint bo_ = EXO_SEL3(sel, b0_off, b1_off, b2_off);                                              \
    for (uint o = tid; o < EXO_MMAB_RT * 64u; o += EXO_MMAB_ITEMS) {                               \
        uint rt = o >> 6, l = (o >> 1) & 31u, j = o & 1u, mm = 2u * (l & 3u) + j;                  \
        uint pi = row0 / 2u + rt * 8u + (l >> 2);                                                  \
        if (mm >= m || 2u * pi >= n) continue;                                                     \
        uint rlo = EXO_MMAB_PAIR_LO(pi), rhi = EXO_MMAB_PAIR_HI(pi);                               \
        float inv = norm ? inv_l[mm] : 1.0f;                                                       \
        float lo = exo_mmab_sum(red, EXO_MMAB_WARPS, EXO_MMAB_RT, rt, l, j) * inv + (hb_ ? b_[bo_ + rlo] : 0.0f); \
        float hi = exo_mmab_sum(red, EXO_MMAB_WARPS, EXO_MMAB_RT, rt, l, 2u + j) * inv + (hb_ ? b_[bo_ + rhi] : 0.0f); \
        int p = pos[pos_off + mm];                                                                 \
        if (sel < 2u) {                                                                            \
            float angle = (float)p * inv_freq[freq_off + pi % (head_dim / 2u)];                    \
            float cs = cos(angle) * attn_factor, sn = sin(angle) * attn_factor;                    \
            float rl = lo * cs - hi * sn;                                                          \
            hi = hi * cs + lo * sn;                                                                \
            lo = rl;                                                                               \
        }                                                                                          \
        if (sel == 0u) {                                                                           \
            d0[d0_off + (size_t)mm * n0 + rlo] = lo;                                               \
            d0[d0_off + (size_t)mm * n0 + rhi] = hi;                                               \
            continue;                                                                              \
        }                                                                                          \
        long c0 = exo_slot_row0(slots, slots_off, n_slots, mm, cache_rows);                        \
        if (p < 0 || (uint)p >= cache_rows || c0 < 0) continue;                                    \
        __global uchar *c_ = sel == 1u ? d1 : d2;                                                  \
        size_t at = (size_t)(sel == 1u ? d1_off : d2_off) + (size_t)(c0 + p) * n;                  \
        exo_kv_store(c_, at + rlo, lo, kv);                                                        \
        exo_kv_store(c_, at + rhi, hi, kv);                                                        \
    }                                                                                              \
}                                                                                                  \
__kernel __attribute__((reqd_work_group_size(EXO_MMAB_ITEMS, 1, 1))) void exo_matmul_mmab8##V##_glu_bf16( \
    __global const float *x, uint x_off, uint m, uint k, EXO_W_PARAMS_bf16(wg), __global const float *bg, \
    uint bg_off, int hbg, EXO_W_PARAMS_bf16(wu), __global const float *bu, uint bu_off, int hbu,   \
    __global float *dst, uint dst_off, uint n, int act, int norm, __global const uchar *nw, uint nw_off, \
    int nw_type, float eps, int one_plus) {                                                        \
    __local float red[EXO_MMAB_WARPS * EXO_MMAB_RT * 128], sq_l[EXO_MMAB_ITEMS], inv_l[EXO_MMAB_TOK]; \
    EXO_MMAB_SCRATCH                                                                               \
    uint row0 = get_group_id(1) * (EXO_MMAB_ROWS / 2u);                                            \
    EXO_MMAB_PRODUCTS(wg, wg_off, EXO_MMAB_R_GLU, wu, wu_off, EXO_MMAB_R_GLU, EXO_MMAB_X)                      \
    for (uint o = tid; o < EXO_MMAB_RT * 64u; o += EXO_MMAB_ITEMS) {                               \
        uint rt = o >> 6, l = (o >> 1) & 31u, j = o & 1u, mm = 2u * (l & 3u) + j;                  \
        if (mm >= m) continue;                                                                     \
        float inv = norm ? inv_l[mm] : 1.0f;                                                       \
        float gv = exo_mmab_sum(red, EXO_MMAB_WARPS, EXO_MMAB_RT, rt, l, j) * inv;                 \
        float uv = exo_mmab_sum(red, EXO_MMAB_WARPS, EXO_MMAB_RT, rt, l, 2u + j) * inv;            \
        EXO_MVB_OUT_GLU(EXO_MMAB_ROWS / 2u, get_group_id(1), rt * 8u + (l >> 2), mm, gv, uv)       \
    }                                                                                              \
}

#define EXO_MMAB_WARPS 8
#define EXO_MMAB_RT 2
EXO_MMAB_KERNELS()
#undef EXO_MMAB_WARPS
#undef EXO_MMAB_RT
#define EXO_MMAB_WARPS 16
#define EXO_MMAB_RT 1
EXO_MMAB_KERNELS(r16)
#undef EXO_MMAB_WARPS
#undef EXO_MMAB_RT
#endif
