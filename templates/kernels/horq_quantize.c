/* Order-K residual binarization (shared/HORQ.md, "Inputs"). */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "horq_kernels.h"

/* R_k of a value after k planes: R_k = R_{k-1} - beta_k * sgn(R_{k-1}).
 * Recomputing the chain instead of storing residuals keeps the quantizers free
 * of float scratch; the float operations are the same either way, so the
 * numpy reference (which stores them) gets the same bits. */
static inline float residual_after(float x, const float *betas, int32_t k)
{
    for (int32_t i = 0; i < k; ++i) {
        x = (x >= 0.0f) ? x - betas[i] : x + betas[i];
    }
    return x;
}

/* The sum order of every beta (the reference repeats it): each row's |R| values
 * in order, then the row sums in order, then the padding term. Row sums let a
 * patch reuse per-pixel sums. */
static void compute_betas(const float *values, int32_t rows, int32_t cols, int32_t pad_count, int32_t order,
                          float *betas)
{
    const int32_t count = rows * cols;
    for (int32_t k = 0; k < order; ++k) {
        float sum = 0.0f;
        for (int32_t r = 0; r < rows; ++r) {
            float row_sum = 0.0f;
            for (int32_t i = r * cols; i < (r + 1) * cols; ++i) {
                row_sum += fabsf(residual_after(values[i], betas, k));
            }
            sum += row_sum;
        }
        if (pad_count > 0) {
            sum += (float)pad_count * fabsf(residual_after(0.0f, betas, k));
        }
        betas[k] = sum / (float)(count + pad_count);
    }
}

void horq_binarize_rows(const float *values, int32_t rows, int32_t cols, int32_t pad_count,
                        int32_t order, const float *fixed_betas, float *betas, uint32_t *planes,
                        int32_t plane_stride)
{
    const int32_t words = HORQ_WORDS_FOR(cols);
    if (fixed_betas != NULL) {
        for (int32_t k = 0; k < order; ++k) {
            betas[k] = fixed_betas[k];
        }
    } else {
        compute_betas(values, rows, cols, pad_count, order, betas);
    }
    for (int32_t r = 0; r < rows; ++r) {
        const float *row = values + (ptrdiff_t)r * cols;
        for (int32_t w = 0; w < words; ++w) {
            uint32_t bits[HORQ_MAX_ORDER] = {0};
            const int32_t first = w * HORQ_WORD_BITS;
            const int32_t last = (first + HORQ_WORD_BITS < cols) ? first + HORQ_WORD_BITS : cols;
            for (int32_t i = first; i < last; ++i) {
                float x = row[i];
                const uint32_t mask = 1u << (i - first);
                for (int32_t k = 0; k < order; ++k) {
                    /* !(x >= 0) rather than x < 0: NaN counts as negative, as in the reference. */
                    if (!(x >= 0.0f)) {
                        bits[k] |= mask;
                        x += betas[k];
                    } else {
                        x -= betas[k];
                    }
                }
            }
            for (int32_t k = 0; k < order; ++k) {
                planes[(ptrdiff_t)k * plane_stride + (ptrdiff_t)r * words + w] = bits[k];
            }
        }
    }
}

void horq_padding_words(int32_t cols, int32_t order, const float *betas, uint32_t *words_per_plane)
{
    const int32_t words = HORQ_WORDS_FOR(cols);
    float x = 0.0f;
    for (int32_t k = 0; k < order; ++k) {
        const int negative = !(x >= 0.0f);
        for (int32_t w = 0; w < words; ++w) {
            const int32_t bits_here = (cols - w * HORQ_WORD_BITS) < HORQ_WORD_BITS
                                          ? cols - w * HORQ_WORD_BITS
                                          : HORQ_WORD_BITS;
            const uint32_t ones = bits_here == HORQ_WORD_BITS ? 0xFFFFFFFFu : ((1u << bits_here) - 1u);
            words_per_plane[(ptrdiff_t)k * words + w] = negative ? ones : 0u;
        }
        x = negative ? x + betas[k] : x - betas[k];
    }
}

void horq_pixel_stats(const float *values, int32_t rows, int32_t cols, float *sums, uint32_t *sign_words,
                      float *magnitudes)
{
    const int32_t words = HORQ_WORDS_FOR(cols);
    for (int32_t r = 0; r < rows; ++r) {
        const float *row = values + (ptrdiff_t)r * cols;
        float sum = 0.0f;
        for (int32_t w = 0; w < words; ++w) {
            const int32_t first = w * HORQ_WORD_BITS;
            const int32_t n = (cols - first < HORQ_WORD_BITS) ? cols - first : HORQ_WORD_BITS;
            uint32_t bits = 0;
            for (int32_t b = n - 1; b >= 0; --b) { /* value b lands in bit b */
                bits = (bits << 1) | (uint32_t)!(row[first + b] >= 0.0f); /* NaN counts as negative */
            }
            for (int32_t b = 0; b < n; ++b) {
                const float a = fabsf(row[first + b]);
                sum += a;
                if (magnitudes != NULL) {
                    magnitudes[(ptrdiff_t)r * cols + first + b] = a;
                }
            }
            sign_words[(ptrdiff_t)r * words + w] = bits;
        }
        sums[r] = sum;
    }
}

