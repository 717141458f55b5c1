/*
 * XOR-popcount of one weight row against the K bit-planes of one input group:
 * the inner loop of every HORQ layer. Helium and NEON each have a whole
 * implementation of their own (their rows are counted several at a time, see
 * there); the SWAR path (DSP targets) and the portable path share the loop at
 * the bottom. The paths sit behind the project's flags (horq_types.h).
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
 * -DHORQ_FORCE_SWAR selects it anywhere: host tests cover it so, and cores
 * without the DSP extension, where the builtin is a libgcc call a word, take it
 * from their target's flags (targets/cortex-m3.toml). */
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
/* Helium has no vector popcount, and the rows of one call are short (9 words
 * for a 3x3 convolution of 32 channels): counting a row in 4-word vectors and
 * summing each vector across its lanes (vaddvaq) pays a reduction per row and a
 * scalar count for the 1-3 tail words. Instead the work is transposed: lane l
 * of a vector belongs to output j + l (j = r * order + k, the order of
 * mismatches), and word i of the four outputs comes in with one gather load
 * (weights and planes each, from a vector of the four rows' and planes'
 * addresses, which the load advances by a word). There is no tail and no
 * reduction across lanes, and the four counts go out with one store.
 *
 * The bits are counted by table: a byte gather (VLDRB.U8 Qd, [Rn, Qm]) with
 * the 16 bytes of w XOR p as offsets into a 256-byte table of bit counts gives
 * the count of every byte in one instruction, where the SWAR steps take six or
 * more. The byte counts (<= 8) of up to MVE_RUN_WORDS words add up in a byte
 * (<= 240) before the four bytes of each lane are summed.
 *
 * With order 1, 2 or 4 every group of four outputs has the same four planes,
 * so two groups (eight outputs) go together and share the plane word: a word
 * of eight outputs costs nine instructions, the plane gather, and for each
 * group the weight gather, the XOR, the lookup and a byte add. Other orders
 * count plane by plane as order 1.
 *
 * This path counts few instructions but stalls the in-order M55 on each
 * gather's latency (llvm-mca: 2.5 cycles a word-plane). Orders 1 and 2 with
 * at least 8 (order 1) or 4 rows and 4 words, the layers' case, take the
 * software-pipelined kernels further down (mve_order12_rows: 1.25 cycles a
 * word-plane in their loops, bench/mca_loop.py); this path does the rest.
 *
 * GCC 12 spills and shuffles the address vectors of this loop through core
 * registers, and its vldrwq_gather_base_wb_u32 is two loads, so the loop over
 * the pairs of groups is written in assembly. */
#define MVE_RUN_WORDS 30

#define MVE_B2(n) n, n + 1, n + 1, n + 2
#define MVE_B4(n) MVE_B2(n), MVE_B2(n + 1), MVE_B2(n + 1), MVE_B2(n + 2)
#define MVE_B6(n) MVE_B4(n), MVE_B4(n + 1), MVE_B4(n + 1), MVE_B4(n + 2)
static const uint8_t mve_bit_counts[256] = {MVE_B6(0), MVE_B6(1), MVE_B6(1), MVE_B6(2)};

/* wa, wb: the weight addresses of groups A and B, pl: the plane addresses (the
 * operands, q1-q3), one word before the next word; q5: the plane word; q0, q4:
 * the byte counts of A and B over the run so far. The first word of a run sets
 * them, the others add to them. A gather's destination is never its address
 * register. */
#define MVE_PLANE "vldrw.u32 q5, [%q[pl], #4]!\n\t"
#define MVE_LOOKUP(ADDR, INTO)                                                                  \
    "vldrw.u32 q6, [" ADDR ", #4]!\n\t"                                                         \
    "veor q6, q6, q5\n\t"                                                                       \
    "vldrb.u8 " INTO ", [%[table], q6]\n\t"
#define MVE_FIRST_WORD MVE_PLANE MVE_LOOKUP("%q[wa]", "q0") MVE_LOOKUP("%q[wb]", "q4")
#define MVE_WORD                                                                                \
    MVE_PLANE MVE_LOOKUP("%q[wa]", "q7") "vadd.i8 q0, q0, q7\n\t" MVE_LOOKUP("%q[wb]", "q7") "vadd.i8 q4, q4, q7\n\t"
#define MVE_PREFIX_1 MVE_FIRST_WORD
#define MVE_PREFIX_2 MVE_FIRST_WORD MVE_WORD
#define MVE_PREFIX_3 MVE_FIRST_WORD MVE_WORD MVE_WORD
/* The same for group A alone. */
#define MVE_FIRST_WORD_A MVE_PLANE MVE_LOOKUP("%q[wa]", "q0")
#define MVE_WORD_A MVE_PLANE MVE_LOOKUP("%q[wa]", "q7") "vadd.i8 q0, q0, q7\n\t"
#define MVE_PREFIX_A1 MVE_FIRST_WORD_A
#define MVE_PREFIX_A2 MVE_FIRST_WORD_A MVE_WORD_A
#define MVE_PREFIX_A3 MVE_FIRST_WORD_A MVE_WORD_A MVE_WORD_A
/* The sum of the four bytes (<= 240) of each lane: lo + hi = h - 255 * hi on
 * halfwords, then the two halfwords of a lane added in the top half of a
 * multiply by 0x10001. */
#define MVE_LANE_SUMS(Q)                                                                        \
    "vshr.u16 q6, " Q ", #8\n\t"                                                                \
    "vmla.u16 " Q ", q6, %[m]\n\t"                                                              \
    "vmul.i32 " Q ", " Q ", %[k]\n\t"                                                           \
    "vshr.u32 " Q ", " Q ", #16\n\t"
#define MVE_STORE "vstrw.32 q0, [%[out]], #16\n\t" "vstrw.32 q4, [%[out]], #16\n\t"
#define MVE_STORE_A "vstrw.32 q0, [%[out]]\n\t"
#define MVE_ADD_STORE_A "vldrw.u32 q6, [%[out]]\n\t" "vadd.i32 q0, q0, q6\n\t" MVE_STORE_A
#define MVE_ADD_STORE                                                                           \
    "vldrw.u32 q6, [%[out]]\n\t" "vadd.i32 q0, q0, q6\n\t" "vstrw.32 q0, [%[out]], #16\n\t"    \
    "vldrw.u32 q6, [%[out]]\n\t" "vadd.i32 q4, q4, q6\n\t" "vstrw.32 q4, [%[out]], #16\n\t"

/* `pairs` pairs of groups, a run of n = PREFIX + 3 * `triples` words of each.
 * The weight addresses move on by `step` bytes from the end of a pair's run to
 * the start of the next pair's, the plane addresses back by 4 n. STORE writes
 * the eight counts or adds them to those in out. */
#define MVE_PAIRS(PREFIX, STORE)                                                                \
    __asm__ volatile("movw %[m], #0xff01\n\t"                                                   \
                     "mov %[k], #0x10001\n\t"                                                   \
                     "1:\n\t" PREFIX                                                            \
                     "wls lr, %[triples], 3f\n\t"                                               \
                     "2:\n\t" MVE_WORD MVE_WORD MVE_WORD                                        \
                     "le lr, 2b\n\t"                                                            \
                     "3:\n\t" MVE_LANE_SUMS("q0") MVE_LANE_SUMS("q4") STORE                     \
                     "vadd.i32 %q[wa], %q[wa], %[step]\n\t"                                     \
                     "vadd.i32 %q[wb], %q[wb], %[step]\n\t"                                     \
                     "vsub.i32 %q[pl], %q[pl], %[back]\n\t"                                     \
                     "subs %[pairs], %[pairs], #1\n\t"                                          \
                     "bne 1b\n\t"                                                               \
                     : [out] "+r"(out), [pairs] "+r"(pairs), [m] "=&r"(m), [k] "=&r"(k),         \
                       [wa] "+w"(wa), [wb] "+w"(wb), [pl] "+w"(pl)                              \
                     : [table] "r"(mve_bit_counts), [step] "r"(step), [back] "r"(back),          \
                       [triples] "r"(triples)                                                   \
                     : "q0", "q4", "q5", "q6", "q7", "lr", "cc", "memory")

/* The asm text must be fixed at compile time: one instance of KERNEL per prefix
 * length (the 1 to 3 words a row starts with) and per store. A run that adds
 * to counts already stored starts with a whole triple (prefix 3). */
#define MVE_BY_PREFIX(KERNEL, PREFIX_3, PREFIX_2, PREFIX_1, STORE, ADD_STORE)                     \
    do {                                                                                        \
        if (add) {                                                                              \
            KERNEL(PREFIX_3, ADD_STORE);                                                        \
        } else if (prefix == 3) {                                                               \
            KERNEL(PREFIX_3, STORE);                                                            \
        } else if (prefix == 2) {                                                               \
            KERNEL(PREFIX_2, STORE);                                                            \
        } else {                                                                                \
            KERNEL(PREFIX_1, STORE);                                                            \
        }                                                                                       \
    } while (0)

/* Counts of `pairs` (>= 1) pairs of groups of four outputs over a run of n
 * words (1 <= n <= MVE_RUN_WORDS; n = MVE_RUN_WORDS where `add`) that starts
 * one word past the lanes' addresses of the first pair (wa: weights of group
 * A, wb: of group B, pl: planes); `step` is the distance in bytes from one
 * pair's weights to the next's. The counts are written to out (eight a pair),
 * or added to it. */
static inline __attribute__((always_inline)) void mve_pairs(uint32x4_t wa, uint32x4_t wb, uint32x4_t pl,
                                                            int32_t *out, int32_t pairs, uint32_t step, int32_t n,
                                                            int add)
{
    const int32_t triples = (int32_t)((uint32_t)(n - 1) / 3u), prefix = n - 3 * triples;
    const uint32_t back = 4u * (uint32_t)n;
    uint32_t m, k;
    step -= back;
    MVE_BY_PREFIX(MVE_PAIRS, MVE_PREFIX_3, MVE_PREFIX_2, MVE_PREFIX_1, MVE_STORE, MVE_ADD_STORE);
}

/* Group A alone, once. */
#define MVE_GROUP(PREFIX, STORE)                                                                \
    __asm__ volatile("movw %[m], #0xff01\n\t"                                                   \
                     "mov %[k], #0x10001\n\t" PREFIX                                            \
                     "wls lr, %[triples], 3f\n\t"                                               \
                     "2:\n\t" MVE_WORD_A MVE_WORD_A MVE_WORD_A                                  \
                     "le lr, 2b\n\t"                                                            \
                     "3:\n\t" MVE_LANE_SUMS("q0") STORE                                         \
                     : [m] "=&r"(m), [k] "=&r"(k), [wa] "+w"(wa), [pl] "+w"(pl)                 \
                     : [out] "r"(out), [table] "r"(mve_bit_counts), [triples] "r"(triples)      \
                     : "q0", "q5", "q6", "q7", "lr", "cc", "memory")

static void mve_group(uint32x4_t wa, uint32x4_t pl, int32_t *out, int32_t n, int add)
{
    const int32_t triples = (int32_t)((uint32_t)(n - 1) / 3u), prefix = n - 3 * triples;
    uint32_t m, k;
    MVE_BY_PREFIX(MVE_GROUP, MVE_PREFIX_A3, MVE_PREFIX_A2, MVE_PREFIX_A1, MVE_STORE_A, MVE_ADD_STORE_A);
}

/* The same from the lanes' addresses in memory: lanes[0..3] group A,
 * lanes[4..7] group B, lanes[8..11] planes; group A alone where pairs is 0. */
__attribute__((noinline)) static void mve_lanes_run(const uint32_t *lanes, int32_t *out, int32_t pairs,
                                                    uint32_t step, int32_t n, int add)
{
    if (pairs > 0) {
        mve_pairs(vld1q_u32(lanes), vld1q_u32(lanes + 4), vld1q_u32(lanes + 8), out, pairs, step, n, add);
    } else {
        mve_group(vld1q_u32(lanes), vld1q_u32(lanes + 8), out, n, add);
    }
}

/* All runs of the rows (`pairs` pairs of groups, or group A alone where
 * pairs is 0): the first run takes the odd words, the others MVE_RUN_WORDS
 * each. */
static void mve_runs(const uint32_t *lanes, int32_t *out, int32_t pairs, uint32_t step, int32_t words)
{
    if (words <= MVE_RUN_WORDS) {
        mve_lanes_run(lanes, out, pairs, step, words, 0);
        return;
    }
    const int32_t runs = (words - 1) / MVE_RUN_WORDS;
    const int32_t n = words - runs * MVE_RUN_WORDS;
    mve_lanes_run(lanes, out, pairs, step, n, 0);
    uint32_t moved[12];
    for (int32_t r = 0, at = n; r < runs; ++r, at += MVE_RUN_WORDS) {
        for (int l = 0; l < 12; ++l) {
            moved[l] = lanes[l] + 4u * (uint32_t)at;
        }
        mve_lanes_run(moved, out, pairs, step, MVE_RUN_WORDS, 1);
    }
}

/* Calls with fewer than four outputs (the pixel-granularity convolution asks for
 * one row at a time) would leave lanes of the transposed path idle and pay its
 * set-up for little work: they count each output along its row, four words a
 * vector (by the table) summed across lanes, in a tail-predicated loop (the
 * words past the row are predicated off: not read, not counted). VADDVA needs
 * an even register. */
static inline __attribute__((always_inline)) int32_t mve_row_count(const uint32_t *w, const uint32_t *p,
                                                                   int32_t words)
{
    register uint32_t sum __asm__("r4") = 0;
    __asm__ volatile("wlstp.32 lr, %[n], 2f\n"
                     "1:\n\t"
                     "vldrw.u32 q0, [%[w]], #16\n\t"
                     "vldrw.u32 q1, [%[p]], #16\n\t"
                     "veor q0, q0, q1\n\t"
                     "vldrb.u8 q1, [%[table], q0]\n\t"
                     "vaddva.u8 %[sum], q1\n\t"
                     "letp lr, 1b\n"
                     "2:\n\t"
                     : [sum] "+r"(sum), [w] "+r"(w), [p] "+r"(p)
                     : [n] "r"(words), [table] "r"(mve_bit_counts)
                     : "q0", "q1", "lr", "memory");
    return (int32_t)sum;
}

