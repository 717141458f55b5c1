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

#if defined(HORQ_ARM_DSP) && defined(__GNUC__) && defined(__thumb2__)
/* Cortex-M4/M7: the same carry-save SWAR, written in assembly because GCC,
 * given these loops in C, spills the accumulators and the loop limit and
 * indexes its loads (11.2 instructions per word per plane, against about 8.2 here).
 * Fourteen registers hold the whole loop: three weight words and three plane
 * words (each triple comes in with one ldmia), the two masks, two
 * accumulators, three pointers and the triple count. The weight triple is
 * loaded once for two planes.
 *
 * Per triple and plane: XOR (3), carry-save adder in place (5: ones, twos),
 * 2-bit fields (2 each), nibbles (3 each), ones + 2 * twos (1, <= 12 per
 * nibble), bytes (3, <= 24 per byte) and one usada8 against 0x55 bytes, which
 * adds 85 - b for each byte b: starting from -340 * triples, the accumulator
 * ends at minus the mismatch count, whatever the row length.
 *
 * The row loop runs inside too; its state lives on the stack in the layout of
 * dsp_rows_args, copied there on entry. */
typedef struct {
    const uint32_t *plane0; /* +0 */
    const uint32_t *plane1; /* +4, two-plane kernels only */
    int32_t loops;          /* +8: iterations of the loop body per row, >= 1 */
    int32_t minus_bias0;    /* +12: -340 * triples */
    int32_t minus_bias1;    /* +16: the same, for the second accumulator */
    int32_t tail_bytes;     /* +20: words after the last triple of a row, skipped here */
    uintptr_t out;          /* +24: where row 0's count(s) go; rows follow contiguously */
    uintptr_t out_end;      /* +28: out + rows * (4 or 8) */
    uintptr_t weights;      /* +32: row 0 minus tail_bytes (each row start adds them back) */
} dsp_rows_args;

/* Three XOR-ed words in r11, r12, lr: adds 340 - their popcount to ACC. */
#define DSP_COUNT_TRIPLE(ACC)                                                                   \
    "eor r12, r12, r11\n\t"   /* u = a0 ^ a1 */                                                 \
    "bic r11, r11, r12\n\t"   /* a0 & a1 */                                                     \
    "eor lr, lr, r12\n\t"     /* ones = u ^ a2 */                                               \
    "bic r12, r12, lr\n\t"    /* u & a2 */                                                      \
    "orr r11, r11, r12\n\t"   /* twos = majority */                                             \
    "and r12, r4, lr, lsr #1\n\t"                                                               \
    "sub lr, lr, r12\n\t"                                                                       \
    "and r12, r4, r11, lsr #1\n\t"                                                              \
    "sub r11, r11, r12\n\t"                                                                     \
    "and r12, r5, lr, lsr #2\n\t"                                                               \
    "and lr, lr, r5\n\t"                                                                        \
    "add lr, lr, r12\n\t"                                                                       \
    "and r12, r5, r11, lsr #2\n\t"                                                              \
    "and r11, r11, r5\n\t"                                                                      \
    "add r11, r11, r12\n\t"                                                                     \
    "add lr, lr, r11, lsl #1\n\t"                                                               \
    "and r12, lr, #0xF0F0F0F0\n\t"                                                              \
    "and lr, lr, #0x0F0F0F0F\n\t"                                                               \
    "add lr, lr, r12, lsr #4\n\t"                                                               \
    "usada8 " ACC ", lr, r4, " ACC "\n\t"

/* The next triple of plane words (pointer P) XOR the weight triple in r8-r10. */
#define DSP_XOR_TRIPLE(P)                                                                       \
    "ldmia " P "!, {r11, r12, lr}\n\t"                                                          \
    "eor r11, r11, r8\n\t"                                                                      \
    "eor r12, r12, r9\n\t"                                                                      \
    "eor lr, lr, r10\n\t"

#define DSP_TWO_PLANES_TRIPLE                                                                   \
    "ldmia r0!, {r8, r9, r10}\n\t" DSP_XOR_TRIPLE("r1") DSP_COUNT_TRIPLE("r6")                  \
    DSP_XOR_TRIPLE("r2") DSP_COUNT_TRIPLE("r7")

