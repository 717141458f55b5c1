/* Order-K residual binarization of int8 inputs, in integers (README, "Integer quantizers";
 * horq_codegen/integer_quantizer.py is the definition). A value q is the residual
 * R_0 = q * 2^F (F = HORQ_RESIDUAL_BITS) and beta_k = floor(sum |R_{k-1}| / n + 1/2): every
 * sum and comparison is exact, so the paths below may add in any order and still agree
 * with the reference bit for bit. */
#include <stddef.h>
#include <string.h>

#include "horq_kernels.h"

#if defined(HORQ_ARM_MVE)
#include <arm_mve.h>
#elif defined(HORQ_ARM_NEON)
#include <arm_neon.h>
#elif defined(HORQ_ARM_DSP)
#include <arm_acle.h>
#endif

#define UNIT (1 << HORQ_RESIDUAL_BITS)

/* floor(sum / count + 1/2), in 32 bits where that is exact (most groups): a 64-bit division is
 * a library call on Cortex-M. */
static int32_t rounded_mean(uint64_t sum, uint32_t count)
{
    const uint32_t half = count / 2u;
    if (sum <= (uint64_t)(0xFFFFFFFFu - half)) {
        return (int32_t)(((uint32_t)sum + half) / count);
    }
    return (int32_t)((sum + half) / count);
}

static inline int32_t residual_after(int32_t q, const int32_t *betas, int32_t k)
{
    int32_t r = q * UNIT; /* a multiply: a left shift of a negative value is undefined */
    for (int32_t i = 0; i < k; ++i) {
        r = r < 0 ? r + betas[i] : r - betas[i];
    }
    return r;
}

static inline uint32_t magnitude(int32_t r)
{
    return r < 0 ? (uint32_t)-r : (uint32_t)r;
}

static uint32_t low_bits(int32_t n)
{
    return n >= HORQ_WORD_BITS ? 0xFFFFFFFFu : (1u << n) - 1u;
}

/* ---- word primitives: n <= 32 values of a row ------------------------------------------
 *
 * stats_word: the plane-1 word (bit i set where q[i] < 0); sum |q| is added to *sum.
 * below_word: the bits of |q| < ceil (ceil <= 130: |q| <= 128); the count of those values is
 * added to *count, and sum | |q| - ceil | over all n values to *distance (for sum |R_1|, see
 * beta2_of). Whole words take the instruction-set paths, a partial one the portable. */

static uint32_t stats_word_portable(const int8_t *x, int32_t n, uint32_t *sum)
{
    uint32_t bits = 0, s = 0;
    for (int32_t i = 0; i < n; ++i) {
        bits |= (uint32_t)(x[i] < 0) << i;
        s += magnitude(x[i]);
    }
    *sum += s;
    return bits;
}

static uint32_t below_word_portable(const int8_t *x, int32_t n, uint32_t ceil, uint32_t *distance,
                                    uint32_t *count)
{
    uint32_t bits = 0, d = 0, c = 0;
    for (int32_t i = 0; i < n; ++i) {
        const uint32_t a = magnitude(x[i]);
        const uint32_t below = a < ceil;
        bits |= below << i;
        d += below ? ceil - a : a - ceil;
        c += below;
    }
    *distance += d;
    *count += c;
    return bits;
}

#if defined(HORQ_ARM_MVE)
/* Helium: a compare of sixteen bytes gives a predicate with one bit per byte, which is the
 * word's half; VADDVA adds the bytes into a scalar, VABAV their distances to a scalar. */
static uint32_t stats_word(const int8_t *x, int32_t n, uint32_t *sum)
{
    if (n != HORQ_WORD_BITS) {
        return stats_word_portable(x, n, sum);
    }
    const int8x16_t v0 = vld1q_s8(x), v1 = vld1q_s8(x + 16);
    uint32_t s = *sum;
    s = vaddvaq_u8(s, vreinterpretq_u8_s8(vabsq_s8(v0))); /* |-128| is 0x80, 128 as unsigned */
    s = vaddvaq_u8(s, vreinterpretq_u8_s8(vabsq_s8(v1)));
    *sum = s;
    return (uint32_t)vcmpltq_n_s8(v0, 0) | ((uint32_t)vcmpltq_n_s8(v1, 0) << 16);
}

