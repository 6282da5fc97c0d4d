/* The token sampler (see sampler.h for the semantics and the order of operations).
 *
 * Candidates are kept as token ids in `cand` and ranked by (processed logit desc, id asc), a
 * strict total order, so selection and sorting never meet equal keys and every result is
 * deterministic. Ranking by logit equals ranking by tempered probability because T > 0. */
#include "sampler.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "run/rng.h"

struct exo_token_sampler {
    exo_sampler_params params; /* params.banned points at our own copy */
    uint32_t vocab;
    int32_t *banned;
    exo_rng rng;

    /* Work arrays, sized for the vocabulary at create time. */
    float *work;    /* processed logits */
    int32_t *cand;  /* candidate ids */
    float *weight;  /* unnormalised probabilities of the final candidates */
    double bucket_mass[4096]; /* top_p over many candidates: mass per band of log-probability */

    /* Penalty history: the last `window` accepted tokens in a ring, their counts, and the
     * distinct ids among them (so a call touches O(distinct) logits, not O(V)). */
    uint32_t window;
    int32_t *ring;
    uint32_t ring_len, ring_next;
    uint32_t *counts;       /* [vocab] occurrences in the ring */
    int32_t *distinct;      /* [min(window, vocab)] ids with count > 0 */
    uint32_t n_distinct;
    uint32_t *distinct_pos; /* [vocab] index in `distinct`, valid while count > 0 */
};

void exo_token_sampler_params_default(exo_sampler_params *p) {
    memset(p, 0, sizeof *p);
    p->temperature = 0.7f;
    p->top_k = 0;
    p->top_p = 1.0f;
    p->min_p = 0.05f;
    p->repetition_penalty = 1.0f;
    p->presence_penalty = 0.0f;
    p->frequency_penalty = 0.0f;
    p->penalty_window = 20;
    p->seed = 42;
    p->n_logprobs = 0;
    p->banned = NULL;
    p->n_banned = 0;
}

/* ---- parameter validation ------------------------------------------------------------- */

