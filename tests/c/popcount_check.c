/*
 * horq_xor_popcount_rows (horq_popcount.c) against the portable horq_xor_popcount
 * (horq_types.h) on many shapes: every rows 1..40 with word counts around the
 * vector widths (1..5, 8, 9, 17, 18, 32, 33, ...), orders 1..4, planes packed
 * (plane_stride = words) and spaced (plane_stride > words). Each shape runs on
 * pseudo-random words and on all-ones weights against zero planes, the largest
 * counts, which catch a narrow accumulator that overflows.
 *
 * Buffers are malloc-ed to their exact size, so on the host AddressSanitizer
 * sees a read past the last row or plane; a sentinel after the outputs catches
 * a write past them on every target. Prints "failures F of N" and exits with 1
 * when F > 0.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "horq_kernels.h"

#ifdef HORQ_SEMIHOSTING
extern void initialise_monitor_handles(void);
#endif

static uint32_t state = 2463534242u;

static uint32_t next_word(void)
{
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

/* Runs one shape; returns the number of wrong outputs (or 1 for a clobbered sentinel). */
static long check(int32_t rows, int32_t words, int32_t order, int32_t stride, int worst)
{
    const int32_t plane_words = (order - 1) * stride + words;
    uint32_t *weights = malloc(sizeof(uint32_t) * (size_t)(rows * words));
    uint32_t *planes = malloc(sizeof(uint32_t) * (size_t)plane_words);
    int32_t *out = malloc(sizeof(int32_t) * (size_t)(rows * order + 1));
    if (weights == NULL || planes == NULL || out == NULL) {
        printf("out of memory\n");
        exit(2);
    }
    for (int32_t i = 0; i < rows * words; ++i) {
        weights[i] = worst ? 0xFFFFFFFFu : next_word();
    }
    for (int32_t i = 0; i < plane_words; ++i) {
        /* worst case: plane 0 all zeros (every bit a mismatch), the others random */
        planes[i] = (worst && i < words) ? 0u : next_word();
    }
    /* the kernel reads weights in its build's layout (horq_prepare_weight_rows); the
     * expected counts come from the plain ones */
    uint32_t *kernel_weights = malloc(sizeof(uint32_t) * (size_t)(rows * words));
    if (kernel_weights == NULL) {
        printf("out of memory\n");
        exit(2);
    }
    for (int32_t i = 0; i < rows * words; ++i) {
        kernel_weights[i] = weights[i];
    }
    horq_prepare_weight_rows(kernel_weights, rows, words);
    out[rows * order] = 0x5EA1;
    horq_xor_popcount_rows(kernel_weights, rows, planes, stride, order, words, out);
    free(kernel_weights);
    long failures = out[rows * order] != 0x5EA1;
    for (int32_t r = 0; r < rows; ++r) {
        for (int32_t k = 0; k < order; ++k) {
            const int32_t want = horq_xor_popcount(weights + r * words, planes + k * stride, words);
            if (out[r * order + k] != want) {
                if (failures < 5) {
                    printf("rows %ld words %ld order %ld stride %ld worst %d: row %ld plane %ld got %ld want %ld\n",
                           (long)rows, (long)words, (long)order, (long)stride, worst, (long)r, (long)k,
                           (long)out[r * order + k], (long)want);
                }
                ++failures;
            }
        }
    }
    free(out);
    free(planes);
    free(weights);
    return failures;
}

#if defined(HORQ_ARM_NEON)
/* horq_xor_popcount_block4: 4 positions' patches (order planes each, `stride` apart), every
 * row against every plane of every position. */
