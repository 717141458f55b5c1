/*
 * The integer quantizers (horq_quantize_i8.c) against their definition (README, "Integer
 * quantizers"; horq_codegen/integer_quantizer.py), written out here as plainly as possible:
 * residuals R_0 = q * 2^8, beta_k = floor(sum |R_{k-1}| / n + 1/2), bit set where R < 0.
 *
 * horq_binarize_rows_i8 runs on rows of 1..100 values with and without padding, orders 1..4,
 * betas computed and fixed; horq_pixel_stats_i8 + horq_patch_planes_i8 on every patch of
 * inputs of 3..96 channels, strides 1 and 2, padding 0 and 1. The values are drawn to reach
 * the corners: the whole int8 range with -128, small values (betas near whole steps), a
 * constant group (beta_1 exactly |q| steps: R_1 = 0 for positives and negatives alike), zeros
 * with an odd -128. Whole 32-value words take the instruction-set paths (Helium, NEON, DSP),
 * partial ones the portable code. Prints "failures F of N" and exits with 1 when F > 0.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "horq_kernels.h"

#ifdef HORQ_SEMIHOSTING
extern void initialise_monitor_handles(void);
#endif

#define MAX_VALUES 4096
#define MAX_WORDS (MAX_VALUES / 32 + 64)

static uint32_t state = 2463534242u;

static uint32_t next_word(void)
{
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

static int8_t draw(int mode, int8_t constant)
{
    const uint32_t r = next_word();
    switch (mode) {
    case 0: return (int8_t)((int32_t)(r % 256u) - 128); /* the whole range, -128 included */
    case 1: return (int8_t)((int32_t)(r % 7u) - 3);
    case 2: return constant;
    default: return (r % 17u) == 0 ? (int8_t)-128 : (r % 5u == 0 ? (int8_t)1 : (int8_t)0);
    }
}

/* The definition: rows of `cols` values (a row starts a new word), `pad` zeros beside them. */
static void definition(const int8_t *v, int32_t rows, int32_t cols, int32_t pad, int32_t order, const int32_t *fixed,
                       int32_t *betas, uint32_t *planes)
{
    static int64_t residual[MAX_VALUES];
    const int32_t words = HORQ_WORDS_FOR(cols), count = rows * cols;
    int64_t pad_residual = 0;
    for (int32_t i = 0; i < count; ++i) {
        residual[i] = (int64_t)v[i] * 256;
    }
    memset(planes, 0, sizeof(uint32_t) * (size_t)(order * rows * words));
    for (int32_t k = 0; k < order; ++k) {
        int64_t total = pad * (pad_residual < 0 ? -pad_residual : pad_residual);
        for (int32_t i = 0; i < count; ++i) {
            total += residual[i] < 0 ? -residual[i] : residual[i];
        }
        const int64_t beta = fixed ? fixed[k] : (total + (count + pad) / 2) / (count + pad);
        betas[k] = (int32_t)beta;
        for (int32_t i = 0; i < count; ++i) {
            const int32_t r = i / cols, c = i % cols;
            if (residual[i] < 0) {
                planes[(k * rows + r) * words + c / 32] |= 1u << (c % 32);
                residual[i] += beta;
            } else {
                residual[i] -= beta;
            }
        }
        pad_residual = pad_residual < 0 ? pad_residual + beta : pad_residual - beta;
    }
}

static long failures, checks;

static void expect(int ok, const char *what, int32_t a, int32_t b, int32_t c)
{
    ++checks;
    if (!ok) {
        if (failures < 10) {
            printf("FAIL %s (%ld %ld %ld)\n", what, (long)a, (long)b, (long)c);
        }
        ++failures;
    }
}