#define DSP_ONE_PLANE_TRIPLE "ldmia r0!, {r8, r9, r10}\n\t" DSP_XOR_TRIPLE("r1") DSP_COUNT_TRIPLE("r6")

#define DSP_PROLOGUE                                                                            \
    "push {r4-r11, lr}\n\t"                                                                     \
    "sub sp, sp, #32\n\t"                                                                       \
    "ldm r0, {r2-r9}\n\t"                                                                       \
    "ldr r0, [r0, #32]\n\t"                                                                     \
    "stm sp, {r2-r9}\n\t"                                                                       \
    "movw r4, #0x5555\n\t"                                                                      \
    "movt r4, #0x5555\n\t"                                                                      \
    "movw r5, #0x3333\n\t"                                                                      \
    "movt r5, #0x3333\n\t"

/* Row loop around BODY (a whole number of triples, `loops` times per row); the
 * count(s) of each row are negated into out[0] (and out[1]). */
#define DSP_TWO_PLANES_KERNEL(NAME, BODY)                                                       \
    __attribute__((naked, noinline)) static void NAME(const dsp_rows_args *args)               \
    {                                                                                           \
        (void)args;                                                                             \
        __asm__ volatile(DSP_PROLOGUE "1:\n\t"                                                  \
                         "ldm sp, {r1, r2, r3, r6, r7, r8}\n\t"                                 \
                         "add r0, r0, r8\n\t"                                                   \
                         "2:\n\t" BODY "subs r3, r3, #1\n\t"                                    \
                         "bne 2b\n\t"                                                           \
                         "rsb r6, r6, #0\n\t"                                                   \
                         "rsb r7, r7, #0\n\t"                                                   \
                         "ldrd r11, r12, [sp, #24]\n\t"                                         \
                         "strd r6, r7, [r11], #8\n\t"                                           \
                         "str r11, [sp, #24]\n\t"                                               \
                         "cmp r11, r12\n\t"                                                     \
                         "bne 1b\n\t"                                                           \
                         "add sp, sp, #32\n\t"                                                  \
                         "pop {r4-r11, pc}\n\t");                                               \
    }

#define DSP_ONE_PLANE_KERNEL(NAME, BODY)                                                        \
    __attribute__((naked, noinline)) static void NAME(const dsp_rows_args *args)               \
    {                                                                                           \
        (void)args;                                                                             \
        __asm__ volatile(DSP_PROLOGUE "1:\n\t"                                                  \
                         "ldm sp, {r1, r2, r3, r6, r7, r8}\n\t"                                 \
                         "add r0, r0, r8\n\t"                                                   \
                         "2:\n\t" BODY "subs r3, r3, #1\n\t"                                    \
                         "bne 2b\n\t"                                                           \
                         "rsb r6, r6, #0\n\t"                                                   \
                         "ldrd r11, r12, [sp, #24]\n\t"                                         \
                         "str r6, [r11], #4\n\t"                                                \
                         "str r11, [sp, #24]\n\t"                                               \
                         "cmp r11, r12\n\t"                                                     \
                         "bne 1b\n\t"                                                           \
                         "add sp, sp, #32\n\t"                                                  \
                         "pop {r4-r11, pc}\n\t");                                               \
    }

/* Shape-specialised bodies: one, two or three triples per loop iteration, so
 * that 9-word rows (3x3 taps of 32 channels) run without a loop branch and
 * 18- or 30-word rows with few. */
DSP_TWO_PLANES_KERNEL(dsp_two_planes_x1, DSP_TWO_PLANES_TRIPLE)
DSP_TWO_PLANES_KERNEL(dsp_two_planes_x2, DSP_TWO_PLANES_TRIPLE DSP_TWO_PLANES_TRIPLE)
DSP_TWO_PLANES_KERNEL(dsp_two_planes_x3, DSP_TWO_PLANES_TRIPLE DSP_TWO_PLANES_TRIPLE DSP_TWO_PLANES_TRIPLE)
DSP_ONE_PLANE_KERNEL(dsp_one_plane_x1, DSP_ONE_PLANE_TRIPLE)
DSP_ONE_PLANE_KERNEL(dsp_one_plane_x2, DSP_ONE_PLANE_TRIPLE DSP_ONE_PLANE_TRIPLE)
DSP_ONE_PLANE_KERNEL(dsp_one_plane_x3, DSP_ONE_PLANE_TRIPLE DSP_ONE_PLANE_TRIPLE DSP_ONE_PLANE_TRIPLE)

