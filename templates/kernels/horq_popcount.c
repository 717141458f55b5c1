/*
 * XOR-popcount of one weight row against the K bit-planes of one input group:
 * the inner loop of every HORQ layer. One body, the instruction-set paths behind
 * the project's flags (horq_types.h), a portable path always present.
 *
 *   mismatches[k] = popcount(weights XOR planes[k * plane_stride ...]) over `words` words
 *
 * Each weight word is loaded once and used for two planes at a time.
 */
#include <stddef.h>

#include "horq_kernels.h"

#if defined(HORQ_ARM_MVE)
#include <arm_mve.h>
#elif defined(HORQ_ARM_NEON)
#include <arm_neon.h>
#elif defined(HORQ_ARM_DSP)
#include <arm_acle.h>
#endif

/* The SWAR path serves the DSP targets and compilers without a popcount builtin;
 * -DHORQ_FORCE_SWAR selects it anywhere, so host tests cover it too. */
#if defined(HORQ_ARM_DSP) || defined(HORQ_FORCE_SWAR) || !defined(__GNUC__)
#define HORQ_SWAR 1
#endif

#if defined(HORQ_SWAR)
/* SWAR popcount (Cortex-M4/M7 have no popcount instruction and GCC's builtin is
 * a libgcc call): per word, 2-bit then 4-bit field counts (<= 4 per nibble);
 * three words add up in the nibbles (<= 12), the nibbles fold into bytes (<= 24)
 * and ten such triples accumulate in the bytes (<= 240) before one __usada8 sums
 * the four bytes. The masks stay in registers across the loop. */
#define M1 0x55555555u
#define M2 0x33333333u
#define M4 0x0F0F0F0Fu

static inline uint32_t xor_nibbles(uint32_t a, uint32_t b)
{
    uint32_t x = a ^ b;
    x -= (x >> 1) & M1;
    return (x & M2) + ((x >> 2) & M2);
}

static inline uint32_t nibbles_to_bytes(uint32_t n)
{
    return (n & M4) + ((n >> 4) & M4);
}

static inline uint32_t sum_bytes(uint32_t bytes, uint32_t acc)
{
#if defined(HORQ_ARM_DSP)
    return __usada8(bytes, 0u, acc);
#else
    bytes = (bytes & 0x00FF00FFu) + ((bytes >> 8) & 0x00FF00FFu);
    return acc + (bytes & 0xFFFFu) + (bytes >> 16);
#endif
}

/* Two planes against the same weights; q may equal p (then only c0 is meaningful). */
static void swar_two_planes(const uint32_t *w, const uint32_t *p, const uint32_t *q, int32_t words,
                            int32_t *c0, int32_t *c1)
{
    uint32_t sum0 = 0, sum1 = 0;
    int32_t i = 0;
    while (words - i >= 3) {
        int32_t triples = (words - i) / 3;
        if (triples > 10) {
            triples = 10;
        }
        uint32_t bytes0 = 0, bytes1 = 0;
        for (int32_t t = 0; t < triples; ++t, i += 3) {
            const uint32_t w0 = w[i], w1 = w[i + 1], w2 = w[i + 2];
            bytes0 += nibbles_to_bytes(xor_nibbles(w0, p[i]) + xor_nibbles(w1, p[i + 1]) + xor_nibbles(w2, p[i + 2]));
            bytes1 += nibbles_to_bytes(xor_nibbles(w0, q[i]) + xor_nibbles(w1, q[i + 1]) + xor_nibbles(w2, q[i + 2]));
        }
        sum0 = sum_bytes(bytes0, sum0);
        sum1 = sum_bytes(bytes1, sum1);
    }
    for (; i < words; ++i) {
        sum0 = sum_bytes(nibbles_to_bytes(xor_nibbles(w[i], p[i])), sum0);
        sum1 = sum_bytes(nibbles_to_bytes(xor_nibbles(w[i], q[i])), sum1);
    }
    *c0 = (int32_t)sum0;
    *c1 = (int32_t)sum1;
}

