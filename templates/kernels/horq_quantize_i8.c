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

/* ---- word primitives: n <= 32 values of a row ------------------------------------------
 *
 * stats_word: the plane-1 word (bit i set where q[i] < 0); sum |q| is added to *sum.
 * plane2_word: the plane-2 word for a beta_1 whose ceiling and floor in input steps are t_ceil
 * and t_floor (both clamped to 255: |q| <= 128): R_1 = q * 2^F - beta_1 sgn(q) is negative
 * where q >= 0 and |q| < t_ceil, or q < 0 and |q| > t_floor. The sum of the |q| below t_ceil
 * and their count are added to *below_sum and *below_count (for sum |R_1|, see
 * patch_beta2). Whole words take the instruction-set paths, a partial one the portable. */

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

static uint32_t plane2_word_portable(const int8_t *x, int32_t n, uint32_t t_ceil, uint32_t t_floor,
                                     uint32_t *below_sum, uint32_t *below_count)
{
    uint32_t bits = 0, s = 0, count = 0;
    for (int32_t i = 0; i < n; ++i) {
        const uint32_t a = magnitude(x[i]);
        const uint32_t below = a < t_ceil;
        bits |= (x[i] < 0 ? (uint32_t)(a > t_floor) : below) << i;
        s += below ? a : 0u;
        count += below;
    }
    *below_sum += s;
    *below_count += count;
    return bits;
}

#if defined(HORQ_ARM_MVE)
/* Helium: a compare of sixteen bytes gives a predicate with one bit per byte, which is the
 * word's half; VADDVA adds the bytes into a scalar. */
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

static uint32_t plane2_half(int8x16_t v, uint32_t t_ceil, uint32_t t_floor, uint32_t *below_sum,
                            uint32_t *below_count)
{
    const uint8x16_t a = vreinterpretq_u8_s8(vabsq_s8(v));
    const uint32_t negative = vcmpltq_n_s8(v, 0);
    const mve_pred16_t below = vpnot(vcmpcsq_n_u8(a, (uint8_t)t_ceil));
    const uint32_t above = vcmphiq_n_u8(a, (uint8_t)t_floor);
    *below_sum = vaddvaq_p_u8(*below_sum, a, below);
    *below_count = vaddvaq_p_u8(*below_count, vdupq_n_u8(1), below);
    return (((uint32_t)below & ~negative) | (above & negative)) & 0xFFFFu;
}

static uint32_t plane2_word(const int8_t *x, int32_t n, uint32_t t_ceil, uint32_t t_floor, uint32_t *below_sum,
                            uint32_t *below_count)
{
    if (n != HORQ_WORD_BITS) {
        return plane2_word_portable(x, n, t_ceil, t_floor, below_sum, below_count);
    }
    const uint32_t low = plane2_half(vld1q_s8(x), t_ceil, t_floor, below_sum, below_count);
    return low | (plane2_half(vld1q_s8(x + 16), t_ceil, t_floor, below_sum, below_count) << 16);
}

/* `words` whole words of plane 2 from contiguous values (a kernel row's run of pixels), the
 * sums in registers across the words. */
