/* Integer mode: int8 layers between the HORQ layers (horq_kernels.h, "integer mode").
 * Every sum over inputs is an exact int32 sum of int8 products, so its order is free; the
 * output transform and requantization are the reference's (horq_codegen/integer.py). */
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

/* Output channels whose accumulators are made before their transform runs in one loop. */
#define HORQ_I8_CHUNK HORQ_STORE_CHUNK

#if defined(HORQ_ARM_MVE)
static inline void store4_i8(int8_t *out, int32x4_t v)
{
    vstrbq_s32(out, v); /* the low byte of each lane */
}
static inline int32x4_t load4_i8(const int8_t *in)
{
    return vldrbq_s32(in); /* four bytes, sign-extended to lanes */
}
#elif defined(HORQ_ARM_NEON)
static inline int32x4_t load4_i8(const int8_t *in)
{
    int32_t packed;
    memcpy(&packed, in, sizeof packed);
    const int16x8_t halves = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(packed)));
    return vmovl_s16(vget_low_s16(halves));
}

static inline void store4_i8(int8_t *out, int32x4_t v)
{
    const int16x4_t halves = vmovn_s32(v);
    const int8x8_t bytes = vmovn_s16(vcombine_s16(halves, halves));
    const int32_t packed = vget_lane_s32(vreinterpret_s32_s8(bytes), 0);
    memcpy(out, &packed, sizeof packed);
}
#endif

/* The clamps of act merged with requantization's [-128, 127]. Equal to act followed by
 * horq_requantize for every finite y, which is all these kernels make (their accumulators are
 * integers and their constants finite). */
static void int8_bounds(const horq_activation *act, float *low, float *high)
{
    *low = act->kind == HORQ_ACT_RELU ? 0.0f : -128.0f;
    *high = 127.0f;
    if (act->kind == HORQ_ACT_HARDTANH) {
        *low = act->low > -128.0f ? act->low : -128.0f;
        *high = act->high < 127.0f ? act->high : 127.0f;
    }
}

/* Requantization with the merged clamps (int8_bounds), one value and four: the vector lanes
 * do the scalar code's operations in its order (the clamps as max/min: y is finite here). */
static inline int8_t clamp_and_round(float y, float low, float high)
{
#if defined(HORQ_ARM_DSP) && defined(__GNUC__) && defined(__thumb2__) && defined(__ARM_FP)
    /* Cortex-M4/M7: vcvtr rounds to nearest, ties to even (FPSCR's rounding mode from reset, which
     * nothing here changes): the 1.5 * 2^23 trick's result in one instruction; an FPv5 (Cortex-M7)
     * clamps with vmaxnm/vminnm, equal to the compares for the finite y these kernels make. */
#if defined(HORQ_FPV5)
    __asm__("vmaxnm.f32 %0, %1, %2" : "=t"(y) : "t"(y), "t"(low));
    __asm__("vminnm.f32 %0, %1, %2" : "=t"(y) : "t"(y), "t"(high));
#else
    y = y < low ? low : y;
    y = y > high ? high : y;
#endif
    float rounded;
    int32_t q;
    __asm__("vcvtr.s32.f32 %0, %1" : "=t"(rounded) : "t"(y));
    memcpy(&q, &rounded, sizeof q);
    return (int8_t)q;
#else
    y = y < low ? low : y;
    return horq_round_clamped(y > high ? high : y);
#endif
}

#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
static inline void requantize4v(float32x4_t y, float32x4_t low, float32x4_t high, int8_t *out)
{
    y = vminnmq_f32(vmaxnmq_f32(y, low), high);
    y = vsubq_f32(vaddq_f32(y, vdupq_n_f32(12582912.0f)), vdupq_n_f32(12582912.0f));
    store4_i8(out, vcvtq_s32_f32(y)); /* an integer already: the conversion is exact */
}

static inline void requantize4(float32x4_t y, float low, float high, int8_t *out)
{
    requantize4v(y, vdupq_n_f32(low), vdupq_n_f32(high), out);
}
#endif

/* out[o] = requantize(clamp(acc[o] * scale[o] + offset[o], low[o], high[o])) for `count` channels:
 * a transform whose clamps differ by channel (an affine folded in: horq_kernels.h, "clamps"). */
static void transform_clamped(const float *acc_f, const int32_t *acc_i, int32_t count, const float *scale,
                              const float *offset, const float *low, const float *high, int8_t *out)
{
    int32_t o = 0;
#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
    for (; o + 4 <= count; o += 4) {
        const float32x4_t acc = acc_f ? vld1q_f32(acc_f + o) : vcvtq_f32_s32(vld1q_s32(acc_i + o));
        requantize4v(vaddq_f32(vmulq_f32(acc, vld1q_f32(scale + o)), vld1q_f32(offset + o)), vld1q_f32(low + o),
                     vld1q_f32(high + o), out + o);
    }
#endif
    if (acc_f) { /* two loops: nothing decided per output */
        for (; o < count; ++o) {
            out[o] = clamp_and_round(acc_f[o] * scale[o] + offset[o], low[o], high[o]);
        }
    } else {
        for (; o < count; ++o) {
            out[o] = clamp_and_round((float)acc_i[o] * scale[o] + offset[o], low[o], high[o]);
        }
    }
}

/* out[o] = requantize(act(acc[o] * scale[o] + offset[o])) for `count` channels, or with the
 * per-channel clamps where `clamps` has them, from float accumulators (acc_f) or int32 ones
 * (acc_i, the other NULL). One loop per case, nothing decided per output. */
static void requantize_accumulators(const float *acc_f, const int32_t *acc_i, int32_t count, const float *scale,
                                    const float *offset, const horq_activation *act, const horq_clamps *clamps,
                                    int8_t *out)
{
    if (clamps->low) {
        transform_clamped(acc_f, acc_i, count, scale, offset, clamps->low, clamps->high, out);
        return;
    }
    float low, high;
    int8_bounds(act, &low, &high);
    int32_t o = 0;
#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
    for (; o + 4 <= count; o += 4) { /* four outputs a vector, the remainder below */
        const float32x4_t acc = acc_f ? vld1q_f32(acc_f + o) : vcvtq_f32_s32(vld1q_s32(acc_i + o));
        requantize4(vaddq_f32(vmulq_f32(acc, vld1q_f32(scale + o)), vld1q_f32(offset + o)), low, high, out + o);
    }
#endif
    if (acc_f) {
        for (; o < count; ++o) {
            out[o] = clamp_and_round(acc_f[o] * scale[o] + offset[o], low, high);
        }
    } else {
        for (; o < count; ++o) {
            out[o] = clamp_and_round((float)acc_i[o] * scale[o] + offset[o], low, high);
        }
    }
}

