/* HORQ fully connected layer: one group per sample (PATCH = TENSOR), or static betas. */
#include <stddef.h>

#include "horq_kernels.h"

void horq_bfc_get_buffer_size(const horq_bfc_params *p, int32_t *floats, int32_t *words)
{
    *floats = p->order;
    *words = p->order * HORQ_WORDS_FOR(p->in_features);
}

void horq_bfc(const horq_bfc_params *p, const float *input, float *output, float *scratch_f,
              uint32_t *scratch_w)
{
    const int32_t words = HORQ_WORDS_FOR(p->in_features);
    const float *fixed = p->granularity == HORQ_GRAN_STATIC ? p->static_betas : NULL;
    horq_binarize_rows(input, 1, p->in_features, 0, p->order, fixed, scratch_f, scratch_w, words);
    int32_t mismatches[8]; /* HORQ_MAX_ORDER */
    for (int32_t o = 0; o < p->out_features; ++o) {
        horq_xor_popcount_planes(p->weights + (ptrdiff_t)o * words, scratch_w, words, p->order, words, mismatches);
        float acc = 0.0f;
        for (int32_t k = 0; k < p->order; ++k) {
            acc += scratch_f[k] * (float)(p->in_features - 2 * mismatches[k]);
        }
        output[o] = horq_activate(acc * p->scale[o] + p->offset[o], &p->act);
    }
}