static inline __attribute__((always_inline)) void mve_few_outputs(const uint32_t *weights,
                                                                  const uint32_t *planes, int32_t plane_stride,
                                                                  int32_t order, int32_t words, int32_t outputs,
                                                                  int32_t *mismatches)
{
    for (const uint32_t *w = weights; outputs > 0; w += words) {
        for (int32_t k = 0; k < order && outputs > 0; ++k, --outputs) {
            *mismatches++ = mve_row_count(w, planes + (ptrdiff_t)k * plane_stride, words);
        }
    }
}

/* The lanes of the first pair of groups with order 1, 2 or 4 (shift = log2
 * order): lane l of group A holds output l, of group B output 4 + l, both
 * against plane l % order. Addresses are one word before the first words (the
 * loads advance them before they read). Returns the distance in bytes from
 * one group's weights to the next's. */
static inline uint32_t mve_first_lanes(const uint32_t *weights, const uint32_t *planes, int32_t plane_stride,
                                       int shift, int32_t words, uint32_t *lanes)
{
    const uint32_t w = (uint32_t)(uintptr_t)weights - 4u, p = (uint32_t)(uintptr_t)planes - 4u;
    const uint32_t row = 4u * (uint32_t)words, plane = 4u * (uint32_t)plane_stride;
    const uint32_t group_step = row << (2 - shift);
    if (shift == 0) {
        lanes[0] = w, lanes[1] = w + row, lanes[2] = w + 2u * row, lanes[3] = w + 3u * row;
        lanes[8] = lanes[9] = lanes[10] = lanes[11] = p;
    } else if (shift == 1) {
        lanes[0] = lanes[1] = w, lanes[2] = lanes[3] = w + row;
        lanes[8] = lanes[10] = p, lanes[9] = lanes[11] = p + plane;
    } else {
        lanes[0] = lanes[1] = lanes[2] = lanes[3] = w;
        lanes[8] = p, lanes[9] = p + plane, lanes[10] = p + 2u * plane, lanes[11] = p + 3u * plane;
    }
    for (int l = 0; l < 4; ++l) {
        lanes[4 + l] = lanes[l] + group_step;
    }
    return group_step;
}

/* Order 1, 2 or 4, at least four outputs: the pairs of groups straight into
 * mismatches, the 1-7 outputs after them through a buffer; the lanes of
 * outputs past the last read the last row, so that they read nothing outside
 * the rows. */
static void mve_rows(const uint32_t *weights, int32_t rows, const uint32_t *planes, int32_t plane_stride,
                     int shift, int32_t words, int32_t *mismatches)
{
    const int32_t outputs = rows << shift, pairs = outputs / 8;
    uint32_t lanes[12];
    const uint32_t group_step = mve_first_lanes(weights, planes, plane_stride, shift, words, lanes);
    if (pairs > 0) {
        mve_runs(lanes, mismatches, pairs, 2u * group_step, words);
    }
    const int32_t j = 8 * pairs;
    if (j < outputs) {
        const int32_t first = j >> shift;
        int32_t last[8];
        for (int l = 0; l < 8; ++l) {
            int32_t r = first + (l >> shift);
            r = r < rows ? r : rows - 1;
            lanes[l] = (uint32_t)(uintptr_t)(weights + (ptrdiff_t)r * words) - 4u;
        }
        const int32_t rest = outputs - j;
        mve_runs(lanes, last, rest > 4 ? 1 : 0, 0u, words);
        /* (a copy loop would become a call of memcpy) */
        vstrwq_p_s32(mismatches + j, vld1q_s32(last), vctp32q((uint32_t)rest));
        if (rest > 4) {
            vstrwq_p_s32(mismatches + j + 4, vld1q_s32(last + 4), vctp32q((uint32_t)(rest - 4)));
        }
    }
}

/* Order 1, 2 or 4 (shift = log2 order), whole pairs of groups, rows of at most
 * MVE_RUN_WORDS words. Lane l reads row l / order (at (l - l % order) * words
 * * 4 / order bytes) against plane l % order. */
__attribute__((noinline)) static void mve_whole_pairs(const uint32_t *weights, const uint32_t *planes,
                                                      int32_t plane_stride, int32_t order, int shift,
                                                      int32_t words, int32_t pairs, int32_t *mismatches)
{
    const uint32x4_t plane = viwdupq_n_u32(0u, (uint32_t)order, 1);
    const uint32x4_t wa = vmlaq_n_u32(vdupq_n_u32((uint32_t)(uintptr_t)weights - 4u),
                                      vsubq_u32(vidupq_n_u32(0u, 1), plane), 4u * (uint32_t)words >> shift);
    const uint32_t group_step = 16u * (uint32_t)words >> shift;
    mve_pairs(wa, vaddq_n_u32(wa, group_step),
              vmlaq_n_u32(vdupq_n_u32((uint32_t)(uintptr_t)planes - 4u), plane, 4u * (uint32_t)plane_stride),
              mismatches, pairs, 2u * group_step, words, 0);
}

/* Orders other than 1, 2 and 4: each plane as order 1, MVE_ORDER_ROWS rows at
 * a time into a buffer, then into [row][order]. */
#define MVE_ORDER_ROWS 64

__attribute__((noinline)) static void mve_plane_by_plane(const uint32_t *weights, int32_t rows,
                                                         const uint32_t *planes, int32_t plane_stride,
                                                         int32_t order, int32_t words, int32_t *mismatches)
{
    int32_t counts[MVE_ORDER_ROWS];
    for (int32_t first = 0; first < rows; first += MVE_ORDER_ROWS) {
        const int32_t n = rows - first < MVE_ORDER_ROWS ? rows - first : MVE_ORDER_ROWS;
        for (int32_t k = 0; k < order; ++k) {
            const uint32_t *w = weights + (ptrdiff_t)first * words, *p = planes + (ptrdiff_t)k * plane_stride;
            if (n < 4) {
                mve_few_outputs(w, p, plane_stride, 1, words, n, counts);
            } else {
                mve_rows(w, n, p, plane_stride, 0, words, counts);
            }
            for (int32_t r = 0; r < n; ++r) {
                mismatches[(ptrdiff_t)(first + r) * order + k] = counts[r];
            }
        }
    }
}

/* Order 2 (the layers' case), tuned for cycles, not instructions: the count
 * above spends five load/store instructions on eight word-planes and feeds
 * each gather straight into the next instruction, and on the in-order M55 the
 * loop stalls on the gathers' latency (llvm-mca: 2.5 cycles a word-plane).
 * Here lane l belongs to row r + l and one weight gather (a word of four rows)
 * serves both planes; the planes come from a staging buffer, each word as a
 * broadcast vector (the word in all four lanes; plane 1's MVE2_PLANE_1 bytes
 * after plane 0's), by contiguous loads. A word of four rows is nine instructions for eight word-planes: the
 * weight gather, two plane loads, two XORs, two lookups and two byte
 * accumulations (VMLA by 1, on the multiplier, so that the ALU has only the
 * XORs); the five loads bound it at ten cycles. The loop is software-pipelined
 * so that it never waits: weights are gathered two words ahead, the XORs run
 * one word ahead of their lookups (a gather reads its offsets early) and the
 * lookups one word ahead of their accumulation. The last weight gather is that
 * of the last word: nothing is read past a row.
 *
 * Registers: q0 the four rows' addresses (one word before the next word), q1
 * and q2 the XORs with planes 0 and 1, q3 and q4 their lookups, q5 the next
 * weight word, q6 and q7 the byte counts of planes 0 and 1 (<= 8 a word, so a
 * run is at most MVE2_RUN_WORDS words). */
#define MVE2_RUN_WORDS 31
/* Plane 1's broadcasts in the staging buffer, from plane 0's next word's (a
 * load's offset: at most 508). */
#define MVE2_PLANE_1 "480"
#define MVE2_PLANE_1_WORDS (4 * MVE2_RUN_WORDS)

#define MVE2_NEXT_WEIGHTS "vldrw.u32 q5, [%q[wa], #4]!\n\t"
/* The start of a group: its first word XOR-ed with both planes (then, after
 * MVE2_NEXT_WEIGHTS, its second word's weights gathered). */
#define MVE2_GROUP_START                                                                        \
    "mov %[p], %[staged]\n\t" MVE2_NEXT_WEIGHTS                                                 \
    "vldrw.u32 q1, [%[p]], #16\n\t"                                                             \
    "veor q1, q5, q1\n\t"                                                                       \
    "vldrw.u32 q2, [%[p], #" MVE2_PLANE_1 "]\n\t"                                               \
    "veor q2, q5, q2\n\t"
/* The first two words: their lookups start the byte counts (q6, q7) and fill
 * q3, q4; the XORs of the third word, the weights of the fourth. */
#define MVE2_FIRST_WORDS                                                                        \
    "vldrb.u8 q6, [%[table], q1]\n\t"                                                           \
    "vldrw.u32 q1, [%[p]], #16\n\t"                                                             \
    "vldrb.u8 q7, [%[table], q2]\n\t"                                                           \
    "veor q1, q5, q1\n\t"                                                                       \
    "vldrw.u32 q2, [%[p], #" MVE2_PLANE_1 "]\n\t"                                               \
    "veor q2, q5, q2\n\t" MVE2_NEXT_WEIGHTS                                                     \
    "vldrb.u8 q3, [%[table], q1]\n\t"                                                           \
    "vldrw.u32 q1, [%[p]], #16\n\t"                                                             \
    "vldrb.u8 q4, [%[table], q2]\n\t"                                                           \
    "veor q1, q5, q1\n\t"                                                                       \
    "vldrw.u32 q2, [%[p], #" MVE2_PLANE_1 "]\n\t"                                               \
    "veor q2, q5, q2\n\t" MVE2_NEXT_WEIGHTS
/* A word: the previous word's counts accumulated, this word's looked up, the
 * next word's XORs, the weights of the word after it (NEXT). */
#define MVE2_WORD(NEXT)                                                                         \
    "vmla.s8 q6, q3, %[one]\n\t"                                                                \
    "vldrb.u8 q3, [%[table], q1]\n\t"                                                           \
    "vmla.s8 q7, q4, %[one]\n\t"                                                                \
    "vldrb.u8 q4, [%[table], q2]\n\t"                                                           \
    "vldrw.u32 q1, [%[p]], #16\n\t"                                                             \
    "veor q1, q5, q1\n\t"                                                                       \
    "vldrw.u32 q2, [%[p], #" MVE2_PLANE_1 "]\n\t"                                               \
    "veor q2, q5, q2\n\t" NEXT
/* The words of a group after its start, up to the last word's lookups; the
 * weight addresses move on to the next group as soon as the last word's are
 * gathered. */
#define MVE2_WORDS(LOOP)                                                                        \
    MVE2_FIRST_WORDS                                                                            \
    "wls lr, %[loops], " LOOP "f\n"                                                             \
    LOOP "0:\n\t" MVE2_WORD(MVE2_NEXT_WEIGHTS)                                                  \
    "le lr, " LOOP "0b\n"                                                                       \
    LOOP ":\n\t" MVE2_WORD("vadd.i32 %q[wa], %q[wa], %[step]\n\t")                             \
    "vmla.s8 q6, q3, %[one]\n\t"                                                                \
    "vldrb.u8 q3, [%[table], q1]\n\t"                                                           \
    "vmla.s8 q7, q4, %[one]\n\t"                                                                \
    "vldrb.u8 q4, [%[table], q2]\n\t"
/* The four bytes of each lane of q6 and q7 summed (as MVE_LANE_SUMS) into q3
 * and q4, the two chains interleaved. */
#define MVE2_LANE_SUMS                                                                          \
    "vshr.u16 q3, q6, #8\n\t"                                                                   \
    "vmla.s16 q6, q3, %[m]\n\t"                                                                 \
    "vshr.u16 q4, q7, #8\n\t"                                                                   \
    "vmul.i32 q3, q6, %[k]\n\t"                                                                 \
    "vmla.s16 q7, q4, %[m]\n\t"                                                                 \
    "vshr.u32 q3, q3, #16\n\t"                                                                  \
    "vmul.i32 q4, q7, %[k]\n\t"                                                                 \
    "vshr.u32 q4, q4, #16\n\t"
/* The last lookups accumulated, plane 0's on the ALU, plane 1's on the
 * multiplier (the lane sums keep the multiplier busy). */
#define MVE2_LAST_ADD_0 "vadd.i8 q6, q6, q3\n\t"
#define MVE2_LAST_ADD_1 "vmla.s8 q7, q4, %[one]\n\t"
/* The counts of four rows, interleaved as [row][plane]. */
#define MVE2_STORE "vst20.32 {q3, q4}, [%[out]]\n\t" "vst21.32 {q3, q4}, [%[out]]!\n\t"
#define MVE2_ADD_STORE                                                                          \
    "vld20.32 {q6, q7}, [%[out]]\n\t"                                                           \
    "vld21.32 {q6, q7}, [%[out]]\n\t"                                                           \
    "vadd.i32 q3, q3, q6\n\t"                                                                   \
    "vadd.i32 q4, q4, q7\n\t" MVE2_STORE

/* `groups` groups of four rows over a run of n words (4 <= n <= MVE2_RUN_WORDS),
 * the planes staged at `staged`; the addresses move on by `step` bytes from
 * the end of a group's run to the start of the next group's (rows of `words`
 * words). Groups overlap: the next group starts while the last lookups of this
 * one come in; the last group starts none. */
#define MVE2_GROUPS(STORE)                                                                      \
    __asm__ volatile("movw %[m], #0xff01\n\t"                                                   \
                     "mov %[k], #0x10001\n\t"                                                   \
                     "mov %[one], #1\n\t" MVE2_GROUP_START MVE2_NEXT_WEIGHTS                    \
                     "subs %[groups], %[groups], #1\n\t"                                        \
                     "beq 4f\n"                                                                 \
                     "1:\n\t" MVE2_WORDS("2") MVE2_GROUP_START MVE2_LAST_ADD_0 MVE2_NEXT_WEIGHTS  \
                     MVE2_LAST_ADD_1 MVE2_LANE_SUMS STORE                                       \
                     "subs %[groups], %[groups], #1\n\t"                                        \
                     "bne 1b\n"                                                                 \
                     "4:\n\t" MVE2_WORDS("5") MVE2_LAST_ADD_0 MVE2_LAST_ADD_1 MVE2_LANE_SUMS STORE \
                     : [out] "+r"(out), [groups] "+r"(groups), [m] "=&r"(m), [k] "=&r"(k),       \
                       [one] "=&r"(one), [p] "=&r"(p), [wa] "+w"(wa)                            \
                     : [table] "r"(mve_bit_counts), [staged] "r"(staged), [step] "r"(step),      \
                       [loops] "r"(loops)                                                       \
                     : "q1", "q2", "q3", "q4", "q5", "q6", "q7", "lr", "cc", "memory")