/* out[o] = act(acc[o] * scale[o] + offset[o]) for `count` channels, as float into out_f or
 * requantized into out_q (the other NULL). */
static void transform_outputs(const int32_t *acc, int32_t count, const float *scale, const float *offset,
                              const horq_activation *act, const horq_clamps *clamps, float *out_f, int8_t *out_q)
{
    if (out_f) {
        for (int32_t o = 0; o < count; ++o) {
            out_f[o] = horq_activate((float)acc[o] * scale[o] + offset[o], act);
        }
        return;
    }
    requantize_accumulators(NULL, acc, count, scale, offset, act, clamps, out_q);
}

/* sum_k betas[k] * (n - 2 * m[k]) in k order (horq_store_outputs' order), one output. */
static inline float beta_sum(const float *betas, int32_t order, int32_t n, const int32_t *m)
{
    float sum = betas[0] * (float)(n - 2 * m[0]);
    for (int32_t k = 1; k < order; ++k) {
        sum += betas[k] * (float)(n - 2 * m[k]);
    }
    return sum;
}

#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
/* The same for four outputs of order 1 or 2 (b1 unused for order 1), each lane with the scalar
 * code's operations in its order. m points at the four outputs' counts: callers write it as
 * mismatches + o or + 2 * o, a constant stride (GCC turns a stride of order * 16 bytes into a
 * register post-increment that MVE's VLD2 does not have, and the assembler refuses it). */
static inline float32x4_t beta_sums4(const int32_t *m, int32_t order, int32x4_t n, float b0, float b1)
{
    if (order == 1) {
        return vmulq_n_f32(vcvtq_f32_s32(vsubq_s32(n, vshlq_n_s32(vld1q_s32(m), 1))), b0);
    }
    const int32x4x2_t d = vld2q_s32(m);
    return vaddq_f32(vmulq_n_f32(vcvtq_f32_s32(vsubq_s32(n, vshlq_n_s32(d.val[0], 1))), b0),
                     vmulq_n_f32(vcvtq_f32_s32(vsubq_s32(n, vshlq_n_s32(d.val[1], 1))), b1));
}
#endif

void horq_store_outputs_i8(const float *betas, int32_t order, int32_t n, const int32_t *mismatches, int32_t count,
                           const float *scale, const float *offset, const horq_activation *act, int8_t *out)
{
    /* The accumulators are sums of finite betas times integers, so y is finite and the
     * merged clamps (int8_bounds) are exact. */
    float low, high;
    int8_bounds(act, &low, &high);
    int32_t o = 0;
#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
    if (order <= 2) { /* four outputs a vector */
        const int32x4_t nv = vdupq_n_s32(n);
        const float b0 = betas[0], b1 = order == 2 ? betas[1] : 0.0f;
        for (; o + 4 <= count; o += 4) {
            const float32x4_t acc = beta_sums4(order == 1 ? mismatches + o : mismatches + 2 * o, order, nv, b0, b1);
            requantize4(vaddq_f32(vmulq_f32(acc, vld1q_f32(scale + o)), vld1q_f32(offset + o)), low, high, out + o);
        }
    }
#endif
    if (order == 2) { /* the betas in registers, no loop per output */
        const float b0 = betas[0], b1 = betas[1];
        for (; o < count; ++o) {
            const float acc = b0 * (float)(n - 2 * mismatches[2 * o]) + b1 * (float)(n - 2 * mismatches[2 * o + 1]);
            out[o] = clamp_and_round(acc * scale[o] + offset[o], low, high);
        }
    }
    for (; o < count; ++o) {
        out[o] = clamp_and_round(beta_sum(betas, order, n, mismatches + (ptrdiff_t)o * order) * scale[o] + offset[o],
                                 low, high);
    }
}

void horq_accumulate(const float *betas, int32_t order, int32_t n, const int32_t *mismatches, int32_t count,
                     int keep, float *acc)
{
    int32_t o = 0;
#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
    if (order <= 2) { /* four outputs a vector */
        const int32x4_t nv = vdupq_n_s32(n);
        const float b0 = betas[0], b1 = order == 2 ? betas[1] : 0.0f;
        for (; o + 4 <= count; o += 4) {
            const float32x4_t sum = beta_sums4(order == 1 ? mismatches + o : mismatches + 2 * o, order, nv, b0, b1);
            /* finite values (betas and counts are): the IEEE max is the plain larger one */
            vst1q_f32(acc + o, keep ? vmaxnmq_f32(vld1q_f32(acc + o), sum) : sum);
        }
    }
#endif
    if (order == 2) { /* the betas in registers, no loop per output, no test of keep per output */
        const float b0 = betas[0], b1 = betas[1];
        const int32_t *m = mismatches + 2 * o;
        if (keep) {
            for (; o < count; ++o, m += 2) {
                const float sum = b0 * (float)(n - 2 * m[0]) + b1 * (float)(n - 2 * m[1]);
                acc[o] = acc[o] > sum ? acc[o] : sum;
            }
        } else {
            for (; o < count; ++o, m += 2) {
                acc[o] = b0 * (float)(n - 2 * m[0]) + b1 * (float)(n - 2 * m[1]);
            }
        }
    }
    for (; o < count; ++o) {
        const float sum = beta_sum(betas, order, n, mismatches + (ptrdiff_t)o * order);
        acc[o] = keep && acc[o] > sum ? acc[o] : sum;
    }
}

void horq_requantize_floats(const float *acc, int32_t count, const float *scale, const float *offset,
                            const horq_activation *act, const horq_clamps *clamps, int8_t *out)
{
    requantize_accumulators(acc, NULL, count, scale, offset, act, clamps, out);
}

/* The transform of output channels [first, first + count) at (y, x) of the stored grid (the
 * pooled one where a max pooling is fused, which the accumulators already are), stored as float
 * or, through horq_store_i8, as int8 or bit-planes. */