static int32_t one_plane(const uint32_t *w, const uint32_t *p, int32_t words)
{
    uint32_t sum = 0;
    int32_t i = 0;
    while (words - i >= 3) {
        int32_t triples = (words - i) / 3;
        if (triples > 10) {
            triples = 10;
        }
        uint32_t bytes = 0;
        for (int32_t t = 0; t < triples; ++t, i += 3) {
            bytes += nibbles_to_bytes(xor_nibbles(w[i], p[i]) + xor_nibbles(w[i + 1], p[i + 1]) +
                                      xor_nibbles(w[i + 2], p[i + 2]));
        }
        sum = sum_bytes(bytes, sum);
    }
    for (; i < words; ++i) {
        sum = sum_bytes(nibbles_to_bytes(xor_nibbles(w[i], p[i])), sum);
    }
    return (int32_t)sum;
}

#elif defined(HORQ_ARM_MVE)
/* Helium has no vector popcount: the same SWAR on four words per vector, the
 * nibble counts folded into bytes and summed across lanes with vaddvaq. */
static int32_t one_plane(const uint32_t *w, const uint32_t *p, int32_t words)
{
    const uint32x4_t m1 = vdupq_n_u32(0x55555555u), m2 = vdupq_n_u32(0x33333333u), m4 = vdupq_n_u32(0x0F0F0F0Fu);
    uint32_t sum = 0;
    int32_t i = 0;
    for (; i + 4 <= words; i += 4) {
        uint32x4_t x = veorq_u32(vld1q_u32(w + i), vld1q_u32(p + i));
        x = vsubq_u32(x, vandq_u32(vshrq_n_u32(x, 1), m1));
        x = vaddq_u32(vandq_u32(x, m2), vandq_u32(vshrq_n_u32(x, 2), m2));
        x = vandq_u32(vaddq_u32(x, vshrq_n_u32(x, 4)), m4);
        sum = vaddvaq_u8(sum, vreinterpretq_u8_u32(x));
    }
    for (; i < words; ++i) {
        sum += (uint32_t)horq_popcount(w[i] ^ p[i]);
    }
    return (int32_t)sum;
}

#elif defined(HORQ_ARM_NEON)
/* NEON: vcntq_u8 counts bits per byte; pairwise widening adds accumulate them. */
static int32_t one_plane(const uint32_t *w, const uint32_t *p, int32_t words)
{
    int32_t sum = 0;
    int32_t i = 0;
    while (i + 4 <= words) {
        /* each u16 lane grows by <= 16 an iteration: flush before 4096 of them */
        uint16x8_t acc = vdupq_n_u16(0);
        for (int32_t n = 0; n < 4000 && i + 4 <= words; ++n, i += 4) {
            const uint8x16_t x = veorq_u8(vreinterpretq_u8_u32(vld1q_u32(w + i)),
                                          vreinterpretq_u8_u32(vld1q_u32(p + i)));
            acc = vpadalq_u8(acc, vcntq_u8(x));
        }
        sum += (int32_t)vaddlvq_u16(acc);
    }
    for (; i < words; ++i) {
        sum += horq_popcount(w[i] ^ p[i]);
    }
    return sum;
}

#else
static int32_t one_plane(const uint32_t *w, const uint32_t *p, int32_t words)
{
    return horq_xor_popcount(w, p, words);
}
#endif

void horq_xor_popcount_planes(const uint32_t *weights, const uint32_t *planes, int32_t plane_stride,
                              int32_t order, int32_t words, int32_t *mismatches)
{
    int32_t k = 0;
#if defined(HORQ_SWAR)
    for (; k + 2 <= order; k += 2) {
        swar_two_planes(weights, planes + (ptrdiff_t)k * plane_stride, planes + (ptrdiff_t)(k + 1) * plane_stride,
                        words, &mismatches[k], &mismatches[k + 1]);
    }
#endif
    for (; k < order; ++k) {
        mismatches[k] = one_plane(weights, planes + (ptrdiff_t)k * plane_stride, words);
    }
}