__attribute__((noinline)) static void mve2_groups(uint32x4_t wa, const uint32_t *staged, int32_t *out,
                                                  int32_t groups, int32_t n, int32_t words, int add)
{
    const int32_t loops = n - 4;
    const uint32_t step = 16u * (uint32_t)words - 4u * (uint32_t)n;
    uint32_t m, k, one;
    const uint32_t *p;
    if (add) {
        MVE2_GROUPS(MVE2_ADD_STORE);
    } else {
        MVE2_GROUPS(MVE2_STORE);
    }
}

/* Order 1, the same way: lane l of group A belongs to row r + l, of group B to
 * row r + 4 + l, and one plane load (a word in all four lanes) serves both.
 * Group B's weights are gathered from group A's addresses plus the distance
 * between the groups (a gather adds its base register to each lane), so one
 * writeback moves both groups on. A word of eight rows is again nine
 * instructions for eight word-planes, five of them loads. Registers: q0 group
 * A's addresses (at the word last gathered), q1 and q2 the XORs of groups A and
 * B, q3 and q4 their lookups, q5 the plane word, q6 and q7 the byte counts of A
 * and B. A word's weights are gathered one word ahead of its lookups. */
/* Word i: group A's weights gathered and XOR-ed with the plane; group B's
 * lookups of word i - 1 (into LB), then its weights of word i; group A's
 * lookups of word i (into LA), group B's XOR. The byte counts take the lookups
 * of A's word i - 1 and B's word i - 2 (ACC_A, ACC_B) just before those
 * registers are reloaded. */
#define MVE1_WORD(ACC_B, LB, ACC_A, LA)                                                         \
    "vldrw.u32 q1, [%q[wa], #4]!\n\t" ACC_B                                                     \
    "vldrw.u32 q5, [%[p]], #16\n\t"                                                             \
    "veor q1, q1, q5\n\t"                                                                       \
    "vldrb.u8 " LB ", [%[table], q2]\n\t"                                                       \
    "vldrw.u32 q2, [%[rb], %q[wa]]\n\t" ACC_A                                                   \
    "vldrb.u8 " LA ", [%[table], q1]\n\t"                                                       \
    "veor q2, q2, q5\n\t"
#define MVE1_ACC_A "vmla.s8 q6, q3, %[one]\n\t"
#define MVE1_ACC_B "vmla.s8 q7, q4, %[one]\n\t"
/* The start of a group: its first word XOR-ed with the plane. */
#define MVE1_GROUP_START                                                                        \
    "mov %[p], %[staged]\n\t"                                                                   \
    "vldrw.u32 q1, [%q[wa], #4]!\n\t"                                                           \
    "vldrw.u32 q5, [%[p]], #16\n\t"                                                             \
    "veor q1, q1, q5\n\t"                                                                       \
    "vldrw.u32 q2, [%[rb], %q[wa]]\n\t"                                                         \
    "veor q2, q2, q5\n\t"
/* The words of a group after its start, up to the last word's lookups: the
 * first lookups of A and B start their byte counts, the weight addresses move
 * on to the next group after the last gather. */
#define MVE1_WORDS(LOOP)                                                                        \
    "vldrb.u8 q6, [%[table], q1]\n\t" MVE1_WORD("", "q7", "", "q3")                             \
    MVE1_WORD("", "q4", MVE1_ACC_A, "q3")                                                       \
    "wls lr, %[loops], " LOOP "f\n"                                                             \
    LOOP "0:\n\t" MVE1_WORD(MVE1_ACC_B, "q4", MVE1_ACC_A, "q3")                                 \
    "le lr, " LOOP "0b\n"                                                                       \
    LOOP ":\n\t"                                                                                \
    "vadd.i32 %q[wa], %q[wa], %[step]\n\t" MVE1_ACC_B                                           \
    "vldrb.u8 q4, [%[table], q2]\n\t"
/* The counts of eight rows, in order. */
#define MVE1_STORE "vstrw.32 q4, [%[out], #16]\n\t" "vstrw.32 q3, [%[out]], #32\n\t"
#define MVE1_ADD_STORE                                                                          \
    "vldrw.u32 q6, [%[out]]\n\t"                                                                \
    "vldrw.u32 q7, [%[out], #16]\n\t"                                                           \
    "vadd.i32 q3, q3, q6\n\t"                                                                   \
    "vadd.i32 q4, q4, q7\n\t" MVE1_STORE

/* `groups` groups of eight rows over a run of n words (4 <= n <=
 * MVE2_RUN_WORDS), the plane staged at `staged`; rb is the distance in bytes
 * from group A's rows to group B's, `step` from the end of a group's run to
 * the start of the next group's. */
#define MVE1_GROUPS(STORE)                                                                      \
    __asm__ volatile("movw %[m], #0xff01\n\t"                                                   \
                     "mov %[k], #0x10001\n\t"                                                   \
                     "mov %[one], #1\n\t" MVE1_GROUP_START                                      \
                     "subs %[groups], %[groups], #1\n\t"                                        \
                     "beq 4f\n"                                                                 \
                     "1:\n\t" MVE1_WORDS("2") MVE1_GROUP_START MVE2_LAST_ADD_0 MVE2_LAST_ADD_1   \
                     MVE2_LANE_SUMS STORE                                                       \
                     "subs %[groups], %[groups], #1\n\t"                                        \
                     "bne 1b\n"                                                                 \
                     "4:\n\t" MVE1_WORDS("5") MVE2_LAST_ADD_0 MVE2_LAST_ADD_1 MVE2_LANE_SUMS STORE \
                     : [out] "+r"(out), [groups] "+r"(groups), [m] "=&r"(m), [k] "=&r"(k),       \
                       [one] "=&r"(one), [p] "=&r"(p), [wa] "+w"(wa)                            \
                     : [table] "r"(mve_bit_counts), [staged] "r"(staged), [step] "r"(step),      \
                       [loops] "r"(loops), [rb] "r"(rb)                                         \
                     : "q1", "q2", "q3", "q4", "q5", "q6", "q7", "lr", "cc", "memory")

__attribute__((noinline)) static void mve1_groups(uint32x4_t wa, const uint32_t *staged, int32_t *out,
                                                  int32_t groups, int32_t n, int32_t words, int add)
{
    const int32_t loops = n - 3;
    const uint32_t step = 32u * (uint32_t)words - 4u * (uint32_t)n, rb = 16u * (uint32_t)words;
    uint32_t m, k, one;
    const uint32_t *p;
    if (add) {
        MVE1_GROUPS(MVE1_ADD_STORE);
    } else {
        MVE1_GROUPS(MVE1_STORE);
    }
}

/* One run of n words from word `at`: its planes staged, then its groups
 * (adding to the counts stored where `add`). */
static inline __attribute__((always_inline)) void mve_run(const uint32_t *weights, int32_t rows,
                                                           const uint32_t *planes, int32_t plane_stride, int pair,
                                                           int32_t words, int32_t at, int32_t n, int add,
                                                           int32_t *mismatches, uint32_t *staged)
{
    const uint32x4_t lanes = vmulq_n_u32(vidupq_n_u32(0u, 1), 4u * (uint32_t)words);
    const uint32x4_t wa = vaddq_n_u32(lanes, (uint32_t)(uintptr_t)(weights + at) - 4u);
    const uint32_t *p0 = planes + at;
    if (pair) {
        const uint32_t *p1 = p0 + plane_stride;
        for (int32_t i = 0; i < n; ++i) {
            const uint32_t a = p0[i], b = p1[i];
            vst1q_u32(staged + 4 * i, vdupq_n_u32(a));
            vst1q_u32(staged + MVE2_PLANE_1_WORDS + 4 * i, vdupq_n_u32(b));
        }
        mve2_groups(wa, staged, mismatches, rows / 4, n, words, add);
    } else {
        for (int32_t i = 0; i < n; ++i) {
            vst1q_u32(staged + 4 * i, vdupq_n_u32(p0[i]));
        }
        mve1_groups(wa, staged, mismatches, rows / 8, n, words, add);
    }
}

/* Order 1 or 2 (`pair`), rows a multiple of 8 (order 1) or 4 (order 2), at
 * least four words: a run of 4 to MVE2_RUN_WORDS words, then runs of
 * MVE2_RUN_WORDS - 3 (each adds to the counts stored). The planes are staged
 * run by run as broadcast vectors (each word in all four lanes), plane 1's
 * MVE2_PLANE_1_WORDS words after plane 0's. */
static void mve_order12_rows(const uint32_t *weights, int32_t rows, const uint32_t *planes, int32_t plane_stride,
                             int pair, int32_t words, int32_t *mismatches)
{
    uint32_t staged[MVE2_PLANE_1_WORDS + 4 * MVE2_RUN_WORDS];
    if (words <= MVE2_RUN_WORDS) {
        mve_run(weights, rows, planes, plane_stride, pair, words, 0, words, 0, mismatches, staged);
        return;
    }
    const int32_t runs = (words - 4) / (MVE2_RUN_WORDS - 3);
    int32_t n = words - runs * (MVE2_RUN_WORDS - 3);
    for (int32_t run = 0, at = 0; run <= runs; ++run, at += n, n = MVE2_RUN_WORDS - 3) {
        mve_run(weights, rows, planes, plane_stride, pair, words, at, n, run > 0, mismatches, staged);
    }
}

void horq_xor_popcount_rows(const uint32_t *weights, int32_t rows, const uint32_t *planes, int32_t plane_stride,
                            int32_t order, int32_t words, int32_t *mismatches)
{
    if ((order == 2 && rows >= 4 && words >= 4) || (order == 1 && rows >= 8 && words >= 4)) { /* the layers' case */
        const int32_t whole = order == 2 ? rows & ~3 : rows & ~7;
        mve_order12_rows(weights, whole, planes, plane_stride, order == 2, words, mismatches);
        if (whole == rows) {
            return;
        }
        weights += (ptrdiff_t)whole * words;
        mismatches += order * whole;
        rows -= whole;
    }
    const int32_t outputs = rows * order;
    if (outputs < 4 || words <= 0) {
        mve_few_outputs(weights, planes, plane_stride, order, words, outputs, mismatches);
    } else if (order == 1 || order == 2 || order == 4) {
        const int shift = order == 1 ? 0 : (order == 2 ? 1 : 2);
        if ((outputs & 7) == 0 && words <= MVE_RUN_WORDS) { /* the layers' case */
            mve_whole_pairs(weights, planes, plane_stride, order, shift, words, outputs / 8, mismatches);
        } else {
            mve_rows(weights, rows, planes, plane_stride, shift, words, mismatches);
        }
    } else {
        mve_plane_by_plane(weights, rows, planes, plane_stride, order, words, mismatches);
    }
}

#elif defined(HORQ_ARM_NEON)
/* NEON: vcntq_u8 counts the bits of each byte. The rows of one call are short
 * (a 3x3 convolution of 32 channels has 9-word rows), so the per-row work
 * outside the 4-word loop weighs as much as the loop itself. A block computes
 * 8 (or 4) outputs at once, R rows x K planes with K = order, so that its outputs
 * lie next to each other in mismatches:
 *  - each plane vector is loaded once for the R rows, each weight vector once
 *    for the K planes;
 *  - the per-byte counts of 4 outputs are reduced together by a pairwise-add
 *    tree into one vector of 4 totals, one store;
 *  - the 1-3 words after the last full vector are not counted per row: the
 *    tail words of 4 outputs share one vector, added to the tree at the level
 *    where each output has as many bytes as the tail gives it (a 2-word tail
 *    is 8 bytes per output, at the first level; a 1-word tail 4 bytes, at the
 *    second), so nothing is read past a row and no tail is counted alone. */
#define NEON_ROUND_VECTORS 14 /* bytes of the first tree level <= 16 * 14 + 8 < 256 */

typedef struct {
    uint32x4_t one[2];  /* the 1-word tail of each output of a group of 4 (the same for both groups when K <= 2) */
    uint32x4_t pair[4]; /* the 2-word tail of outputs 2h, 2h+1 of a group, h = 0..3 over the block */
} neon_tails;

/* vld1q_lane_u32 into lane j (1..3): the lane must be a constant, which an unrolled loop's
 * index is only when the build optimizes (at -O0 this switch picks it). */
static inline uint32x4_t neon_load_lane(const uint32_t *p, uint32x4_t v, int j)
{
    switch (j) {
    case 1:
        return vld1q_lane_u32(p, v, 1);
    case 2:
        return vld1q_lane_u32(p, v, 2);
    default:
        return vld1q_lane_u32(p, v, 3);
    }
}

/* Plane-side tails of a block with K planes (K = 1, 2 or 4): lane j of a group holds plane j % K. */
static inline __attribute__((always_inline)) neon_tails neon_plane_tails(const uint32_t *p, ptrdiff_t stride,
                                                                          ptrdiff_t words, const int K)
{
    neon_tails t;
    const ptrdiff_t full = words & ~(ptrdiff_t)3, rest = words & 3;
    if (rest & 2) {
        for (int h = 0; h < 2; ++h) {
            const int k0 = (2 * h) % K, k1 = (2 * h + 1) % K;
            t.pair[h] = vcombine_u32(vld1_u32(p + k0 * stride + full + (rest & 1)),
                                     vld1_u32(p + k1 * stride + full + (rest & 1)));
            t.pair[h + 2] = t.pair[h];
        }
    }
    if (rest & 1) {
        uint32x4_t v = vld1q_dup_u32(p + full);
        _Pragma("GCC unroll 4") for (int j = 1; j < 4; ++j) {
            if (j % K != 0) {
                v = neon_load_lane(p + (j % K) * stride + full, v, j);
            }
        }
        t.one[0] = t.one[1] = v;
    }
    return t;
}

/* Bit counts of w XOR p, per byte. */
static inline uint8x16_t neon_count(uint32x4_t w, uint32x4_t p)
{
    return vcntq_u8(vreinterpretq_u8_u32(veorq_u32(w, p)));
}

/* The row of output j of a block of N outputs, K per row; lanes past the last
 * output repeat its row, so that they read nothing outside the block. */
static inline int neon_row(int j, int N, int K)
{
    return (j < N ? j : N - 1) / K;
}

/* Loads n (1, 2 or 4) vectors from *q and advances it past them: one instruction
 * (ld1 with post-increment) for all n. */