static inline uint32_t below_half(int8x16_t v, uint8x16_t ceil, uint32_t *distance, uint32_t *count)
{
    const uint8x16_t a = vreinterpretq_u8_s8(vabsq_s8(v));
    const mve_pred16_t below = vcmphiq_u8(ceil, a);
    *distance = vabavq_u8(*distance, a, ceil);
    /* min(ceil -sat |q|, 1) is 1 below: the predicate is not moved back for a predicated add */
    *count = vaddvaq_u8(*count, vminq_u8(vqsubq_u8(ceil, a), vdupq_n_u8(1)));
    return (uint32_t)below;
}

/* Inlined: outlined, it costs a call and the sums in memory per word. */
static inline __attribute__((always_inline)) uint32_t below_word(const int8_t *x, int32_t n, uint32_t ceil,
                                                                 uint32_t *distance, uint32_t *count)
{
    if (n != HORQ_WORD_BITS) {
        return below_word_portable(x, n, ceil, distance, count);
    }
    const uint8x16_t c = vdupq_n_u8((uint8_t)ceil);
    const uint32_t low = below_half(vld1q_s8(x), c, distance, count);
    return low | (below_half(vld1q_s8(x + 16), c, distance, count) << 16);
}

#elif defined(HORQ_ARM_NEON)
/* NEON: byte masks weighted by their bit within each half (1, 2, ... 128) and added across. */
static const uint8_t bit_weights[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};

static inline uint32_t mask_bits(uint8x16_t mask)
{
    const uint8x16_t weighted = vandq_u8(mask, vld1q_u8(bit_weights));
    return (uint32_t)vaddv_u8(vget_low_u8(weighted)) | ((uint32_t)vaddv_u8(vget_high_u8(weighted)) << 8);
}

static uint32_t stats_word(const int8_t *x, int32_t n, uint32_t *sum)
{
    if (n != HORQ_WORD_BITS) {
        return stats_word_portable(x, n, sum);
    }
    const int8x16_t v0 = vld1q_s8(x), v1 = vld1q_s8(x + 16);
    *sum += vaddlvq_u8(vreinterpretq_u8_s8(vabsq_s8(v0))) + vaddlvq_u8(vreinterpretq_u8_s8(vabsq_s8(v1)));
    return mask_bits(vcltzq_s8(v0)) | (mask_bits(vcltzq_s8(v1)) << 16);
}

static uint32_t below_half(int8x16_t v, uint8x16_t ceil, uint32_t *distance, uint32_t *count)
{
    const uint8x16_t a = vreinterpretq_u8_s8(vabsq_s8(v));
    const uint8x16_t below = vcltq_u8(a, ceil);
    *distance += vaddlvq_u8(vabdq_u8(a, ceil));
    *count += vaddlvq_u8(vshrq_n_u8(below, 7));
    return mask_bits(below);
}

/* Inlined: outlined, it costs a call and the sums in memory per word. */
static inline __attribute__((always_inline)) uint32_t below_word(const int8_t *x, int32_t n, uint32_t ceil,
                                                                 uint32_t *distance, uint32_t *count)
{
    if (n != HORQ_WORD_BITS) {
        return below_word_portable(x, n, ceil, distance, count);
    }
    const uint8x16_t c = vdupq_n_u8((uint8_t)ceil);
    const uint32_t low = below_half(vld1q_s8(x), c, distance, count);
    return low | (below_half(vld1q_s8(x + 16), c, distance, count) << 16);
}

#elif defined(HORQ_ARM_DSP)
/* Cortex-M4/M7: four bytes per word. SSUB8/USUB8 set a GE flag per byte, SEL picks bytes by
 * them, USADA8 adds four bytes (or their distances to another word's). */
static inline uint32_t load_word(const int8_t *x)
{
    uint32_t w;
    memcpy(&w, x, sizeof w);
    return w;
}

static inline uint32_t byte_magnitudes(uint32_t w)
{
    const uint32_t negated = (uint32_t)__ssub8(0, (int32_t)w); /* GE[i] where q[i] <= 0 */
    return (uint32_t)__sel((int32_t)negated, (int32_t)w);
}

/* Bytes of 0 or 1 become four bits by one multiply (bit 8i lands on bit 24 + i, and no two
 * partial products meet). */
static inline uint32_t byte_bits(uint32_t bytes01)
{
    return (bytes01 * 0x01020408u) >> 24;
}