static long check_block4(int32_t rows, int32_t words, int32_t order, int32_t stride, int worst)
{
    const int32_t patch_words = (order - 1) * stride + words, position_stride = rows * order + 3;
    uint32_t *weights = malloc(sizeof(uint32_t) * (size_t)(rows * words));
    uint32_t *patches = malloc(sizeof(uint32_t) * (size_t)(4 * patch_words));
    int32_t *out = malloc(sizeof(int32_t) * (size_t)(4 * position_stride));
    if (weights == NULL || patches == NULL || out == NULL) {
        printf("out of memory\n");
        exit(2);
    }
    for (int32_t i = 0; i < rows * words; ++i) {
        weights[i] = worst ? 0xFFFFFFFFu : next_word();
    }
    for (int32_t i = 0; i < 4 * patch_words; ++i) {
        patches[i] = worst ? 0u : next_word();
    }
    for (int32_t i = 0; i < 4 * position_stride; ++i) {
        out[i] = 0x5EA1;
    }
    horq_xor_popcount_block4(weights, rows, words, patches, stride, patch_words, order, out, position_stride);
    long failures = 0;
    for (int32_t q = 0; q < 4; ++q) {
        for (int32_t i = rows * order; i < position_stride; ++i) {
            failures += out[q * position_stride + i] != 0x5EA1; /* written past a position's outputs */
        }
        for (int32_t r = 0; r < rows; ++r) {
            for (int32_t k = 0; k < order; ++k) {
                const int32_t want = horq_xor_popcount(weights + r * words, patches + q * patch_words + k * stride,
                                                       words);
                const int32_t got = out[q * position_stride + r * order + k];
                if (got != want) {
                    if (failures < 5) {
                        printf("block4 rows %ld words %ld order %ld worst %d: position %ld row %ld plane %ld "
                               "got %ld want %ld\n", (long)rows, (long)words, (long)order, worst, (long)q, (long)r,
                               (long)k, (long)got, (long)want);
                    }
                    ++failures;
                }
            }
        }
    }
    if (order <= 2 && rows >= 8 && words <= 509) { /* counted and transformed: the bits of the floats */
        const int32_t n = 32 * words - 5, whole = rows & ~7;
        const float betas[8] = {0.75f, 1.5f, 0.1f, 3.0f, 0.3f, 0.01f, 1.25f, 0.5f};
        float *scale = malloc(sizeof(float) * (size_t)rows), *offset = malloc(sizeof(float) * (size_t)rows);
        float *y = malloc(sizeof(float) * (size_t)(4 * position_stride));
        if (scale == NULL || offset == NULL || y == NULL) {
            printf("out of memory\n");
            exit(2);
        }
        for (int32_t r = 0; r < rows; ++r) {
            scale[r] = (float)(next_word() % 1000) / 300.0f - 1.0f;
            offset[r] = (float)(next_word() % 1000) / 70.0f - 7.0f;
        }
        horq_xor_popcount_block4_affine(weights, rows, words, patches, stride, patch_words, order, n, betas, scale,
                                        offset, y, position_stride);
        for (int32_t q = 0; q < 4; ++q) {
            for (int32_t r = 0; r < whole; ++r) {
                float acc = 0.0f;
                for (int32_t k = 0; k < order; ++k) {
                    const int32_t m = horq_xor_popcount(weights + r * words, patches + q * patch_words + k * stride,
                                                        words);
                    const float t = betas[k * 4 + q] * (float)(n - 2 * m);
                    acc = k == 0 ? t : acc + t;
                }
                const float want = acc * scale[r] + offset[r];
                if (memcmp(&want, &y[q * position_stride + r], sizeof want) != 0) {
                    if (failures < 5) {
                        printf("block4 affine rows %ld words %ld order %ld: position %ld row %ld got %g want %g\n",
                               (long)rows, (long)words, (long)order, (long)q, (long)r,
                               (double)y[q * position_stride + r], (double)want);
                    }
                    ++failures;
                }
            }
        }
        free(y);
        free(offset);
        free(scale);
    }
    free(out);
    free(patches);
    free(weights);
    return failures;
}
#endif

int main(void)
{
#ifdef HORQ_SEMIHOSTING
    initialise_monitor_handles();
#endif
    static const int32_t word_counts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 17, 18, 31, 32, 33, 63, 70};
    long failures = 0, shapes = 0;
    for (int32_t rows = 1; rows <= 40; ++rows) {
        for (size_t w = 0; w < sizeof word_counts / sizeof word_counts[0]; ++w) {
            const int32_t words = word_counts[w];
            if (words > 18 && rows % 3 != 0 && rows > 9) {
                continue; /* long rows: a sample of row counts keeps the test fast */
            }
            for (int32_t order = 1; order <= 4; ++order) {
                failures += check(rows, words, order, words, 0);
                failures += check(rows, words, order, words + 1 + (rows % 3), 0);
                failures += check(rows, words, order, words, 1);
                shapes += 3;
            }
        }
    }
    /* rows long enough to need more than one block of narrow accumulators */
    static const int32_t long_words[] = {124, 125, 130, 255, 1000};
    for (size_t w = 0; w < sizeof long_words / sizeof long_words[0]; ++w) {
        for (int32_t rows = 1; rows <= 9; rows += 4) {
            for (int32_t order = 1; order <= 3; ++order) {
                failures += check(rows, long_words[w], order, long_words[w], 0);
                failures += check(rows, long_words[w], order, long_words[w], 1);
                shapes += 2;
            }
        }
    }
#if defined(HORQ_ARM_NEON)
    /* the block kernel: rows not a multiple of 8, every tail (words % 4), orders 1-4 and 5,
     * rows long enough to empty the 16-bit lanes */
    static const int32_t block_words[] = {4, 5, 6, 7, 9, 18, 36, 1795, 2000};
    for (size_t w = 0; w < sizeof block_words / sizeof block_words[0]; ++w) {
        for (int32_t rows = 1; rows <= 17; rows += (block_words[w] > 100 ? 8 : 1)) {
            for (int32_t order = 1; order <= 5; ++order) {
                failures += check_block4(rows, block_words[w], order, block_words[w] + (order & 1), 0);
                failures += check_block4(rows, block_words[w], order, block_words[w], 1);
                shapes += 2;
            }
        }
    }
#endif
    printf("failures %ld of %ld shapes\n", failures, shapes);
    return failures != 0;
}