static inline __attribute__((always_inline)) void neon_load(const uint32_t **q, uint32x4_t *v, const int n)
{
    if (n == 4) {
        const uint32x4x4_t x = vld1q_u32_x4(*q);
        v[0] = x.val[0], v[1] = x.val[1], v[2] = x.val[2], v[3] = x.val[3];
    } else if (n == 2) {
        const uint32x4x2_t x = vld1q_u32_x2(*q);
        v[0] = x.val[0], v[1] = x.val[1];
    } else {
        v[0] = vld1q_u32(*q);
    }
    *q += 4 * n;
}

/* n vectors (n = 1, 2 or 4) of every row and plane of a block into the per-byte
 * counts acc[r * K + k]; `first` starts them instead of adding to them. */
static inline __attribute__((always_inline)) void neon_step(const uint32_t **w, const uint32_t **p, uint8x16_t *acc,
                                                            const int n, const int first, const int R, const int K)
{
    uint32x4_t pv[4][4];
    _Pragma("GCC unroll 4") for (int k = 0; k < K; ++k) neon_load(&p[k], pv[k], n);
    _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
        uint32x4_t wv[4];
        neon_load(&w[r], wv, n);
        _Pragma("GCC unroll 4") for (int k = 0; k < K; ++k) {
            uint8x16_t sum = neon_count(wv[0], pv[k][0]);
            _Pragma("GCC unroll 4") for (int v = 1; v < n; ++v) sum = vaddq_u8(sum, neon_count(wv[v], pv[k][v]));
            acc[r * K + k] = first ? sum : vaddq_u8(acc[r * K + k], sum);
        }
    }
}

/* Per-byte counts of the N = R * K outputs of a block over `chunks` 4-word
 * vectors (at most NEON_ROUND_VECTORS) from the row pointers w[] and plane
 * pointers p[], which it advances past them. */
static inline __attribute__((always_inline)) void neon_accumulate(const uint32_t **w, const uint32_t **p,
                                                                  ptrdiff_t chunks, uint8x16_t *acc, const int R,
                                                                  const int K)
{
    if (chunks >= 4) {
        neon_step(w, p, acc, 4, 1, R, K);
        for (chunks -= 4; chunks >= 4; chunks -= 4) {
            neon_step(w, p, acc, 4, 0, R, K);
        }
        if (chunks & 2) {
            neon_step(w, p, acc, 2, 0, R, K);
        }
        if (chunks & 1) {
            neon_step(w, p, acc, 1, 0, R, K);
        }
    } else if (chunks & 2) {
        neon_step(w, p, acc, 2, 1, R, K);
        if (chunks & 1) {
            neon_step(w, p, acc, 1, 0, R, K);
        }
    } else if (chunks & 1) {
        neon_step(w, p, acc, 1, 1, R, K);
    } else {
        _Pragma("GCC unroll 8") for (int j = 0; j < R * K; ++j) acc[j] = vdupq_n_u8(0);
    }
}

/* Outputs of R rows (at w, `words` apart) x K planes (at p, `stride` apart), R * K <= 8:
 * out[r * K + k]. Only the first `valid` lanes of a group are stored (R * K < 4). */
static inline __attribute__((always_inline)) void neon_block(const uint32_t *w, const uint32_t *p, ptrdiff_t stride,
                                                             ptrdiff_t words, const neon_tails *tails, const int R,
                                                             const int K, int valid, int32_t *out)
{
    const int N = R * K, G = (N + 3) / 4;
    const ptrdiff_t full = words & ~(ptrdiff_t)3, rest = words & 3;
    const uint32_t *wr[8], *pk[4];
    _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) wr[r] = w + r * words;
    _Pragma("GCC unroll 4") for (int k = 0; k < K; ++k) pk[k] = p + k * stride;
    uint8x16_t acc[8];
    uint32x4_t total[2] = {vdupq_n_u32(0), vdupq_n_u32(0)};
    ptrdiff_t chunks = full >> 2;
    /* rows longer than NEON_ROUND_VECTORS vectors: the bytes are summed every so often */
    for (; chunks > NEON_ROUND_VECTORS; chunks -= NEON_ROUND_VECTORS) {
        neon_accumulate(wr, pk, NEON_ROUND_VECTORS, acc, R, K);
        _Pragma("GCC unroll 8") for (int j = N; j < 4 * G; ++j) acc[j] = vdupq_n_u8(0);
        _Pragma("GCC unroll 2") for (int g = 0; g < G; ++g) {
            const uint8x16_t *a = acc + 4 * g;
            const uint16x8_t c = vpaddq_u16(vpaddlq_u8(vpaddq_u8(a[0], a[1])), vpaddlq_u8(vpaddq_u8(a[2], a[3])));
            total[g] = vpadalq_u16(total[g], c);
        }
    }
    neon_accumulate(wr, pk, chunks, acc, R, K);
    /* wr[r] now points at the tail of row r */
    _Pragma("GCC unroll 8") for (int j = N; j < 4 * G; ++j) acc[j] = vdupq_n_u8(0);
    _Pragma("GCC unroll 2") for (int g = 0; g < G; ++g) {
        const uint8x16_t *a = acc + 4 * g;
        uint8x16_t b0 = vpaddq_u8(a[0], a[1]), b1 = vpaddq_u8(a[2], a[3]);
        if (rest & 2) {
            /* 8 bytes per output: outputs 4g + 2h, 4g + 2h + 1 in one vector */
            uint32x4_t tw[2];
            _Pragma("GCC unroll 2") for (int h = 0; h < 2; ++h) {
                const int r0 = neon_row(4 * g + 2 * h, N, K), r1 = neon_row(4 * g + 2 * h + 1, N, K);
                const uint32x2_t lo = vld1_u32(wr[r0] + (rest & 1));
                tw[h] = vcombine_u32(lo, r0 == r1 ? lo : vld1_u32(wr[r1] + (rest & 1)));
            }
            b0 = vaddq_u8(b0, neon_count(tw[0], tails->pair[2 * g]));
            b1 = vaddq_u8(b1, neon_count(tw[1], tails->pair[2 * g + 1]));
        }
        uint16x8_t c = vpaddq_u16(vpaddlq_u8(b0), vpaddlq_u8(b1));
        if (rest & 1) {
            /* 4 bytes per output: outputs 4g .. 4g + 3 in one vector */
            const int r0 = neon_row(4 * g, N, K);
            uint32x4_t tw = vld1q_dup_u32(wr[r0]);
            _Pragma("GCC unroll 4") for (int j = 1; j < 4; ++j) {
                const int rj = neon_row(4 * g + j, N, K);
                if (rj != r0) {
                    tw = neon_load_lane(wr[rj], tw, j);
                }
            }
            c = vpadalq_u8(c, neon_count(tw, tails->one[g]));
        }
        total[g] = vpadalq_u16(total[g], c);
    }
    _Pragma("GCC unroll 2") for (int g = 0; g < G; ++g) {
        if (valid >= 4) {
            vst1q_s32(out + 4 * g, vreinterpretq_s32_u32(total[g]));
        } else {
            vst1q_lane_s32(out, vreinterpretq_s32_u32(total[g]), 0);
            if (valid > 1) {
                vst1q_lane_s32(out + 1, vreinterpretq_s32_u32(total[g]), 1);
            }
            if (valid > 2) {
                vst1q_lane_s32(out + 2, vreinterpretq_s32_u32(total[g]), 2);
            }
        }
    }
}

/* One function per order case, so that each has only its own registers to save. */
static __attribute__((noinline)) void neon_rows_order1(const uint32_t *weights, int32_t rows, const uint32_t *planes,
                                                       ptrdiff_t stride, ptrdiff_t words, int32_t *mismatches)
{
    const neon_tails t = neon_plane_tails(planes, stride, words, 1);
    int32_t r = 0;
    for (; r + 8 <= rows; r += 8) {
        neon_block(weights + r * words, planes, stride, words, &t, 8, 1, 8, mismatches + r);
    }
    if (r + 4 <= rows) {
        neon_block(weights + r * words, planes, stride, words, &t, 4, 1, 4, mismatches + r);
        r += 4;
    }
    for (; r < rows; ++r) {
        neon_block(weights + r * words, planes, stride, words, &t, 1, 1, 1, mismatches + r);
    }
}

static __attribute__((noinline)) void neon_rows_order2(const uint32_t *weights, int32_t rows, const uint32_t *planes,
                                                       ptrdiff_t stride, ptrdiff_t words, int32_t *mismatches)
{
    const neon_tails t = neon_plane_tails(planes, stride, words, 2);
    int32_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        neon_block(weights + r * words, planes, stride, words, &t, 4, 2, 8, mismatches + 2 * r);
    }
    if (r + 2 <= rows) {
        neon_block(weights + r * words, planes, stride, words, &t, 2, 2, 4, mismatches + 2 * r);
        r += 2;
    }
    if (r < rows) {
        neon_block(weights + r * words, planes, stride, words, &t, 1, 2, 2, mismatches + 2 * r);
    }
}

/* Other orders (rarer): one row at a time, its planes four, two or one at a time. */
static __attribute__((noinline)) void neon_rows_any(const uint32_t *weights, int32_t rows, const uint32_t *planes,
                                                    ptrdiff_t stride, int32_t order, ptrdiff_t words,
                                                    int32_t *mismatches)
{
    for (int32_t r = 0; r < rows; ++r) {
        const uint32_t *w = weights + r * words;
        int32_t *out = mismatches + (ptrdiff_t)r * order;
        int32_t k = 0;
        for (; k + 4 <= order; k += 4) {
            const uint32_t *p = planes + k * stride;
            const neon_tails t = neon_plane_tails(p, stride, words, 4);
            neon_block(w, p, stride, words, &t, 1, 4, 4, out + k);
        }
        if (k + 2 <= order) {
            const uint32_t *p = planes + k * stride;
            const neon_tails t = neon_plane_tails(p, stride, words, 2);
            neon_block(w, p, stride, words, &t, 1, 2, 2, out + k);
            k += 2;
        }
        if (k < order) {
            const uint32_t *p = planes + k * stride;
            const neon_tails t = neon_plane_tails(p, stride, words, 1);
            neon_block(w, p, stride, words, &t, 1, 1, 1, out + k);
        }
    }
}

void horq_xor_popcount_rows(const uint32_t *weights, int32_t rows, const uint32_t *planes, int32_t plane_stride,
                            int32_t order, int32_t words, int32_t *mismatches)
{
    if (rows * order == 1 && words < 4) {
        /* one output of a few words (pixel-granularity convolutions of few channels):
         * the scalar count (cnt on a d register) beats setting up a block */
        mismatches[0] = horq_xor_popcount(weights, planes, words);
    } else if (order == 1) {
        neon_rows_order1(weights, rows, planes, plane_stride, words, mismatches);
    } else if (order == 2) {
        neon_rows_order2(weights, rows, planes, plane_stride, words, mismatches);
    } else {
        neon_rows_any(weights, rows, planes, plane_stride, order, words, mismatches);
    }
}


/* ---- NEON: 8 rows x 4 positions at once (horq_bconv2d.c) ----------------
 * A convolution has many positions and short rows. The block kernel counts
 * 8 rows against the planes of 4 positions' patches: each weight vector is
 * loaded once for the 4 positions, each activation vector once for the 8 rows,
 * and the counts are reduced inside the depth loop: per position, cnt of 8
 * rows, three levels of addp (8 rows x 2 bytes, at most 64 each) and uadalp
 * into the 16-bit lanes of that position's accumulator (8 rows; rows of at
 * most 2047 words, so a lane never passes 65535). The 1-3 words after a row's
 * last full vector are counted as a step would count them, nothing padded:
 * 2 words, rows 2i and 2i + 1 in one vector against the position's tail
 * repeated (ld1r); 1 word, rows 4i .. 4i + 3.
 * The depth loop is assembly: GCC, given the step in intrinsics, hoists every
 * eor of a step ahead of the counts and spills. Registers: the rows' vectors
 * v0-v7, the 4 positions' v16-v19, temporaries v28-v31, the accumulators
 * v20-v23 (plane 0) and v24-v27 (plane 1), stored to memory at the end; 24
 * instructions a position a step. */
#define NEON_B4_PAIR(T0, T1, WA, WB, A)                                                         \
    "eor " T0 ".16b, " WA ".16b, " A ".16b\n\t" "eor " T1 ".16b, " WB ".16b, " A ".16b\n\t"     \
    "cnt " T0 ".16b, " T0 ".16b\n\t" "cnt " T1 ".16b, " T1 ".16b\n\t"                           \
    "addp " T0 ".16b, " T0 ".16b, " T1 ".16b\n\t"
/* One position's step: rows in R0..R7, the position's vector A, accumulator ACC. */
#define NEON_B4_ROWS(A, ACC, R0, R1, R2, R3, R4, R5, R6, R7)                                    \
    NEON_B4_PAIR("v28", "v29", R0, R1, A) NEON_B4_PAIR("v29", "v30", R2, R3, A)                 \
    "addp v28.16b, v28.16b, v29.16b\n\t"                                                        \
    NEON_B4_PAIR("v29", "v30", R4, R5, A) NEON_B4_PAIR("v30", "v31", R6, R7, A)                 \
    "addp v29.16b, v29.16b, v30.16b\n\t"                                                        \
    "addp v28.16b, v28.16b, v29.16b\n\t"                                                        \
    "uadalp " ACC ".8h, v28.16b\n\t"
#define NEON_B4_POSITION(A, ACC) NEON_B4_ROWS(A, ACC, "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7")
/* Two steps at once (one plane): row r's vectors in v(2r), v(2r + 1), each loaded by one ld1;
 * position q's in v(16 + 2q), v(17 + 2q); the accumulators v24-v27. */
