/* common.cl — definitions shared by every kernel file. The build concatenates the kernels/ sources in a
 * fixed order with this file first (plugins/gpu_common/CMakeLists.txt), both for the OpenCL
 * plugin (built at run time) and for the SPIR-V module the Level Zero plugin embeds.
 *
 * Conventions (plugins/gpu_common/README.md):
 *  - every buffer parameter is a pair (pointer, uint element offset), so a backend needs no
 *    sub-buffers and weight tensors can sit anywhere inside one weight buffer;
 *  - all arithmetic is f32; f16 weights are read with vload_half (no cl_khr_fp16 needed) and
 *    bf16 weights as ushort << 16;
 *  - OpenCL C 1.2, no subgroups and no half arithmetic unless the build defines EXO_SUBGROUPS /
 *    EXO_FP16 (the portable path is what PoCL and the SPIR-V module run).
 *
 * Build-time switches (set by the backend from the device's extensions):
 *  EXO_FP16       cl_khr_fp16: f16 weights load as native half vectors
 *  EXO_SUBGROUPS  cl_khr_subgroups or cl_intel_subgroups: subgroup-reduction matvec kernels
 *  EXO_INTEL_SG16 cl_intel_required_subgroup_size: pin those kernels to 16 lanes */
#ifdef EXO_FP16
#pragma OPENCL EXTENSION cl_khr_fp16 : enable
#endif
#if defined(EXO_SUBGROUPS) && defined(cl_khr_subgroups)
#pragma OPENCL EXTENSION cl_khr_subgroups : enable
#endif

/* Dtype codes of runtime-typed operands; the values are abi/exo_plugin.h's exo_dtype. */
#define EXO_F32 0
#define EXO_F16 1
#define EXO_BF16 2

/* One element of a float-like tensor (F32, F16, BF16) as float. */
static inline float exo_load(__global const uchar *base, uint index, int type) {
    if (type == EXO_F16) return vload_half(index, (__global const half *)base);
    if (type == EXO_BF16) return as_float((uint)((__global const ushort *)base)[index] << 16);
    return ((__global const float *)base)[index];
}

/* Four consecutive weights as floats, per storage type (element alignment is all vload needs).
 * f16 data travels as ushort (kernel parameters included) and is read through vload_half on a
 * half pointer that is never offset: without cl_khr_fp16, half is a storage-only type, so no
 * kernel signature or pointer arithmetic depends on it. */
static inline float4 exo_load4_f32(__global const float *p, uint i) { return vload4(0, p + i); }
#ifdef EXO_FP16
static inline float4 exo_load4_f16(__global const ushort *u, uint i) { return convert_float4(as_half4(vload4(0, u + i))); }
#else
static inline float4 exo_load4_f16(__global const ushort *u, uint i) {
    __global const half *p = (__global const half *)u;
    return (float4)(vload_half(i, p), vload_half(i + 1, p), vload_half(i + 2, p), vload_half(i + 3, p));
}
#endif
static inline float4 exo_load4_bf16(__global const ushort *p, uint i) {
    return as_float4(convert_uint4(vload4(0, p + i)) << 16);
}
/* Eight consecutive elements of a float-like tensor from element i (a multiple of 4) as two
 * float4s. */
static inline void exo_load8(__global const uchar *base, uint i, int type, float4 *lo, float4 *hi) {
    if (type == EXO_F16) {
        __global const half *p = (__global const half *)base;
        *lo = vload_half4(i >> 2, p);
        *hi = vload_half4((i >> 2) + 1u, p);
    } else if (type == EXO_BF16) {
        __global const ushort *p = (__global const ushort *)base;
        *lo = as_float4(convert_uint4(vload4(i >> 2, p)) << 16);
        *hi = as_float4(convert_uint4(vload4((i >> 2) + 1u, p)) << 16);
    } else {
        __global const float *p = (__global const float *)base;
        *lo = vload4(i >> 2, p);
        *hi = vload4((i >> 2) + 1u, p);
    }
}
static inline float exo_load1_f32(__global const float *p, uint i) { return p[i]; }
static inline float exo_load1_f16(__global const ushort *u, uint i) { return vload_half(i, (__global const half *)u); }
static inline float exo_load1_bf16(__global const ushort *p, uint i) { return as_float((uint)p[i] << 16); }

/* MLX affine quantized weights (abi/exo_plugin.h, "Quantized weights"): each row a little-endian
 * bit stream of `bits`-bit codes in uint words; scales and biases one float per group of the row
 * (F32/F16/BF16, read through exo_load), w = scale * q + bias in float. Code j of the row that
 * starts at word `row_word` (a 3/5/6-bit code may straddle two words). */
static inline uint exo_mlx_code(__global const uint *w, uint row_word, uint j, uint bits) {
    uint p = j * bits, wi = row_word + (p >> 5), sh = p & 31u;
    uint v = w[wi] >> sh;
    if (sh + bits > 32u) v |= w[wi + 1u] << (32u - sh);
    return v & ((1u << bits) - 1u);
}
/* Dequantized element j of row `row` (k elements, groups of `group`). */
static inline float exo_mlx_load(__global const uint *w, uint w_off, __global const uchar *sc, uint sc_off,
                                 __global const uchar *bi, uint bi_off, int q_type, uint bits, uint group, uint k,
                                 uint row, uint j) {
    uint gi = row * (k / group) + j / group;
    float s = exo_load(sc, sc_off + gi, q_type), b = exo_load(bi, bi_off + gi, q_type);
    return s * (float)exo_mlx_code(w, w_off + row * (k / 32u) * bits, j, bits) + b;
}

