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
    enum { ROWS = 16 }; /* output features per call of the inner loop */
    int32_t mismatches[ROWS * HORQ_MAX_ORDER];
    for (int32_t first = 0; first < p->out_features; first += ROWS) {
        const int32_t rows = p->out_features - first < ROWS ? p->out_features - first : ROWS;
        horq_xor_popcount_rows(p->weights + (ptrdiff_t)first * words, rows, scratch_w, words, p->order, words,
                               mismatches);
        for (int32_t r = 0; r < rows; ++r) {
            const int32_t o = first + r;
            float acc = 0.0f;
            for (int32_t k = 0; k < p->order; ++k) {
                acc += scratch_f[k] * (float)(p->in_features - 2 * mismatches[r * p->order + k]);
            }
            output[o] = horq_activate(acc * p->scale[o] + p->offset[o], &p->act);
        }
    }
}