#define NEON_B4_EVEN(A, ACC) NEON_B4_ROWS(A, ACC, "v0", "v2", "v4", "v6", "v8", "v10", "v12", "v14")
#define NEON_B4_ODD(A, ACC) NEON_B4_ROWS(A, ACC, "v1", "v3", "v5", "v7", "v9", "v11", "v13", "v15")
#define NEON_B4_DOUBLE_STEP                                                                     \
    "ld1 {v0.4s, v1.4s}, [%[w0]], #32\n\t" "ld1 {v2.4s, v3.4s}, [%[w1]], #32\n\t"               \
    "ld1 {v4.4s, v5.4s}, [%[w2]], #32\n\t" "ld1 {v6.4s, v7.4s}, [%[w3]], #32\n\t"               \
    "ld1 {v8.4s, v9.4s}, [%[w4]], #32\n\t" "ld1 {v10.4s, v11.4s}, [%[w5]], #32\n\t"             \
    "ld1 {v12.4s, v13.4s}, [%[w6]], #32\n\t" "ld1 {v14.4s, v15.4s}, [%[w7]], #32\n\t"           \
    "ld1 {v16.4s, v17.4s}, [%[x0]], #32\n\t" "ld1 {v18.4s, v19.4s}, [%[x1]], #32\n\t"           \
    "ld1 {v20.4s, v21.4s}, [%[x2]], #32\n\t" "ld1 {v22.4s, v23.4s}, [%[x3]], #32\n\t"           \
    NEON_B4_EVEN("v16", "v24") NEON_B4_EVEN("v18", "v25") NEON_B4_EVEN("v20", "v26")            \
    NEON_B4_EVEN("v22", "v27") NEON_B4_ODD("v17", "v24") NEON_B4_ODD("v19", "v25")              \
    NEON_B4_ODD("v21", "v26") NEON_B4_ODD("v23", "v27")
#define NEON_B4_TAIL2_POSITION(A, ACC)                                                          \
    "eor v28.16b, v0.16b, " A ".16b\n\t" "eor v29.16b, v1.16b, " A ".16b\n\t"                   \
    "cnt v28.16b, v28.16b\n\t" "cnt v29.16b, v29.16b\n\t" "addp v28.16b, v28.16b, v29.16b\n\t"  \
    "eor v29.16b, v2.16b, " A ".16b\n\t" "eor v30.16b, v3.16b, " A ".16b\n\t"                   \
    "cnt v29.16b, v29.16b\n\t" "cnt v30.16b, v30.16b\n\t" "addp v29.16b, v29.16b, v30.16b\n\t"  \
    "addp v28.16b, v28.16b, v29.16b\n\t"                                                        \
    "uadalp " ACC ".8h, v28.16b\n\t"
#define NEON_B4_TAIL1_POSITION(A, ACC)                                                          \
    "eor v28.16b, v0.16b, " A ".16b\n\t" "eor v29.16b, v1.16b, " A ".16b\n\t"                   \
    "cnt v28.16b, v28.16b\n\t" "cnt v29.16b, v29.16b\n\t" "addp v28.16b, v28.16b, v29.16b\n\t"  \
    "uadalp " ACC ".8h, v28.16b\n\t"
#define NEON_B4_FOUR(POSITION, A0, A1, A2, A3)                                                  \
    POSITION("v16", A0) POSITION("v17", A1) POSITION("v18", A2) POSITION("v19", A3)
#define NEON_B4_WEIGHTS                                                                         \
    "ld1 {v0.4s}, [%[w0]], #16\n\t" "ld1 {v1.4s}, [%[w1]], #16\n\t"                             \
    "ld1 {v2.4s}, [%[w2]], #16\n\t" "ld1 {v3.4s}, [%[w3]], #16\n\t"                             \
    "ld1 {v4.4s}, [%[w4]], #16\n\t" "ld1 {v5.4s}, [%[w5]], #16\n\t"                             \
    "ld1 {v6.4s}, [%[w6]], #16\n\t" "ld1 {v7.4s}, [%[w7]], #16\n\t"
#define NEON_B4_TAIL2_WEIGHTS                                                                   \
    "ldr d0, [%[w0]], #8\n\t" "ld1 {v0.d}[1], [%[w1]], #8\n\t"                                  \
    "ldr d1, [%[w2]], #8\n\t" "ld1 {v1.d}[1], [%[w3]], #8\n\t"                                  \
    "ldr d2, [%[w4]], #8\n\t" "ld1 {v2.d}[1], [%[w5]], #8\n\t"                                  \
    "ldr d3, [%[w6]], #8\n\t" "ld1 {v3.d}[1], [%[w7]], #8\n\t"
#define NEON_B4_TAIL1_WEIGHTS                                                                   \
    "ldr s0, [%[w0]]\n\t" "ld1 {v0.s}[1], [%[w1]]\n\t"                                          \
    "ld1 {v0.s}[2], [%[w2]]\n\t" "ld1 {v0.s}[3], [%[w3]]\n\t"                                   \
    "ldr s1, [%[w4]]\n\t" "ld1 {v1.s}[1], [%[w5]]\n\t"                                          \
    "ld1 {v1.s}[2], [%[w6]]\n\t" "ld1 {v1.s}[3], [%[w7]]\n\t"
/* The positions' vectors: plane 0 advancing the pointers, plane 1 at [pointer + po] after it
 * (po = the plane stride in bytes - 16); tails: plane 0 advancing, plane 1 through x16. */
#define NEON_B4_ACTS_0                                                                          \
    "ld1 {v16.4s}, [%[x0]], #16\n\t" "ld1 {v17.4s}, [%[x1]], #16\n\t"                           \
    "ld1 {v18.4s}, [%[x2]], #16\n\t" "ld1 {v19.4s}, [%[x3]], #16\n\t"
#define NEON_B4_ACTS_1                                                                          \
    "ldr q16, [%[x0], %[po]]\n\t" "ldr q17, [%[x1], %[po]]\n\t"                                 \
    "ldr q18, [%[x2], %[po]]\n\t" "ldr q19, [%[x3], %[po]]\n\t"
#define NEON_B4_TAIL_ACTS_1(R, DT)                                                              \
    "add x16, %[x0], x17\n\t" "ld1r {v16." R "}, [x16]\n\t"                                     \
    "add x16, %[x1], x17\n\t" "ld1r {v17." R "}, [x16]\n\t"                                     \
    "add x16, %[x2], x17\n\t" "ld1r {v18." R "}, [x16]\n\t"                                     \
    "add x16, %[x3], x17\n\t" "ld1r {v19." R "}, [x16]\n\t"
#define NEON_B4_TAIL_ACTS_0(R, DT)                                                              \
    "ld1r {v16." R "}, [%[x0]], #" DT "\n\t" "ld1r {v17." R "}, [%[x1]], #" DT "\n\t"           \
    "ld1r {v18." R "}, [%[x2]], #" DT "\n\t" "ld1r {v19." R "}, [%[x3]], #" DT "\n\t"
#define NEON_B4_STEP_1 NEON_B4_WEIGHTS NEON_B4_ACTS_0 NEON_B4_FOUR(NEON_B4_POSITION, "v20", "v21", "v22", "v23")
#define NEON_B4_STEP_2                                                                          \
    NEON_B4_STEP_1 NEON_B4_ACTS_1 NEON_B4_FOUR(NEON_B4_POSITION, "v24", "v25", "v26", "v27")
/* tails of two planes (x17 = plane 1's offset from plane 0's tail) */
#define NEON_B4_TAILS_2(TW, TP, R, DT)                                                          \
    TW NEON_B4_TAIL_ACTS_1(R, DT) NEON_B4_FOUR(TP, "v24", "v25", "v26", "v27")                  \
    NEON_B4_TAIL_ACTS_0(R, DT) NEON_B4_FOUR(TP, "v20", "v21", "v22", "v23")
/* Two planes: the accumulators v20-v23 (plane 0) and v24-v27 (plane 1). */
#define NEON_B4_TWO_PLANE_COUNTS                                                                \
    "movi v20.8h, #0\n\t" "movi v21.8h, #0\n\t" "movi v22.8h, #0\n\t" "movi v23.8h, #0\n\t"     \
    "movi v24.8h, #0\n\t" "movi v25.8h, #0\n\t" "movi v26.8h, #0\n\t" "movi v27.8h, #0\n\t"     \
    "add x17, %[po], #16\n\t"                                                                   \
    "1:\n\t" NEON_B4_STEP_2                                                                     \
    "subs %[n], %[n], #1\n\t"                                                                   \
    "b.ne 1b\n\t"                                                                               \
    "tbz %w[rest], #1, 2f\n\t"                                                                  \
    NEON_B4_TAILS_2(NEON_B4_TAIL2_WEIGHTS, NEON_B4_TAIL2_POSITION, "2d", "8")                   \
    "2:\n\t"                                                                                    \
    "tbz %w[rest], #0, 3f\n\t"                                                                  \
    NEON_B4_TAILS_2(NEON_B4_TAIL1_WEIGHTS, NEON_B4_TAIL1_POSITION, "4s", "4")                   \
    "3:\n\t"
#define NEON_B4_KERNEL_TWO_PLANES                                                               \
    NEON_B4_TWO_PLANE_COUNTS                                                                    \
    "st1 {v20.8h - v23.8h}, [%[acc]]\n\t"                                                       \
    "add x16, %[acc], #64\n\t"                                                                  \
    "st1 {v24.8h - v27.8h}, [x16]\n\t"
/* One plane: steps two at a time (rest bit 2: one more step), the accumulators v24-v27. */
#define NEON_B4_ONE_PLANE_COUNTS                                                                \
    "movi v24.8h, #0\n\t" "movi v25.8h, #0\n\t" "movi v26.8h, #0\n\t" "movi v27.8h, #0\n\t"     \
    "cbz %[n], 4f\n\t"                                                                          \
    "1:\n\t" NEON_B4_DOUBLE_STEP                                                                \
    "subs %[n], %[n], #1\n\t"                                                                   \
    "b.ne 1b\n\t"                                                                               \
    "4:\n\t"                                                                                    \
    "tbz %w[rest], #2, 5f\n\t"                                                                  \
    NEON_B4_WEIGHTS NEON_B4_ACTS_0 NEON_B4_FOUR(NEON_B4_POSITION, "v24", "v25", "v26", "v27")   \
    "5:\n\t"                                                                                    \
    "tbz %w[rest], #1, 2f\n\t"                                                                  \
    NEON_B4_TAIL2_WEIGHTS NEON_B4_TAIL_ACTS_0("2d", "8")                                        \
    NEON_B4_FOUR(NEON_B4_TAIL2_POSITION, "v24", "v25", "v26", "v27")                            \
    "2:\n\t"                                                                                    \
    "tbz %w[rest], #0, 3f\n\t"                                                                  \
    NEON_B4_TAIL1_WEIGHTS NEON_B4_TAIL_ACTS_0("4s", "4")                                        \
    NEON_B4_FOUR(NEON_B4_TAIL1_POSITION, "v24", "v25", "v26", "v27")                            \
    "3:\n\t"
#define NEON_B4_KERNEL_ONE_PLANE NEON_B4_ONE_PLANE_COUNTS "st1 {v24.8h - v27.8h}, [%[acc]]\n\t"
/* The usual block (8 whole rows, order 1) all in assembly: the row and position pointers from
 * the first and the strides, the counts widened and stored 8 to a position ... */
#define NEON_B4_POINTERS_FROM_FIRST                                                             \
    "add %[w1], %[w0], %[wb]\n\t" "add %[w2], %[w1], %[wb]\n\t" "add %[w3], %[w2], %[wb]\n\t"   \
    "add %[w4], %[w3], %[wb]\n\t" "add %[w5], %[w4], %[wb]\n\t" "add %[w6], %[w5], %[wb]\n\t"   \
    "add %[w7], %[w6], %[wb]\n\t"                                                               \
    "add %[x1], %[x0], %[ps]\n\t" "add %[x2], %[x1], %[ps]\n\t" "add %[x3], %[x2], %[ps]\n\t"
#define NEON_B4_WIDE_STORE(ACC)                                                                 \
    "uxtl v28.4s, " ACC ".4h\n\t" "uxtl2 v29.4s, " ACC ".8h\n\t"                                \
    "st1 {v28.4s, v29.4s}, [x16]\n\t" "add x16, x16, %[os]\n\t"
#define NEON_B4_KERNEL_ONE_PLANE_STORE                                                          \
    NEON_B4_POINTERS_FROM_FIRST NEON_B4_ONE_PLANE_COUNTS                                        \
    "mov x16, %[out]\n\t"                                                                       \
    NEON_B4_WIDE_STORE("v24") NEON_B4_WIDE_STORE("v25") NEON_B4_WIDE_STORE("v26")               \
    NEON_B4_WIDE_STORE("v27")
/* ... or transformed to floats: d = n - 2 * count in 16 bits (exact: n <= 32 * 1023), widened,
 * converted, then (beta_q * d) * scale + offset, each lane with horq_store_outputs' operations
 * in its order; betas of the 4 positions in v31, n in v30, scale and offset in v16-v19. */
#define NEON_B4_AFFINE_STORE(ACC, Q)                                                            \
    "shl v28.8h, " ACC ".8h, #1\n\t" "sub v28.8h, v30.8h, v28.8h\n\t"                           \
    "sxtl2 v29.4s, v28.8h\n\t" "sxtl v28.4s, v28.4h\n\t"                                        \
    "scvtf v28.4s, v28.4s\n\t" "scvtf v29.4s, v29.4s\n\t"                                       \
    "fmul v28.4s, v28.4s, v31.s[" Q "]\n\t" "fmul v29.4s, v29.4s, v31.s[" Q "]\n\t"             \
    "fmul v28.4s, v28.4s, v16.4s\n\t" "fmul v29.4s, v29.4s, v17.4s\n\t"                         \
    "fadd v28.4s, v28.4s, v18.4s\n\t" "fadd v29.4s, v29.4s, v19.4s\n\t"                         \
    "st1 {v28.4s, v29.4s}, [x16]\n\t" "add x16, x16, %[os]\n\t"
#define NEON_B4_KERNEL_ONE_PLANE_AFFINE                                                         \
    NEON_B4_POINTERS_FROM_FIRST NEON_B4_ONE_PLANE_COUNTS                                        \
    "dup v30.8h, %w[nn]\n\t"                                                                    \
    "ld1 {v31.4s}, [%[betas]]\n\t"                                                              \
    "ld1 {v16.4s, v17.4s}, [%[scale]], #32\n\t"                                                 \
    "ld1 {v18.4s, v19.4s}, [%[offset]], #32\n\t"                                                \
    "mov x16, %[out]\n\t"                                                                       \
    NEON_B4_AFFINE_STORE("v24", "0") NEON_B4_AFFINE_STORE("v25", "1")                           \
    NEON_B4_AFFINE_STORE("v26", "2") NEON_B4_AFFINE_STORE("v27", "3")
/* Order 2: t_k = beta_k,q * (n - 2 * count_k) per plane, then (t_0 + t_1) * scale + offset;
 * n in v28, the betas in v29 (plane 0, the 4 positions) and v30 (plane 1). */