static exo_status validate(const exo_sampler_params *p, uint32_t vocab) {
    if (vocab == 0 || vocab > EXO_SAMPLER_MAX_VOCAB)
        return exo_errorf(EXO_ERR_INVALID_ARG, "sampler: vocab_size must be in [1, %u], got %u",
                          EXO_SAMPLER_MAX_VOCAB, vocab);
    if (!(p->temperature >= 0.0f) || isinf(p->temperature))
        return exo_errorf(EXO_ERR_INVALID_ARG,
                          "sampler: temperature must be finite and >= 0 (0 = greedy), got %g",
                          (double)p->temperature);
    if (p->top_k < 0)
        return exo_errorf(EXO_ERR_INVALID_ARG, "sampler: top_k must be >= 0 (0 = off), got %d",
                          p->top_k);
    if (!(p->top_p >= 0.0f && p->top_p <= 1.0f))
        return exo_errorf(EXO_ERR_INVALID_ARG,
                          "sampler: top_p must be in [0, 1] (1 = off), got %g", (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return exo_errorf(EXO_ERR_INVALID_ARG,
                          "sampler: min_p must be in [0, 1] (0 = off), got %g", (double)p->min_p);
    if (!(p->repetition_penalty > 0.0f) || isinf(p->repetition_penalty))
        return exo_errorf(EXO_ERR_INVALID_ARG,
                          "sampler: repetition_penalty must be finite and > 0 (1 = off), got %g",
                          (double)p->repetition_penalty);
    if (!isfinite(p->presence_penalty))
        return exo_errorf(EXO_ERR_INVALID_ARG, "sampler: presence_penalty must be finite, got %g",
                          (double)p->presence_penalty);
    if (!isfinite(p->frequency_penalty))
        return exo_errorf(EXO_ERR_INVALID_ARG, "sampler: frequency_penalty must be finite, got %g",
                          (double)p->frequency_penalty);
    if (p->penalty_window < 0 || p->penalty_window > EXO_SAMPLER_MAX_WINDOW)
        return exo_errorf(EXO_ERR_INVALID_ARG,
                          "sampler: penalty_window must be in [0, %d] tokens, got %d",
                          EXO_SAMPLER_MAX_WINDOW, p->penalty_window);
    if (p->n_logprobs > EXO_SAMPLER_MAX_LOGPROBS)
        return exo_errorf(EXO_ERR_INVALID_ARG, "sampler: n_logprobs must be <= %u, got %u",
                          EXO_SAMPLER_MAX_LOGPROBS, p->n_logprobs);
    if (p->n_banned > 0 && !p->banned)
        return exo_errorf(EXO_ERR_INVALID_ARG, "sampler: n_banned is %u but banned is NULL",
                          p->n_banned);
    for (uint32_t i = 0; i < p->n_banned; i++)
        if (p->banned[i] < 0 || (uint32_t)p->banned[i] >= vocab)
            return exo_errorf(EXO_ERR_INVALID_ARG,
                              "sampler: banned[%u] = %d is outside the vocabulary [0, %u)", i,
                              p->banned[i], vocab);
    return EXO_OK;
}

/* ---- lifetime ------------------------------------------------------------------------- */

static void seed_rng(exo_token_sampler *s) {
    uint64_t seed = s->params.seed >= 0 ? (uint64_t)s->params.seed : exo_rng_entropy_seed();
    exo_rng_seed(&s->rng, seed);
}

exo_status exo_token_sampler_create(const exo_sampler_params *p, uint32_t vocab_size, exo_token_sampler **out) {
    if (!out)
        return exo_errorf(EXO_ERR_INVALID_ARG, "exo_token_sampler_create: out is NULL");
    *out = NULL;
    if (!p)
        return exo_errorf(EXO_ERR_INVALID_ARG, "exo_token_sampler_create: params is NULL");
    exo_status st = validate(p, vocab_size);
    if (st != EXO_OK)
        return st;

    exo_token_sampler *s = calloc(1, sizeof *s);
    if (!s)
        return exo_errorf(EXO_ERR_NO_MEMORY, "sampler: out of memory for the sampler");
    s->params = *p;
    s->vocab = vocab_size;
    s->window = (uint32_t)p->penalty_window;
    bool ok = true;
    if (p->n_banned) {
        s->banned = malloc(p->n_banned * sizeof *s->banned);
        ok = ok && s->banned;
        if (s->banned)
            memcpy(s->banned, p->banned, p->n_banned * sizeof *s->banned);
    }
    s->params.banned = s->banned;
    s->work = malloc((size_t)vocab_size * sizeof *s->work);
    s->cand = malloc((size_t)vocab_size * sizeof *s->cand);
    s->weight = malloc((size_t)vocab_size * sizeof *s->weight);
    ok = ok && s->work && s->cand && s->weight;
    if (s->window) {
        uint32_t distinct_cap = s->window < vocab_size ? s->window : vocab_size;
        s->ring = malloc((size_t)s->window * sizeof *s->ring);
        s->counts = calloc(vocab_size, sizeof *s->counts);
        s->distinct = malloc((size_t)distinct_cap * sizeof *s->distinct);
        s->distinct_pos = malloc((size_t)vocab_size * sizeof *s->distinct_pos);
        ok = ok && s->ring && s->counts && s->distinct && s->distinct_pos;
    }
    if (!ok) {
        exo_token_sampler_free(s);
        return exo_errorf(EXO_ERR_NO_MEMORY,
                          "sampler: out of memory for work arrays of %u tokens", vocab_size);
    }
    seed_rng(s);
    *out = s;
    return EXO_OK;
}

void exo_token_sampler_free(exo_token_sampler *s) {
    if (!s)
        return;
    free(s->banned);
    free(s->work);
    free(s->cand);
    free(s->weight);
    free(s->ring);
    free(s->counts);
    free(s->distinct);
    free(s->distinct_pos);
    free(s);
}

/* ---- penalty history ------------------------------------------------------------------ */

static void history_forget(exo_token_sampler *s, int32_t token) {
    if (--s->counts[token] > 0)
        return;
    uint32_t pos = s->distinct_pos[token];
    int32_t last = s->distinct[--s->n_distinct];
    s->distinct[pos] = last;
    s->distinct_pos[last] = pos;
}

void exo_token_sampler_accept(exo_token_sampler *s, int32_t token) {
    if (!s || s->window == 0 || token < 0 || (uint32_t)token >= s->vocab)
        return;
    if (s->ring_len == s->window)
        history_forget(s, s->ring[s->ring_next]); /* the oldest sits where we write next */
    else
        s->ring_len++;
    s->ring[s->ring_next] = token;
    s->ring_next = (s->ring_next + 1) % s->window;
    if (s->counts[token]++ == 0) {
        s->distinct_pos[token] = s->n_distinct;
        s->distinct[s->n_distinct++] = token;
    }
}

void exo_token_sampler_reset(exo_token_sampler *s) {
    if (!s)
        return;
    for (uint32_t i = 0; i < s->n_distinct; i++)
        s->counts[s->distinct[i]] = 0;
    s->n_distinct = 0;
    s->ring_len = 0;
    s->ring_next = 0;
    seed_rng(s);
}

/* ---- logits processing ---------------------------------------------------------------- */

static float clamp_finite(double v) {
    if (v > FLT_MAX)
        return FLT_MAX;
    if (v < -FLT_MAX || isnan(v)) /* NaN cannot come from finite terms; never let it through */
        return -FLT_MAX;
    return (float)v;
}

static void sanitize(const float *logits, float *x, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        float v = logits[i];
        x[i] = isnan(v) ? -INFINITY : (v == INFINITY ? FLT_MAX : v);
    }
}

static void apply_penalties(const exo_token_sampler *s, float *x) {
    const float rep = s->params.repetition_penalty;
    const float presence = s->params.presence_penalty;
    const float frequency = s->params.frequency_penalty;
    if (rep == 1.0f && presence == 0.0f && frequency == 0.0f)
        return;
    for (uint32_t d = 0; d < s->n_distinct; d++) {
        int32_t t = s->distinct[d];
        if (x[t] == -INFINITY) /* impossible stays impossible */
            continue;
        /* In double: with huge (finite) penalties float overflows to inf, and FLT_MAX / rep
         * minus an infinite penalty is inf - inf = NaN (found by fuzz_sampler). Every term is
         * finite in double, and the result is clamped back into float's range. */
        double v = x[t];
        if (rep != 1.0f)
            v = v > 0.0 ? v / rep : v * rep;
        v -= (double)presence + (double)frequency * (double)s->counts[t];
        /* A penalty shifts a probability; it must not turn a token into NaN or -inf. */
        x[t] = clamp_finite(v);
    }
}

/* ---- ranking: selection and sorting of candidate ids ---------------------------------- */

/* a ranks before b: higher logit, then lower id. */
static inline bool ranks_before(const float *x, int32_t a, int32_t b) {
    return x[a] > x[b] || (x[a] == x[b] && a < b);
}

static inline void swap_ids(int32_t *a, int32_t *b) {
    int32_t t = *a;
    *a = *b;
    *b = t;
}

/* Partitions ids[0, n) (n >= 3) around a median-of-three pivot; returns the pivot's final
 * position p: ids[0, p) rank before it, ids(p, n) after. */
static uint32_t partition(const float *x, int32_t *ids, uint32_t n) {
    uint32_t mid = n / 2, last = n - 1;
    if (ranks_before(x, ids[mid], ids[0]))
        swap_ids(&ids[mid], &ids[0]);
    if (ranks_before(x, ids[last], ids[0]))
        swap_ids(&ids[last], &ids[0]);
    if (ranks_before(x, ids[last], ids[mid]))
        swap_ids(&ids[last], &ids[mid]);
    swap_ids(&ids[mid], &ids[last]); /* median to the end */
    int32_t pivot = ids[last];
    uint32_t store = 0;
    for (uint32_t i = 0; i < last; i++)
        if (ranks_before(x, ids[i], pivot))
            swap_ids(&ids[i], &ids[store++]);
    swap_ids(&ids[store], &ids[last]);
    return store;
}

static void insertion_sort(const float *x, int32_t *ids, uint32_t n) {
    for (uint32_t i = 1; i < n; i++) {
        int32_t v = ids[i];
        uint32_t j = i;
        for (; j > 0 && ranks_before(x, v, ids[j - 1]); j--)
            ids[j] = ids[j - 1];
        ids[j] = v;
    }
}

/* Heap sort: the O(n log n) guarantee behind the quick paths below. The heap keeps the
 * lowest-ranked id at the root so the result comes out best first. */
static void sift_down(const float *x, int32_t *ids, uint32_t root, uint32_t n) {
    for (;;) {
        uint32_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && ranks_before(x, ids[child], ids[child + 1]))
            child++;
        if (!ranks_before(x, ids[root], ids[child]))
            return;
        swap_ids(&ids[root], &ids[child]);
        root = child;
    }
}