static void store_chunk(const horq_conv2d_i8_params *p, const int32_t *accs, int32_t count, int32_t first,
                        int32_t y, int32_t x, horq_dims grid, float *output, const horq_i8_output *output_i8)
{
    if (output) {
        transform_outputs(accs, count, p->scale + first, p->offset + first, &p->act, &p->clamps,
                          output + ((ptrdiff_t)y * grid.w + x) * grid.c + first, NULL);
        return;
    }
    int8_t values[HORQ_I8_CHUNK];
    const horq_clamps clamps = horq_clamps_from(&p->clamps, first);
    transform_outputs(accs, count, p->scale + first, p->offset + first, &p->act, &clamps, NULL, values);
    horq_store_i8(values, count, first, y, x, grid, &p->store, output_i8);
}

/* The final values of channels [first, first + count) of output pixel `pixel` (of `pixels`,
 * `channels` each): the affine after the pooling, if any, then stored as int8, or as bit-planes
 * by way of `work` (count bytes). */
static void store_final(const int8_t *values, int8_t *work, int32_t count, int32_t first, int32_t pixel,
                        int32_t pixels, int32_t channels, const horq_i8_store *store, const horq_i8_output *output)
{
    const ptrdiff_t at = (ptrdiff_t)pixel * channels + first;
    int8_t *final = output->planes ? work : output->values + at;
    if (store->post_scale) {
        /* one period of parameters covers whole pixels (a BatchNorm2d: the channels) or the whole
           tensor (a BatchNorm1d after a flattening), so within a call it restarts at most once */
        const int32_t period = store->post_period, start = (int32_t)(at % period);
        const int32_t run = count < period - start ? count : period - start;
        horq_affine_i8(values, final, run, run, store->post_scale + start, store->post_offset + start,
                       &store->post_act);
        if (run < count) {
            horq_affine_i8(values + run, final + run, count - run, period, store->post_scale, store->post_offset,
                           &store->post_act);
        }
    } else if (final != values) {
        memcpy(final, values, (size_t)count);
    }
    if (output->planes) { /* channel `first` starts a word: callers' chunks are multiples of 32 */
        float betas[HORQ_MAX_ORDER];
        const int32_t cw = HORQ_WORDS_FOR(channels);
        horq_binarize_rows_i8(final, 1, count, 0, store->plane_order, store->plane_betas, betas,
                              output->planes + (ptrdiff_t)pixel * cw + first / HORQ_WORD_BITS, pixels * cw);
    }
}

void horq_store_i8(const int8_t *values, int32_t count, int32_t first, int32_t y, int32_t x, horq_dims grid,
                   const horq_i8_store *store, const horq_i8_output *output)
{
    int8_t work[HORQ_STORE_CHUNK];
    store_final(values, work, count, first, y * grid.w + x, grid.h * grid.w, grid.c, store, output);
}

/* Positions of a pooling window whose small patches (of at most HORQ_I8_SMALL_PATCH bytes) are
 * made before any weight row is read: each row is then loaded (on the DSP extension, widened) once
 * for all of them. A 2x2 window is one such batch; pool * pool is a multiple of 4 or one more, so
 * a larger window is batches of 4 and at most one position alone. */
#define HORQ_I8_WINDOW 4

/* Before a loop over rows (dot_rows_i8) or patches (window_rows), whose count is a constant where
 * it is inlined: GCC unrolls such a loop at -O2 only when told, and then the rows' sums (the
 * patches) stay in registers. */
#if defined(__GNUC__) && !defined(__clang__)
#define HORQ_UNROLL_ROWS _Pragma("GCC unroll 4")
#define HORQ_UNROLL_HALVES _Pragma("GCC unroll 8")
#else
#define HORQ_UNROLL_ROWS
#define HORQ_UNROLL_HALVES
#endif

static inline void keep_max(int32_t *best, int32_t acc)
{
    *best = acc > *best ? acc : *best;
}

#if defined(HORQ_ARM_DSP)
/* SMLAD reads a word's bytes (x0, x1, x2, x3) as the pairs (x0, x2) and, rotated by 8, (x1, x3),
 * each widened by SXTB16 (its rotation is free: one instruction, which the intrinsic does not
 * give). */
static inline int32_t widen_even(uint32_t word)
{
    return __sxtb16((int32_t)word);
}

static inline int32_t widen_odd(uint32_t word)
{
    int32_t pairs;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(pairs) : "r"(word));
    return pairs;
}

static inline uint32_t word_at(const int8_t *bytes, int i)
{
    uint32_t word;
    memcpy(&word, bytes + 4 * i, sizeof word);
    return word;
}

/* A 16-byte row widened for SMLAD: its words' even and odd halves in that order (even[0], odd[0],
 * even[1], ...), whose lowest bytes are 0, 1, 4, 5, 8, 9, 12, 13. Only the first `halves` are
 * made and read: those that hold a value (dsp_halves), the others being the zeros past the values. */
typedef struct {
    int32_t half[8];
} dsp_row;

/* The halves that hold one of a patch's `bytes` values, rounded up to a count that has a variant
 * below: 2, 4, 6 or 8 (whole words), and 5 for the one-channel 3x3 kernel, whose ninth tap is
 * alone in the third word's even half (the odd half, bytes 9 and 11, is zeros). */
static inline int dsp_halves(int32_t bytes)
{
    return bytes <= 4 ? 2 : bytes <= 8 ? 4 : bytes == 9 ? 5 : bytes <= 12 ? 6 : 8;
}

/* `halves` is a constant where these are inlined: the tests below vanish and the row stays in
 * registers (or, for a batch of patches, in consecutive words). */
static inline __attribute__((always_inline)) dsp_row dsp_widen(const int8_t *bytes, const int halves)
{
    dsp_row row = {{0}};
    HORQ_UNROLL_HALVES
    for (int h = 0; h < 8; ++h) {
        if (h < halves) {
            row.half[h] = h % 2 ? widen_odd(word_at(bytes, h / 2)) : widen_even(word_at(bytes, h / 2));
        }
    }
    return row;
}

static inline __attribute__((always_inline)) int32_t dsp_dot(const dsp_row *k, const dsp_row *x, const int halves)
{
    int32_t acc = __smuad(k->half[0], x->half[0]);
    HORQ_UNROLL_HALVES
    for (int h = 1; h < 8; ++h) {
        if (h < halves) {
            acc = __smlad(k->half[h], x->half[h], acc);
        }
    }
    return acc;
}

/* small_rows of 16-byte rows for `count` patches (1 or HORQ_I8_WINDOW, a constant where this is
 * inlined): the patches are widened once, each weight row once for all of them (in registers,
 * while the patches' widened words are read back). */