static uint32_t stats_word(const int8_t *x, int32_t n, uint32_t *sum)
{
    if (n != HORQ_WORD_BITS) {
        return stats_word_portable(x, n, sum);
    }
    uint32_t bits = 0, s = *sum;
    for (int32_t j = 0; j < HORQ_WORD_BITS / 4; ++j) {
        const uint32_t w = load_word(x + 4 * j);
        bits |= byte_bits((w >> 7) & 0x01010101u) << (4 * j);
        s = __usada8(byte_magnitudes(w), 0u, s);
    }
    *sum = s;
    return bits;
}

/* Four values: bytes of 1 where |q| < ceil (ceil4 holds ceil in each byte). */
static inline __attribute__((always_inline)) uint32_t below_bytes(const int8_t *x, uint32_t ceil4,
                                                                  uint32_t *distance, uint32_t *count)
{
    const uint32_t a = byte_magnitudes(load_word(x));
    *distance = __usada8(a, ceil4, *distance);
    (void)__usub8((int32_t)a, (int32_t)ceil4); /* GE[i] where |q[i]| >= ceil */
    const uint32_t below = (uint32_t)__sel(0, 0x01010101);
    *count = __usada8(below, 0u, *count);
    return below;
}

/* Eight values, one byte of bits: the second four's bytes moved up by four bits before the
 * multiply land on bits 28..31 (again no two partial products meet). */
static inline __attribute__((always_inline)) uint32_t below_byte(const int8_t *x, uint32_t ceil4,
                                                                 uint32_t *distance, uint32_t *count)
{
    const uint32_t low = below_bytes(x, ceil4, distance, count);
    return byte_bits(low | (below_bytes(x + 4, ceil4, distance, count) << 4));
}

static inline __attribute__((always_inline)) uint32_t below_word(const int8_t *x, int32_t n, uint32_t ceil,
                                                                 uint32_t *distance, uint32_t *count)
{
    if (n != HORQ_WORD_BITS) {
        return below_word_portable(x, n, ceil, distance, count);
    }
    const uint32_t ceil4 = ceil * 0x01010101u;
    uint32_t d = *distance, c = *count;
    const uint32_t bits = below_byte(x, ceil4, &d, &c) | (below_byte(x + 8, ceil4, &d, &c) << 8) |
                          (below_byte(x + 16, ceil4, &d, &c) << 16) | (below_byte(x + 24, ceil4, &d, &c) << 24);
    *distance = d;
    *count = c;
    return bits;
}

#else
#define stats_word stats_word_portable
#define below_word below_word_portable
#endif

/* ---- planes 1 and 2 from sums ----------------------------------------------------------- */

/* beta_1 in input steps, rounded up and down (both clamped to 129: every |q| <= 128 lies below
 * either way, and ceil + 1 still fits a byte). */
typedef struct {
    int32_t beta;
    uint32_t ceil, floor;
} plane2_threshold;

static plane2_threshold threshold_of(int32_t beta)
{
    const uint32_t b = (uint32_t)beta, top = 129u;
    const uint32_t up = (b + UNIT - 1u) >> HORQ_RESIDUAL_BITS, down = b >> HORQ_RESIDUAL_BITS;
    const plane2_threshold t = {beta, up < top ? up : top, down < top ? down : top};
    return t;
}

/* The plane-2 word of n <= 32 values whose plane-1 word is `sign`: R_1 = q 2^F - beta_1 sgn(q)
 * is negative where q >= 0 and |q| < ceil, or q < 0 and |q| > floor. Where beta_1 is not a
 * whole number of steps (ceil = floor + 1, all but one patch in 256), "|q| > floor" is
 * "not |q| < ceil": the word is the below bits XOR the sign. At a whole number, a negative q
 * with |q| = beta_1 steps has R_1 = 0 (bit 0): there the bits of |q| < ceil + 1 decide. */
static inline uint32_t plane2_word(const int8_t *x, int32_t n, plane2_threshold t, uint32_t sign,
                                   uint32_t *distance, uint32_t *count)
{
    const uint32_t below = below_word(x, n, t.ceil, distance, count);
    if (t.ceil != t.floor) {
        return below ^ sign;
    }
    uint32_t unused_distance = 0, unused_count = 0;
    const uint32_t at_most = below_word(x, n, t.ceil + 1u, &unused_distance, &unused_count);
    return (below & ~sign) | (~at_most & sign);
}