static void heap_sort_ranked(const float *x, int32_t *ids, uint32_t n) {
    /* Max-heap on "ranks after" puts the worst at the root; popping it to the end each time
     * leaves ids ordered best first. */
    for (uint32_t i = n / 2; i-- > 0;)
        sift_down(x, ids, i, n);
    for (uint32_t end = n; end > 1; end--) {
        swap_ids(&ids[0], &ids[end - 1]);
        sift_down(x, ids, 0, end - 1);
    }
}

static uint32_t depth_limit(uint32_t n) {
    uint32_t d = 0;
    while (n >>= 1)
        d++;
    return 2 * d + 4;
}

/* Sorts ids[0, n) best first (introsort: quicksort, heap sort when unlucky, insertion sort
 * for short ranges). No allocation, unlike glibc's qsort. */
static void sort_ranked(const float *x, int32_t *ids, uint32_t n, uint32_t depth) {
    while (n > 16) {
        if (depth-- == 0) {
            heap_sort_ranked(x, ids, n);
            return;
        }
        uint32_t p = partition(x, ids, n);
        /* Recurse into the smaller side, loop on the larger: O(log n) stack. */
        if (p < n - p - 1) {
            sort_ranked(x, ids, p, depth);
            ids += p + 1;
            n -= p + 1;
        } else {
            sort_ranked(x, ids + p + 1, n - p - 1, depth);
            n = p;
        }
    }
    insertion_sort(x, ids, n);
}