static inline __attribute__((always_inline)) void dsp_rows(const int8_t *weights, int32_t rows, const int8_t *patches,
                                                           const int count, const int halves, int32_t *best)
{
    dsp_row x[HORQ_I8_WINDOW];
    HORQ_UNROLL_ROWS
    for (int j = 0; j < count; ++j) {
        x[j] = dsp_widen(patches + j * 16, halves);
    }
    for (int32_t r = 0; r < rows; ++r) {
        const dsp_row k = dsp_widen(weights + (ptrdiff_t)r * 16, halves);
        int32_t acc = dsp_dot(&k, &x[0], halves);
        HORQ_UNROLL_ROWS
        for (int j = 1; j < count; ++j) {
            keep_max(&acc, dsp_dot(&k, &x[j], halves));
        }
        best[r] = acc;
    }
}

/* The same for 32-byte rows, of `words` words that hold values (the rest are zeros): a widened
 * row (up to 16 halves) would not stay in the registers, so the loop is word by word, each weight
 * word widened once and its halves multiplied into the `count` patches' accumulators (in
 * registers) with the patches' widened halves (made once, read back). */
static inline __attribute__((always_inline)) void dsp_wide_rows(const int8_t *weights, int32_t rows,
                                                                const int8_t *patches, const int count,
                                                                int32_t words, int32_t *best)
{
    int32_t x[HORQ_I8_WINDOW][HORQ_I8_SMALL_PATCH / 2];
    HORQ_UNROLL_ROWS
    for (int j = 0; j < count; ++j) {
        for (int32_t i = 0; i < words; ++i) {
            const uint32_t word = word_at(patches + j * HORQ_I8_SMALL_PATCH, i);
            x[j][2 * i] = widen_even(word);
            x[j][2 * i + 1] = widen_odd(word);
        }
    }
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *k = weights + (ptrdiff_t)r * HORQ_I8_SMALL_PATCH;
        int32_t acc[HORQ_I8_WINDOW] = {0};
        for (int32_t i = 0; i < words; ++i) {
            const uint32_t word = word_at(k, i);
            const int32_t even = widen_even(word), odd = widen_odd(word);
            HORQ_UNROLL_ROWS
            for (int j = 0; j < count; ++j) {
                acc[j] = __smlad(odd, x[j][2 * i + 1], __smlad(even, x[j][2 * i], acc[j]));
            }
        }
        HORQ_UNROLL_ROWS
        for (int j = 1; j < count; ++j) {
            keep_max(&acc[0], acc[j]);
        }
        best[r] = acc[0];
    }
}
#endif

/* acc + sum_i a[i] * b[i] over i in [from, n): the portable path, and the others' tails. */
static inline int32_t dot_i8_tail(const int8_t *a, const int8_t *b, int32_t from, int32_t n, int32_t acc)
{
    for (int32_t i = from; i < n; ++i) {
        acc += (int32_t)a[i] * (int32_t)b[i];
    }
    return acc;
}

/* Weight rows that one pass over an input vector serves: its loads (and on the DSP extension its
 * widening) are shared by that many rows. Two on the DSP extension, where four rows' accumulators
 * and pointers would not fit in the registers. */
#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
#define HORQ_I8_DOT_ROWS 4
#elif defined(HORQ_ARM_DSP)
#define HORQ_I8_DOT_ROWS 2
#else
#define HORQ_I8_DOT_ROWS 1
#endif

/* acc[j] += sum_i x[i] * w[j * stride + i] over n int8 values, for j < rows (1 or
 * HORQ_I8_DOT_ROWS, a constant where this is inlined: the row loops unroll). w holds weight rows,
 * which never hold -128 (weights are symmetric, [-127, 127]). Exact int32 sums, so any order of
 * the products gives the reference's value: Helium takes 16 a VMLADAVA and the tail under a tail
 * predicate (lanes past n are not read and load as zeros), NEON 16 a step as int16 products summed
 * into int32 pairs, the DSP extension 4 a word as SMLAD pairs of SXTB16-widened bytes. */
static inline __attribute__((always_inline)) void dot_rows_i8(const int8_t *x, const int8_t *w, ptrdiff_t stride,
                                                              int32_t n, const int rows, int32_t *acc)
{
    int32_t i = 0;
#if defined(HORQ_ARM_MVE)
    int32_t sums[HORQ_I8_DOT_ROWS] = {0}; /* in registers: acc may alias the rows */
    for (; i + 16 <= n; i += 16) {
        const int8x16_t xv = vld1q_s8(x + i);
        HORQ_UNROLL_ROWS
        for (int j = 0; j < rows; ++j) {
            sums[j] = vmladavaq_s8(sums[j], xv, vld1q_s8(w + j * stride + i));
        }
    }
    if (i < n) {
        const mve_pred16_t tail = vctp8q((uint32_t)(n - i));
        const int8x16_t xv = vldrbq_z_s8(x + i, tail);
        HORQ_UNROLL_ROWS
        for (int j = 0; j < rows; ++j) {
            sums[j] = vmladavaq_s8(sums[j], xv, vldrbq_z_s8(w + j * stride + i, tail));
        }
    }
    HORQ_UNROLL_ROWS
    for (int j = 0; j < rows; ++j) {
        acc[j] += sums[j];
    }
#elif defined(HORQ_ARM_NEON)
    /* a lane of int16 holds two products, at most 2 * 128 * 127 in magnitude (no weight is -128),
     * and VPADAL adds pairs of lanes into int32 at once */
    int32x4_t sums[HORQ_I8_DOT_ROWS];
    HORQ_UNROLL_ROWS
    for (int j = 0; j < rows; ++j) {
        sums[j] = vdupq_n_s32(0);
    }
    for (; i + 16 <= n; i += 16) {
        const int8x16_t xv = vld1q_s8(x + i);
        HORQ_UNROLL_ROWS
        for (int j = 0; j < rows; ++j) {
            const int8x16_t k = vld1q_s8(w + j * stride + i);
            sums[j] = vpadalq_s16(sums[j], vmlal_high_s8(vmull_s8(vget_low_s8(xv), vget_low_s8(k)), xv, k));
        }
    }
    if (i + 8 <= n) {
        const int8x8_t xh = vld1_s8(x + i);
        HORQ_UNROLL_ROWS
        for (int j = 0; j < rows; ++j) {
            sums[j] = vpadalq_s16(sums[j], vmull_s8(xh, vld1_s8(w + j * stride + i)));
        }
        i += 8;
    }
    HORQ_UNROLL_ROWS
    for (int j = 0; j < rows; ++j) {
        acc[j] = dot_i8_tail(x, w + j * stride, i, n, acc[j] + vaddvq_s32(sums[j]));
    }
#elif defined(HORQ_ARM_DSP)
    int32_t sums[HORQ_I8_DOT_ROWS] = {0};
    for (; i + 4 <= n; i += 4) {
        const uint32_t word = word_at(x + i, 0);
        const int32_t even = widen_even(word), odd = widen_odd(word);
        HORQ_UNROLL_ROWS
        for (int j = 0; j < rows; ++j) {
            const uint32_t k = word_at(w + j * stride + i, 0);
            sums[j] = __smlad(widen_odd(k), odd, __smlad(widen_even(k), even, sums[j]));
        }
    }
    HORQ_UNROLL_ROWS
    for (int j = 0; j < rows; ++j) {
        acc[j] = dot_i8_tail(x, w + j * stride, i, n, acc[j] + sums[j]);
    }
#else
    HORQ_UNROLL_ROWS
    for (int j = 0; j < rows; ++j) {
        acc[j] = dot_i8_tail(x, w + j * stride, i, n, acc[j]);
    }
#endif
}