/* `words` whole words of plane 2 from contiguous values (a kernel row's run of pixels), their
 * plane-1 words in signs[]; the sums in locals: dst could alias them. The test of beta_1's
 * kind is made once, not per word. */
static void plane2_run(const int8_t *x, int32_t words, plane2_threshold t, const uint32_t *signs,
                       uint32_t *distance, uint32_t *count, uint32_t *dst)
{
    uint32_t d = *distance, c = *count;
    if (t.ceil != t.floor) {
        for (int32_t i = 0; i < words; ++i) {
            dst[i] = signs[i] ^ below_word(x + i * HORQ_WORD_BITS, HORQ_WORD_BITS, t.ceil, &d, &c);
        }
    } else {
        for (int32_t i = 0; i < words; ++i) {
            dst[i] = plane2_word(x + i * HORQ_WORD_BITS, HORQ_WORD_BITS, t, signs[i], &d, &c);
        }
    }
    *distance = d;
    *count = c;
}

/* beta_2 = mean |R_1|, from the n values' distance = sum | |q| - ceil | and the count of those
 * with |q| < ceil (padding zeros included), ceil = ceil(beta_1 / 2^F) unclamped: with
 * r = ceil 2^F - beta_1 in [0, 2^F), |R_1| = | |q| 2^F - beta_1 | is 2^F | |q| - ceil | + r
 * for |q| >= ceil and 2^F | |q| - ceil | - r below, so
 *     sum |R_1| = 2^F distance + r (n - 2 count). */
static int32_t beta2_of(uint32_t distance, uint32_t count, plane2_threshold t, uint32_t n)
{
    const int64_t r = (int64_t)t.ceil * UNIT - t.beta;
    const int64_t total = (int64_t)distance * UNIT + r * ((int64_t)n - 2 * (int64_t)count);
    return rounded_mean((uint64_t)total, n);
}

/* Orders 1 and 2 over rows of `cols` values plus pad_count zeros, betas computed or fixed. */
static void binarize_two(const int8_t *values, int32_t rows, int32_t cols, int32_t pad_count, int32_t order,
                         const int32_t *fixed, int32_t *betas, uint32_t *planes, int32_t plane_stride)
{
    const int32_t words = HORQ_WORDS_FOR(cols);
    const uint32_t n = (uint32_t)(rows * cols + pad_count);
    uint64_t abs_sum = 0;
    for (int32_t r = 0; r < rows; ++r) {
        uint32_t row_sum = 0;
        for (int32_t w = 0; w < words; ++w) {
            const int32_t first = w * HORQ_WORD_BITS;
            const int32_t bits = cols - first < HORQ_WORD_BITS ? cols - first : HORQ_WORD_BITS;
            planes[(ptrdiff_t)r * words + w] = stats_word(values + (ptrdiff_t)r * cols + first, bits, &row_sum);
        }
        abs_sum += row_sum;
    }
    betas[0] = fixed ? fixed[0] : rounded_mean(abs_sum << HORQ_RESIDUAL_BITS, n);
    if (order < 2) {
        return;
    }
    const plane2_threshold t = threshold_of(betas[0]);
    uint32_t distance = 0, count = 0;
    for (int32_t r = 0; r < rows; ++r) {
        for (int32_t w = 0; w < words; ++w) {
            const int32_t first = w * HORQ_WORD_BITS;
            const int32_t bits = cols - first < HORQ_WORD_BITS ? cols - first : HORQ_WORD_BITS;
            const ptrdiff_t at = (ptrdiff_t)r * words + w;
            planes[plane_stride + at] =
                plane2_word(values + (ptrdiff_t)r * cols + first, bits, t, planes[at], &distance, &count);
        }
    }
    if (fixed) {
        betas[1] = fixed[1];
    } else { /* a padding zero is below any beta_1 > 0, at distance ceil */
        distance += (uint32_t)pad_count * t.ceil;
        count += t.ceil > 0 ? (uint32_t)pad_count : 0u;
        betas[1] = beta2_of(distance, count, t, n);
    }
}