/* Rearranges ids[0, n) so that ids[0, k) hold the k best (in no particular order);
 * quickselect, O(n) on average, falling back to a sort when partitions go badly. */
static void select_best(const float *x, int32_t *ids, uint32_t n, uint32_t k) {
    uint32_t depth = depth_limit(n);
    while (n > 16 && k > 0 && k < n) {
        if (depth-- == 0)
            break;
        uint32_t p = partition(x, ids, n);
        if (p == k || p + 1 == k)
            return;
        if (k < p) {
            n = p;
        } else {
            ids += p + 1;
            n -= p + 1;
            k -= p + 1;
        }
    }
    if (k > 0 && k < n)
        sort_ranked(x, ids, n, depth_limit(n));
}

/* ---- truncation and the draw ---------------------------------------------------------- */

static inline float tempered_weight(float logit, float max, float temperature) {
    /* (logit - max) <= 0, so the quotient is <= 0 for any T > 0: no overflow for tiny T. */
    return expf((logit - max) / temperature);
}

/* The nucleus of ids[0, n): the shortest best-first prefix whose weight reaches `target`
 * (a token is kept while the weight ranked above it is < target). Sorts only as much of the
 * ranking as it needs, in chunks that double. Returns the prefix length (>= 1). */
static uint32_t nucleus_sorted(const float *x, int32_t *ids, uint32_t n, float max, float temperature,
                        double target) {
    uint32_t lo = 0, chunk = 64;
    double mass = 0.0;
    while (lo < n) {
        uint32_t c = n - lo < chunk ? n - lo : chunk;
        if (c < n - lo)
            select_best(x, ids + lo, n - lo, c);
        sort_ranked(x, ids + lo, c, depth_limit(c));
        for (uint32_t j = lo; j < lo + c; j++) {
            if (j > 0 && mass >= target)
                return j;
            mass += tempered_weight(x[ids[j]], max, temperature);
        }
        lo += c;
        if (chunk < (1u << 30))
            chunk *= 2;
    }
    return n;
}

/* The k best ids of x (k < number of finite logits), in no particular order, in one pass over the
 * vocabulary with a k-heap whose root is the worst kept: O(V log k), and for the usual small k
 * almost every logit costs one comparison with the root. */
#define TOP_K_HEAP_MAX 1024u

static uint32_t best_by_heap(const float *x, uint32_t vocab, uint32_t k, int32_t *ids) {
    uint32_t n = 0, i = 0;
    for (; i < vocab && n < k; i++)
        if (x[i] != -INFINITY)
            ids[n++] = (int32_t)i;
    for (uint32_t r = n / 2; r-- > 0;)
        sift_down(x, ids, r, n);
    for (; i < vocab; i++)
        if (x[i] > x[ids[0]]) { /* equal logits: the later id ranks lower, stays out */
            ids[0] = (int32_t)i;
            sift_down(x, ids, 0, n);
        }
    return n;
}

/* For long candidate lists, the nucleus without sorting it: candidates are binned by tempered
 * log-probability into narrow bands; the band masses locate the one band where the cumulative
 * mass crosses `target`. Bands above it are wholly in, bands below wholly out, and only the
 * crossing band is ranked. The band index is a monotone function of the logit, so this keeps
 * exactly the tokens the full sort would. */
