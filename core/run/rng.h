/* A small seedable pseudo-random generator for sampling: xoshiro256** (Blackman & Vigna),
 * seeded through splitmix64 so that any 64-bit seed, 0 included, gives a well-mixed state.
 * Same seed -> same stream on every platform (pure integer arithmetic, no libc rand()).
 * Not cryptographic; one generator per sampler, not shared between threads. */
#ifndef EXO_RUN_RNG_H
#define EXO_RUN_RNG_H

#include <stdint.h>

typedef struct exo_rng {
    uint64_t s[4];
} exo_rng;

/* Seeds the generator deterministically from `seed`. */
void exo_rng_seed(exo_rng *rng, uint64_t seed);

/* A seed from the operating system's entropy (getrandom), falling back to the clock, the
 * process id and an address when that is unavailable. Used when the caller sets no seed. */
uint64_t exo_rng_entropy_seed(void);

/* The next 64 random bits. */
uint64_t exo_rng_next(exo_rng *rng);

/* A uniform double in [0, 1) with 53 random bits. */
double exo_rng_uniform(exo_rng *rng);

#endif
