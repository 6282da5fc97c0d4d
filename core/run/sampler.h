/* The token sampler: one row of float32 logits (the lm_head output for one sequence) in, one
 * token id and its log-probabilities out. One sampler per sequence; it keeps that sequence's
 * recent tokens (for the penalties) and its random stream. Not thread-safe per object.
 *
 * Order of operations (Hugging Face logits processors/warpers and llama.cpp's chain):
 *   1. sanitize    NaN -> -inf, +inf -> FLT_MAX (a NaN is a broken logit, never a choice)
 *   2. penalties   over the distinct tokens of the last `penalty_window` accepted tokens:
 *                  repetition (HF):  logit > 0 ? logit / r : logit * r
 *                  presence/frequency (OpenAI): logit -= presence * (count > 0) + frequency * count
 *                  (repetition first, then presence/frequency, as mlx-lm chains them)
 *   3. banned      logit = -inf
 *   4. temperature 0 -> greedy (argmax; ties -> lowest id). Else p_i ∝ exp((logit_i - max) / T),
 *                  computed from the difference to the max so a tiny T cannot overflow.
 *   5. top_k       keep the k most probable (0 = off; ties ranked by lowest id)
 *   6. top_p       keep the smallest prefix of the ranking whose mass (renormalised over what
 *                  top_k kept) reaches top_p: a token is kept while the mass ranked above it is
 *                  < top_p (HF/llama.cpp). 1 = off; 0 = only the most probable token.
 *   7. min_p       keep tokens with p >= min_p * p_max (0 = off)
 *   8. sample      one draw from the renormalised survivors
 * The most probable token always survives steps 5-7, so a sample always exists unless every
 * logit is -inf/NaN/banned; then exo_token_sampler_sample fails with EXO_ERR_INVALID_ARG.
 *
 * Reported log-probabilities (exo_sample_result.logprob and .top): log-softmax of the logits
 * after steps 1-3 (penalties and bans applied), before temperature and truncation. This is
 * what EXO's MLX engine reports (mlx-lm's generate_step takes logits - logsumexp(logits) after
 * the logits processors and hands the sampler the rest), and it stays meaningful at
 * temperature 0, where the sampled distribution is a point mass. Banned tokens have logprob
 * -inf and never appear in `top`; `top` is sorted by logprob, ties by lowest id, and holds
 * min(n_logprobs, number of tokens with finite logprob) entries.
 *
 * Determinism: a sampler with seed >= 0 gives the same tokens for the same sequence of
 * logits and accepted tokens on every run and platform (xoshiro256** seeded by splitmix64).
 * seed < 0 (EXO_SAMPLER_SEED_RANDOM) seeds from the OS entropy source.
 *
 * Cost: no allocation per call; all work arrays are sized for the vocabulary at create time.
 * A call makes a few O(V) passes (sanitize, max, log-sum-exp). top_k <= 1024 keeps a k-heap in
 * one pass (O(V log k)), larger k uses quickselect (O(V)); top_p over more than 2048
 * candidates bins them into log-probability bands and ranks only the band where the mass
 * crosses top_p (a full sort otherwise), and min_p prunes candidates before either when the
 * result is the same. Only a degenerate row (all logits equal) puts every candidate in one
 * band and so ranks them all.
 */
#ifndef EXO_RUN_SAMPLER_H
#define EXO_RUN_SAMPLER_H

#include <stdint.h>

#include "exo_plugin.h"

#define EXO_SAMPLER_MAX_LOGPROBS 20u       /* OpenAI's top_logprobs limit */
#define EXO_SAMPLER_MAX_VOCAB (1u << 24)   /* far above any real vocabulary (256k) */
#define EXO_SAMPLER_MAX_WINDOW (1 << 20)   /* tokens of penalty history */
#define EXO_SAMPLER_SEED_RANDOM (-1)

typedef struct exo_sampler_params {
    float temperature;        /* >= 0; 0 = greedy. Default 0.7 (EXO's MLX default) */
    int32_t top_k;            /* >= 0; 0 = off. Default 0 (EXO) */
    float top_p;              /* [0, 1]; 1 = off, 0 = most probable only. Default 1.0 (EXO) */
    float min_p;              /* [0, 1]; 0 = off. Default 0.05 (EXO) */
    float repetition_penalty; /* > 0; 1 = off. Default 1.0 */
    float presence_penalty;   /* finite; 0 = off. Default 0 */
    float frequency_penalty;  /* finite; 0 = off. Default 0 */
    int32_t penalty_window;   /* [0, EXO_SAMPLER_MAX_WINDOW] last accepted tokens the penalties
                                 look at; 0 = no history. Default 20 (EXO's
                                 repetition_context_size, mlx-lm's context_size) */
    int64_t seed;             /* >= 0: deterministic; < 0: from OS entropy. Default 42 (EXO) */
    uint32_t n_logprobs;      /* top log-probabilities to report, <= 20. Default 0 */
    const int32_t *banned;    /* token ids never sampled; copied at create. Default none */
    uint32_t n_banned;
} exo_sampler_params;

/* Fills the defaults listed above (EXO's mlx_generate defaults where it has them). */
void exo_token_sampler_params_default(exo_sampler_params *p);

typedef struct exo_token_sampler exo_token_sampler;

/* Validates the parameters (EXO_ERR_INVALID_ARG with a message naming the bad one) and
 * allocates the work arrays for `vocab_size` logits (EXO_ERR_NO_MEMORY). */
exo_status exo_token_sampler_create(const exo_sampler_params *p, uint32_t vocab_size, exo_token_sampler **out);
void exo_token_sampler_free(exo_token_sampler *s);

/* Appends a token to the penalty history: feed the prompt tokens, then every sampled token.
 * Ids outside [0, vocab_size) cannot be penalised and are ignored. */
void exo_token_sampler_accept(exo_token_sampler *s, int32_t token);

/* Forgets the history and restarts the random stream (the same stream again for seed >= 0,
 * fresh entropy for seed < 0): the sampler behaves as just created. */
void exo_token_sampler_reset(exo_token_sampler *s);

typedef struct exo_token_logprob {
    int32_t token;
    float logprob;
} exo_token_logprob;

typedef struct exo_sample_result {
    int32_t token;   /* the sampled id (-1 when sampling failed) */
    float logprob;   /* its log-probability (see the header comment for which distribution) */
    uint32_t n_top;
    exo_token_logprob top[EXO_SAMPLER_MAX_LOGPROBS];
} exo_sample_result;

/* Samples one token from `logits` (vocab_size floats, not modified). Does not add the token to
 * the history: call exo_token_sampler_accept with the token the sequence keeps. */
exo_status exo_token_sampler_sample(exo_token_sampler *s, const float *logits, exo_sample_result *out);

/* Reads a caller's versioned exo_sampling (public API) into sampler parameters; members an
 * older caller lacks keep their defaults. (core/run/sampler_api.c) */
#include "exo.h"
void exo_sampling_to_params(const exo_sampling *in, exo_sampler_params *p);

#endif
