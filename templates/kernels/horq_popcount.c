/*
 * XOR-popcount of one weight row against the K bit-planes of one input group:
 * the inner loop of every HORQ layer. One body, the instruction-set paths behind
 * the project's flags (horq_types.h), a portable path always present.
 *
 *   mismatches[r * order + k] = popcount(weights row r XOR plane k) over `words` words
 *
 * All output channels (rows) of one input group go through one call, so the
 * set-up is paid once per group; on the SWAR path each weight word is loaded
 * once for two planes.
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
 * a libgcc call). Three XOR-ed words at a time go through a carry-save adder
 * (ones + 2 * twos), each of the two through the 2-bit and 4-bit field steps,
 * giving nibble counts <= 12; they fold into bytes (<= 24 per triple) and ten
 * triples accumulate in the bytes (<= 240) before one __usada8 sums them.
 *
 * The masks are passed through an empty asm so that GCC keeps them in
 * registers: as immediates it cannot fold the shifts into the ANDs
 * (`and r, m, x, lsr #1` is one instruction, `lsr` + `and #imm` two). */
typedef struct {
    uint32_t m1, m2, m4;
} swar_masks;

static inline swar_masks masks_in_registers(void)
{
    swar_masks m = {0x55555555u, 0x33333333u, 0x0F0F0F0Fu};
#if defined(__GNUC__)
    __asm__("" : "+r"(m.m1), "+r"(m.m2), "+r"(m.m4));
#endif
    return m;
}

static inline uint32_t nibble_counts(uint32_t x, const swar_masks *m)
{
    x -= (x >> 1) & m->m1;
    return (x & m->m2) + ((x >> 2) & m->m2);
}

/* Bit counts of three words, per nibble (<= 12). */
static inline uint32_t triple_nibbles(uint32_t x1, uint32_t x2, uint32_t x3, const swar_masks *m)
{
    const uint32_t u = x1 ^ x2;
    const uint32_t ones = u ^ x3;
    const uint32_t twos = (x1 & x2) | (u & x3);
    return nibble_counts(ones, m) + (nibble_counts(twos, m) << 1);
}

static inline uint32_t nibbles_to_bytes(uint32_t n, const swar_masks *m)
{
    return (n & m->m4) + ((n >> 4) & m->m4);
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

/* Mismatches of one weight row against one plane. */
static inline int32_t swar_one_plane(const uint32_t *w, const uint32_t *p, int32_t words, const swar_masks *m)
{
    uint32_t sum = 0;
    int32_t i = 0;
    while (words - i >= 3) {
        const int32_t block_end = (words - i >= 30) ? i + 30 : words - (words - i) % 3;
        uint32_t bytes = 0;
        for (; i < block_end; i += 3) {
            bytes += nibbles_to_bytes(triple_nibbles(w[i] ^ p[i], w[i + 1] ^ p[i + 1], w[i + 2] ^ p[i + 2], m), m);
        }
        sum = sum_bytes(bytes, sum);
    }
    for (; i < words; ++i) {
        sum = sum_bytes(nibbles_to_bytes(nibble_counts(w[i] ^ p[i], m), m), sum);
    }
    return (int32_t)sum;
}

/* Mismatches of one weight row against two planes. */
static inline void swar_two_planes(const uint32_t *w, const uint32_t *p, const uint32_t *q, int32_t words,
                                   const swar_masks *m, int32_t *c0, int32_t *c1)
{
    uint32_t sum0 = 0, sum1 = 0;
    int32_t i = 0;
    while (words - i >= 3) {
        const int32_t block_end = (words - i >= 30) ? i + 30 : words - (words - i) % 3;
        uint32_t bytes0 = 0, bytes1 = 0;
        for (; i < block_end; i += 3) {
            const uint32_t w0 = w[i], w1 = w[i + 1], w2 = w[i + 2];
            bytes0 += nibbles_to_bytes(triple_nibbles(w0 ^ p[i], w1 ^ p[i + 1], w2 ^ p[i + 2], m), m);
            bytes1 += nibbles_to_bytes(triple_nibbles(w0 ^ q[i], w1 ^ q[i + 1], w2 ^ q[i + 2], m), m);
        }
        sum0 = sum_bytes(bytes0, sum0);
        sum1 = sum_bytes(bytes1, sum1);
    }
    for (; i < words; ++i) {
        sum0 = sum_bytes(nibbles_to_bytes(nibble_counts(w[i] ^ p[i], m), m), sum0);
        sum1 = sum_bytes(nibbles_to_bytes(nibble_counts(w[i] ^ q[i], m), m), sum1);
    }
    *c0 = (int32_t)sum0;
    *c1 = (int32_t)sum1;
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

void horq_xor_popcount_rows(const uint32_t *weights, int32_t rows, const uint32_t *planes, int32_t plane_stride,
                            int32_t order, int32_t words, int32_t *mismatches)
{
#if defined(HORQ_SWAR)
    const swar_masks m = masks_in_registers();
    for (int32_t r = 0; r < rows; ++r) {
        const uint32_t *w = weights + (ptrdiff_t)r * words;
        int32_t *out = mismatches + (ptrdiff_t)r * order;
        int32_t k = 0;
        for (; k + 2 <= order; k += 2) {
            const uint32_t *p = planes + (ptrdiff_t)k * plane_stride;
            swar_two_planes(w, p, p + plane_stride, words, &m, &out[k], &out[k + 1]);
        }
        if (k < order) {
            out[k] = swar_one_plane(w, planes + (ptrdiff_t)k * plane_stride, words, &m);
        }
    }
#else
    for (int32_t r = 0; r < rows; ++r) {
        for (int32_t k = 0; k < order; ++k) {
            mismatches[(ptrdiff_t)r * order + k] =
                one_plane(weights + (ptrdiff_t)r * words, planes + (ptrdiff_t)k * plane_stride, words);
        }
    }
#endif
}
