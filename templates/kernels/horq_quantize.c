/* Order-K residual binarization (shared/HORQ.md, "Inputs"). */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "horq_kernels.h"

#if defined(HORQ_ARM_MVE)
#include <arm_mve.h>
#elif defined(HORQ_ARM_NEON)
#include <arm_neon.h>
#endif

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
            const float *row = values + (ptrdiff_t)r * cols;
            float row_sum = 0.0f;
            if (k == 0) { /* the same operations as residual_after's, without its loop */
                for (int32_t i = 0; i < cols; ++i) {
                    row_sum += fabsf(row[i]);
                }
            } else if (k == 1) {
                const float b = betas[0];
                for (int32_t i = 0; i < cols; ++i) {
                    row_sum += fabsf((row[i] >= 0.0f) ? row[i] - b : row[i] + b);
                }
            } else {
                for (int32_t i = 0; i < cols; ++i) {
                    row_sum += fabsf(residual_after(row[i], betas, k));
                }
            }
            sum += row_sum;
        }
        if (pad_count > 0) {
            sum += (float)pad_count * fabsf(residual_after(0.0f, betas, k));
        }
        betas[k] = sum / (float)(count + pad_count);
    }
}

#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
#define HORQ_TWO_PLANES_WORD 1
/* Planes 1 and 2 of 32 values with a fixed beta, four at a time: the threshold
 * is beta where x >= 0 and -beta elsewhere (NaN included), and a bit is set where
 * the test fails, so NaN counts as negative in both planes. */
static void two_planes_word(const float *x, float up, float down, uint32_t *signs_out, uint32_t *seconds_out)
{
    static const uint32_t first_weights[4] = {1u, 2u, 4u, 8u};
    uint32x4_t weight = vld1q_u32(first_weights), signs = vdupq_n_u32(0), seconds = vdupq_n_u32(0);
    const float32x4_t upv = vdupq_n_f32(up), downv = vdupq_n_f32(down);
#if defined(HORQ_ARM_MVE)
#pragma GCC unroll 1
    for (int32_t k = 0; k < HORQ_WORD_BITS / 4; ++k, x += 4) {
        const float32x4_t v = vld1q_f32(x);
        const mve_pred16_t ge = vcmpgeq_n_f32(v, 0.0f);
        const mve_pred16_t above = vcmpgeq_f32(v, vpselq_f32(upv, downv, ge));
        signs = vorrq_m_u32(signs, signs, weight, vpnot(ge));
        seconds = vorrq_m_u32(seconds, seconds, weight, vpnot(above));
        weight = vshlq_n_u32(weight, 4);
    }
#else
    const float32x4_t zero = vdupq_n_f32(0.0f);
#pragma GCC unroll 8
    for (int32_t k = 0; k < HORQ_WORD_BITS / 4; ++k, x += 4) {
        const float32x4_t v = vld1q_f32(x);
        const uint32x4_t ge = vcgeq_f32(v, zero);
        const uint32x4_t above = vcgeq_f32(v, vbslq_f32(ge, upv, downv));
        signs = vorrq_u32(signs, vbicq_u32(weight, ge));
        seconds = vorrq_u32(seconds, vbicq_u32(weight, above));
        weight = vshlq_n_u32(weight, 4);
    }
#endif
    *signs_out = vaddvq_u32(signs);
    *seconds_out = vaddvq_u32(seconds);
}

#elif defined(HORQ_ARM_DSP) && defined(__GNUC__) && defined(__thumb2__) && defined(__ARM_FP)
#define HORQ_TWO_PLANES_WORD 1
#if defined(HORQ_FPV5)
/* Value I of eight in s16-s23, planes 1 and 2 with a fixed beta: "less than" after
 * vcmpe holds for NaN too, so it is !(x >= 0) and !(x >= t); vselge picks the
 * threshold t = beta for x >= 0 and -beta otherwise (NaN included). 9 instructions,
 * against about 20 from GCC. */
#define TWO_PLANES_ONE(S, BIT)                                                                  \
    "vcmpe.f32 " S ", #0\n\t"                                                                   \
    "vmrs APSR_nzcv, fpscr\n\t"                                                                 \
    "vselge.f32 s24, %[up], %[down]\n\t"                                                        \
    "it lt\n\t"                                                                                 \
    "orrlt %[signs], %[signs], #(1 << (" BIT "))\n\t"                                           \
    "vcmpe.f32 " S ", s24\n\t"                                                                  \
    "vmrs APSR_nzcv, fpscr\n\t"                                                                 \
    "it lt\n\t"                                                                                 \
    "orrlt %[seconds], %[seconds], #(1 << (" BIT "))\n\t"
#else
/* FPv4 (Cortex-M4) has no vsel: the second compare itself is conditional, against
 * -beta where "less than" (x < 0 or NaN) and against beta otherwise. Also 9. */
#define TWO_PLANES_ONE(S, BIT)                                                                  \
    "vcmpe.f32 " S ", #0\n\t"                                                                   \
    "vmrs APSR_nzcv, fpscr\n\t"                                                                 \
    "itte lt\n\t"                                                                               \
    "orrlt %[signs], %[signs], #(1 << (" BIT "))\n\t"                                           \
    "vcmpelt.f32 " S ", %[down]\n\t"                                                            \
    "vcmpege.f32 " S ", %[up]\n\t"                                                              \
    "vmrs APSR_nzcv, fpscr\n\t"                                                                 \
    "it lt\n\t"                                                                                 \
    "orrlt %[seconds], %[seconds], #(1 << (" BIT "))\n\t"
#endif
#define TWO_PLANES_EIGHT(BASE)                                                                  \
    "vldmia %[x]!, {s16-s23}\n\t"                                                               \
    TWO_PLANES_ONE("s16", BASE "+0") TWO_PLANES_ONE("s17", BASE "+1") TWO_PLANES_ONE("s18", BASE "+2") \
    TWO_PLANES_ONE("s19", BASE "+3") TWO_PLANES_ONE("s20", BASE "+4") TWO_PLANES_ONE("s21", BASE "+5") \
    TWO_PLANES_ONE("s22", BASE "+6") TWO_PLANES_ONE("s23", BASE "+7")