static void check_rows(int32_t rows, int32_t cols, int32_t pad, int32_t order, int mode, int with_fixed)
{
    static int8_t v[MAX_VALUES];
    static uint32_t got[8 * MAX_WORDS], want[8 * MAX_WORDS];
    const int8_t constant = draw(0, 0);
    int32_t fixed[HORQ_MAX_ORDER], want_betas[HORQ_MAX_ORDER];
    float fixed_f[HORQ_MAX_ORDER], got_betas[HORQ_MAX_ORDER];
    for (int32_t i = 0; i < rows * cols; ++i) {
        v[i] = draw(mode, constant);
    }
    for (int32_t k = 0; k < order; ++k) { /* whole steps (ties) and not, zero now and then */
        fixed[k] = next_word() % 3u == 0 ? (int32_t)(next_word() % 130u) * 256 : (int32_t)(next_word() % 40000u);
        fixed_f[k] = (float)fixed[k];
    }
    const int32_t words = HORQ_WORDS_FOR(cols), stride = rows * words;
    horq_binarize_rows_i8(v, rows, cols, pad, order, with_fixed ? fixed_f : NULL, got_betas, got, stride);
    definition(v, rows, cols, pad, order, with_fixed ? fixed : NULL, want_betas, want);
    for (int32_t k = 0; k < order; ++k) {
        expect(got_betas[k] == (float)want_betas[k], "rows beta", rows * 1000 + cols, order, k);
    }
    expect(memcmp(got, want, sizeof(uint32_t) * (size_t)(order * stride)) == 0, "rows planes", rows * 1000 + cols,
           order * 10 + mode, with_fixed);
}

static void check_patches(int32_t h, int32_t c, int32_t stride, int32_t pad, int32_t order, int mode)
{
    static int8_t input[MAX_VALUES], patch[MAX_VALUES];
    static uint32_t sums[256], signs[MAX_WORDS], got[2 * MAX_WORDS], want[2 * MAX_WORDS];
    const int8_t constant = draw(0, 0);
    horq_window w;
    memset(&w, 0, sizeof w);
    w.in = (horq_dims){h, h, c};
    w.kernel_h = w.kernel_w = 3;
    w.stride_h = w.stride_w = stride;
    w.pad_h = w.pad_w = pad;
    w.out = (horq_dims){(h + 2 * pad - 3) / stride + 1, (h + 2 * pad - 3) / stride + 1, 1};
    for (int32_t i = 0; i < h * h * c; ++i) {
        input[i] = draw(mode, constant);
    }
    const int32_t cw = HORQ_WORDS_FOR(c), patch_words = 9 * cw;
    horq_pixel_stats_i8(input, h * h, c, sums, signs);
    for (int32_t oy = 0; oy < w.out.h; ++oy) {
        for (int32_t ox = 0; ox < w.out.w; ++ox) {
            for (int32_t t = 0; t < 9; ++t) {
                const int32_t iy = oy * stride - pad + t / 3, ix = ox * stride - pad + t % 3;
                const int inside = iy >= 0 && iy < h && ix >= 0 && ix < h;
                for (int32_t i = 0; i < c; ++i) {
                    patch[t * c + i] = inside ? input[(iy * h + ix) * c + i] : 0;
                }
            }
            float got_betas[2];
            int32_t want_betas[2];
            horq_patch_planes_i8(&w, input, sums, signs, oy, ox, order, got_betas, got, patch_words);
            definition(patch, 9, c, 0, order, NULL, want_betas, want);
            for (int32_t k = 0; k < order; ++k) {
                expect(got_betas[k] == (float)want_betas[k], "patch beta", h * 1000 + c, oy * 100 + ox, k);
            }
            expect(memcmp(got, want, sizeof(uint32_t) * (size_t)(order * patch_words)) == 0, "patch planes",
                   h * 1000 + c, oy * 100 + ox, order * 10 + mode);
        }
    }
}

int main(void)
{
#ifdef HORQ_SEMIHOSTING
    initialise_monitor_handles();
#endif
    static const int32_t cols[] = {1, 5, 24, 31, 32, 33, 40, 64, 100};
    for (int mode = 0; mode < 4; ++mode) {
        for (size_t i = 0; i < sizeof cols / sizeof cols[0]; ++i) {
            for (int32_t rows = 1; rows <= 5; rows += 2) {
                for (int32_t order = 1; order <= 4; ++order) {
                    for (int with_fixed = 0; with_fixed <= 1; ++with_fixed) {
                        check_rows(rows, cols[i], 0, order, mode, with_fixed);
                        check_rows(rows, cols[i], 7, order, mode, with_fixed);
                    }
                }
            }
        }
        static const int32_t channels[] = {3, 24, 32, 40, 64, 96};
        for (size_t i = 0; i < sizeof channels / sizeof channels[0]; ++i) {
            for (int32_t order = 1; order <= 2; ++order) {
                check_patches(5, channels[i], 1, 1, order, mode);
                check_patches(6, channels[i], 2, 0, order, mode);
            }
        }
    }
    printf("failures %ld of %ld\n", failures, checks);
    return failures != 0;
}