/* sum_i a[i] * b[i] over n int8 values, b a weight row. */
static inline int32_t dot_i8(const int8_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    dot_rows_i8(a, b, 0, n, 1, &acc);
    return acc;
}

/* dot_rows_i8 for `count` rows (at most HORQ_I8_DOT_ROWS): a block of them in one pass, a
 * remainder row by row. */
static inline void dot_block_i8(const int8_t *x, const int8_t *w, ptrdiff_t stride, int32_t n, int32_t count,
                                int32_t *acc)
{
    if (count == HORQ_I8_DOT_ROWS) {
        dot_rows_i8(x, w, stride, n, HORQ_I8_DOT_ROWS, acc);
        return;
    }
    for (int32_t j = 0; j < count; ++j) {
        dot_rows_i8(x, w + j * stride, 0, n, 1, acc + j);
    }
}

/* best[r] = the max over j < count of weight row r . patch j, for `rows` rows of 16 bytes (zeros
 * past the patch's `bytes` values) and `count` patches alike (1 or HORQ_I8_WINDOW, a constant where
 * this is inlined: the patches stay in registers, each row is loaded once for all of them). A
 * 16-lane dot product a row and patch: VMLADAV on Helium, a widening multiply and multiply-add on
 * NEON (each product fits 15 bits, two of them 16: no weight is -128), and on the DSP extension
 * SMLAD pairs of SXTB16-widened words, only over the ceil(bytes / 4) words that hold values. */
static inline __attribute__((always_inline)) void window_rows(const int8_t *weights, int32_t rows,
                                                              const int8_t *patches, const int count, int32_t bytes,
                                                              int32_t *best)
{
#if defined(HORQ_ARM_DSP)
    switch (dsp_halves(bytes)) { /* a variant per count of halves, picked once */
    case 2: dsp_rows(weights, rows, patches, count, 2, best); break;
    case 4: dsp_rows(weights, rows, patches, count, 4, best); break;
    case 5: dsp_rows(weights, rows, patches, count, 5, best); break;
    case 6: dsp_rows(weights, rows, patches, count, 6, best); break;
    default: dsp_rows(weights, rows, patches, count, 8, best); break;
    }
#else
#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
    int8x16_t x[HORQ_I8_WINDOW];
    HORQ_UNROLL_ROWS
    for (int j = 0; j < count; ++j) {
        x[j] = vld1q_s8(patches + j * 16);
    }
    (void)bytes; /* whole rows: their zeros add nothing */
#endif
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *k = weights + (ptrdiff_t)r * 16;
        int32_t acc = INT32_MIN; /* below every sum of 16 products */
#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
        const int8x16_t kv = vld1q_s8(k);
#endif
        HORQ_UNROLL_ROWS
        for (int j = 0; j < count; ++j) {
#if defined(HORQ_ARM_MVE)
            keep_max(&acc, vmladavq_s8(x[j], kv));
#elif defined(HORQ_ARM_NEON)
            keep_max(&acc, vaddlvq_s16(vmlal_high_s8(vmull_s8(vget_low_s8(x[j]), vget_low_s8(kv)), x[j], kv)));
#else
            keep_max(&acc, dot_i8(patches + j * 16, k, bytes));
#endif
        }
        best[r] = acc;
    }
#endif
}

/* window_rows for rows of 32 bytes (HORQ_I8_SMALL_PATCH: a patch of 17 to 32 values, such as an
 * RGB image's 3x3x3), two vectors a row: on Helium a VMLADAV and a VMLADAVA a patch, the patches
 * read from memory for each row (two vectors each and the row's two would not fit the eight Q
 * registers); on NEON two widening multiplies and multiply-adds into int16 pairs (two products a
 * lane fit, as in window_rows) widened and added as int32; on the DSP extension dsp_wide_rows. */
static inline __attribute__((always_inline)) void wide_rows(const int8_t *weights, int32_t rows,
                                                            const int8_t *patches, const int count, int32_t bytes,
                                                            int32_t *best)
{
#if defined(HORQ_ARM_DSP)
    dsp_wide_rows(weights, rows, patches, count, (bytes + 3) / 4, best);
#else
#if defined(HORQ_ARM_NEON)
    int8x16_t x[HORQ_I8_WINDOW][2];
    HORQ_UNROLL_ROWS
    for (int j = 0; j < count; ++j) {
        x[j][0] = vld1q_s8(patches + j * HORQ_I8_SMALL_PATCH);
        x[j][1] = vld1q_s8(patches + j * HORQ_I8_SMALL_PATCH + 16);
    }
#endif
#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
    (void)bytes; /* whole rows: their zeros add nothing */
#endif
    for (int32_t r = 0; r < rows; ++r) {
        const int8_t *k = weights + (ptrdiff_t)r * HORQ_I8_SMALL_PATCH;
        int32_t acc = INT32_MIN; /* below every sum of 32 products */
#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
        const int8x16_t k0 = vld1q_s8(k), k1 = vld1q_s8(k + 16);
#endif
        HORQ_UNROLL_ROWS
        for (int j = 0; j < count; ++j) {
#if defined(HORQ_ARM_MVE)
            const int8_t *patch = patches + j * HORQ_I8_SMALL_PATCH;
            keep_max(&acc, vmladavaq_s8(vmladavq_s8(vld1q_s8(patch), k0), vld1q_s8(patch + 16), k1));
#elif defined(HORQ_ARM_NEON)
            const int16x8_t low = vmlal_high_s8(vmull_s8(vget_low_s8(x[j][0]), vget_low_s8(k0)), x[j][0], k0);
            const int16x8_t high = vmlal_high_s8(vmull_s8(vget_low_s8(x[j][1]), vget_low_s8(k1)), x[j][1], k1);
            keep_max(&acc, vaddvq_s32(vpadalq_s16(vpaddlq_s16(low), high)));
#else
            keep_max(&acc, dot_i8(patches + j * HORQ_I8_SMALL_PATCH, k, bytes));
#endif
        }
        best[r] = acc;
    }
#endif
}