/* Any order: each beta by one pass over the residual chain, then the planes in one pass. */
static void binarize_chain(const int8_t *values, int32_t rows, int32_t cols, int32_t pad_count, int32_t order,
                           const int32_t *fixed, int32_t *betas, uint32_t *planes, int32_t plane_stride)
{
    const int32_t words = HORQ_WORDS_FOR(cols), count = rows * cols;
    for (int32_t k = 0; k < order; ++k) {
        if (fixed) {
            betas[k] = fixed[k];
            continue;
        }
        uint64_t sum = (uint64_t)pad_count * magnitude(residual_after(0, betas, k));
        for (int32_t i = 0; i < count; ++i) {
            sum += magnitude(residual_after(values[i], betas, k));
        }
        betas[k] = rounded_mean(sum, (uint32_t)(count + pad_count));
    }
    for (int32_t r = 0; r < rows; ++r) {
        for (int32_t w = 0; w < words; ++w) {
            uint32_t bits[HORQ_MAX_ORDER] = {0};
            const int32_t first = w * HORQ_WORD_BITS;
            const int32_t last = first + HORQ_WORD_BITS < cols ? first + HORQ_WORD_BITS : cols;
            for (int32_t i = first; i < last; ++i) {
                int32_t x = values[(ptrdiff_t)r * cols + i] * UNIT;
                for (int32_t k = 0; k < order; ++k) {
                    const uint32_t negative = x < 0;
                    bits[k] |= negative << (i - first);
                    x = negative ? x + betas[k] : x - betas[k];
                }
            }
            for (int32_t k = 0; k < order; ++k) {
                planes[(ptrdiff_t)k * plane_stride + (ptrdiff_t)r * words + w] = bits[k];
            }
        }
    }
}

void horq_binarize_rows_i8(const int8_t *values, int32_t rows, int32_t cols, int32_t pad_count, int32_t order,
                           const float *fixed_betas, float *betas, uint32_t *planes, int32_t plane_stride)
{
    int32_t fixed[HORQ_MAX_ORDER] = {0}, b[HORQ_MAX_ORDER] = {0};
    for (int32_t k = 0; fixed_betas != NULL && k < order; ++k) {
        fixed[k] = (int32_t)fixed_betas[k]; /* integers in residual units (integer_quantizer.py) */
    }
    const int32_t *given = fixed_betas != NULL ? fixed : NULL;
    /* the fast path wants a beta_1 whose thresholds are steps, that is, not negative */
    if (order <= 2 && (given == NULL || given[0] >= 0)) {
        binarize_two(values, rows, cols, pad_count, order, given, b, planes, plane_stride);
    } else {
        binarize_chain(values, rows, cols, pad_count, order, given, b, planes, plane_stride);
    }
    for (int32_t k = 0; k < order; ++k) {
        betas[k] = (float)b[k];
    }
}

void horq_pixel_stats_i8(const int8_t *values, int32_t rows, int32_t cols, uint32_t *sums, uint32_t *sign_words)
{
    const int32_t words = HORQ_WORDS_FOR(cols);
    for (int32_t r = 0; r < rows; ++r) {
        uint32_t sum = 0;
        for (int32_t w = 0; w < words; ++w) {
            const int32_t first = w * HORQ_WORD_BITS;
            const int32_t bits = cols - first < HORQ_WORD_BITS ? cols - first : HORQ_WORD_BITS;
            sign_words[(ptrdiff_t)r * words + w] = stats_word(values + (ptrdiff_t)r * cols + first, bits, &sum);
        }
        sums[r] = sum;
    }
}

/* A kernel row of a patch: `left` taps of padding, `run` taps on pixels from x = lo, then padding
 * (no run: the caller pads the whole row). */
typedef struct {
    int32_t lo, run, left, right;
} tap_columns;

static tap_columns columns_of(const horq_window *w, int32_t ix0)
{
    const int32_t lo = ix0 < 0 ? 0 : ix0, hi = ix0 + w->kernel_w > w->in.w ? w->in.w : ix0 + w->kernel_w;
    const int32_t run = hi > lo ? hi - lo : 0, left = run > 0 ? lo - ix0 : 0;
    const tap_columns t = {lo, run, left, w->kernel_w - left - run};
    return t;
}

/* The words of `taps` padding taps of c channels in one plane: `word` (a zero's bit in that
 * plane, 0 or all ones), and 0 in a partial word's unused bits. */
static uint32_t *pad_taps(uint32_t *dst, int32_t taps, int32_t c, uint32_t word)
{
    const int32_t cw = HORQ_WORDS_FOR(c);
    for (int32_t tap = 0; tap < taps; ++tap) {
        for (int32_t i = 0; i < cw; ++i) {
            *dst++ = word & low_bits(c - i * HORQ_WORD_BITS);
        }
    }
    return dst;
}