#define NUCLEUS_BANDS 4096
#define NUCLEUS_RANGE 64.0f /* bands cover log-weights [-64, 0]; below, the weight is < 2e-28 */
#define NUCLEUS_SORT_MAX 2048u /* up to this many candidates, ranking them directly is cheaper */

static inline uint32_t nucleus_band(float logit, float max, float temperature) {
    float b = ((logit - max) / temperature + NUCLEUS_RANGE) * (NUCLEUS_BANDS / NUCLEUS_RANGE);
    if (!(b > 0.0f))
        return 0;
    if (b >= (float)(NUCLEUS_BANDS - 1))
        return NUCLEUS_BANDS - 1;
    return (uint32_t)b;
}

static uint32_t nucleus(exo_token_sampler *s, int32_t *ids, uint32_t n, float max, float temperature,
                        double target) {
    const float *x = s->work;
    if (n <= NUCLEUS_SORT_MAX)
        return nucleus_sorted(x, ids, n, max, temperature, target);
    double *mass = s->bucket_mass;
    memset(mass, 0, NUCLEUS_BANDS * sizeof *mass);
    for (uint32_t j = 0; j < n; j++) {
        float v = x[ids[j]];
        mass[nucleus_band(v, max, temperature)] += tempered_weight(v, max, temperature);
    }
    double above = 0.0;
    uint32_t crossing = NUCLEUS_BANDS;
    for (uint32_t b = NUCLEUS_BANDS; b-- > 0;) {
        if (above + mass[b] >= target) {
            crossing = b;
            break;
        }
        above += mass[b];
    }
    if (crossing == NUCLEUS_BANDS) /* rounding, or the rest of the mass was pruned by min_p */
        return n;
    /* ids -> [bands above crossing | crossing band], the rest dropped. */
    uint32_t in = 0, kept = 0;
    for (uint32_t j = 0; j < n; j++)
        if (nucleus_band(x[ids[j]], max, temperature) >= crossing)
            ids[kept++] = ids[j];
    for (uint32_t j = 0; j < kept; j++)
        if (nucleus_band(x[ids[j]], max, temperature) > crossing)
            swap_ids(&ids[j], &ids[in++]);
    /* above < target, so the crossing band's best token is always kept. */
    return in + nucleus_sorted(x, ids + in, kept - in, max, temperature, target - above);
}

/* Steps 4-8 for T > 0. `max` is the largest processed logit; `n_valid` counts logits > -inf. */
static int32_t sample_truncated(exo_token_sampler *s, float max, uint32_t n_valid) {
    const exo_sampler_params *p = &s->params;
    const float *x = s->work;
    const float temperature = p->temperature;
    const bool use_top_k = p->top_k > 0 && (uint32_t)p->top_k < n_valid;
    const bool use_top_p = p->top_p < 1.0f;
    const bool use_min_p = p->min_p > 0.0f;
    const float log_min_p = use_min_p ? logf(p->min_p) : -INFINITY;
    /* min_p keeps a prefix of the ranking (p_i / p_max >= min_p) whose extent does not
     * change under renormalisation, so it may run first and shrink everything after it.
     * The exception: top_p after top_k measures mass against all k tokens, including ones
     * min_p would drop. */
    const bool min_p_first = use_min_p && !(use_top_k && use_top_p);
    const bool need_total = use_top_p && !use_top_k;

    uint32_t n = 0;
    double total = 0.0;
    if (use_top_k && (uint32_t)p->top_k <= TOP_K_HEAP_MAX) {
        n = best_by_heap(x, s->vocab, (uint32_t)p->top_k, s->cand);
    } else {
        const float threshold = min_p_first ? log_min_p : -INFINITY;
        for (uint32_t i = 0; i < s->vocab; i++) {
            if (x[i] == -INFINITY)
                continue;
            float scaled = (x[i] - max) / temperature;
            if (need_total)
                total += expf(scaled);
            if (scaled >= threshold)
                s->cand[n++] = (int32_t)i;
        }
        if (use_top_k && (uint32_t)p->top_k < n) {
            select_best(x, s->cand, n, (uint32_t)p->top_k);
            n = (uint32_t)p->top_k;
        }
    }
    if (use_top_k && use_top_p) /* top_p's mass is relative to what top_k kept */
        for (uint32_t j = 0; j < n; j++)
            total += tempered_weight(x[s->cand[j]], max, temperature);
    if (use_top_p)
        n = nucleus(s, s->cand, n, max, temperature, (double)p->top_p * total);
    if (use_min_p) { /* a no-op when min_p already pruned the gather */
        uint32_t kept = 0;
        for (uint32_t j = 0; j < n; j++)
            if ((x[s->cand[j]] - max) / temperature >= log_min_p)
                s->cand[kept++] = s->cand[j];
        n = kept;
    }

    double sum = 0.0;
    for (uint32_t j = 0; j < n; j++) {
        s->weight[j] = tempered_weight(x[s->cand[j]], max, temperature);
        sum += s->weight[j];
    }
    /* sum >= 1: the best token survives every cut with weight exp(0). */
    double r = exo_rng_uniform(&s->rng) * sum, acc = 0.0;
    int32_t chosen = -1;
    for (uint32_t j = 0; j < n; j++) {
        if (s->weight[j] > 0.0f) {
            chosen = s->cand[j]; /* also the fallback when rounding puts r at the very end */
            acc += s->weight[j];
            if (r < acc)
                break;
        }
    }
    return chosen;
}