static void two_planes_word(const float *x, float up, float down, uint32_t *signs_out, uint32_t *seconds_out)
{
    uint32_t signs = 0, seconds = 0;
    __asm__ volatile(TWO_PLANES_EIGHT("0") TWO_PLANES_EIGHT("8") TWO_PLANES_EIGHT("16") TWO_PLANES_EIGHT("24")
                     : [x] "+r"(x), [signs] "+r"(signs), [seconds] "+r"(seconds)
                     : [up] "t"(up), [down] "t"(down), "m"(*(const float(*)[32])x)
                     : "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "s24", "cc");
    *signs_out = signs;
    *seconds_out = seconds;
}
#endif

#if defined(HORQ_ARM_NEON)
/* NEON, orders 1 and 2 with a finite beta_1, whole words: 32 values a word, compared four
 * at a time (fcmge: NaN is not >= anything, so it counts as negative, as the scalar code's
 * !(x >= 0)); the masks narrowed to bytes by uzp1, each byte's bit kept by bic against the
 * bit's weight (a bit 1 where the compare failed), the bytes summed by three addp into the word. */
static const uint8_t neon_bit_weights[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};

static inline uint32x4_t neon_pack_word(const uint32x4_t *ge, uint8x16_t weights)
{
    const uint8x16_t lo = vuzp1q_u8(vreinterpretq_u8_u16(vuzp1q_u16(vreinterpretq_u16_u32(ge[0]),
                                                                    vreinterpretq_u16_u32(ge[1]))),
                                    vreinterpretq_u8_u16(vuzp1q_u16(vreinterpretq_u16_u32(ge[2]),
                                                                    vreinterpretq_u16_u32(ge[3]))));
    const uint8x16_t hi = vuzp1q_u8(vreinterpretq_u8_u16(vuzp1q_u16(vreinterpretq_u16_u32(ge[4]),
                                                                    vreinterpretq_u16_u32(ge[5]))),
                                    vreinterpretq_u8_u16(vuzp1q_u16(vreinterpretq_u16_u32(ge[6]),
                                                                    vreinterpretq_u16_u32(ge[7]))));
    uint8x16_t b = vpaddq_u8(vbicq_u8(weights, lo), vbicq_u8(weights, hi));
    b = vpaddq_u8(b, b);
    return vreinterpretq_u32_u8(vpaddq_u8(b, b));
}

static inline __attribute__((always_inline)) void neon_binarize_words(const float *x, int32_t words,
                                                                       int32_t order, float up, uint32_t *planes,
                                                                       int32_t plane_stride)
{
    const uint8x16_t weights = vld1q_u8(neon_bit_weights);
    const float32x4_t upv = vdupq_n_f32(up), downv = vdupq_n_f32(-up);
    for (int32_t w = 0; w < words; ++w, x += 32) {
        const float32x4x4_t a = vld1q_f32_x4(x), b = vld1q_f32_x4(x + 16);
        const float32x4_t v[8] = {a.val[0], a.val[1], a.val[2], a.val[3], b.val[0], b.val[1], b.val[2], b.val[3]};
        uint32x4_t ge[8], second[8];
        _Pragma("GCC unroll 8") for (int i = 0; i < 8; ++i) {
            ge[i] = vcgezq_f32(v[i]);
            if (order == 2) { /* x >= beta_1 where x >= 0, x >= -beta_1 elsewhere */
                second[i] = vcgeq_f32(v[i], vbslq_f32(ge[i], upv, downv));
            }
        }
        vst1q_lane_u32(planes + w, neon_pack_word(ge, weights), 0);
        if (order == 2) {
            vst1q_lane_u32(planes + plane_stride + w, neon_pack_word(second, weights), 0);
        }
    }
}

/* horq_pixel_stats on NEON, rows of whole words: per word the compares and |x| of 32 values,
 * the four lanes' sums in stats_word's order, the sign word packed as above. */
static inline __attribute__((always_inline)) void neon_stats_rows(const float *x, int32_t rows, int32_t words,
                                                                  float *sums, uint32_t *sign_words,
                                                                  float *magnitudes, const int keep)
{
    const uint8x16_t weights = vld1q_u8(neon_bit_weights);
    for (int32_t r = 0; r < rows; ++r) {
        float32x4_t sum = vdupq_n_f32(0.0f);
        for (int32_t w = 0; w < words; ++w, x += 32) {
            const float32x4x4_t a = vld1q_f32_x4(x), b = vld1q_f32_x4(x + 16);
            const float32x4_t v[8] = {a.val[0], a.val[1], a.val[2], a.val[3], b.val[0], b.val[1], b.val[2], b.val[3]};
            uint32x4_t ge[8];
            float32x4_t m[8];
            _Pragma("GCC unroll 8") for (int i = 0; i < 8; ++i) {
                ge[i] = vcgezq_f32(v[i]);
                m[i] = vabsq_f32(v[i]);
                sum = vaddq_f32(sum, m[i]);
            }
            if (keep) {
                const float32x4x4_t m0 = {{m[0], m[1], m[2], m[3]}}, m1 = {{m[4], m[5], m[6], m[7]}};
                vst1q_f32_x4(magnitudes, m0);
                vst1q_f32_x4(magnitudes + 16, m1);
                magnitudes += 32;
            }
            vst1q_lane_u32(sign_words++, neon_pack_word(ge, weights), 0);
        }
        const float32x4_t pairs = vpaddq_f32(sum, sum); /* (l0 + l1), (l2 + l3) */
        sums[r] = vpadds_f32(vget_low_f32(pairs));
    }
}

static __attribute__((noinline)) void neon_stats(const float *x, int32_t rows, int32_t words, float *sums,
                                                 uint32_t *sign_words)
{
    neon_stats_rows(x, rows, words, sums, sign_words, NULL, 0);
}

static __attribute__((noinline)) void neon_stats_magnitudes(const float *x, int32_t rows, int32_t words,
                                                            float *sums, uint32_t *sign_words, float *magnitudes)
{
    neon_stats_rows(x, rows, words, sums, sign_words, magnitudes, 1);
}

static __attribute__((noinline)) void neon_binarize_order1(const float *x, int32_t words, uint32_t *planes)
{
    neon_binarize_words(x, words, 1, 0.0f, planes, 0);
}

static __attribute__((noinline)) void neon_binarize_order2(const float *x, int32_t words, float up,
                                                           uint32_t *planes, int32_t plane_stride)
{
    neon_binarize_words(x, words, 2, up, planes, plane_stride);
}
#endif

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
    /* Orders 1 and 2 with a finite beta_1 (static layers, mostly): R_1 = x -+ beta_1 is not
     * formed; its sign bit !(R_1 >= 0) is !(x >= beta_1) for x >= 0 and !(x >= -beta_1)
     * otherwise, as the sign of a sum of a float and a finite float is exact. */
    if (order <= 2 && (order == 1 || betas[0] - betas[0] == 0.0f)) {
        const float up = order == 2 ? betas[0] : 0.0f, down = -up;
#if defined(HORQ_ARM_NEON)
        if (cols % HORQ_WORD_BITS == 0) { /* the rows' words one after another */
            if (order == 1) {
                neon_binarize_order1(values, rows * words, planes);
            } else {
                neon_binarize_order2(values, rows * words, up, planes, plane_stride);
            }
            return;
        }
#endif
        for (int32_t r = 0; r < rows; ++r) {
            const float *row = values + (ptrdiff_t)r * cols;
            for (int32_t w = 0; w < words; ++w) {
                const int32_t first = w * HORQ_WORD_BITS;
                const int32_t n = (cols - first < HORQ_WORD_BITS) ? cols - first : HORQ_WORD_BITS;
                uint32_t signs = 0, seconds = 0;
#if defined(HORQ_TWO_PLANES_WORD)
                if (n == HORQ_WORD_BITS) {
                    two_planes_word(row + first, up, down, &signs, &seconds);
                    planes[(ptrdiff_t)r * words + w] = signs;
                    if (order == 2) {
                        planes[(ptrdiff_t)plane_stride + (ptrdiff_t)r * words + w] = seconds;
                    }
                    continue;
                }
#endif
                for (int32_t i = 0; i < n; ++i) {
                    const float x = row[first + i];
                    const uint32_t negative = !(x >= 0.0f); /* NaN counts as negative */
                    signs |= negative << i;
                    seconds |= (uint32_t)!(x >= (negative ? down : up)) << i;
                }
                planes[(ptrdiff_t)r * words + w] = signs;
                if (order == 2) {
                    planes[(ptrdiff_t)plane_stride + (ptrdiff_t)r * words + w] = seconds;
                }
            }
        }
        return;
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

/* ---- word primitives of the patch quantizer ---------------------------------
 *
 * stats_word: the plane-1 sign word of n <= 32 values, |x| added to four lane
 * sums (value i to lane i % 4), and |x| stored when `magnitudes` is not NULL.
 * plane2_word: the bits of |x| < beta of n <= 32 magnitudes, min(|x|, beta)
 * added to the lanes (value i to lane (first_lane + i) % 4). The lanes end as (lane0 + lane1) + (lane2 + lane3)
 * (lanes_total): the reference's lane_sum, one order for every target, so that
 * NEON and Helium add four values at once and the scalar code keeps four
 * accumulators. Whole words take the instruction-set paths; a last partial
 * word (channels not a multiple of 32) the portable one.
 *
 * The "below" test: for non-negative floats and a beta that is neither 0 nor
 * NaN, |x| < beta is bits(|x|) <= bits(beta) - 1 = limit as unsigned integers;
 * a NaN |x| has larger bits than any such beta, so it is not below, as with the
 * float compare. Nothing is below a beta of 0 or NaN (any_below = beta > 0). */


static inline float lanes_total(const float lanes[4])
{
    return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}

static uint32_t stats_word_portable(const float *x, int32_t n, float lanes[4], float *magnitudes)
{
    uint32_t bits = 0;
    for (int32_t i = 0; i < n; ++i) {
        const float a = fabsf(x[i]);
        bits |= (uint32_t)!(x[i] >= 0.0f) << i; /* NaN counts as negative */
        lanes[i % 4] += a;
        if (magnitudes != NULL) {
            magnitudes[i] = a;
        }
    }
    return bits;
}

static uint32_t plane2_word_portable(const float *a, int32_t n, float beta, uint32_t limit, int any_below,
                                     float lanes[4], int32_t first_lane)
{
    uint32_t mask = 0;
    for (int32_t i = 0; i < n; ++i) {
        uint32_t bits;
        memcpy(&bits, &a[i], sizeof bits);
        mask |= (uint32_t)(any_below && bits <= limit) << i;
        lanes[(first_lane + i) % 4] += fminf(a[i], beta);
    }
    return mask;
}

#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
/* Helium and NEON: four values per vector, lane j of vector k is value 4k + j,
 * so its bit weight is (1 << j) << 4k; the weights of a word's bits are
 * disjoint, so adding them across lanes gives the word. */
#if defined(HORQ_ARM_MVE)
/* Helium: the sign test through a predicate (a predicated OR). The "below" test
 * without one: |x| and beta are below 2^31 as integers, so bits(|x|) - bits(beta)
 * is negative exactly when |x| < beta, and its top bit, shifted down and
 * multiplied by the weight, adds the bit; GCC 12 moves predicates through core
 * registers and spills, so this is shorter. The loops are not unrolled: with
 * eight vector registers, unrolled loads only spill. */
#define Q_OR_WHERE_NOT_GE_ZERO(bits, v, w) vorrq_m_u32((bits), (bits), (w), vpnot(vcmpgeq_n_f32((v), 0.0f)))
#define Q_OR_WHERE_AT_MOST(bits, a, lim, w) \
    vaddq_u32((bits), vmulq_u32(vshrq_n_u32(vsubq_u32((a), vaddq_n_u32((lim), 1u)), 31), (w)))
#define Q_UNROLL _Pragma("GCC unroll 1")
#else
#define Q_OR_WHERE_NOT_GE_ZERO(bits, v, w) vorrq_u32((bits), vbicq_u32((w), vcgeq_f32((v), vdupq_n_f32(0.0f))))
#define Q_OR_WHERE_AT_MOST(bits, a, lim, w) vorrq_u32((bits), vandq_u32((w), vcleq_u32((a), (lim))))
#define Q_UNROLL _Pragma("GCC unroll 8")
#endif

static uint32_t stats_word(const float *x, int32_t n, float lanes[4], float *magnitudes)
{
    if (n != HORQ_WORD_BITS) {
        return stats_word_portable(x, n, lanes, magnitudes);
    }
    static const uint32_t first_weights[4] = {1u, 2u, 4u, 8u};
    uint32x4_t weight = vld1q_u32(first_weights), bits = vdupq_n_u32(0);
    float32x4_t sum = vld1q_f32(lanes);
    if (magnitudes != NULL) {
Q_UNROLL
        for (int32_t k = 0; k < HORQ_WORD_BITS / 4; ++k, x += 4, magnitudes += 4) {
            const float32x4_t v = vld1q_f32(x);
            const float32x4_t a = vabsq_f32(v);
            bits = Q_OR_WHERE_NOT_GE_ZERO(bits, v, weight);
            sum = vaddq_f32(sum, a);
            vst1q_f32(magnitudes, a);
            weight = vshlq_n_u32(weight, 4);
        }
    } else {
Q_UNROLL
        for (int32_t k = 0; k < HORQ_WORD_BITS / 4; ++k, x += 4) {
            const float32x4_t v = vld1q_f32(x);
            bits = Q_OR_WHERE_NOT_GE_ZERO(bits, v, weight);
            sum = vaddq_f32(sum, vabsq_f32(v));
            weight = vshlq_n_u32(weight, 4);
        }
    }
    vst1q_f32(lanes, sum);
    return vaddvq_u32(bits);
}

static uint32_t plane2_word(const float *a, int32_t n, float beta, uint32_t limit, int any_below, float lanes[4],
                            int32_t first_lane)
{
    if (n != HORQ_WORD_BITS || !any_below || first_lane != 0) {
        return plane2_word_portable(a, n, beta, limit, any_below, lanes, first_lane);
    }
    static const uint32_t first_weights[4] = {1u, 2u, 4u, 8u};
    uint32x4_t weight = vld1q_u32(first_weights), bits = vdupq_n_u32(0);
    const uint32x4_t lim = vdupq_n_u32(limit);
    const float32x4_t b = vdupq_n_f32(beta);
    float32x4_t sum = vld1q_f32(lanes);
Q_UNROLL
    for (int32_t k = 0; k < HORQ_WORD_BITS / 4; ++k, a += 4) {
        const float32x4_t v = vld1q_f32(a);
        bits = Q_OR_WHERE_AT_MOST(bits, vreinterpretq_u32_f32(v), lim, weight);
        sum = vaddq_f32(sum, vminnmq_f32(v, b));
        weight = vshlq_n_u32(weight, 4);
    }
    vst1q_f32(lanes, sum);
    return vaddvq_u32(bits);
}

#elif defined(HORQ_ARM_DSP) && defined(__GNUC__) && defined(__thumb2__) && defined(__ARM_FP)
/* Cortex-M4/M7: inline assembly blocks with the four lanes in FPU registers. */

/* Value I of eight in s16-s23: the sign test !(x >= 0) (vcmpe, then "less
 * than", which holds for NaN too) sets bit BASE + I; |x| joins lane LANE. */
#define STATS_ONE(S, BIT, LANE)                                                                 \
    "vcmpe.f32 " S ", #0\n\t"                                                                   \
    "vmrs APSR_nzcv, fpscr\n\t"                                                                 \
    "it lt\n\t"                                                                                 \
    "orrlt %[bits], %[bits], #(1 << (" BIT "))\n\t"                                             \
    "vabs.f32 " S ", " S "\n\t"                                                                 \
    "vadd.f32 %[" LANE "], %[" LANE "], " S "\n\t"
#define STATS_EIGHT(BASE)                                                                       \
    "vldmia %[x]!, {s16-s23}\n\t"                                                               \
    STATS_ONE("s16", BASE "+0", "l0") STATS_ONE("s17", BASE "+1", "l1")                         \
    STATS_ONE("s18", BASE "+2", "l2") STATS_ONE("s19", BASE "+3", "l3")                         \
    STATS_ONE("s20", BASE "+4", "l0") STATS_ONE("s21", BASE "+5", "l1")                         \
    STATS_ONE("s22", BASE "+6", "l2") STATS_ONE("s23", BASE "+7", "l3")
#define STATS_OUTPUTS [x] "+r"(x), [bits] "+r"(bits), [l0] "+t"(l0), [l1] "+t"(l1), [l2] "+t"(l2), [l3] "+t"(l3)
#define STATS_CLOBBERS "s16", "s17", "s18", "s19", "s20", "s21", "s22", "s23", "cc"

/* 32 values: about 6.3 instructions each, against 19 in C. */
static uint32_t stats_word(const float *x, int32_t n, float lanes[4], float *magnitudes)
{
    if (n != HORQ_WORD_BITS) {
        return stats_word_portable(x, n, lanes, magnitudes);
    }
    uint32_t bits = 0;
    float l0 = lanes[0], l1 = lanes[1], l2 = lanes[2], l3 = lanes[3];
    if (magnitudes == NULL) {
        __asm__ volatile(STATS_EIGHT("0") STATS_EIGHT("8") STATS_EIGHT("16") STATS_EIGHT("24")
                         : STATS_OUTPUTS
                         : "m"(*(const float(*)[32])x)
                         : STATS_CLOBBERS);
    } else {
        __asm__ volatile(STATS_EIGHT("0") "vstmia %[a]!, {s16-s23}\n\t" STATS_EIGHT("8") "vstmia %[a]!, {s16-s23}\n\t"
                         STATS_EIGHT("16") "vstmia %[a]!, {s16-s23}\n\t" STATS_EIGHT("24") "vstmia %[a]!, {s16-s23}\n\t"
                         : STATS_OUTPUTS, [a] "+r"(magnitudes), "=m"(*(float(*)[32])magnitudes)
                         : "m"(*(const float(*)[32])x)
                         : STATS_CLOBBERS);
    }
    lanes[0] = l0, lanes[1] = l1, lanes[2] = l2, lanes[3] = l3;
    return bits;
}

/* HORQ_FPV5 comes from the target's flags (targets/cortex-m7.toml): the compiler's
 * macros do not tell an FPv5 (Cortex-M7, which has vminnm and vsel) from an FPv4
 * (Cortex-M4). Not at -O0, where the frame pointer takes r7, which the asm needs. */
#if defined(__OPTIMIZE__)
#if defined(HORQ_FPV5)
/* Eight magnitudes: the integer compare shifts each "below" bit into the mask
 * from the top (cmp + rrx), and vminnm + vadd add min(|x|, beta) to the lanes.
 * One ldm and one vldm fetch the eight as integers and as floats. */
#define PLANE2_ONE(R, S) "cmp %[limit], " R "\n\t" "rrx %[mask], %[mask]\n\t"
#define PLANE2_LANES(S0, S1, S2, S3)                                                              \
    "vminnm.f32 " S0 ", " S0 ", %[beta]\n\t" "vadd.f32 %[l0], %[l0], " S0 "\n\t"                 \
    "vminnm.f32 " S1 ", " S1 ", %[beta]\n\t" "vadd.f32 %[l1], %[l1], " S1 "\n\t"                 \
    "vminnm.f32 " S2 ", " S2 ", %[beta]\n\t" "vadd.f32 %[l2], %[l2], " S2 "\n\t"                 \
    "vminnm.f32 " S3 ", " S3 ", %[beta]\n\t" "vadd.f32 %[l3], %[l3], " S3 "\n\t"
#else
/* FPv4 (Cortex-M4) has no vminnm: where the compare says "not below" (carry
 * clear; rrx leaves the flags), a conditional vmov puts beta in the value's
 * place. The value's bits and beta's differ only where |x| >= beta (NaN
 * included), where min(|x|, beta) is beta. */
#define PLANE2_ONE(R, S) "cmp %[limit], " R "\n\t" "rrx %[mask], %[mask]\n\t" "it cc\n\t" "vmovcc.f32 " S ", %[beta]\n\t"
#define PLANE2_LANES(S0, S1, S2, S3)                                                              \
    "vadd.f32 %[l0], %[l0], " S0 "\n\t" "vadd.f32 %[l1], %[l1], " S1 "\n\t"                      \
    "vadd.f32 %[l2], %[l2], " S2 "\n\t" "vadd.f32 %[l3], %[l3], " S3 "\n\t"
#endif
#define PLANE2_EIGHT                                                                            \
    "ldmia %[a], {r4-r11}\n\t"                                                                  \
    "vldmia %[a]!, {s16-s23}\n\t"                                                               \
    PLANE2_ONE("r4", "s16") PLANE2_ONE("r5", "s17") PLANE2_ONE("r6", "s18") PLANE2_ONE("r7", "s19") \
    PLANE2_ONE("r8", "s20") PLANE2_ONE("r9", "s21") PLANE2_ONE("r10", "s22") PLANE2_ONE("r11", "s23") \
    PLANE2_LANES("s16", "s17", "s18", "s19") PLANE2_LANES("s20", "s21", "s22", "s23")

/* 32 magnitudes: 4.25 instructions each (5.25 on FPv4), against about 11 in C. */
static inline __attribute__((always_inline)) uint32_t plane2_word(const float *a, int32_t n, float beta,
                                                                  uint32_t limit, int any_below, float lanes[4],
                                                                  int32_t first_lane)
{
    if (n != HORQ_WORD_BITS || !any_below || first_lane != 0) {
        return plane2_word_portable(a, n, beta, limit, any_below, lanes, first_lane);
    }
    uint32_t mask = 0;
    float l0 = lanes[0], l1 = lanes[1], l2 = lanes[2], l3 = lanes[3];
    __asm__ volatile(PLANE2_EIGHT PLANE2_EIGHT PLANE2_EIGHT PLANE2_EIGHT
                     : [a] "+r"(a), [mask] "+r"(mask), [l0] "+t"(l0), [l1] "+t"(l1), [l2] "+t"(l2), [l3] "+t"(l3)
                     : [limit] "r"(limit), [beta] "t"(beta), "m"(*(const float(*)[32])a)
                     : "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "s16", "s17", "s18", "s19", "s20",
                       "s21", "s22", "s23", "cc");
    lanes[0] = l0, lanes[1] = l1, lanes[2] = l2, lanes[3] = l3;
    return mask;
}

/* `words` whole words of plane 2: dst[i] = first[i] ^ the below-mask of a[32 i ..].
 * The lanes stay in registers across the words (through plane2_word they would
 * go to memory and back for every word). */
#define HORQ_PLANE2_RUN 1
static void plane2_run(const float *a, int32_t words, const uint32_t *first, uint32_t *dst, float beta,
                       uint32_t limit, float lanes[4])
{
    float l0 = lanes[0], l1 = lanes[1], l2 = lanes[2], l3 = lanes[3];
    for (int32_t i = 0; i < words; ++i) {
        uint32_t mask = 0;
        __asm__ volatile(PLANE2_EIGHT PLANE2_EIGHT PLANE2_EIGHT PLANE2_EIGHT
                         : [a] "+r"(a), [mask] "+r"(mask), [l0] "+t"(l0), [l1] "+t"(l1), [l2] "+t"(l2),
                           [l3] "+t"(l3)
                         : [limit] "r"(limit), [beta] "t"(beta), "m"(*(const float(*)[32])a)
                         : "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "s16", "s17", "s18", "s19", "s20",
                           "s21", "s22", "s23", "cc");
        dst[i] = first[i] ^ mask;
    }
    lanes[0] = l0, lanes[1] = l1, lanes[2] = l2, lanes[3] = l3;
}
#else
#define plane2_word plane2_word_portable
#endif

#else
#define stats_word stats_word_portable
#define plane2_word plane2_word_portable
#endif

#if !defined(HORQ_PLANE2_RUN)
static void plane2_run(const float *a, int32_t words, const uint32_t *first, uint32_t *dst, float beta,
                       uint32_t limit, float lanes[4])
{
    for (int32_t i = 0; i < words; ++i, a += HORQ_WORD_BITS) {
        dst[i] = first[i] ^ plane2_word(a, HORQ_WORD_BITS, beta, limit, 1, lanes, 0);
    }
}
#endif

/* The Helium assembly below uses GCC's operand constraints ("Te", the "p0" clobber). */
#if defined(HORQ_ARM_MVE) && defined(__GNUC__) && !defined(__clang__)
#define HORQ_MVE_ASM 1
#endif

#if defined(HORQ_MVE_ASM)
/* Helium, channels a multiple of 32 (so every pixel is whole words and its values start at lane 0):
 * horq_pixel_stats and horq_patch_planes in inline assembly, every row of a call in one block of
 * low-overhead loops, ordered so that the Cortex-M55's in-order pipeline issues about one
 * instruction a cycle (llvm-mca). Vectors the blocks share with C are in registers the compiler
 * picks ("w"); the predicate register is clobbered as "p0" (GCC's name for VPR). */

/* Four values of a row (in q2): bit 4k + j of the word for lane j is set in q1 where x >= 0 (a
 * predicated OR of an immediate, 1 << 4k: the same bit in every lane, each lane's moved to its
 * place at the end), |x| is stored (when MAG_STORE is given) and added to the lanes in q0. The
 * word is the complement: !(x >= 0) sets a bit, so NaN counts as negative and -0.0 as positive. */
#define MVE_STATS_STEP(BIT, MAG_STORE)                                                          \
    "vldrw.u32 q2, [%[x]], #16\n\t"                                                             \
    "vpt.f32 ge, q2, zr\n\t"                                                                    \
    "vorrt.i32 q1, #" BIT "\n\t"                                                                \
    "vabs.f32 q2, q2\n\t"                                                                       \
    MAG_STORE                                                                                   \
    "vadd.f32 q0, q0, q2\n\t"
#define MVE_STATS_WORD(MAG_STORE)                                                               \
    "vmov.i32 q1, #0\n\t"                                                                       \
    MVE_STATS_STEP("0x1", MAG_STORE) MVE_STATS_STEP("0x10", MAG_STORE)                          \
    MVE_STATS_STEP("0x100", MAG_STORE) MVE_STATS_STEP("0x1000", MAG_STORE)                      \
    MVE_STATS_STEP("0x10000", MAG_STORE) MVE_STATS_STEP("0x100000", MAG_STORE)                  \
    MVE_STATS_STEP("0x1000000", MAG_STORE) MVE_STATS_STEP("0x10000000", MAG_STORE)
#define MVE_MAG_STORE "vstrw.32 q2, [%[m]], #16\n\t"
/* `rows` >= 1 rows of `words` >= 1 words: each word's sign bits, then the row's lanes (q0 =
 * s0-s3) added as (lane0 + lane1) + (lane2 + lane3) (lanes_total) into its sum. */
#define MVE_STATS_ROWS(MAG_STORE)                                                               \
    "1:\n\t"                                                                                    \
    "vmov.i32 q0, #0\n\t"                                                                       \
    "dls lr, %[words]\n"                                                                        \
    "2:\n\t"                                                                                    \
    MVE_STATS_WORD(MAG_STORE)                                                                   \
    "vshl.u32 q1, q1, %q[shifts]\n\t"                                                           \
    "vaddv.u32 %[t], q1\n\t"                                                                    \
    "mvn %[t], %[t]\n\t"                                                                        \
    "str %[t], [%[signs]], #4\n\t"                                                              \
    "le lr, 2b\n\t"                                                                             \
    "vadd.f32 s4, s0, s1\n\t"                                                                   \
    "vadd.f32 s5, s2, s3\n\t"                                                                   \
    "vadd.f32 s4, s4, s5\n\t"                                                                   \
    "vstmia %[sums]!, {s4}\n\t"                                                                 \
    "subs %[rows], %[rows], #1\n\t"                                                             \
    "bne 1b\n\t"

/* (lane0 + lane1) + (lane2 + lane3) of a vector, in the FPU's scalar registers (through q0 =
 * s0-s3, not through core registers). */
static inline float mve_lanes_total(float32x4_t sum)
{
    float total, t;
    __asm__("vmov q0, %q[sum]\n\t"
            "vadd.f32 %[total], s0, s1\n\t"
            "vadd.f32 %[t], s2, s3\n\t"
            "vadd.f32 %[total], %[total], %[t]\n\t"
            : [total] "=&t"(total), [t] "=&t"(t)
            : [sum] "w"(sum)
            : "q0");
    return total;
}

/* horq_pixel_stats for cols a multiple of 32, rows >= 1. magnitudes may be values itself (a
 * layer that keeps |x| in its input): each vector is loaded before its |x| is stored. */
static void pixel_stats_mve(const float *values, int32_t rows, int32_t cols, float *sums, uint32_t *sign_words,
                            float *magnitudes)
{
    static const int32_t lane_shifts[4] = {0, 1, 2, 3};
    const int32x4_t shifts = vld1q_s32(lane_shifts);
    const int32_t words = cols / HORQ_WORD_BITS;
    uint32_t t;
    if (magnitudes != NULL) {
        __asm__ volatile(MVE_STATS_ROWS(MVE_MAG_STORE)
                         : [x] "+r"(values), [m] "+r"(magnitudes), [signs] "+r"(sign_words), [sums] "+r"(sums),
                           [rows] "+r"(rows), [t] "=&Te"(t)
                         : [words] "r"(words), [shifts] "w"(shifts)
                         : "q0", "q1", "q2", "p0", "lr", "cc", "memory");
    } else {
        __asm__ volatile(MVE_STATS_ROWS("")
                         : [x] "+r"(values), [signs] "+r"(sign_words), [sums] "+r"(sums), [rows] "+r"(rows),
                           [t] "=&Te"(t)
                         : [words] "r"(words), [shifts] "w"(shifts)
                         : "q0", "q1", "q2", "p0", "lr", "cc", "memory");
    }
}

/* Four magnitudes of plane 2: |x| < beta_1 is bits(|x|) - bits(beta_1) < 0 as int32 (both below
 * 2^31, see below_limit); the difference D keeps its top four bits and takes the accumulator A
 * shifted right by 4 below them (vsri), so D becomes the accumulator and the two registers swap
 * roles each step (the three bits below each sign bit are junk, masked at the end);
 * min(|x|, beta_1) is added to the lanes. After eight steps, lane j holds the bit of value
 * 4k + j at 4k + 3: masked with 0x88888888 and moved down by 3 - j. The order load, integer,
 * float, integer, float keeps the M55 from stalling (llvm-mca: one instruction a cycle). */
#define MVE_PLANE2_STEP(D, A)                                                                   \
    "vldrw.u32 %q[v], [%[a]], #16\n\t"                                                          \
    "vsub.i32 %q[" D "], %q[v], %[beta_bits]\n\t"                                               \
    "vminnm.f32 %q[v], %q[v], %q[beta]\n\t"                                                     \
    "vsri.32 %q[" D "], %q[" A "], #4\n\t"                                                      \
    "vadd.f32 %q[sum], %q[sum], %q[v]\n\t"
#define MVE_PLANE2_TWO MVE_PLANE2_STEP("d", "acc") MVE_PLANE2_STEP("acc", "d")

/* The runs of `rows` >= 1 kernel rows: pointer steps (bytes) from the end of one row's run to
 * the start of the next, for the magnitudes (or pixel sums), the sign words and the patch. */
typedef struct {
    int32_t values, words, patch;
} mve_row_steps;

/* Plane 2 of `rows` runs of `words` >= 1 words each: dst[i] = first[i] ^ the below-mask of
 * a[32 i ..], M's lanes in sum. Low-overhead loops, 47 instructions a word. ("Te": vaddv
 * writes an even core register.) beta_1 comes in the FPU and goes to the core and a vector
 * here, its first use, so that nothing waits on its division before plane 2's set-up. */
static inline float32x4_t mve_plane2_rows(const float *a, const uint32_t *first, uint32_t *dst, int32_t rows,
                                          int32_t words, const mve_row_steps *steps, float beta1, uint32x4_t tops,
                                          int32x4_t shifts, float32x4_t sum)
{
    uint32x4_t acc, d;
    float32x4_t v, beta;
    uint32_t t, below, beta_bits;
    __asm__ volatile("vmov %[beta_bits], %[beta1]\n\t"
                     "vdup.32 %q[beta], %[beta_bits]\n"
                     "1:\n\t"
                     "dls lr, %[words]\n"
                     "2:\n\t"
                     MVE_PLANE2_TWO MVE_PLANE2_TWO MVE_PLANE2_TWO MVE_PLANE2_TWO
                     "vand %q[acc], %q[acc], %q[tops]\n\t"
                     "vshl.u32 %q[acc], %q[acc], %q[shifts]\n\t"
                     "ldr %[t], [%[first]], #4\n\t"
                     "vaddv.u32 %[below], %q[acc]\n\t"
                     "eor %[t], %[t], %[below]\n\t"
                     "str %[t], [%[dst]], #4\n\t"
                     "le lr, 2b\n\t"
                     "ldr %[t], [%[steps]]\n\t"
                     "add %[a], %[a], %[t]\n\t"
                     "ldr %[t], [%[steps], #4]\n\t"
                     "add %[first], %[first], %[t]\n\t"
                     "ldr %[t], [%[steps], #8]\n\t"
                     "add %[dst], %[dst], %[t]\n\t"
                     "subs %[rows], %[rows], #1\n\t"
                     "bne 1b\n\t"
                     : [a] "+r"(a), [first] "+r"(first), [dst] "+r"(dst), [rows] "+r"(rows), [sum] "+w"(sum),
                       [acc] "=&w"(acc), [d] "=&w"(d), [v] "=&w"(v), [beta] "=&w"(beta), [t] "=&r"(t),
                       [below] "=&Te"(below), [beta_bits] "=&r"(beta_bits)
                     : [words] "r"(words), [steps] "r"(steps), [beta1] "t"(beta1), [tops] "w"(tops),
                       [shifts] "w"(shifts)
                     : "lr", "cc", "memory");
    return sum;
}

/* dst[0 .. count) = value (splat in a vector); count >= 0. A tail-predicated loop: the last
 * vector stores only the words left. */
static inline void mve_fill_words(uint32_t *dst, int32_t count, uint32x4_t value)
{
    __asm__ volatile("wlstp.32 lr, %[count], 2f\n"
                     "1:\n\t"
                     "vstrw.32 %q[value], [%[dst]], #16\n\t"
                     "letp lr, 1b\n"
                     "2:\n\t"
                     : [dst] "+r"(dst)
                     : [count] "r"(count), [value] "w"(value)
                     : "lr", "memory");
}

/* Plane 1 of `rows` >= 1 runs of `run` >= 1 pixels: s += their sums in order, and their
 * `words` >= 1 sign words copied to the patch (a tail-predicated loop). */
static inline float mve_plane1_rows(const float *sums, const uint32_t *src, uint32_t *dst, int32_t rows, int32_t run,
                                    int32_t words, const mve_row_steps *steps, float s)
{
    float t;
    uint32x4_t q;
    const uint32_t *from;
    uint32_t *to;
    __asm__ volatile("1:\n\t"
                     "dls lr, %[run]\n"
                     "2:\n\t"
                     "vldmia %[sums]!, {%[t]}\n\t"
                     "vadd.f32 %[s], %[s], %[t]\n\t"
                     "le lr, 2b\n\t"
                     "mov %[from], %[src]\n\t"
                     "mov %[to], %[dst]\n\t"
                     "dlstp.32 lr, %[words]\n"
                     "3:\n\t"
                     "vldrw.u32 %q[q], [%[from]], #16\n\t"
                     "vstrw.32 %q[q], [%[to]], #16\n\t"
                     "letp lr, 3b\n\t"
                     "ldr %[from], [%[steps]]\n\t"
                     "add %[sums], %[sums], %[from]\n\t"
                     "ldr %[from], [%[steps], #4]\n\t"
                     "add %[src], %[src], %[from]\n\t"
                     "ldr %[from], [%[steps], #8]\n\t"
                     "add %[dst], %[dst], %[from]\n\t"
                     "subs %[rows], %[rows], #1\n\t"
                     "bne 1b\n\t"
                     : [sums] "+r"(sums), [src] "+r"(src), [dst] "+r"(dst), [rows] "+r"(rows), [s] "+t"(s),
                       [t] "=&t"(t), [q] "=&w"(q), [from] "=&r"(from), [to] "=&r"(to)
                     : [run] "r"(run), [words] "r"(words), [steps] "r"(steps)
                     : "lr", "cc", "memory");
    return s;
}

/* horq_patch_planes for c a multiple of 32. Returns 0, having written nothing that the generic
 * code does not write again, where it leaves the patch to it: no pixel of a row inside the
 * input, or plane 2 with a beta_1 that is 0 or NaN. A patch with padding is first filled with
 * padding's words (0 in plane 1, 1 in plane 2: a zero is below beta_1), then its runs
 * written over them. */
static inline int patch_planes_mve(const horq_window *w, const float *pixel_sums, const uint32_t *sign_words,
                                   const float *magnitudes, int32_t oy, int32_t ox, int32_t order, float *betas,
                                   uint32_t *planes, int32_t plane_stride)
{
    const int32_t c = w->in.c, in_h = w->in.h, in_w = w->in.w;
    const int32_t kernel_h = w->kernel_h, kernel_w = w->kernel_w;
    const int32_t cw = (int32_t)((uint32_t)c / HORQ_WORD_BITS), row_words = kernel_w * cw;
    const int32_t iy0 = oy * w->stride_h - w->pad_h;
    const int32_t ix0 = ox * w->stride_w - w->pad_w;
    const int32_t lo = ix0 < 0 ? 0 : ix0;                                        /* the run's columns */
    const int32_t hi = ix0 + kernel_w > in_w ? in_w : ix0 + kernel_w;
    const int32_t ky0 = iy0 < 0 ? -iy0 : 0;                                       /* the rows inside */
    const int32_t ky1 = iy0 + kernel_h > in_h ? in_h - iy0 : kernel_h;
    if (hi <= lo || ky1 <= ky0) {
        return 0;
    }
    const int32_t left = (lo - ix0) * cw, run = hi - lo, run_words = run * cw;
    const int padded = hi - lo < kernel_w || ky1 - ky0 < kernel_h;
    const float n = (float)(kernel_h * kernel_w * c);
    if (padded) {
        mve_fill_words(planes, kernel_h * row_words, vdupq_n_u32(0u));
    }
    const ptrdiff_t pix = (ptrdiff_t)(iy0 + ky0) * in_w + lo; /* the first run's first pixel */
    const int32_t rows = ky1 - ky0;
    /* Plane 1 moves the sums' pointer by `run` a row, its words by whole vectors. */
    const mve_row_steps plane1_steps = {(int32_t)sizeof(float) * (in_w - run), (int32_t)sizeof(uint32_t) * in_w * cw,
                                        (int32_t)sizeof(uint32_t) * row_words};
    const float abs_sum = mve_plane1_rows(pixel_sums + pix, sign_words + pix * cw, planes + ky0 * row_words + left,
                                          rows, run, run_words, &plane1_steps, 0.0f);
    const float beta1 = abs_sum / n; /* its latency hides behind plane 2's set-up, which needs it last */
    if (order < 2) {
        betas[0] = beta1;
        return 1;
    }
    /* Plane 2: the plane-1 bit flipped where |x| < beta_1; M = sum min(|x|, beta_1) in four lanes
     * over the patch's values in order (padding adds zeros). */
    static const int32_t lane_shifts[4] = {-3, -2, -1, 0};
    const int32x4_t shifts = vld1q_s32(lane_shifts);
    const uint32x4_t tops = vdupq_n_u32(0x88888888u);
    const mve_row_steps plane2_steps = {(int32_t)sizeof(float) * (in_w - run) * c,
                                        (int32_t)sizeof(uint32_t) * (in_w - run) * cw,
                                        (int32_t)sizeof(uint32_t) * (row_words - run_words)};
    uint32_t *second = planes + plane_stride;
    if (padded) { /* the generic code writes plane 2 again if it takes over below */
        mve_fill_words(second, kernel_h * row_words, vdupq_n_u32(0xFFFFFFFFu));
    }
    betas[0] = beta1;
    if (!(beta1 > 0.0f)) {
        return 0;
    }
    const float32x4_t sum = mve_plane2_rows(magnitudes + pix * c, sign_words + pix * cw, second + ky0 * row_words + left,
                                            rows, run_words, &plane2_steps, beta1, tops, shifts, vdupq_n_f32(0.0f));
    betas[1] = 2.0f * (abs_sum - mve_lanes_total(sum)) / n;
    return 1;
}
#endif

void horq_pixel_stats(const float *values, int32_t rows, int32_t cols, float *sums, uint32_t *sign_words,
                      float *magnitudes)
{
#if defined(HORQ_MVE_ASM)
    if (cols % HORQ_WORD_BITS == 0 && cols > 0 && rows > 0) {
        pixel_stats_mve(values, rows, cols, sums, sign_words, magnitudes);
        return;
    }
#endif
    const int32_t words = HORQ_WORDS_FOR(cols);
#if defined(HORQ_ARM_NEON)
    if (cols % HORQ_WORD_BITS == 0) {
        if (magnitudes != NULL) {
            neon_stats_magnitudes(values, rows, words, sums, sign_words, magnitudes);
        } else {
            neon_stats(values, rows, words, sums, sign_words);
        }
        return;
    }
#endif
    for (int32_t r = 0; r < rows; ++r) {
        const float *row = values + (ptrdiff_t)r * cols;
        float *row_magnitudes = magnitudes != NULL ? magnitudes + (ptrdiff_t)r * cols : NULL;
        float lanes[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int32_t w = 0; w < words; ++w) {
            const int32_t first = w * HORQ_WORD_BITS;
            const int32_t n = (cols - first < HORQ_WORD_BITS) ? cols - first : HORQ_WORD_BITS;
            sign_words[(ptrdiff_t)r * words + w] =
                stats_word(row + first, n, lanes, row_magnitudes != NULL ? row_magnitudes + first : NULL);
        }
        sums[r] = lanes_total(lanes);
    }
}

static uint32_t below_limit(float beta)
{
    uint32_t bits;
    memcpy(&bits, &beta, sizeof bits);
    return bits - 1u;
}

void horq_patch_planes(const horq_window *w, const float *pixel_sums, const uint32_t *sign_words,
                       const float *magnitudes, int32_t oy, int32_t ox, int32_t order, float *betas,
                       uint32_t *planes, int32_t plane_stride)
{
#if defined(HORQ_MVE_ASM)
    if (w->in.c % HORQ_WORD_BITS == 0 &&
        patch_planes_mve(w, pixel_sums, sign_words, magnitudes, oy, ox, order, betas, planes, plane_stride)) {
        return;
    }
#endif
    /* The geometry in locals: stores through `planes` could alias the struct's
     * int32_t fields, and the compiler would reload them at every tap. */
    const int32_t c = w->in.c, in_h = w->in.h, in_w = w->in.w;
    const int32_t kernel_h = w->kernel_h, kernel_w = w->kernel_w;
    const int32_t cw = HORQ_WORDS_FOR(c);
    const int32_t iy0 = oy * w->stride_h - w->pad_h;
    const int32_t ix0 = ox * w->stride_w - w->pad_w;
    const float n = (float)(kernel_h * kernel_w * c);
    /* Plane 1 and S = sum |x|: the pixels' sign words and sums; padding is +0.
     * Each kernel row is padding, then a run of contiguous pixels (and words),
     * then padding. */
    float abs_sum = 0.0f;
    uint32_t *dst = planes;
    const int32_t lo = ix0 < 0 ? 0 : ix0;                                        /* the run's columns */
    const int32_t hi = ix0 + kernel_w > in_w ? in_w : ix0 + kernel_w;
    const int32_t left = (lo - ix0) * cw, run = (hi > lo ? hi - lo : 0), right = kernel_w * cw - left - run * cw;
    for (int32_t ky = 0; ky < kernel_h; ++ky) {
        const int32_t iy = iy0 + ky;
        if ((uint32_t)iy >= (uint32_t)in_h) {
            for (int32_t i = 0; i < kernel_w * cw; ++i) {
                *dst++ = 0u;
            }
            continue;
        }
        const ptrdiff_t pix = (ptrdiff_t)iy * in_w + lo;
        for (int32_t i = 0; i < left; ++i) {
            *dst++ = 0u;
        }
        for (int32_t kx = 0; kx < run; ++kx) {
            abs_sum += pixel_sums[pix + kx];
        }
        const uint32_t *src = sign_words + pix * cw;
        for (int32_t i = 0; i < run * cw; ++i) {
            *dst++ = src[i];
        }
        for (int32_t i = 0; i < right; ++i) {
            *dst++ = 0u;
        }
    }
    const float beta1 = abs_sum / n;
    betas[0] = beta1;
    if (order < 2) {
        return;
    }
    /* Plane 2: the plane-1 bit flipped where |x| < beta_1; M = sum min(|x|, beta_1)
     * in four lanes over the patch's values in order (padding adds zeros). */
    const uint32_t limit = below_limit(beta1);
    const int any_below = beta1 > 0.0f; /* a padding zero is below any positive beta_1 */
    const uint32_t last_bits = c % HORQ_WORD_BITS == 0 ? 0xFFFFFFFFu : (1u << (c % HORQ_WORD_BITS)) - 1u;
    float lanes[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const uint32_t *first_plane = planes;
    dst = planes + plane_stride;
    if (c % HORQ_WORD_BITS == 0 && any_below) {
        /* The usual case, whole words: the rows' runs again; a padding zero is below beta_1. */
        for (int32_t ky = 0; ky < kernel_h; ++ky) {
            const int32_t iy = iy0 + ky;
            if ((uint32_t)iy >= (uint32_t)in_h) {
                for (int32_t i = 0; i < kernel_w * cw; ++i) {
                    *dst++ = 0xFFFFFFFFu;
                }
                first_plane += kernel_w * cw;
                continue;
            }
            for (int32_t i = 0; i < left; ++i) {
                *dst++ = 0xFFFFFFFFu;
            }
            first_plane += left;
            plane2_run(magnitudes + ((ptrdiff_t)iy * in_w + lo) * c, run * cw, first_plane, dst, beta1, limit, lanes);
            dst += run * cw;
            first_plane += run * cw;
            for (int32_t i = 0; i < right; ++i) {
                *dst++ = 0xFFFFFFFFu;
            }
            first_plane += right;
        }
    } else {
        int32_t first = 0; /* the patch index of the tap's first value, for its lane */
        for (int32_t ky = 0; ky < kernel_h; ++ky) {
            const int32_t iy = iy0 + ky;
            const int row_inside = (uint32_t)iy < (uint32_t)in_h;
            for (int32_t ix = ix0; ix < ix0 + kernel_w; ++ix, dst += cw, first_plane += cw, first += c) {
                if (row_inside && (uint32_t)ix < (uint32_t)in_w) {
                    const float *a = magnitudes + ((ptrdiff_t)iy * in_w + ix) * c;
                    for (int32_t i = 0; i < cw; ++i) {
                        const int32_t bits = i + 1 < cw ? HORQ_WORD_BITS : c - i * HORQ_WORD_BITS;
                        dst[i] = first_plane[i] ^ plane2_word(a + i * HORQ_WORD_BITS, bits, beta1, limit, any_below,
                                                              lanes, (first + i * HORQ_WORD_BITS) % 4);
                    }
                } else {
                    for (int32_t i = 0; i < cw; ++i) {
                        dst[i] = !any_below ? 0u : (i + 1 < cw ? 0xFFFFFFFFu : last_bits);
                    }
                }
            }
        }
    }
    betas[1] = 2.0f * (abs_sum - lanes_total(lanes)) / n;
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
        const uint32_t limit = below_limit(betas[0]);
        const int any_below = betas[0] > 0.0f;
        float lanes[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int32_t w = 0; w < words; ++w) {
            const int32_t first = w * HORQ_WORD_BITS;
            const int32_t n = (count - first < HORQ_WORD_BITS) ? count - first : HORQ_WORD_BITS;
            planes[plane_stride + w] = planes[w] ^ plane2_word(scratch + first, n, betas[0], limit, any_below, lanes, 0);
        }
        const float min_sum = lanes_total(lanes);
        betas[1] = 2.0f * (abs_sum - min_sum) / (float)count;
    }
    if (order >= 3) { /* planes 3..K from the residuals, one pass each */
        memcpy(scratch, values, (size_t)count * sizeof *scratch);
        horq_apply_plane(scratch, 1, count, planes, betas[0]);
        horq_binarize_next_planes(scratch, 1, count, 2, order, betas, planes, plane_stride);
    }
}
