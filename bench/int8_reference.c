/*
 * int8_reference.c - the comparison point for estimated cycles: an int8 matrix-multiply inner
 * loop in the style CMSIS-NN uses on each instruction set (our own code, written for this
 * measurement; it is compiled, cut and costed by bench/int8_reference.py, never run).
 *
 * One call computes a 2 x 2 (DSP, portable) or 4 x 1 (MVE, NEON) block of outputs,
 * out[r][c] = sum_k w[r][k] * x[c][k], over k < depth: the inner loop of a convolution
 * after im2col, or of a fully connected layer. Per inner-loop iteration:
 *
 *   __ARM_FEATURE_MVE  (Cortex-M55, as arm_nn_mat_mult_nt_t_s8): one 16-byte input vector
 *       (VLDRB.S8) against 4 weight rows (4 x VLDRB.S8), 4 x VMLADAVA.S8: 64 MACs.
 *   __ARM_FEATURE_DSP  (Cortex-M4/M7/M33, as arm_nn_mat_mult_kernel_s8_s16): 2 output
 *       channels x 2 columns x 4 depths. Weights: one 32-bit load of 4 int8 per channel,
 *       sign-extended with SXTB16 and SXTB16 ROR 8, then put back in depth order by PKHBT and
 *       PKHTB (CMSIS-NN's read_and_pad: its im2col buffer holds int16 in depth order);
 *       activations: two 32-bit loads per column; 8 x SMLAD: 16 MACs. (The "reordered" read
 *       without the PKH pair, against an im2col buffer written in SXTB16's order, costs about
 *       1.00 cycle a MAC on the Cortex-M7 model instead of 1.3-1.4; CMSIS-NN's s8 convolutions
 *       do not use it.)
 *   __ARM_NEON         (Cortex-A): no CMSIS-NN here; the pre-dot-product gemmlowp/ruy style,
 *       one 16-byte input vector against 4 weight rows, SMULL + SMLAL2 into int16 and SADALP into
 *       int32 per row: 64 MACs (weights kept in [-127, 127] so the int16 pair sum cannot overflow).
 *   otherwise          (Cortex-M3, as CMSIS-NN's portable C): 2 x 2 outputs, one depth: 4 MACs.
 *
 * depth is a multiple of 16 (MVE, NEON) or 4 (DSP); no tail handling is needed for the loop cost.
 */
#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_MVE)
#include <arm_mve.h>

/* In CMSIS-NN's order, each weight row's load next to its multiply-accumulate: GCC 12's scheduler
 * would move the five loads together, which the Cortex-M55 (beats of one vector instruction overlap
 * those of the next only across the load and the MAC units) runs in 17 cycles an iteration instead of 10. */
__attribute__((optimize("no-schedule-insns", "no-schedule-insns2")))
void int8_reference(const int8_t *w, const int8_t *x, int32_t depth, int32_t *out)
{
    const int8_t *w0 = w, *w1 = w + depth, *w2 = w + 2 * depth, *w3 = w + 3 * depth;
    int32_t acc0 = 0, acc1 = 0, acc2 = 0, acc3 = 0;
    for (int32_t k = depth >> 4; k > 0; --k) {
        const int8x16_t col = vldrbq_s8(x);
        x += 16;
        acc0 = vmladavaq_s8(acc0, col, vldrbq_s8(w0));
        w0 += 16;
        acc1 = vmladavaq_s8(acc1, col, vldrbq_s8(w1));
        w1 += 16;
        acc2 = vmladavaq_s8(acc2, col, vldrbq_s8(w2));
        w2 += 16;
        acc3 = vmladavaq_s8(acc3, col, vldrbq_s8(w3));
        w3 += 16;
    }
    out[0] = acc0;
    out[1] = acc1;
    out[2] = acc2;
    out[3] = acc3;
}

#elif defined(__ARM_FEATURE_DSP)
#include <arm_acle.h>

static inline int32_t read_word(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4); /* as CMSIS-NN's read_s8x4 / read_q15x2: unaligned-safe */
    return v;
}

/* SXTB16 of the word rotated right by 8: the odd bytes (CMSIS-NN's SXTB16_RORn, in one instruction). */
static inline int32_t sxtb16_ror8(int32_t v)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}

/* CMSIS-NN's read_and_pad puts SXTB16's halfword pairs back in depth order: (w0, w1) by PKHBT of
 * the even and odd pairs, (w2, w3) by PKHTB. */