/* The best `k` finite logits, best first (ties: lowest id), as (id, logit) pairs. */
static uint32_t top_logits(const float *x, uint32_t vocab, uint32_t k, exo_token_logprob *top) {
    uint32_t count = 0;
    for (uint32_t i = 0; i < vocab; i++) {
        float v = x[i];
        if (v == -INFINITY || (count == k && !(v > top[k - 1].logprob)))
            continue;
        uint32_t pos = count < k ? count++ : k - 1;
        while (pos > 0 && v > top[pos - 1].logprob) {
            top[pos] = top[pos - 1];
            pos--;
        }
        top[pos].token = (int32_t)i;
        top[pos].logprob = v;
    }
    return count;
}

exo_status exo_token_sampler_sample(exo_token_sampler *s, const float *logits, exo_sample_result *out) {
    if (!s || !logits || !out)
        return exo_errorf(EXO_ERR_INVALID_ARG, "exo_token_sampler_sample: %s is NULL",
                          !s ? "sampler" : !logits ? "logits" : "out");
    memset(out, 0, sizeof *out);
    out->token = -1;
    const uint32_t vocab = s->vocab;
    float *x = s->work;

    sanitize(logits, x, vocab);
    apply_penalties(s, x);
    for (uint32_t b = 0; b < s->params.n_banned; b++)
        x[s->banned[b]] = -INFINITY;

    float max = -INFINITY;
    int32_t argmax = -1;
    for (uint32_t i = 0; i < vocab; i++)
        if (x[i] > max) {
            max = x[i];
            argmax = (int32_t)i;
        }
    if (argmax < 0)
        return exo_errorf(EXO_ERR_INVALID_ARG,
                          "exo_token_sampler_sample: no token can be sampled: all %u logits are -inf "
                          "or NaN (%u of them banned)",
                          vocab, s->params.n_banned);

    /* log-sum-exp of the processed logits, relative to the max: the reported logprobs. */
    double sum = 0.0;
    uint32_t n_valid = 0;
    for (uint32_t i = 0; i < vocab; i++)
        if (x[i] != -INFINITY) {
            sum += expf(x[i] - max);
            n_valid++;
        }
    const float log_sum = (float)log(sum);

    const exo_sampler_params *p = &s->params;
    bool greedy = p->temperature == 0.0f || p->top_k == 1 || p->top_p == 0.0f || n_valid == 1;
    int32_t token = greedy ? argmax : sample_truncated(s, max, n_valid);
    if (token < 0)
        return exo_errorf(EXO_ERR_INTERNAL, "exo_token_sampler_sample: no candidate survived truncation");

    out->token = token;
    out->logprob = (x[token] - max) - log_sum;
    if (p->n_logprobs) {
        out->n_top = top_logits(x, vocab, p->n_logprobs, out->top);
        for (uint32_t i = 0; i < out->n_top; i++)
            out->top[i].logprob = (out->top[i].logprob - max) - log_sum;
        /* Distinct logits far below the max can round to one logprob (1 - 1e30 == 2 - 1e30):
         * the list is ranked by what it reports, so such a run is put back in id order. */
        for (uint32_t i = 1; i < out->n_top; i++)
            for (uint32_t j = i; j > 0 && out->top[j].logprob == out->top[j - 1].logprob &&
                                 out->top[j].token < out->top[j - 1].token; j--) {
                exo_token_logprob t = out->top[j];
                out->top[j] = out->top[j - 1];
                out->top[j - 1] = t;
            }
    }
    return EXO_OK;
}
