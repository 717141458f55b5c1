/* HORQ fully connected layer: one group per sample (PATCH = TENSOR), or static betas. */
#include <stddef.h>

#include "horq_kernels.h"

/* Output features per call of the inner loop. */
#define HORQ_FC_ROWS 64

void horq_bfc_get_buffer_size(const horq_bfc_params *p, int32_t *floats, int32_t *words)
{
    /* betas; |x| (order >= 2, then the residuals for order >= 3) unless the betas are static or
       the input is int8 (its quantizer recomputes residuals from it) */
    *floats = p->order +
              (p->granularity != HORQ_GRAN_STATIC && p->order >= 2 && !p->int8_input ? p->in_features : 0);
    *words = p->planes_input ? 0 : p->order * HORQ_WORDS_FOR(p->in_features);
}

void horq_bfc(const horq_bfc_params *p, const float *input, const int8_t *input_i8, const uint32_t *input_planes,
              float *output, int8_t *output_i8, float *scratch_f, uint32_t *scratch_w)
{
    const int32_t words = HORQ_WORDS_FOR(p->in_features);
    float *betas = scratch_f;
    const uint32_t *planes = scratch_w;
    if (input_planes != NULL) { /* STATIC, its planes written by the producer */
        for (int32_t k = 0; k < p->order; ++k) {
            betas[k] = p->static_betas[k];
        }
        planes = input_planes;
    } else if (input_i8 != NULL) {
        const float *fixed = p->granularity == HORQ_GRAN_STATIC ? p->static_betas : NULL;
        horq_binarize_rows_i8(input_i8, 1, p->in_features, 0, p->order, fixed, betas, scratch_w, words);
    } else if (p->granularity == HORQ_GRAN_STATIC) {
        horq_binarize_rows(input, 1, p->in_features, 0, p->order, p->static_betas, betas, scratch_w, words);
    } else {
        horq_binarize_group(input, p->in_features, p->order, betas, scratch_w, words, scratch_f + p->order);
    }
    int32_t mismatches[HORQ_FC_ROWS * HORQ_MAX_ORDER];
    for (int32_t first = 0; first < p->out_features; first += HORQ_FC_ROWS) {
        const int32_t rows = p->out_features - first < HORQ_FC_ROWS ? p->out_features - first : HORQ_FC_ROWS;
        horq_xor_popcount_rows(p->weights + (ptrdiff_t)first * words, rows, planes, words, p->order, words,
                               mismatches);
        if (output == NULL) {
            horq_store_outputs_i8(betas, p->order, p->in_features, mismatches, rows, p->scale + first,
                                  p->offset + first, &p->act, output_i8 + first);
        } else {
            horq_store_outputs(betas, p->order, p->in_features, mismatches, rows, p->scale + first,
                               p->offset + first, &p->act, output + first);
        }
    }
}