static inline int32_t pkhbt16(int32_t even, int32_t odd)
{
    int32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(even), "r"(odd));
    return r;
}

static inline int32_t pkhtb16(int32_t odd, int32_t even)
{
    int32_t r;
    __asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(odd), "r"(even));
    return r;
}

void int8_reference(const int8_t *w, const int16_t *x, int32_t depth, int32_t *out)
{
    const int8_t *w0 = w, *w1 = w + depth;
    const int16_t *x0 = x, *x1 = x + depth;
    int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
    for (int32_t k = depth >> 2; k > 0; --k) {
        const int32_t a0 = read_word(w0), a1 = read_word(w1);
        w0 += 4;
        w1 += 4;
        const int32_t e0 = (int32_t)__sxtb16(a0), o0 = sxtb16_ror8(a0);
        const int32_t e1 = (int32_t)__sxtb16(a1), o1 = sxtb16_ror8(a1);
        /* (w0, w1) and (w2, w3) of each channel, against activations in depth order */
        const int32_t a0_even = pkhbt16(e0, o0), a0_odd = pkhtb16(o0, e0);
        const int32_t a1_even = pkhbt16(e1, o1), a1_odd = pkhtb16(o1, e1);
        const int32_t b0_even = read_word(x0), b0_odd = read_word(x0 + 2);
        const int32_t b1_even = read_word(x1), b1_odd = read_word(x1 + 2);
        x0 += 4;
        x1 += 4;
        s00 = __smlad(a0_even, b0_even, s00);
        s01 = __smlad(a0_even, b1_even, s01);
        s10 = __smlad(a1_even, b0_even, s10);
        s11 = __smlad(a1_even, b1_even, s11);
        s00 = __smlad(a0_odd, b0_odd, s00);
        s01 = __smlad(a0_odd, b1_odd, s01);
        s10 = __smlad(a1_odd, b0_odd, s10);
        s11 = __smlad(a1_odd, b1_odd, s11);
    }
    out[0] = s00;
    out[1] = s01;
    out[2] = s10;
    out[3] = s11;
}

#elif defined(__ARM_NEON)
#include <arm_neon.h>

void int8_reference(const int8_t *w, const int8_t *x, int32_t depth, int32_t *out)
{
    const int8_t *w0 = w, *w1 = w + depth, *w2 = w + 2 * depth, *w3 = w + 3 * depth;
    int32x4_t acc0 = vdupq_n_s32(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int32_t k = depth >> 4; k > 0; --k) {
        const int8x16_t col = vld1q_s8(x);
        x += 16;
        const int8x16_t r0 = vld1q_s8(w0), r1 = vld1q_s8(w1), r2 = vld1q_s8(w2), r3 = vld1q_s8(w3);
        w0 += 16;
        w1 += 16;
        w2 += 16;
        w3 += 16;
        acc0 = vpadalq_s16(acc0, vmlal_high_s8(vmull_s8(vget_low_s8(r0), vget_low_s8(col)), r0, col));
        acc1 = vpadalq_s16(acc1, vmlal_high_s8(vmull_s8(vget_low_s8(r1), vget_low_s8(col)), r1, col));
        acc2 = vpadalq_s16(acc2, vmlal_high_s8(vmull_s8(vget_low_s8(r2), vget_low_s8(col)), r2, col));
        acc3 = vpadalq_s16(acc3, vmlal_high_s8(vmull_s8(vget_low_s8(r3), vget_low_s8(col)), r3, col));
    }
    out[0] = vaddvq_s32(acc0);
    out[1] = vaddvq_s32(acc1);
    out[2] = vaddvq_s32(acc2);
    out[3] = vaddvq_s32(acc3);
}

#else

void int8_reference(const int8_t *w, const int8_t *x, int32_t depth, int32_t *out)
{
    const int8_t *w0 = w, *w1 = w + depth, *x0 = x, *x1 = x + depth;
    int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;
    for (int32_t k = depth; k > 0; --k) {
        const int32_t a0 = *w0++, a1 = *w1++, b0 = *x0++, b1 = *x1++;
        s00 += a0 * b0;
        s01 += a0 * b1;
        s10 += a1 * b0;
        s11 += a1 * b1;
    }
    out[0] = s00;
    out[1] = s01;
    out[2] = s10;
    out[3] = s11;
}

#endif