/* window_rows or wide_rows, by the row's size (16 or 32, a constant where this is inlined), for
 * HORQ_I8_WINDOW patches or one. */
static inline __attribute__((always_inline)) void small_rows(const int8_t *weights, int32_t rows,
                                                             const int8_t *patches, int32_t count, int32_t bytes,
                                                             const int32_t row, int32_t *best)
{
    if (row == 16 && count == HORQ_I8_WINDOW) {
        window_rows(weights, rows, patches, HORQ_I8_WINDOW, bytes, best);
    } else if (row == 16) {
        window_rows(weights, rows, patches, 1, bytes, best);
    } else if (count == HORQ_I8_WINDOW) {
        wide_rows(weights, rows, patches, HORQ_I8_WINDOW, bytes, best);
    } else {
        wide_rows(weights, rows, patches, 1, bytes, best);
    }
}

/* The first layer of an image model: a patch (in.c * kh * kw values) of at most 32 bytes (3x3 or
 * 4x4 on one channel, 3x3 on two or three). A position's patch is one row of `row` bytes (16 or
 * 32) in channels-last tap order, [ky][kx][c] as each weight row is, so that an output channel's
 * accumulator is one dot product of two rows; zeros past the values and at the padding (the
 * generator pads the weight rows with zeros alike). `row` and `c` (the input's channels) are
 * constants where this is inlined for one channel (small_window). */
static inline __attribute__((always_inline)) void small_patch(const horq_window *w, const int8_t *input, int32_t oy,
                                                              int32_t ox, const int32_t row, const int32_t c,
                                                              int8_t *patch)
{
    const int32_t kh = w->kernel_h, kw = w->kernel_w;
    const int32_t y0 = oy * w->stride_h - w->pad_h, x0 = ox * w->stride_w - w->pad_w;
    /* the taps inside the input, rows [ky0, ky1) and columns [kx0, kx1), found once: no test a tap
     * (and the window in locals: the int8 stores below may alias anything) */
    const int32_t ky0 = y0 < 0 ? -y0 : 0, ky1 = y0 + kh > w->in.h ? w->in.h - y0 : kh;
    const int32_t kx0 = x0 < 0 ? -x0 : 0, kx1 = x0 + kw > w->in.w ? w->in.w - x0 : kw;
    const int32_t run = kw * c, bytes = kh * run, line = w->in.w * c; /* a kernel row's values */
    const int inside = ky0 == 0 && ky1 == kh && kx0 == 0;
    /* the row's last 16 bytes zeroed (a constant size: one that is not becomes a call), all of it
     * where it is 16; past the values where the copies below leave them */
    memset(patch + row - 16, 0, 16);
    /* All taps inside, and whole words of input from each kernel row's first value: a kernel row
     * is word copies (a tap a copy costs several times more), the bytes past its run overwritten
     * by the next row's, and past the last row's zeroed again (a word). */
    if (row == 16) { /* one channel: a kernel row of at most 4 taps is one word (tests kept apart */
        if (inside && x0 + 4 <= w->in.w && (kw == 4 || (kw < 4 && bytes + 4 <= 16))) { /* from below) */
            for (int32_t ky = 0; ky < kh; ++ky) {
                memcpy(patch + ky * kw, input + (ptrdiff_t)(y0 + ky) * w->in.w + x0, 4);
            }
            if (kw < 4) {
                memset(patch + bytes, 0, 4);
            }
            return;
        }
    } else if (inside && run <= 16 && x0 * c + ((run + 3) & ~3) <= line && (run % 4 == 0 || bytes + 4 <= row)) {
        /* one to four words a kernel row: branches, not a loop (which GCC makes a call); the
         * copies fill the first 16 bytes, as a 32-byte row holds more than 16 values */
        for (int32_t ky = 0; ky < kh; ++ky) {
            const int8_t *from = input + (ptrdiff_t)(y0 + ky) * line + x0 * c;
            int8_t *to = patch + ky * run;
            memcpy(to, from, 4);
            if (run > 4) {
                memcpy(to + 4, from + 4, 4);
            }
            if (run > 8) {
                memcpy(to + 8, from + 8, 4);
            }
            if (run > 12) {
                memcpy(to + 12, from + 12, 4);
            }
        }
        if (run % 4) {
            memset(patch + bytes, 0, 4);
        }
        return;
    }
    if (row > 16) {
        memset(patch, 0, 16);
    }
    for (int32_t ky = ky0; ky < ky1; ++ky) {
        const int8_t *from = input + (ptrdiff_t)(y0 + ky) * line + x0 * c;
        for (int32_t i = kx0 * c; i < kx1 * c; ++i) { /* the run of the taps inside: kx, then c */
            patch[ky * run + i] = from[i];
        }
    }
}

/* best[o - first] = the max over the pool x pool positions from (oy, ox) (one position unpooled)
 * of output channel o's accumulators, for o in [first, first + rows). The patches of
 * HORQ_I8_WINDOW positions are made, then each weight row is read once for all of them. pool *
 * pool is a multiple of 4 or one more, so batches are whole but for at most one last position;
 * the batches after the first (pool 3 and up) go through `more`. Rows of `row` bytes (16 or 32)
 * of patches of `c` channels, both constants where this is inlined (small_window_1). */