#if defined(HORQ_ARM_DSP) && defined(__GNUC__) && defined(__thumb2__)
/* mask = 2 * mask + (a <= limit), unsigned: cmp + adc, where C would take four. */
static inline uint32_t shift_in_at_most(uint32_t mask, uint32_t a, uint32_t limit)
{
    __asm__("cmp %[limit], %[a]\n\tadc %[mask], %[mask], %[mask]"
            : [mask] "+r"(mask)
            : [limit] "r"(limit), [a] "r"(a)
            : "cc");
    return mask;
}
#else
static inline uint32_t shift_in_at_most(uint32_t mask, uint32_t a, uint32_t limit)
{
    return (mask << 1) | (uint32_t)(a <= limit);
}
#endif

uint32_t horq_below_mask(const float *magnitudes, int32_t count, float beta)
{
    /* For non-negative floats, and a beta that is neither 0 nor NaN, |x| < beta
     * is bits(|x|) <= bits(beta) - 1 as unsigned integers: a compare that
     * shifts its carry straight into the mask. A NaN |x| has larger bits than
     * any beta that is not NaN, so it is not below, as with the float compare. */
    uint32_t beta_bits;
    memcpy(&beta_bits, &beta, sizeof beta_bits);
    uint32_t mask = 0;
    if (!(beta > 0.0f)) { /* 0, negative or NaN: nothing is below it */
        return 0u;
    }
    /* From the last value down, so value i lands in bit i. */
    for (int32_t i = count - 1; i >= 0; --i) {
        uint32_t a;
        memcpy(&a, &magnitudes[i], sizeof a);
        mask = shift_in_at_most(mask, a, beta_bits - 1u);
    }
    return mask;
}

float horq_sum_min(const float *magnitudes, int32_t count, float beta)
{
    float sum = 0.0f;
    for (int32_t i = 0; i < count; ++i) {
        sum += fminf(magnitudes[i], beta);
    }
    return sum;
}

void horq_binarize_next_planes(float *residual, int32_t rows, int32_t cols, int32_t first, int32_t order,
                               float *betas, uint32_t *planes, int32_t plane_stride)
{
    const int32_t words = HORQ_WORDS_FOR(cols);
    const float count = (float)(rows * cols);
    for (int32_t k = first; k < order; ++k) {
        /* One pass per plane: apply plane k-1, sum |R| for beta_k, take plane k's signs. */
        const float beta = betas[k - 1];
        const uint32_t *previous = planes + (ptrdiff_t)(k - 1) * plane_stride;
        uint32_t *plane = planes + (ptrdiff_t)k * plane_stride;
        const int keep = k + 1 < order; /* the last plane's residuals are never read again */
        float sum = 0.0f;
        for (int32_t r = 0; r < rows; ++r) {
            float *row = residual + (ptrdiff_t)r * cols;
            float row_sum = 0.0f;
            for (int32_t w = 0; w < words; ++w) {
                const int32_t first = w * HORQ_WORD_BITS;
                const int32_t n = (cols - first < HORQ_WORD_BITS) ? cols - first : HORQ_WORD_BITS;
                uint32_t signs = previous[(ptrdiff_t)r * words + w];
                float *x = row + first;
                uint32_t bits = 0;
                for (int32_t b = 0; b < n; ++b, signs >>= 1) {
                    const float v = (signs & 1u) ? x[b] + beta : x[b] - beta;
                    uint32_t v_bits;
                    if (keep) {
                        x[b] = v;
                    }
                    row_sum += fabsf(v);
                    /* The float's sign bit, collected from the top: it equals !(v >= 0)
                     * except for -0.0 and NaN residuals, which only arise where this
                     * plane's beta is 0 or NaN and so cannot change an output (the
                     * reference takes the sign bit too). */
                    memcpy(&v_bits, &v, sizeof v_bits);
                    bits = (bits >> 1) | (v_bits & 0x80000000u);
                }
                plane[(ptrdiff_t)r * words + w] = n == HORQ_WORD_BITS ? bits : bits >> (HORQ_WORD_BITS - n);
            }
            sum += row_sum;
        }
        betas[k] = sum / count;
    }
}

void horq_apply_plane(float *values, int32_t rows, int32_t cols, const uint32_t *plane, float beta)
{
    const int32_t words = HORQ_WORDS_FOR(cols);
    for (int32_t r = 0; r < rows; ++r) {
        float *row = values + (ptrdiff_t)r * cols;
        for (int32_t c = 0; c < cols; ++c) {
            const uint32_t bit = (plane[(ptrdiff_t)r * words + c / HORQ_WORD_BITS] >> (c % HORQ_WORD_BITS)) & 1u;
            row[c] = bit ? row[c] + beta : row[c] - beta;
        }
    }
}

void horq_binarize_group(const float *values, int32_t count, int32_t order, float *betas, uint32_t *planes,
                         int32_t plane_stride, float *scratch)
{
    const int32_t words = HORQ_WORDS_FOR(count);
    float abs_sum;
    horq_pixel_stats(values, 1, count, &abs_sum, planes, order >= 2 ? scratch : NULL);
    betas[0] = abs_sum / (float)count;
    if (order >= 2) {
        for (int32_t w = 0; w < words; ++w) {
            const int32_t first = w * HORQ_WORD_BITS;
            const int32_t n = (count - first < HORQ_WORD_BITS) ? count - first : HORQ_WORD_BITS;
            planes[plane_stride + w] = planes[w] ^ horq_below_mask(scratch + first, n, betas[0]);
        }
        betas[1] = 2.0f * (abs_sum - horq_sum_min(scratch, count, betas[0])) / (float)count;
    }
    if (order >= 3) { /* planes 3..K from the residuals, one pass each */
        memcpy(scratch, values, (size_t)count * sizeof *scratch);
        horq_apply_plane(scratch, 1, count, planes, betas[0]);
        horq_binarize_next_planes(scratch, 1, count, 2, order, betas, planes, plane_stride);
    }
}