#define HORQ_PLANE2_RUN 1
static void plane2_run(const int8_t *x, int32_t words, uint32_t t_ceil, uint32_t t_floor, uint32_t *below_sum,
                       uint32_t *below_count, uint32_t *dst)
{
    const uint8x16_t ceil = vdupq_n_u8((uint8_t)t_ceil), ones = vdupq_n_u8(1);
    uint32_t s = *below_sum, count = *below_count;
    for (int32_t i = 0; i < words; ++i, x += HORQ_WORD_BITS) {
        uint32_t word = 0;
        for (int32_t half = 0; half < 2; ++half) {
            const int8x16_t v = vld1q_s8(x + 16 * half);
            const uint8x16_t a = vreinterpretq_u8_s8(vabsq_s8(v));
            const mve_pred16_t below = vcmphiq_u8(ceil, a);
            const uint32_t negative = vcmpltq_n_s8(v, 0), above = vcmphiq_n_u8(a, (uint8_t)t_floor);
            s = vaddvaq_p_u8(s, a, below);
            count = vaddvaq_p_u8(count, ones, below);
            word |= ((((uint32_t)below & ~negative) | (above & negative)) & 0xFFFFu) << (16 * half);
        }
        dst[i] = word;
    }
    *below_sum = s;
    *below_count = count;
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

static uint32_t plane2_half(int8x16_t v, uint32_t t_ceil, uint32_t t_floor, uint32_t *below_sum,
                            uint32_t *below_count)
{
    const uint8x16_t a = vreinterpretq_u8_s8(vabsq_s8(v));
    const uint8x16_t below = vcltq_u8(a, vdupq_n_u8((uint8_t)t_ceil));
    const uint8x16_t above = vcgtq_u8(a, vdupq_n_u8((uint8_t)t_floor));
    *below_sum += vaddlvq_u8(vandq_u8(a, below));
    *below_count += vaddlvq_u8(vandq_u8(below, vdupq_n_u8(1)));
    return mask_bits(vbslq_u8(vcltzq_s8(v), above, below));
}

static uint32_t plane2_word(const int8_t *x, int32_t n, uint32_t t_ceil, uint32_t t_floor, uint32_t *below_sum,
                            uint32_t *below_count)
{
    if (n != HORQ_WORD_BITS) {
        return plane2_word_portable(x, n, t_ceil, t_floor, below_sum, below_count);
    }
    const uint32_t low = plane2_half(vld1q_s8(x), t_ceil, t_floor, below_sum, below_count);
    return low | (plane2_half(vld1q_s8(x + 16), t_ceil, t_floor, below_sum, below_count) << 16);
}

#elif defined(HORQ_ARM_DSP)
/* Cortex-M4/M7: four bytes per word. SSUB8/USUB8 set a GE flag per byte, SEL picks bytes by
 * them, USADA8 adds four bytes; bytes of 0 or 1 become four bits by one multiply (bit 8i
 * lands on bit 24 + i, and no two partial products meet). */
static inline uint32_t byte_bits(uint32_t bytes01)
{
    return (bytes01 * 0x01020408u) >> 24;
}

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

static uint32_t plane2_word(const int8_t *x, int32_t n, uint32_t t_ceil, uint32_t t_floor, uint32_t *below_sum,
                            uint32_t *below_count)
{
    if (n != HORQ_WORD_BITS) {
        return plane2_word_portable(x, n, t_ceil, t_floor, below_sum, below_count);
    }
    const uint32_t ceil4 = t_ceil * 0x01010101u, floor4 = t_floor * 0x01010101u;
    uint32_t bits = 0, s = *below_sum, count = *below_count;
    for (int32_t j = 0; j < HORQ_WORD_BITS / 4; ++j) {
        const uint32_t w = load_word(x + 4 * j);
        const uint32_t negative = (w >> 7) & 0x01010101u;
        const uint32_t a = byte_magnitudes(w);
        (void)__usub8((int32_t)a, (int32_t)ceil4); /* GE[i] where |q[i]| >= t_ceil */
        const uint32_t below = (uint32_t)__sel(0, 0x01010101);
        s = __usada8((uint32_t)__sel(0, (int32_t)a), 0u, s);
        count = __usada8(below, 0u, count);
        (void)__usub8((int32_t)floor4, (int32_t)a); /* GE[i] where |q[i]| <= t_floor */
        const uint32_t above = (uint32_t)__sel(0, 0x01010101);
        bits |= byte_bits(below ^ ((below ^ above) & negative)) << (4 * j);
    }
    *below_sum = s;
    *below_count = count;
    return bits;
}

/* A run of whole words. Where beta_1 is not a whole number of steps (t_ceil = t_floor + 1, all
 * but one patch in 256), "below t_ceil" is "at most t_floor", one USUB8, and plane 2 is that
 * test for q >= 0 and its negation for q < 0: below XOR the sign. */
#define HORQ_PLANE2_RUN 1
static void plane2_run(const int8_t *x, int32_t words, uint32_t t_ceil, uint32_t t_floor, uint32_t *below_sum,
                       uint32_t *below_count, uint32_t *dst)
{
    uint32_t s = *below_sum, count = *below_count;
    if (t_ceil == t_floor) {
        for (int32_t i = 0; i < words; ++i) {
            dst[i] = plane2_word(x + i * HORQ_WORD_BITS, HORQ_WORD_BITS, t_ceil, t_floor, &s, &count);
        }
    } else {
        const uint32_t floor4 = t_floor * 0x01010101u;
        for (int32_t i = 0; i < words; ++i, x += HORQ_WORD_BITS) {
            uint32_t bits = 0;
            for (int32_t j = 0; j < HORQ_WORD_BITS / 4; ++j) {
                const uint32_t w = load_word(x + 4 * j);
                const uint32_t a = byte_magnitudes(w);
                (void)__usub8((int32_t)floor4, (int32_t)a); /* GE[i] where |q[i]| <= t_floor */
                const uint32_t below = (uint32_t)__sel(0x01010101, 0);
                s = __usada8((uint32_t)__sel((int32_t)a, 0), 0u, s);
                count = __usada8(below, 0u, count);
                bits |= byte_bits(below ^ ((w >> 7) & 0x01010101u)) << (4 * j);
            }
            dst[i] = bits;
        }
    }
    *below_sum = s;
    *below_count = count;
}

#else
#define stats_word stats_word_portable
#define plane2_word plane2_word_portable
#endif

#if !defined(HORQ_PLANE2_RUN)
static void plane2_run(const int8_t *x, int32_t words, uint32_t t_ceil, uint32_t t_floor, uint32_t *below_sum,
                       uint32_t *below_count, uint32_t *dst)
{
    uint32_t s = *below_sum, count = *below_count; /* in locals: dst could alias the sums */
    for (int32_t i = 0; i < words; ++i) {
        dst[i] = plane2_word(x + i * HORQ_WORD_BITS, HORQ_WORD_BITS, t_ceil, t_floor, &s, &count);
    }
    *below_sum = s;
    *below_count = count;
}
#endif

/* ---- planes 1 and 2 from sums ----------------------------------------------------------- */

typedef struct {
    int32_t beta;
    uint32_t t_ceil, t_floor; /* beta in input steps, rounded up and down, clamped to 255 */
} plane2_threshold;

static plane2_threshold threshold_of(int32_t beta)
{
    const uint32_t b = (uint32_t)beta, top = 255u;
    const uint32_t up = (b + UNIT - 1u) >> HORQ_RESIDUAL_BITS, down = b >> HORQ_RESIDUAL_BITS;
    const plane2_threshold t = {beta, up < top ? up : top, down < top ? down : top};
    return t;
}

/* beta_2 from sum |R_1| = sum | |q| 2^F - beta_1 | over n values of which `below_count` have
 * |q| < t_ceil (their |q| summing to `below_sum`) and the rest not, padding zeros included:
 *     sum |R_1| = 2^F (S - 2 below_sum) + beta_1 (2 below_count - n),   S = sum |q|. */
static int32_t beta2_of(uint64_t abs_sum, uint32_t below_sum, uint32_t below_count, int32_t beta1, uint32_t n)
{
    const int64_t total = ((int64_t)abs_sum - 2 * (int64_t)below_sum) * UNIT +
                          (int64_t)beta1 * (2 * (int64_t)below_count - (int64_t)n);
    return rounded_mean((uint64_t)total, n);
}

static uint32_t low_bits(int32_t n)
{
    return n >= HORQ_WORD_BITS ? 0xFFFFFFFFu : (1u << n) - 1u;
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
    uint32_t below_sum = 0, below_count = 0;
    for (int32_t r = 0; r < rows; ++r) {
        for (int32_t w = 0; w < words; ++w) {
            const int32_t first = w * HORQ_WORD_BITS;
            const int32_t bits = cols - first < HORQ_WORD_BITS ? cols - first : HORQ_WORD_BITS;
            planes[(ptrdiff_t)plane_stride + (ptrdiff_t)r * words + w] =
                plane2_word(values + (ptrdiff_t)r * cols + first, bits, t.t_ceil, t.t_floor, &below_sum, &below_count);
        }
    }
    if (fixed) {
        betas[1] = fixed[1];
    } else {
        below_count += t.t_ceil > 0 ? (uint32_t)pad_count : 0u; /* a padding zero is below any beta_1 > 0 */
        betas[1] = beta2_of(abs_sum, below_sum, below_count, betas[0], n);
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

void horq_patch_planes_i8(const horq_window *w, const int8_t *input, const uint32_t *pixel_sums,
                          const uint32_t *sign_words, int32_t oy, int32_t ox, int32_t order, float *betas,
                          uint32_t *planes, int32_t plane_stride)
{
    const int32_t c = w->in.c, in_h = w->in.h, in_w = w->in.w, kernel_h = w->kernel_h, kernel_w = w->kernel_w;
    const int32_t cw = HORQ_WORDS_FOR(c);
    const int32_t iy0 = oy * w->stride_h - w->pad_h, ix0 = ox * w->stride_w - w->pad_w;
    const uint32_t n = (uint32_t)(kernel_h * kernel_w * c);
    /* Plane 1 and S = sum |q| from the pixels' words and sums; padding is 0 (bit 0, |q| 0). */
    uint64_t abs_sum = 0;
    uint32_t real_values = 0;
    uint32_t *dst = planes;
    for (int32_t ky = 0; ky < kernel_h; ++ky) {
        const int32_t iy = iy0 + ky;
        for (int32_t ix = ix0; ix < ix0 + kernel_w; ++ix, dst += cw) {
            if ((uint32_t)iy < (uint32_t)in_h && (uint32_t)ix < (uint32_t)in_w) {
                const ptrdiff_t pix = (ptrdiff_t)iy * in_w + ix;
                abs_sum += pixel_sums[pix];
                real_values += (uint32_t)c;
                memcpy(dst, sign_words + pix * cw, (size_t)cw * sizeof *dst);
            } else {
                memset(dst, 0, (size_t)cw * sizeof *dst);
            }
        }
    }
    const int32_t beta1 = rounded_mean(abs_sum << HORQ_RESIDUAL_BITS, n);
    betas[0] = (float)beta1;
    if (order < 2) {
        return;
    }
    /* Plane 2: a padding zero has R_1 = -beta_1, negative (all bits set) where beta_1 > 0. */
    const plane2_threshold t = threshold_of(beta1);
    uint32_t below_sum = 0, below_count = t.t_ceil > 0 ? n - real_values : 0u;
    const uint32_t pad_word = beta1 > 0 ? 0xFFFFFFFFu : 0u;
    dst = planes + plane_stride;
    if (c % HORQ_WORD_BITS == 0) {
        /* The usual case, whole words: each kernel row is padding, a run of contiguous pixels, padding. */
        const int32_t lo = ix0 < 0 ? 0 : ix0, hi = ix0 + kernel_w > in_w ? in_w : ix0 + kernel_w;
        const int32_t run = hi > lo ? hi - lo : 0, left = (lo - ix0) * cw, right = (kernel_w - run) * cw - left;
        for (int32_t ky = 0; ky < kernel_h; ++ky) {
            const int32_t iy = iy0 + ky;
            if ((uint32_t)iy >= (uint32_t)in_h) {
                for (int32_t i = 0; i < kernel_w * cw; ++i) {
                    *dst++ = pad_word;
                }
                continue;
            }
            for (int32_t i = 0; i < left; ++i) {
                *dst++ = pad_word;
            }
            plane2_run(input + ((ptrdiff_t)iy * in_w + lo) * c, run * cw, t.t_ceil, t.t_floor, &below_sum,
                       &below_count, dst);
            dst += run * cw;
            for (int32_t i = 0; i < right; ++i) {
                *dst++ = pad_word;
            }
        }
        betas[1] = (float)beta2_of(abs_sum, below_sum, below_count, beta1, n);
        return;
    }
    for (int32_t ky = 0; ky < kernel_h; ++ky) {
        const int32_t iy = iy0 + ky;
        for (int32_t ix = ix0; ix < ix0 + kernel_w; ++ix, dst += cw) {
            const int inside = (uint32_t)iy < (uint32_t)in_h && (uint32_t)ix < (uint32_t)in_w;
            for (int32_t i = 0; i < cw; ++i) {
                const int32_t bits = i + 1 < cw ? HORQ_WORD_BITS : c - i * HORQ_WORD_BITS;
                dst[i] = !inside ? (beta1 > 0 ? low_bits(bits) : 0u)
                                 : plane2_word(input + ((ptrdiff_t)iy * in_w + ix) * c + i * HORQ_WORD_BITS, bits,
                                               t.t_ceil, t.t_floor, &below_sum, &below_count);
            }
        }
    }
    betas[1] = (float)beta2_of(abs_sum, below_sum, below_count, beta1, n);
}