static inline __attribute__((always_inline)) void small_window(const horq_conv2d_i8_params *p, const int8_t *input,
                                                               int32_t oy, int32_t ox, int32_t pool, int32_t first,
                                                               int32_t rows, const int32_t row, const int32_t c,
                                                               int32_t *best)
{
    const horq_window *w = &p->win;
    const int32_t bytes = c * w->kernel_h * w->kernel_w;
    const int8_t *weights = p->weights + (ptrdiff_t)first * row;
    int8_t patches[HORQ_I8_WINDOW * HORQ_I8_SMALL_PATCH];
    int32_t more[HORQ_I8_CHUNK];
    int32_t *out = best, count = 0;
    for (int32_t dy = 0; dy < pool; ++dy) {
        for (int32_t dx = 0; dx < pool; ++dx) {
            small_patch(w, input, oy + dy, ox + dx, row, c, patches + count * row);
            if (++count < HORQ_I8_WINDOW && (dy < pool - 1 || dx < pool - 1)) {
                continue;
            }
            small_rows(weights, rows, patches, count, bytes, row, out);
            for (int32_t r = 0; out == more && r < rows; ++r) {
                keep_max(best + r, more[r]);
            }
            out = more;
            count = 0;
        }
    }
}

/* small_window for one channel and 16-byte rows (3x3, 4x4 kernels: the bundled example's), all of
 * whose sizes are constants, and for the other small patches, of 32-byte rows (an RGB image's
 * 3x3x3; the header's HORQ_I8_SMALL_ROW), whose channels are a variable. The latter is not inlined
 * into the caller: its code and variables would crowd the one-channel kernel's registers there
 * (inlined, the bundled example took 15 K more instructions on Cortex-M55). */
static void small_window_1(const horq_conv2d_i8_params *p, const int8_t *input, int32_t oy, int32_t ox, int32_t pool,
                           int32_t first, int32_t rows, int32_t *best)
{
    small_window(p, input, oy, ox, pool, first, rows, 16, 1, best);
}

static __attribute__((noinline)) void small_window_c(const horq_conv2d_i8_params *p, const int8_t *input, int32_t oy,
                                                     int32_t ox, int32_t pool, int32_t first, int32_t rows,
                                                     int32_t *best)
{
    small_window(p, input, oy, ox, pool, first, rows, HORQ_I8_SMALL_PATCH, p->win.in.c, best);
}

/* Any other convolution. In channels-last order the taps of one kernel row that lie inside the
 * input are one run of bytes in the input and one in the weight row, so each kernel row is one
 * dot product (not one a tap), over HORQ_I8_DOT_ROWS output channels at a time, which load the
 * input once. The position's accumulators of output channels [first, first + rows) are kept as the
 * running max best[o - first] (the caller starts a pooling window at INT32_MIN). */
static void general_position(const horq_conv2d_i8_params *p, const int8_t *input, int32_t oy, int32_t ox,
                             int32_t first, int32_t rows, int32_t *best)
{
    const horq_window *w = &p->win;
    const int32_t kh = w->kernel_h, kw = w->kernel_w, c = w->in.c;
    const int32_t y0 = oy * w->stride_h - w->pad_h, x0 = ox * w->stride_w - w->pad_w;
    /* the taps inside the input, rows [ky0, ky1) and columns [kx0, kx1) (padding is the integer 0
     * and adds nothing); none where the columns are empty, then no run is formed at all */
    const int32_t ky0 = y0 < 0 ? -y0 : 0, ky1 = y0 + kh > w->in.h ? w->in.h - y0 : kh;
    const int32_t kx0 = x0 < 0 ? -x0 : 0, kx1 = x0 + kw > w->in.w ? w->in.w - x0 : kw;
    const int32_t run = (kx1 - kx0) * c, last = kx0 < kx1 ? ky1 : ky0;
    const ptrdiff_t row_bytes = (ptrdiff_t)kh * kw * c;
    for (int32_t r = 0; r < rows; r += HORQ_I8_DOT_ROWS) {
        const int32_t count = rows - r < HORQ_I8_DOT_ROWS ? rows - r : HORQ_I8_DOT_ROWS;
        const int8_t *k = p->weights + (first + r) * row_bytes + (ptrdiff_t)kx0 * c;
        int32_t acc[HORQ_I8_DOT_ROWS] = {0};
        for (int32_t ky = ky0; ky < last; ++ky) {
            dot_block_i8(input + ((ptrdiff_t)(y0 + ky) * w->in.w + x0 + kx0) * c, k + (ptrdiff_t)ky * kw * c,
                         row_bytes, run, count, acc);
        }
        for (int32_t j = 0; j < count; ++j) {
            keep_max(best + r + j, acc[j]);
        }
    }
}

/* A fused max pooling (pool > 1) is done on the int32 accumulators: each pooled output's window
 * (pool x pool positions, stride pool, a last partial row or column left out) keeps the running
 * max of its accumulators, which are transformed once. That equals the max of the transformed
 * values because the transform is non-decreasing in acc where scale >= 0, which the generator
 * makes hold (horq_kernels.h, horq_conv2d_i8_params). Positions the pooling drops are never
 * computed. */
void horq_conv2d_i8_hwc(const horq_conv2d_i8_params *p, const int8_t *input, float *output,
                        const horq_i8_output *output_i8)
{
    const horq_window *w = &p->win;
    const int32_t bytes = w->in.c * w->kernel_h * w->kernel_w;
    const int small = bytes <= HORQ_I8_SMALL_PATCH, one = HORQ_I8_SMALL_ROW(w->in.c, bytes) == 16;
    const int32_t pool = p->store.pool > 1 ? p->store.pool : 1;
    const horq_dims grid = {w->out.h / pool, w->out.w / pool, w->out.c};
    for (int32_t y = 0; y < grid.h; ++y) {
        for (int32_t x = 0; x < grid.w; ++x) {
            for (int32_t first = 0; first < grid.c; first += HORQ_I8_CHUNK) {
                const int32_t rows = grid.c - first < HORQ_I8_CHUNK ? grid.c - first : HORQ_I8_CHUNK;
                int32_t best[HORQ_I8_CHUNK];
                if (small && one) {
                    small_window_1(p, input, y * pool, x * pool, pool, first, rows, best);
                } else if (small) {
                    small_window_c(p, input, y * pool, x * pool, pool, first, rows, best);
                } else {
                    for (int32_t r = 0; r < rows; ++r) {
                        best[r] = INT32_MIN;
                    }
                    for (int32_t dy = 0; dy < pool; ++dy) {
                        for (int32_t dx = 0; dx < pool; ++dx) {
                            general_position(p, input, y * pool + dy, x * pool + dx, first, rows, best);
                        }
                    }
                }
                store_chunk(p, best, rows, first, y, x, grid, output, output_i8);
            }
        }
    }
}