/* Plane 2 of `pixels` contiguous pixels of c channels (plane-1 words in signs[]). */
static uint32_t *plane2_pixels(const int8_t *x, int32_t pixels, int32_t c, plane2_threshold t, const uint32_t *signs,
                               uint32_t *distance, uint32_t *count, uint32_t *dst)
{
    const int32_t cw = HORQ_WORDS_FOR(c);
    if (c % HORQ_WORD_BITS == 0) { /* the usual case, whole words: one run */
        plane2_run(x, pixels * cw, t, signs, distance, count, dst);
        return dst + pixels * cw;
    }
    for (int32_t p = 0; p < pixels; ++p, x += c) {
        for (int32_t i = 0; i < cw; ++i, ++dst, ++signs) {
            const int32_t bits = i + 1 < cw ? HORQ_WORD_BITS : c - i * HORQ_WORD_BITS;
            *dst = plane2_word(x + i * HORQ_WORD_BITS, bits, t, *signs, distance, count);
        }
    }
    return dst;
}

void horq_patch_planes_i8(const horq_window *w, const int8_t *input, const uint32_t *pixel_sums,
                          const uint32_t *sign_words, int32_t oy, int32_t ox, int32_t order, float *betas,
                          uint32_t *planes, int32_t plane_stride)
{
    const int32_t c = w->in.c, in_h = w->in.h, in_w = w->in.w, kernel_h = w->kernel_h, kernel_w = w->kernel_w;
    const int32_t cw = HORQ_WORDS_FOR(c);
    const int32_t iy0 = oy * w->stride_h - w->pad_h;
    const tap_columns cols = columns_of(w, ox * w->stride_w - w->pad_w);
    const uint32_t n = (uint32_t)(kernel_h * kernel_w * c);
    /* Plane 1 and S = sum |q|, a kernel row's pixels at once (their words are contiguous);
     * padding is 0 (bit 0, |q| 0). */
    uint64_t abs_sum = 0;
    uint32_t pad_values = n;
    uint32_t *dst = planes;
    for (int32_t iy = iy0; iy < iy0 + kernel_h; ++iy) {
        if ((uint32_t)iy >= (uint32_t)in_h || cols.run == 0) {
            dst = pad_taps(dst, kernel_w, c, 0u);
            continue;
        }
        const ptrdiff_t pix = (ptrdiff_t)iy * in_w + cols.lo;
        const uint32_t *signs = sign_words + pix * cw;
        uint32_t row_sum = 0;
        dst = pad_taps(dst, cols.left, c, 0u);
        for (int32_t i = 0; i < cols.run * cw; ++i) {
            *dst++ = signs[i];
        }
        for (int32_t i = 0; i < cols.run; ++i) {
            row_sum += pixel_sums[pix + i];
        }
        dst = pad_taps(dst, cols.right, c, 0u);
        abs_sum += row_sum;
        pad_values -= (uint32_t)(cols.run * c);
    }
    const int32_t beta1 = rounded_mean(abs_sum << HORQ_RESIDUAL_BITS, n);
    betas[0] = (float)beta1;
    if (order < 2) {
        return;
    }
    /* Plane 2: a padding zero has R_1 = -beta_1, negative (all bits set) where beta_1 > 0, and
     * lies below ceil at distance ceil. beta_1 <= 128 2^F here, so ceil is not clamped. */
    const plane2_threshold t = threshold_of(beta1);
    const uint32_t pad_word = beta1 > 0 ? 0xFFFFFFFFu : 0u;
    uint32_t distance = pad_values * t.ceil, count = t.ceil > 0 ? pad_values : 0u;
    dst = planes + plane_stride;
    for (int32_t iy = iy0; iy < iy0 + kernel_h; ++iy) {
        if ((uint32_t)iy >= (uint32_t)in_h || cols.run == 0) {
            dst = pad_taps(dst, kernel_w, c, pad_word);
            continue;
        }
        dst = pad_taps(dst, cols.left, c, pad_word);
        dst = plane2_pixels(input + ((ptrdiff_t)iy * in_w + cols.lo) * c, cols.run, c, t, dst - plane_stride,
                            &distance, &count, dst);
        dst = pad_taps(dst, cols.right, c, pad_word);
    }
    betas[1] = (float)beta2_of(distance, count, t, n);
}