#define NEON_B4_AFFINE2_STORE(ACC0, ACC1, Q)                                                    \
    "shl v4.8h, " ACC0 ".8h, #1\n\t" "sub v4.8h, v28.8h, v4.8h\n\t"                             \
    "shl v5.8h, " ACC1 ".8h, #1\n\t" "sub v5.8h, v28.8h, v5.8h\n\t"                             \
    "sxtl v0.4s, v4.4h\n\t" "sxtl2 v1.4s, v4.8h\n\t" "sxtl v2.4s, v5.4h\n\t" "sxtl2 v3.4s, v5.8h\n\t" \
    "scvtf v0.4s, v0.4s\n\t" "scvtf v1.4s, v1.4s\n\t" "scvtf v2.4s, v2.4s\n\t" "scvtf v3.4s, v3.4s\n\t" \
    "fmul v0.4s, v0.4s, v29.s[" Q "]\n\t" "fmul v1.4s, v1.4s, v29.s[" Q "]\n\t"                 \
    "fmul v2.4s, v2.4s, v30.s[" Q "]\n\t" "fmul v3.4s, v3.4s, v30.s[" Q "]\n\t"                 \
    "fadd v0.4s, v0.4s, v2.4s\n\t" "fadd v1.4s, v1.4s, v3.4s\n\t"                               \
    "fmul v0.4s, v0.4s, v16.4s\n\t" "fmul v1.4s, v1.4s, v17.4s\n\t"                             \
    "fadd v0.4s, v0.4s, v18.4s\n\t" "fadd v1.4s, v1.4s, v19.4s\n\t"                             \
    "st1 {v0.4s, v1.4s}, [x16]\n\t" "add x16, x16, %[os]\n\t"
#define NEON_B4_KERNEL_TWO_PLANES_AFFINE                                                        \
    NEON_B4_POINTERS_FROM_FIRST NEON_B4_TWO_PLANE_COUNTS                                        \
    "dup v28.8h, %w[nn]\n\t"                                                                    \
    "ld1 {v29.4s, v30.4s}, [%[betas]]\n\t"                                                      \
    "ld1 {v16.4s, v17.4s}, [%[scale]], #32\n\t"                                                 \
    "ld1 {v18.4s, v19.4s}, [%[offset]], #32\n\t"                                                \
    "mov x16, %[out]\n\t"                                                                       \
    NEON_B4_AFFINE2_STORE("v20", "v24", "0") NEON_B4_AFFINE2_STORE("v21", "v25", "1")           \
    NEON_B4_AFFINE2_STORE("v22", "v26", "2") NEON_B4_AFFINE2_STORE("v23", "v27", "3")
#define NEON_B4_VECTOR_CLOBBERS                                                                 \
    "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v18", "v19", "v20", "v21",   \
    "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31", "v8", "v9", "v10",    \
    "v11", "v12", "v13", "v14", "v15"
#define NEON_B4_OPERANDS                                                                        \
    : [w0] "+r"(w0), [w1] "+r"(w1), [w2] "+r"(w2), [w3] "+r"(w3), [w4] "+r"(w4), [w5] "+r"(w5), \
      [w6] "+r"(w6), [w7] "+r"(w7), [x0] "+r"(x0), [x1] "+r"(x1), [x2] "+r"(x2), [x3] "+r"(x3), \
      [n] "+r"(steps)                                                                           \
    : [acc] "r"(acc[0]), [rest] "r"(rest), [po] "r"(po)                                         \
    : NEON_B4_VECTOR_CLOBBERS, "x16", "x17", "cc", "memory"

/* The counts of `rows` rows x 4 positions x G planes (position q's plane g at
 * x + q * position_stride + g * plane_stride), 8 rows at a time, over `words` (>= 4) words:
 * out[q * out_stride + r * order + k0 + g]. */
static inline __attribute__((always_inline)) void neon_b4_rows(const uint32_t *weights, int32_t rows,
                                                               ptrdiff_t words, const uint32_t *x,
                                                               ptrdiff_t plane_stride, ptrdiff_t position_stride,
                                                               int32_t *out, ptrdiff_t out_stride, int32_t order,
                                                               int32_t k0, const int G)
{
    const int32_t rest = (int32_t)(words & 3) | (G == 1 ? (int32_t)(words & 4) : 0); /* bit 2: an odd step */
    const ptrdiff_t po = (ptrdiff_t)sizeof(uint32_t) * plane_stride - 16;
    int32_t r0 = 0;
    if (G == 1 && order == 1) { /* whole blocks of 8 rows */
        const ptrdiff_t wb = (ptrdiff_t)sizeof(uint32_t) * words, ps = (ptrdiff_t)sizeof(uint32_t) * position_stride;
        const ptrdiff_t os = (ptrdiff_t)sizeof(int32_t) * out_stride;
        for (; r0 + 8 <= rows; r0 += 8, out += 8, weights += 8 * words) {
            const uint32_t *w0 = weights, *w1, *w2, *w3, *w4, *w5, *w6, *w7, *x0 = x, *x1, *x2, *x3;
            ptrdiff_t steps = words / 8;
            __asm__ volatile(NEON_B4_KERNEL_ONE_PLANE_STORE
                             : [w0] "+r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3), [w4] "=&r"(w4),
                               [w5] "=&r"(w5), [w6] "=&r"(w6), [w7] "=&r"(w7), [x0] "+r"(x0), [x1] "=&r"(x1),
                               [x2] "=&r"(x2), [x3] "=&r"(x3), [n] "+r"(steps)
                             : [wb] "r"(wb), [ps] "r"(ps), [os] "r"(os), [out] "r"(out), [rest] "r"(rest)
                             : NEON_B4_VECTOR_CLOBBERS, "x16", "cc", "memory");
        }
    }
    for (; r0 < rows; r0 += 8, out += 8 * order, weights += 8 * words) {
        const int valid = rows - r0 < 8 ? (int)(rows - r0) : 8;
        /* rows past the last read the last again */
        const uint32_t *w0 = weights, *w1 = valid > 1 ? w0 + words : w0, *w2 = valid > 2 ? w1 + words : w1;
        const uint32_t *w3 = valid > 3 ? w2 + words : w2, *w4 = valid > 4 ? w3 + words : w3;
        const uint32_t *w5 = valid > 5 ? w4 + words : w4, *w6 = valid > 6 ? w5 + words : w5;
        const uint32_t *w7 = valid > 7 ? w6 + words : w6;
        const uint32_t *x0 = x, *x1 = x + position_stride, *x2 = x1 + position_stride, *x3 = x2 + position_stride;
        ptrdiff_t steps = G == 1 ? words / 8 : words / 4; /* one plane: two steps at a time */
        uint16_t acc[8][8] __attribute__((aligned(16)));
        if (G == 1) {
            __asm__ volatile(NEON_B4_KERNEL_ONE_PLANE NEON_B4_OPERANDS);
        } else {
            __asm__ volatile(NEON_B4_KERNEL_TWO_PLANES NEON_B4_OPERANDS);
        }
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; ++q) {
            int32_t *o = out + q * out_stride + k0;
            const uint16x8_t a0 = vld1q_u16(acc[q]);
            if (G == 1 && order == 1 && valid == 8) {
                vst1q_s32(o, vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(a0))));
                vst1q_s32(o + 4, vreinterpretq_s32_u32(vmovl_high_u16(a0)));
            } else if (G == 2 && order == 2 && valid == 8) { /* both planes: interleaved by st2 */
                const uint16x8_t a1 = vld1q_u16(acc[4 + q]);
                const uint32x4x2_t lo = {{vmovl_u16(vget_low_u16(a0)), vmovl_u16(vget_low_u16(a1))}};
                const uint32x4x2_t hi = {{vmovl_high_u16(a0), vmovl_high_u16(a1)}};
                vst2q_u32((uint32_t *)o, lo);
                vst2q_u32((uint32_t *)o + 8, hi);
            } else {
                for (int g = 0; g < G; ++g) {
                    for (int r = 0; r < valid; ++r) {
                        o[r * order + g] = acc[4 * g + q][r];
                    }
                }
            }
        }
    }
}

static __attribute__((noinline)) void neon_b4_one_plane(const uint32_t *weights, int32_t rows, ptrdiff_t words,
                                                        const uint32_t *x, ptrdiff_t plane_stride,
                                                        ptrdiff_t position_stride, int32_t *out, ptrdiff_t out_stride,
                                                        int32_t order, int32_t k0)
{
    neon_b4_rows(weights, rows, words, x, plane_stride, position_stride, out, out_stride, order, k0, 1);
}

static __attribute__((noinline)) void neon_b4_two_planes(const uint32_t *weights, int32_t rows, ptrdiff_t words,
                                                         const uint32_t *x, ptrdiff_t plane_stride,
                                                         ptrdiff_t position_stride, int32_t *out,
                                                         ptrdiff_t out_stride, int32_t order, int32_t k0)
{
    neon_b4_rows(weights, rows, words, x, plane_stride, position_stride, out, out_stride, order, k0, 2);
}

void horq_xor_popcount_block4(const uint32_t *weights, int32_t rows, int32_t words, const uint32_t *patches,
                              int32_t plane_stride, int32_t position_stride, int32_t order, int32_t *mismatches,
                              int32_t out_stride)
{
    int32_t k = 0;
    for (; k + 2 <= order; k += 2) {
        neon_b4_two_planes(weights, rows, words, patches + (ptrdiff_t)k * plane_stride, plane_stride, position_stride,
                           mismatches, out_stride, order, k);
    }
    if (k < order) {
        neon_b4_one_plane(weights, rows, words, patches + (ptrdiff_t)k * plane_stride, plane_stride, position_stride,
                          mismatches, out_stride, order, k);
    }
}

static __attribute__((noinline)) void neon_b4_affine_one_plane(const uint32_t *weights, int32_t rows, int32_t words,
                                                               const uint32_t *patches, ptrdiff_t ps, int32_t n,
                                                               const float *betas, const float *scale,
                                                               const float *offset, float *out, ptrdiff_t os)
{
    const ptrdiff_t wb = (ptrdiff_t)sizeof(uint32_t) * words;
    const int32_t rest = (words & 3) | (words & 4); /* bit 2: an odd step */
    for (int32_t r0 = 0; r0 + 8 <= rows; r0 += 8, out += 8, weights += 8 * words) {
        const uint32_t *w0 = weights, *w1, *w2, *w3, *w4, *w5, *w6, *w7, *x0 = patches, *x1, *x2, *x3;
        ptrdiff_t steps = words / 8;
        __asm__ volatile(NEON_B4_KERNEL_ONE_PLANE_AFFINE
                         : [w0] "+r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3), [w4] "=&r"(w4),
                           [w5] "=&r"(w5), [w6] "=&r"(w6), [w7] "=&r"(w7), [x0] "+r"(x0), [x1] "=&r"(x1),
                           [x2] "=&r"(x2), [x3] "=&r"(x3), [n] "+r"(steps), [scale] "+r"(scale),
                           [offset] "+r"(offset)
                         : [wb] "r"(wb), [ps] "r"(ps), [os] "r"(os), [out] "r"(out), [rest] "r"(rest),
                           [nn] "r"(n), [betas] "r"(betas)
                         : NEON_B4_VECTOR_CLOBBERS, "x16", "cc", "memory");
    }
}

static __attribute__((noinline)) void neon_b4_affine_two_planes(const uint32_t *weights, int32_t rows,
                                                                int32_t words, const uint32_t *patches,
                                                                ptrdiff_t po, ptrdiff_t ps, int32_t n,
                                                                const float *betas, const float *scale,
                                                                const float *offset, float *out, ptrdiff_t os)
{
    const ptrdiff_t wb = (ptrdiff_t)sizeof(uint32_t) * words;
    const int32_t rest = words & 3;
    for (int32_t r0 = 0; r0 + 8 <= rows; r0 += 8, out += 8, weights += 8 * words) {
        const uint32_t *w0 = weights, *w1, *w2, *w3, *w4, *w5, *w6, *w7, *x0 = patches, *x1, *x2, *x3;
        ptrdiff_t steps = words / 4;
        __asm__ volatile(NEON_B4_KERNEL_TWO_PLANES_AFFINE
                         : [w0] "+r"(w0), [w1] "=&r"(w1), [w2] "=&r"(w2), [w3] "=&r"(w3), [w4] "=&r"(w4),
                           [w5] "=&r"(w5), [w6] "=&r"(w6), [w7] "=&r"(w7), [x0] "+r"(x0), [x1] "=&r"(x1),
                           [x2] "=&r"(x2), [x3] "=&r"(x3), [n] "+r"(steps), [scale] "+r"(scale),
                           [offset] "+r"(offset)
                         : [wb] "r"(wb), [ps] "r"(ps), [os] "r"(os), [out] "r"(out), [rest] "r"(rest),
                           [nn] "r"(n), [betas] "r"(betas), [po] "r"(po)
                         : NEON_B4_VECTOR_CLOBBERS, "x16", "x17", "cc", "memory");
    }
}

void horq_xor_popcount_block4_affine(const uint32_t *weights, int32_t rows, int32_t words, const uint32_t *patches,
                                     int32_t plane_stride, int32_t position_stride, int32_t order, int32_t n,
                                     const float *betas, const float *scale, const float *offset, float *out,
                                     int32_t out_stride)
{
    const ptrdiff_t ps = (ptrdiff_t)sizeof(uint32_t) * position_stride, os = (ptrdiff_t)sizeof(float) * out_stride;
    if (order == 1) {
        neon_b4_affine_one_plane(weights, rows, words, patches, ps, n, betas, scale, offset, out, os);
    } else {
        neon_b4_affine_two_planes(weights, rows, words, patches, (ptrdiff_t)sizeof(uint32_t) * plane_stride - 16,
                                  ps, n, betas, scale, offset, out, os);
    }
}

#endif /* instruction-set paths */

#if !defined(HORQ_ARM_NEON) && !defined(HORQ_ARM_MVE)