typedef void (*dsp_kernel)(const dsp_rows_args *);

/* Rows a call handles at once when counts go through the staging buffer. */
#define DSP_STAGE_ROWS 32

/* Plane k (and k + 1 when `pair`) of rows [0, rows): counts to out, 1 or 2 per row. */
static void dsp_rows(const uint32_t *weights, int32_t rows, const uint32_t *plane, int32_t plane_stride,
                     int32_t triples, int32_t tail, int pair, int32_t *out)
{
    static const dsp_kernel two[3] = {dsp_two_planes_x1, dsp_two_planes_x2, dsp_two_planes_x3};
    static const dsp_kernel one[3] = {dsp_one_plane_x1, dsp_one_plane_x2, dsp_one_plane_x3};
    const int32_t per_loop = triples % 3 == 0 ? 3 : (triples % 2 == 0 ? 2 : 1);
    const dsp_rows_args args = {plane, pair ? plane + plane_stride : plane, triples / per_loop, -340 * triples,
                                -340 * triples, tail * 4, (uintptr_t)out,
                                (uintptr_t)out + (uintptr_t)rows * (pair ? 8u : 4u),
                                (uintptr_t)weights - (uintptr_t)tail * 4u};
    (pair ? two : one)[per_loop - 1](&args);
}

void horq_xor_popcount_rows(const uint32_t *weights, int32_t rows, const uint32_t *planes, int32_t plane_stride,
                            int32_t order, int32_t words, int32_t *mismatches)
{
    const int32_t triples = words / 3;
    const int32_t tail = words - 3 * triples;
    if (rows <= 0) {
        return;
    }
    if (triples == 0) {
        for (int32_t i = 0; i < rows * order; ++i) {
            mismatches[i] = 0;
        }
    } else if (order <= 2) { /* the kernels write exactly this layout */
        dsp_rows(weights, rows, planes, plane_stride, triples, tail, order == 2, mismatches);
    } else { /* planes in pairs through a staging buffer, then into [row][order] */
        int32_t stage[DSP_STAGE_ROWS * 2];
        for (int32_t first = 0; first < rows; first += DSP_STAGE_ROWS) {
            const int32_t n = rows - first < DSP_STAGE_ROWS ? rows - first : DSP_STAGE_ROWS;
            for (int32_t k = 0; k < order; k += 2) {
                const int pair = k + 1 < order;
                dsp_rows(weights + (ptrdiff_t)first * words, n, planes + (ptrdiff_t)k * plane_stride, plane_stride,
                         triples, tail, pair, stage);
                for (int32_t r = 0; r < n; ++r) {
                    mismatches[(first + r) * order + k] = stage[r * (pair ? 2 : 1)];
                    if (pair) {
                        mismatches[(first + r) * order + k + 1] = stage[r * 2 + 1];
                    }
                }
            }
        }
    }
    if (tail > 0) { /* the last one or two words of every row */
        const swar_masks m = masks_in_registers();
        for (int32_t r = 0; r < rows; ++r) {
            const uint32_t *w = weights + (ptrdiff_t)r * words + 3 * triples;
            for (int32_t k = 0; k < order; ++k) {
                const uint32_t *p = planes + (ptrdiff_t)k * plane_stride + 3 * triples;
                uint32_t sum = (uint32_t)mismatches[r * order + k];
                for (int32_t i = 0; i < tail; ++i) {
                    sum = sum_bytes(nibbles_to_bytes(nibble_counts(w[i] ^ p[i], &m), &m), sum);
                }
                mismatches[r * order + k] = (int32_t)sum;
            }
        }
    }
}

#else
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
#endif
