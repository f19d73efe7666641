/* Sampler internals exposed to the tests: the final candidate distribution
 * that ms6_sampler_sample draws from, so the filters (top-k, top-p, min-p,
 * repetition penalty) can be checked against an independent computation. */
#ifndef MS6_MODEL_SAMPLER_H
#define MS6_MODEL_SAMPLER_H

#include "mamba_s6.h"

/* Fills ids[0..*n) and probs[0..*n) (each with room for vocab_size entries)
 * with the tokens that survive every filter and their renormalised
 * probabilities (sum 1). With temperature 0 this is the single argmax.
 * Uses no randomness and does not change the sampler's state. */
ms6_status ms6_sampler_distribution(ms6_sampler *smp, const float *logits, int32_t *ids,
                                    double *probs, int64_t *n);

#endif