#if defined(HORQ_ARM_DSP) && defined(__GNUC__) && defined(__thumb2__)
/* Cortex-M4/M7: carry-save SWAR in assembly. Given these loops in C, GCC
 * spills the accumulators and the loop limit and indexes its loads (11.2
 * instructions per word per plane); here it is about 7 (bench/inner_loop.py).
 *
 * Per triple of words and plane:
 *   - XOR and a carry-save adder into ones and twos: 6 instructions, because
 *     the plane triple is staged as p0, p0^p1, p0^p1^p2 and the weights are
 *     stored as w0, w0^w1, w0^w1^w2 (HORQ_WEIGHTS_PREFIX_XOR; DSP_WEIGHT_TRIPLE);
 *   - 2-bit fields, 2 each; nibbles, 2 each, as x - 3 * ((x >> 2) & m) with mls;
 *   - ones + 2 twos (<= 12 a nibble), bytes (<= 24), and one usada8 against the
 *     0x55 bytes, which adds 85 - b for each byte b: starting from
 *     -340 * triples, the accumulator ends at minus the mismatch count.
 * A row whose length is not a multiple of three ends with a partial triple
 * (zeros after its words), counted by the same block.
 *
 * The Cortex-M7 issues two instructions a cycle in order, but one count is a
 * chain of dependent steps (llvm-mca: 1.1 instructions a cycle), so the kernels
 * run two independent counts side by side (bench/mca_loop_m7.py):
 *   - two planes (orders 2 and up): the planes are staged per triple as plane k
 *     and D = plane k XOR plane k+1, both in prefix form (dsp_stage_two_planes),
 *     so a = w ^ p frees the weight registers for D, and b = a ^ D is the second
 *     plane's XOR: one load of the weights, one pointer, and the two counts
 *     interleaved (DSP_PLANES_TRIPLE);
 *   - one plane, rows of exactly three or six triples (3x3 taps of 32 or 64
 *     channels) in the prefix-XOR layout: two rows at once, the second row's
 *     weights at a fixed offset, each staged plane triple loaded once for both
 *     (DSP_ROW_PAIR_TRIPLE);
 *   - one plane otherwise: one row, its ones and twos steps side by side.
 *
 * The row loop runs inside too; its state lives on the stack in the layout of
 * dsp_rows_args, copied there on entry. Shape-specialised variants, picked by
 * dsp_kernels: one, two or three triples per loop iteration (the loop ends on
 * a pointer compare), with or without the partial triple, and once through
 * without a loop for rows of exactly three or six triples. */
typedef struct {
    const uint32_t *planes;  /* +0: the staged plane(s): 3 words a triple, 6 for two planes */
    int32_t unused;          /* +4 */
    int32_t minus_bias;      /* +8: -340 * (triples, the partial one included) */
    uintptr_t planes_end;    /* +12: past the staged whole triples: where the triple loop stops */
    int32_t tail;            /* +16: words of the partial triple, 1 or 2 (tail variants only) */
    int32_t unused2;         /* +20 */
    uintptr_t out;           /* +24: where row 0's count(s) go; rows follow contiguously */
    uintptr_t out_end;       /* +28: out + 8 * (rows, or row pairs), or out + 4 * rows (one plane) */
    const uint32_t *weights; /* +32: row 0 */
} dsp_rows_args;

/* One plane, one row: ones in lr and twos in r11 (of three words); adds
 * 340 - (ones + 2 twos) to ACC. */
#define DSP_COUNT_ONES_TWOS(ACC)                                                                \
    "and r12, r4, lr, lsr #1\n\t"                                                               \
    "and r2, r4, r11, lsr #1\n\t"                                                               \
    "sub lr, lr, r12\n\t"                                                                       \
    "sub r11, r11, r2\n\t"                                                                      \
    "and r12, r5, lr, lsr #2\n\t"                                                               \
    "and r2, r5, r11, lsr #2\n\t"                                                               \
    "mls lr, r12, r3, lr\n\t"   /* f0 + 4 f1 - 3 f1: the nibble's count */                      \
    "mls r11, r2, r3, r11\n\t"                                                                  \
    "add lr, lr, r11, lsl #1\n\t"                                                               \
    "and r12, lr, #0xF0F0F0F0\n\t"                                                              \
    "and lr, lr, #0x0F0F0F0F\n\t"                                                               \
    "add lr, lr, r12, lsr #4\n\t"                                                               \
    "usada8 " ACC ", lr, r4, " ACC "\n\t"

/* The next weight triple w0, w1, w2 as w0, w0^w1, w0^w1^w2 in r8-r10: stored
 * so by the generator (HORQ_WEIGHTS_PREFIX_XOR, pack.prefix_xor_triples), or
 * made so here. */
#if defined(HORQ_WEIGHTS_PREFIX_XOR)
#define DSP_WEIGHT_TRIPLE "ldmia r0!, {r8, r9, r10}\n\t"
#else
#define DSP_WEIGHT_TRIPLE                                                                       \
    "ldmia r0!, {r8, r9, r10}\n\t"                                                              \
    "eor r9, r9, r8\n\t"                                                                        \
    "eor r10, r10, r9\n\t"
#endif

/* The next staged plane triple, held as p0, p0^p1, p0^p1^p2: with a_i = p_i ^ w_i,
 * u = a0^a1 and ones = a0^a1^a2 take one XOR each, and the carry-save adder in
 * place needs three more: twos = (a0 & ~u) | (u & ~ones). */
#define DSP_PLANE_TRIPLE                                                                        \
    "ldmia r1!, {r11, r12, lr}\n\t"                                                             \
    "eor r12, r12, r9\n\t"    /* u = a0 ^ a1 */                                                 \
    "eor lr, lr, r10\n\t"     /* ones */                                                        \
    "eor r11, r11, r8\n\t"    /* a0 */                                                          \
    "bic r11, r11, r12\n\t"   /* a0 & a1 */                                                     \
    "bic r12, r12, lr\n\t"    /* u & a2 */                                                      \
    "orr r11, r11, r12\n\t"   /* twos = majority */

/* Two planes, the weight triple in r8-r10: plane k's triple a = p ^ w (r11: a0,
 * r12: u, lr: ones), then D's into r8-r10 and b = a ^ D there; the two carry-save
 * adders and counts interleaved (the order llvm-mca's Cortex-M7 model liked best),
 * plane k into r6, plane k+1 into r7; r2 is a temporary. */
#define DSP_PLANES_TRIPLE                                                                       \
    "ldmia r1!, {r11, r12, lr}\n\t"                                                             \
    "eor r12, r12, r9\n\t"                                                                      \
    "eor r11, r11, r8\n\t"                                                                      \
    "eor lr, lr, r10\n\t"                                                                       \
    "ldmia r1!, {r8, r9, r10}\n\t"                                                              \
    "eor r8, r8, r11\n\t"                                                                       \
    "eor r9, r9, r12\n\t"                                                                       \
    "bic r11, r11, r12\n\t"                                                                     \
    "bic r12, r12, lr\n\t"                                                                      \
    "eor r10, r10, lr\n\t"                                                                      \
    "orr r11, r11, r12\n\t"   /* twos of plane k; lr: its ones */                               \
    "and r12, r4, lr, lsr #1\n\t"                                                               \
    "bic r8, r8, r9\n\t"                                                                        \
    "bic r9, r9, r10\n\t"                                                                       \
    "sub lr, lr, r12\n\t"                                                                       \
    "orr r8, r8, r9\n\t"      /* twos of plane k+1; r10: its ones */                            \
    "and r9, r4, r10, lsr #1\n\t"                                                               \
    "and r2, r4, r11, lsr #1\n\t"                                                               \
    "sub r10, r10, r9\n\t"                                                                      \
    "and r9, r4, r8, lsr #1\n\t"                                                                \
    "sub r11, r11, r2\n\t"                                                                      \
    "sub r8, r8, r9\n\t"                                                                        \
    "and r12, r5, lr, lsr #2\n\t"                                                               \
    "and r9, r5, r10, lsr #2\n\t"                                                               \
    "mls lr, r12, r3, lr\n\t"                                                                   \
    "and r2, r5, r11, lsr #2\n\t"                                                               \
    "mls r10, r9, r3, r10\n\t"                                                                  \
    "and r9, r5, r8, lsr #2\n\t"                                                                \
    "mls r11, r2, r3, r11\n\t"                                                                  \
    "mls r8, r9, r3, r8\n\t"                                                                    \
    "add lr, lr, r11, lsl #1\n\t"                                                               \
    "add r10, r10, r8, lsl #1\n\t"                                                              \
    "and r12, lr, #0xF0F0F0F0\n\t"                                                              \
    "and lr, lr, #0x0F0F0F0F\n\t"                                                               \
    "and r9, r10, #0xF0F0F0F0\n\t"                                                              \
    "and r10, r10, #0x0F0F0F0F\n\t"                                                             \
    "add lr, lr, r12, lsr #4\n\t"                                                               \
    "add r10, r10, r9, lsr #4\n\t"                                                              \
    "usada8 r6, lr, r4, r6\n\t"                                                                 \
    "usada8 r7, r10, r4, r7\n\t"

#define DSP_TRIPLE_2 DSP_WEIGHT_TRIPLE DSP_PLANES_TRIPLE
#define DSP_TRIPLE_1 DSP_WEIGHT_TRIPLE DSP_PLANE_TRIPLE DSP_COUNT_ONES_TWOS("r6")

/* The partial triple: one or two weight words ([sp, #16] says how many), zeros
 * after them; the staged planes are padded to a whole triple. */
#if defined(HORQ_WEIGHTS_PREFIX_XOR)
#define DSP_PARTIAL_WEIGHTS                                                                     \
    "ldr r12, [sp, #16]\n\t"                                                                    \
    "ldr r8, [r0], #4\n\t"                                                                      \
    "cmp r12, #2\n\t"                                                                           \
    "ite eq\n\t"                                                                                \
    "ldreq r9, [r0], #4\n\t"                                                                    \
    "movne r9, r8\n\t"                                                                          \
    "mov r10, r9\n\t"
#else
#define DSP_PARTIAL_WEIGHTS                                                                     \
    "ldr r12, [sp, #16]\n\t"                                                                    \
    "ldr r8, [r0], #4\n\t"                                                                      \
    "cmp r12, #2\n\t"                                                                           \
    "ite eq\n\t"                                                                                \
    "ldreq r9, [r0], #4\n\t"                                                                    \
    "movne r9, #0\n\t"                                                                          \
    "eor r9, r9, r8\n\t"                                                                        \
    "mov r10, r9\n\t"
#endif
#define DSP_PARTIAL_2 DSP_PARTIAL_WEIGHTS DSP_PLANES_TRIPLE
#define DSP_PARTIAL_1 DSP_PARTIAL_WEIGHTS DSP_PLANE_TRIPLE DSP_COUNT_ONES_TWOS("r6")

#define DSP_LOOP "ldr r12, [sp, #12]\n\tcmp r1, r12\n\tbne 2b\n\t"
#define DSP_ONCE ""

#define DSP_PROLOGUE                                                                            \
    "push {r4-r11, lr}\n\t"                                                                     \
    "sub sp, sp, #32\n\t"                                                                       \
    "ldm r0, {r2-r9}\n\t"                                                                       \
    "ldr r0, [r0, #32]\n\t"                                                                     \
    "stm sp, {r2-r9}\n\t"                                                                       \
    "movw r4, #0x5555\n\t"                                                                      \
    "movt r4, #0x5555\n\t"                                                                      \
    "movw r5, #0x3333\n\t"                                                                      \
    "movt r5, #0x3333\n\t"                                                                      \
    "mov r3, #3\n\t"
#define DSP_EPILOGUE                                                                            \
    "cmp r11, r12\n\t"                                                                          \
    "bne 1b\n\t"                                                                                \
    "add sp, sp, #32\n\t"                                                                       \
    "pop {r4-r11, pc}\n\t"

/* Row loop around BODY (REPEAT: DSP_LOOP, until the staged planes' pointer reaches
 * planes_end, or DSP_ONCE) and PARTIAL (or nothing); each row's count(s) are
 * negated into out[0] (and out[1]). */
#define DSP_KERNEL_2(NAME, BODY, REPEAT, PARTIAL)                                               \
    __attribute__((naked, noinline)) static void NAME(const dsp_rows_args *args)               \
    {                                                                                           \
        (void)args;                                                                             \
        __asm__ volatile(DSP_PROLOGUE "1:\n\t"                                                  \
                         "ldm sp, {r1, r2, r6}\n\t"                                             \
                         "mov r7, r6\n\t"                                                       \
                         "2:\n\t" BODY REPEAT PARTIAL                                           \
                         "rsb r6, r6, #0\n\t"                                                   \
                         "rsb r7, r7, #0\n\t"                                                   \
                         "ldrd r11, r12, [sp, #24]\n\t"                                         \
                         "strd r6, r7, [r11], #8\n\t"                                           \
                         "str r11, [sp, #24]\n\t" DSP_EPILOGUE);                                \
    }
#define DSP_KERNEL_1(NAME, BODY, REPEAT, PARTIAL)                                               \
    __attribute__((naked, noinline)) static void NAME(const dsp_rows_args *args)               \
    {                                                                                           \
        (void)args;                                                                             \
        __asm__ volatile(DSP_PROLOGUE "1:\n\t"                                                  \
                         "ldm sp, {r1, r2, r6}\n\t"                                             \
                         "2:\n\t" BODY REPEAT PARTIAL                                           \
                         "rsb r6, r6, #0\n\t"                                                   \
                         "ldrd r11, r12, [sp, #24]\n\t"                                         \
                         "str r6, [r11], #4\n\t"                                                \
                         "str r11, [sp, #24]\n\t" DSP_EPILOGUE);                                \
    }