void horq_fc_i8(const horq_fc_i8_params *p, const int8_t *input, float *output, int8_t *output_i8)
{
    for (int32_t first = 0; first < p->out_features; first += HORQ_I8_CHUNK) {
        const int32_t rows = p->out_features - first < HORQ_I8_CHUNK ? p->out_features - first : HORQ_I8_CHUNK;
        int32_t accs[HORQ_I8_CHUNK];
        for (int32_t r = 0; r < rows; r += HORQ_I8_DOT_ROWS) { /* the input loaded once for a block of rows */
            const int32_t count = rows - r < HORQ_I8_DOT_ROWS ? rows - r : HORQ_I8_DOT_ROWS;
            memset(accs + r, 0, (size_t)count * sizeof *accs);
            dot_block_i8(input, p->weights + (ptrdiff_t)(first + r) * p->in_features, p->in_features,
                         p->in_features, count, accs + r);
        }
        const horq_clamps none = {NULL, NULL};
        transform_outputs(accs, rows, p->scale + first, p->offset + first, &p->act, &none,
                          output ? output + first : NULL, output ? NULL : output_i8 + first);
    }
}

void horq_affine_i8(const int8_t *input, int8_t *output, int32_t count, int32_t channels, const float *scale,
                    const float *offset, const horq_activation *act)
{
    float low, high;
    int8_bounds(act, &low, &high);
    for (int32_t start = 0; start < count; start += channels) { /* one pixel's channels at a time */
        const int8_t *x = input + start;
        int8_t *out = output + start;
        int32_t c = 0;
#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
        for (; c + 4 <= channels; c += 4) {
            const float32x4_t y = vaddq_f32(vmulq_f32(vcvtq_f32_s32(load4_i8(x + c)), vld1q_f32(scale + c)),
                                            vld1q_f32(offset + c));
            requantize4(y, low, high, out + c);
        }
#endif
        for (; c < channels; ++c) {
            out[c] = clamp_and_round((float)x[c] * scale[c] + offset[c], low, high);
        }
    }
}

/* out[ch] = max(out[ch], x[ch]) over c channels: 16 at a time on Helium and NEON, 4 on the
 * DSP extension (SSUB8 sets a flag per byte, SEL picks the larger), the rest one by one. */
static void max_into(int8_t *out, const int8_t *x, int32_t c)
{
    int32_t ch = 0;
#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
    for (; ch + 16 <= c; ch += 16) {
        vst1q_s8(out + ch, vmaxq_s8(vld1q_s8(out + ch), vld1q_s8(x + ch)));
    }
#elif defined(HORQ_ARM_DSP)
    for (; ch + 4 <= c; ch += 4) {
        uint32_t a, b;
        memcpy(&a, out + ch, sizeof a);
        memcpy(&b, x + ch, sizeof b);
        (void)__ssub8((int32_t)b, (int32_t)a); /* GE[i] where b[i] >= a[i] */
        a = __sel(b, a);
        memcpy(out + ch, &a, sizeof a);
    }
#endif
    for (; ch < c; ++ch) {
        out[ch] = x[ch] > out[ch] ? x[ch] : out[ch];
    }
}

void horq_maxpool2d_i8_hwc(const horq_window *w, const int8_t *input, int8_t *output)
{
    const int32_t c = w->in.c;
    for (int32_t oy = 0; oy < w->out.h; ++oy) {
        for (int32_t ox = 0; ox < w->out.w; ++ox) {
            int8_t *out = output + ((ptrdiff_t)oy * w->out.w + ox) * c;
            for (int32_t ch = 0; ch < c; ++ch) {
                out[ch] = -128;
            }
            for (int32_t ky = 0; ky < w->kernel_h; ++ky) {
                const int32_t iy = oy * w->stride_h - w->pad_h + ky;
                for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
                    const int32_t ix = ox * w->stride_w - w->pad_w + kx;
                    if (iy < 0 || iy >= w->in.h || ix < 0 || ix >= w->in.w) {
                        continue;
                    }
                    max_into(out, input + ((ptrdiff_t)iy * w->in.w + ix) * c, c);
                }
            }
        }
    }
}

void horq_avgpool2d_i8_hwc(const horq_window *w, const int8_t *input, int8_t *output)
{
    const int32_t c = w->in.c;
    const float count = (float)(w->kernel_h * w->kernel_w);
    for (int32_t oy = 0; oy < w->out.h; ++oy) {
        for (int32_t ox = 0; ox < w->out.w; ++ox) {
            int8_t *out = output + ((ptrdiff_t)oy * w->out.w + ox) * c;
            for (int32_t ch = 0; ch < c; ++ch) {
                int32_t sum = 0;
                for (int32_t ky = 0; ky < w->kernel_h; ++ky) {
                    const int32_t iy = oy * w->stride_h - w->pad_h + ky;
                    for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
                        const int32_t ix = ox * w->stride_w - w->pad_w + kx;
                        if (iy >= 0 && iy < w->in.h && ix >= 0 && ix < w->in.w) {
                            sum += input[((ptrdiff_t)iy * w->in.w + ix) * c + ch];
                        }
                    }
                }
                out[ch] = horq_requantize((float)sum / count);
            }
        }
    }
}

void horq_quantize_i8(const float *input, int8_t *output, int32_t count, float inv_scale)
{
    for (int32_t i = 0; i < count; ++i) {
        output[i] = horq_requantize(input[i] * inv_scale);
    }
}

void horq_dequantize_i8(const int8_t *input, float *output, int32_t count, float scale)
{
    for (int32_t i = 0; i < count; ++i) {
        output[i] = (float)input[i] * scale;
    }
}

void horq_hwc_to_chw_i8(const int8_t *input, int8_t *output, horq_dims dims)
{
    for (int32_t y = 0; y < dims.h; ++y) {
        for (int32_t x = 0; x < dims.w; ++x) {
            for (int32_t c = 0; c < dims.c; ++c) {
                output[((ptrdiff_t)c * dims.h + y) * dims.w + x] = input[((ptrdiff_t)y * dims.w + x) * dims.c + c];
            }
        }
    }
}