/* Pooled KV caches (ABI 1.6, abi/exo_plugin.h "Pooled KV caches"): a cache is [n_slots][ctx][row]
 * and token t's rows are those of slot slots[t]. The first cache row of token t's slot (its rows
 * are that + [0, ctx)); 0 for an unpooled cache (n_slots 0: the kernels' slots argument is then a
 * stand-in never read); -1 for a slot outside the pool, which the kernels skip (the executor
 * refuses such INPUT slots before any launch, naming the node). */
static inline long exo_slot_row0(__global const int *slots, uint slots_off, uint n_slots, uint t, uint ctx) {
    if (n_slots == 0u) return 0;
    int s = slots[slots_off + t];
    return s < 0 || (uint)s >= n_slots ? -1 : (long)s * (long)ctx;
}

/* KV cache dtypes (ABI 1.7, abi/exo_plugin.h "KV cache dtypes"): a cache holds F32, BF16 or F16
 * elements. The kernels that read or write a cache exist once per dtype: EXO_KV_VARIANTS(K)
 * expands K(suffix, dtype) for each, where K defines a thin __kernel (exo_kv_write,
 * exo_kv_write_bf16, exo_kv_write_f16, ...) that calls the kernel's one body with the dtype as a
 * constant, so the compiler folds the dtype branches of the helpers below and the F32 variant
 * is the code it always was. The host picks the variant by the cache tensor's dtype
 * (gpu_build_kv_slots, plugins/gpu_common/gpu_kernels.c). A body takes a cache as a uchar
 * pointer and indexes it in elements of its dtype (the offsets the host passes are in those
 * elements too). */
#define EXO_KV_VARIANTS(K) K(, EXO_F32) K(_bf16, EXO_BF16) K(_f16, EXO_F16)
/* A kernel body that such thin kernels call: inlined into each even in the SPIR-V build, which is
 * unoptimised (-O0 marks every other function noinline), because a body left out of line breaks
 * on PoCL (it runs that module in the tests: work-item functions such as get_global_id become
 * unresolved symbols there) and the dtype must fold away in any case. */
#define EXO_KERNEL_BODY static inline __attribute__((always_inline)) void

/* Warp-wide butterfly reductions, on NVIDIA only (the plugin's -DEXO_NV_MMA means inline PTX
 * builds there): a warp is 32 consecutive local ids (x fastest), so a work-group's reduction
 * takes one shuffle chain per warp and one barrier to add the warps, instead of a barrier per
 * level of a tree in local memory. Decode steps are chains of short launches, so their fixed steps
 * count (kernels/decode.cl, the split attention in kernels/attention.cl; docs/performance.md 5.5.2
 * and 5.5.3). -DEXO_DMV_NO_SHFL (EXO_OPENCL_DEFINES) keeps the trees everywhere, to compare. */
#if defined(EXO_NV_MMA) && !defined(EXO_MMA_EMULATE) && !defined(EXO_DMV_NO_SHFL)
#define EXO_WARP_SHFL 1
static inline float exo_warp_sum(float v) {
    for (uint m = 16u; m > 0u; m >>= 1) {
        float o;
        asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(o) : "f"(v), "r"(m));
        v += o;
    }
    return v;
}
static inline float exo_warp_max(float v) {
    for (uint m = 16u; m > 0u; m >>= 1) {
        float o;
        asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=f"(o) : "f"(v), "r"(m));
        v = fmax(v, o);
    }
    return v;
}
#endif

/* float32 -> bf16 bits, rounding to nearest even; a NaN stays a (quiet) NaN. The CPU plugin
 * rounds the same way (plugins/cpu_amx/cpu_half.h), so both write the same cache bits. */
static inline ushort exo_f32_to_bf16(float f) {
    uint u = as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (ushort)((u >> 16) | 0x40u);
    return (ushort)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Cache element i as float: exact for every dtype (bf16 widens by a shift, f16 through
 * vload_half, core OpenCL C without cl_khr_fp16). */
static inline float exo_kv_load(__global const uchar *cache, size_t i, int kv) {
    if (kv == EXO_BF16) return as_float((uint)((__global const ushort *)cache)[i] << 16);
    if (kv == EXO_F16) return vload_half(0, (__global const half *)((__global const ushort *)cache + i));
    return ((__global const float *)cache)[i];
}
/* Sixteen consecutive cache elements from element i (any i: vloads need element alignment only). */
static inline float16 exo_kv_load16(__global const uchar *cache, size_t i, int kv) {
    if (kv == EXO_BF16) return as_float16(convert_uint16(vload16(0, (__global const ushort *)cache + i)) << 16);
    if (kv == EXO_F16) return vload_half16(0, (__global const half *)((__global const ushort *)cache + i));
    return vload16(0, (__global const float *)cache + i);
}
/* cache[i] = x rounded to the cache's dtype, to nearest even (F16: vstore_half_rte, overflow to
 * infinity, subnormals kept, as ABI 1.7 asks). */
static inline void exo_kv_store(__global uchar *cache, size_t i, float x, int kv) {
    if (kv == EXO_BF16)
        ((__global ushort *)cache)[i] = exo_f32_to_bf16(x);
    else if (kv == EXO_F16)
        vstore_half_rte(x, 0, (__global half *)((__global ushort *)cache + i));
    else
        ((__global float *)cache)[i] = x;
}