#define DSP_X2(T) T T
#define DSP_X3(T) T T T
DSP_KERNEL_2(dsp2_x1, DSP_TRIPLE_2, DSP_LOOP, "")
DSP_KERNEL_2(dsp2_x2, DSP_X2(DSP_TRIPLE_2), DSP_LOOP, "")
DSP_KERNEL_2(dsp2_x3, DSP_X3(DSP_TRIPLE_2), DSP_LOOP, "")
DSP_KERNEL_2(dsp2_3, DSP_X3(DSP_TRIPLE_2), DSP_ONCE, "")
DSP_KERNEL_2(dsp2_6, DSP_X2(DSP_X3(DSP_TRIPLE_2)), DSP_ONCE, "")
DSP_KERNEL_2(dsp2_x1_partial, DSP_TRIPLE_2, DSP_LOOP, DSP_PARTIAL_2)
DSP_KERNEL_2(dsp2_x2_partial, DSP_X2(DSP_TRIPLE_2), DSP_LOOP, DSP_PARTIAL_2)
DSP_KERNEL_2(dsp2_x3_partial, DSP_X3(DSP_TRIPLE_2), DSP_LOOP, DSP_PARTIAL_2)
DSP_KERNEL_1(dsp1_x1, DSP_TRIPLE_1, DSP_LOOP, "")
DSP_KERNEL_1(dsp1_x2, DSP_X2(DSP_TRIPLE_1), DSP_LOOP, "")
DSP_KERNEL_1(dsp1_x3, DSP_X3(DSP_TRIPLE_1), DSP_LOOP, "")
DSP_KERNEL_1(dsp1_3, DSP_X3(DSP_TRIPLE_1), DSP_ONCE, "")
DSP_KERNEL_1(dsp1_6, DSP_X2(DSP_X3(DSP_TRIPLE_1)), DSP_ONCE, "")
DSP_KERNEL_1(dsp1_x1_partial, DSP_TRIPLE_1, DSP_LOOP, DSP_PARTIAL_1)
DSP_KERNEL_1(dsp1_x2_partial, DSP_X2(DSP_TRIPLE_1), DSP_LOOP, DSP_PARTIAL_1)
DSP_KERNEL_1(dsp1_x3_partial, DSP_X3(DSP_TRIPLE_1), DSP_LOOP, DSP_PARTIAL_1)
/* Rows of one or two words (pixel-granularity taps of up to 64 channels): the partial triple alone. */
DSP_KERNEL_2(dsp2_partial_only, "", DSP_ONCE, DSP_PARTIAL_2)
DSP_KERNEL_1(dsp1_partial_only, "", DSP_ONCE, DSP_PARTIAL_1)

#if defined(HORQ_WEIGHTS_PREFIX_XOR)
/* One plane, two rows (rows r and r + 1, ROW bytes apart): row r's weight triple
 * comes with ldmia (r0 then points 12 bytes on, so row r + 1's triple is at
 * ROW - 12), the staged plane triple once, and both XORs; the two carry-save
 * adders and counts interleaved, row r into r6, row r + 1 into r7. */
#define DSP_ROW_PAIR_TRIPLE(NEXT0, NEXT1, NEXT2)                                                \
    "ldmia r0!, {r8, r9, r10}\n\t"                                                              \
    "ldmia r1!, {r11, r12, lr}\n\t"                                                             \
    "eor r8, r8, r11\n\t"                                                                       \
    "eor r9, r9, r12\n\t"                                                                       \
    "eor r10, r10, lr\n\t"                                                                      \
    "ldr r2, [r0, #" NEXT0 "]\n\t"                                                              \
    "eor r11, r11, r2\n\t"                                                                      \
    "ldr r2, [r0, #" NEXT1 "]\n\t"                                                              \
    "eor r12, r12, r2\n\t"                                                                      \
    "ldr r2, [r0, #" NEXT2 "]\n\t"                                                              \
    "eor lr, lr, r2\n\t"                                                                        \
    "bic r8, r8, r9\n\t"                                                                        \
    "bic r9, r9, r10\n\t"                                                                       \
    "orr r8, r8, r9\n\t"      /* row r: twos; r10: ones */                                      \
    "bic r11, r11, r12\n\t"                                                                     \
    "bic r12, r12, lr\n\t"                                                                      \
    "orr r11, r11, r12\n\t"   /* row r + 1: twos; lr: ones */                                   \
    "and r9, r4, r10, lsr #1\n\t"                                                               \
    "and r12, r4, lr, lsr #1\n\t"                                                               \
    "sub r10, r10, r9\n\t"                                                                      \
    "sub lr, lr, r12\n\t"                                                                       \
    "and r9, r4, r8, lsr #1\n\t"                                                                \
    "and r2, r4, r11, lsr #1\n\t"                                                               \
    "sub r8, r8, r9\n\t"                                                                        \
    "sub r11, r11, r2\n\t"                                                                      \
    "and r9, r5, r10, lsr #2\n\t"                                                               \
    "and r12, r5, lr, lsr #2\n\t"                                                               \
    "mls r10, r9, r3, r10\n\t"                                                                  \
    "mls lr, r12, r3, lr\n\t"                                                                   \
    "and r9, r5, r8, lsr #2\n\t"                                                                \
    "and r2, r5, r11, lsr #2\n\t"                                                               \
    "mls r8, r9, r3, r8\n\t"                                                                    \
    "mls r11, r2, r3, r11\n\t"                                                                  \
    "add r10, r10, r8, lsl #1\n\t"                                                              \
    "add lr, lr, r11, lsl #1\n\t"                                                               \
    "and r9, r10, #0xF0F0F0F0\n\t"                                                              \
    "and r12, lr, #0xF0F0F0F0\n\t"                                                              \
    "and r10, r10, #0x0F0F0F0F\n\t"                                                             \
    "and lr, lr, #0x0F0F0F0F\n\t"                                                               \
    "add r10, r10, r9, lsr #4\n\t"                                                              \
    "add lr, lr, r12, lsr #4\n\t"                                                               \
    "usada8 r6, r10, r4, r6\n\t"                                                                \
    "usada8 r7, lr, r4, r7\n\t"

/* Row pairs of ROW bytes each (BODY: its triples); out_end = out + 8 * pairs. */
#define DSP_KERNEL_ROW_PAIRS(NAME, BODY, ROW)                                                   \
    __attribute__((naked, noinline)) static void NAME(const dsp_rows_args *args)               \
    {                                                                                           \
        (void)args;                                                                             \
        __asm__ volatile(DSP_PROLOGUE "1:\n\t"                                                  \
                         "ldm sp, {r1, r2, r6}\n\t"                                             \
                         "mov r7, r6\n\t" BODY                                                  \
                         "add r0, r0, #" ROW "\n\t" /* past row r + 1 */                        \
                         "rsb r6, r6, #0\n\t"                                                   \
                         "rsb r7, r7, #0\n\t"                                                   \
                         "ldrd r11, r12, [sp, #24]\n\t"                                         \
                         "strd r6, r7, [r11], #8\n\t"                                           \
                         "str r11, [sp, #24]\n\t" DSP_EPILOGUE);                                \
    }
#define DSP_ROW_PAIR_9 DSP_ROW_PAIR_TRIPLE("24", "28", "32")
#define DSP_ROW_PAIR_18 DSP_ROW_PAIR_TRIPLE("60", "64", "68")
DSP_KERNEL_ROW_PAIRS(dsp1_3_row_pairs, DSP_X3(DSP_ROW_PAIR_9), "36")
DSP_KERNEL_ROW_PAIRS(dsp1_6_row_pairs, DSP_X2(DSP_X3(DSP_ROW_PAIR_18)), "72")
#endif

typedef void (*dsp_kernel)(const dsp_rows_args *);

/* The selector: [planes - 1][partial][body], body 0..2 looping one to three
 * triples; 3 and 4 for exactly three or six triples (3x3 taps of 32 or 64
 * channels) once through, which have no partial variant; 5 for no whole
 * triple, the partial one alone (rows of one or two words). */
static const dsp_kernel dsp_kernels[2][2][6] = {
    {{dsp1_x1, dsp1_x2, dsp1_x3, dsp1_3, dsp1_6, NULL},
     {dsp1_x1_partial, dsp1_x2_partial, dsp1_x3_partial, NULL, NULL, dsp1_partial_only}},
    {{dsp2_x1, dsp2_x2, dsp2_x3, dsp2_3, dsp2_6, NULL},
     {dsp2_x1_partial, dsp2_x2_partial, dsp2_x3_partial, NULL, NULL, dsp2_partial_only}},
};

/* Rows a call handles at once when counts go through the staging buffer. */
#define DSP_STAGE_ROWS 32
/* Words of staged planes (two planes of up to 288 words, 9216 bits): 2.3 KB of stack. */
#define DSP_STAGE_WORDS 576

/* A plane in the kernels' form: each triple p0, p1, p2 as p0, p0^p1, p0^p1^p2,
 * a partial last triple padded with zeros. Done once per call, it saves two
 * instructions per triple of every row. */
static void dsp_stage_plane(const uint32_t *p, int32_t words, uint32_t *q)
{
    int32_t i = 0;
    for (; i + 3 <= words; i += 3) {
        const uint32_t p0 = p[i], p01 = p0 ^ p[i + 1];
        q[i] = p0;
        q[i + 1] = p01;
        q[i + 2] = p01 ^ p[i + 2];
    }
    if (i < words) {
        const uint32_t p01 = p[i] ^ (i + 1 < words ? p[i + 1] : 0u);
        q[i] = p[i];
        q[i + 1] = p01;
        q[i + 2] = p01;
    }
}

/* Planes p and q for DSP_PLANES_TRIPLE: per triple, p's staged triple, then that
 * of D = p ^ q. */
static void dsp_stage_two_planes(const uint32_t *p, const uint32_t *q, int32_t words, uint32_t *s)
{
    int32_t i = 0;
    for (; i + 3 <= words; i += 3, s += 6) {
        const uint32_t p0 = p[i], p01 = p0 ^ p[i + 1], d0 = p0 ^ q[i], d01 = d0 ^ p[i + 1] ^ q[i + 1];
        s[0] = p0;
        s[1] = p01;
        s[2] = p01 ^ p[i + 2];
        s[3] = d0;
        s[4] = d01;
        s[5] = d01 ^ p[i + 2] ^ q[i + 2];
    }
    if (i < words) {
        const uint32_t p1 = i + 1 < words ? p[i + 1] : 0u, q1 = i + 1 < words ? q[i + 1] : 0u;
        const uint32_t d0 = p[i] ^ q[i];
        s[0] = p[i];
        s[1] = p[i] ^ p1;
        s[2] = s[1];
        s[3] = d0;
        s[4] = d0 ^ p1 ^ q1;
        s[5] = s[4];
    }
}

/* Plane k (and k + 1 when `pair`) of rows [0, rows): counts to out, 1 or 2 per row. */
static void dsp_rows(const uint32_t *weights, int32_t rows, const uint32_t *plane, int32_t plane_stride,
                     int32_t words, int pair, int32_t *out)
{
    uint32_t staged[DSP_STAGE_WORDS];
    const int32_t triples = words / 3, tail = words % 3;
    if (pair) {
        dsp_stage_two_planes(plane, plane + plane_stride, words, staged);
    } else {
        dsp_stage_plane(plane, words, staged);
    }
    const int32_t per_loop = triples % 3 == 0 ? 3 : (triples % 2 == 0 ? 2 : 1);
    const int body = triples == 0 ? 5 : (tail == 0 && triples == 3 ? 3 : (tail == 0 && triples == 6 ? 4 : per_loop - 1));
    dsp_rows_args args = {staged, 0, -340 * (triples + (tail > 0)), (uintptr_t)(staged + (pair ? 6 : 3) * triples),
                          tail, 0, (uintptr_t)out, (uintptr_t)out + (uintptr_t)rows * (pair ? 8u : 4u), weights};
#if defined(HORQ_WEIGHTS_PREFIX_XOR)
    if (!pair && (body == 3 || body == 4) && rows >= 2) {
        args.out_end = (uintptr_t)out + (uintptr_t)(rows / 2) * 8u;
        (body == 3 ? dsp1_3_row_pairs : dsp1_6_row_pairs)(&args);
        if (rows % 2 == 0) {
            return;
        }
        args.weights = weights + (ptrdiff_t)(rows - 1) * words;
        args.out = (uintptr_t)(out + rows - 1);
        args.out_end = args.out + 4u;
    }
#endif
    dsp_kernels[pair][tail > 0][body](&args);
}

void horq_xor_popcount_rows(const uint32_t *weights, int32_t rows, const uint32_t *planes, int32_t plane_stride,
                            int32_t order, int32_t words, int32_t *mismatches)
{
    if (rows <= 0) {
        return;
    }
    if (words <= 0 || 2 * (words + 2) > DSP_STAGE_WORDS) { /* very long rows: the C path */
        const swar_masks m = masks_in_registers();
        for (int32_t r = 0; r < rows; ++r) {
            const uint32_t *w = weights + (ptrdiff_t)r * words;
            for (int32_t k = 0; k < order; ++k) {
                const uint32_t *p = planes + (ptrdiff_t)k * plane_stride;
                uint32_t sum = 0;
                for (int32_t i = 0; i < words; ++i) {
#if defined(HORQ_WEIGHTS_PREFIX_XOR)
                    const uint32_t plain = i % 3 ? w[i] ^ w[i - 1] : w[i];
#else
                    const uint32_t plain = w[i];
#endif
                    sum = sum_bytes(nibbles_to_bytes(nibble_counts(plain ^ p[i], &m), &m), sum);
                }
                mismatches[r * order + k] = (int32_t)sum;
            }
        }
    } else if (order <= 2) { /* the kernels write exactly this layout */
        dsp_rows(weights, rows, planes, plane_stride, words, order == 2, mismatches);
    } else { /* planes in pairs through a staging buffer, then into [row][order] */
        int32_t stage[DSP_STAGE_ROWS * 2];
        for (int32_t first = 0; first < rows; first += DSP_STAGE_ROWS) {
            const int32_t n = rows - first < DSP_STAGE_ROWS ? rows - first : DSP_STAGE_ROWS;
            for (int32_t k = 0; k < order; k += 2) {
                const int pair = k + 1 < order;
                dsp_rows(weights + (ptrdiff_t)first * words, n, planes + (ptrdiff_t)k * plane_stride, plane_stride,
                         words, pair, stage);
                for (int32_t r = 0; r < n; ++r) {
                    mismatches[(first + r) * order + k] = stage[r * (pair ? 2 : 1)];
                    if (pair) {
                        mismatches[(first + r) * order + k + 1] = stage[r * 2 + 1];
                    }
                }
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
                horq_xor_popcount(weights + (ptrdiff_t)r * words, planes + (ptrdiff_t)k * plane_stride, words);
        }
    }
#endif
}
#endif
#endif /* neither NEON nor Helium */

#if defined(HORQ_WEIGHTS_PREFIX_XOR) && !(defined(HORQ_ARM_DSP) && defined(__GNUC__) && defined(__thumb2__))
#error "HORQ_WEIGHTS_PREFIX_XOR is the weight layout of the Cortex-M DSP kernels only"
#endif

void horq_prepare_weight_rows(uint32_t *words, int32_t runs, int32_t run_words)
{
#if defined(HORQ_WEIGHTS_PREFIX_XOR)
    for (int32_t r = 0; r < runs; ++r) {
        uint32_t *run = words + (ptrdiff_t)r * run_words;
        for (int32_t i = 1; i < run_words; ++i) {
            if (i % 3) {
                run[i] ^= run[i - 1];
            }
        }
    }
#else
    (void)words;
    (void)runs;
    (void)run_words;
#endif
}
