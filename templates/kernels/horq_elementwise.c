/* Per-channel affine (an unfolded BatchNorm), standalone activations, layout copies. */
#include <stddef.h>
#include <string.h>

#include "horq_kernels.h"

#if defined(HORQ_ARM_MVE)
#include <arm_mve.h>
#elif defined(HORQ_ARM_NEON)
#include <arm_neon.h>
#endif

void horq_affine(const float *input, float *output, int32_t count, int32_t channels,
                 const float *scale, const float *offset, const horq_activation *act)
{
    for (int32_t i = 0; i < count; i += channels) {
        for (int32_t c = 0; c < channels; ++c) {
            output[i + c] = horq_activate(input[i + c] * scale[c] + offset[c], act);
        }
    }
}

#if defined(HORQ_ARM_MVE) && defined(__OPTIMIZE__) && defined(__GNUC__) && !defined(__clang__)
#define HORQ_MVE_STORE_OUTPUTS 1
#endif

#if defined(HORQ_MVE_STORE_OUTPUTS)
static void store_outputs_generic(const float *betas, int32_t order, int32_t n, const int32_t *mismatches,
                                  int32_t count, const float *scale, const float *offset, const horq_activation *act,
                                  float *out);

/* Helium, orders 1 and 2, count >= 8: eight outputs at a time, each lane with the scalar code's
 * operations in its order: d_k = n - 2 m_k (vmlas by -2, in q4), converted, times beta_k,
 * added (order 2), times scale, plus offset. The two groups of four interleave so that the M55
 * rarely waits on a result (llvm-mca, eight outputs: order 2 40 cycles against 50 for the
 * intrinsics, order 1 26 as they, in 18 instructions against 20).
 * The last count % 8 by the shared code, then the activation, as there. Not at -O0, where GCC
 * cannot give the asm its eight core registers. */
static inline void store_outputs_mve(const float *betas, int32_t order, int32_t n,
                                                        const int32_t *mismatches, int32_t count, const float *scale,
                                                        const float *offset, const horq_activation *act, float *out)
{
    const int32_t done = count - count % 8, groups = done / 8;
    const int32_t *const m_rest = mismatches + order * done;
    const float *const s_rest = scale + done, *const f_rest = offset + done;
    float *const o_first = out, *const o_rest = out + done;
    uint32_t b0, b1;
    memcpy(&b0, &betas[0], sizeof b0);
    if (order == 1) {
        __asm__ volatile("vmvn.i32 q4, #1\n\t"
                         "dls lr, %[groups]\n"
                         "1:\n\t"
                         "vldrw.u32 q0, [%[m]], #16\n\t"
                         "vldrw.u32 q2, [%[m]], #16\n\t"
                         "vmlas.s32 q0, q4, %[n]\n\t"
                         "vldrw.u32 q5, [%[s]], #16\n\t"
                         "vmlas.s32 q2, q4, %[n]\n\t"
                         "vcvt.f32.s32 q0, q0\n\t"
                         "vldrw.u32 q6, [%[s]], #16\n\t"
                         "vcvt.f32.s32 q2, q2\n\t"
                         "vmul.f32 q0, q0, %[b0]\n\t"
                         "vldrw.u32 q7, [%[f]], #16\n\t"
                         "vmul.f32 q2, q2, %[b0]\n\t"
                         "vldrw.u32 q1, [%[f]], #16\n\t"
                         "vmul.f32 q0, q0, q5\n\t"
                         "vmul.f32 q2, q2, q6\n\t"
                         "vadd.f32 q0, q0, q7\n\t"
                         "vadd.f32 q2, q2, q1\n\t"
                         "vstrw.32 q0, [%[o]], #16\n\t"
                         "vstrw.32 q2, [%[o]], #16\n\t"
                         "le lr, 1b\n\t"
                         : [m] "+r"(mismatches), [s] "+r"(scale), [f] "+r"(offset), [o] "+r"(out)
                         : [groups] "r"(groups), [n] "r"(n), [b0] "r"(b0)
                         : "q0", "q1", "q2", "q4", "q5", "q6", "q7", "lr", "memory");
    } else {
        memcpy(&b1, &betas[1], sizeof b1);
        __asm__ volatile("vmvn.i32 q4, #1\n\t"
                         "dls lr, %[groups]\n"
                         "1:\n\t"
                         "vld20.32 {q0, q1}, [%[m]]\n\t"
                         "vld21.32 {q0, q1}, [%[m]]!\n\t"
                         "vmlas.s32 q1, q4, %[n]\n\t"
                         "vcvt.f32.s32 q1, q1\n\t"
                         "vldrw.u32 q5, [%[s]], #16\n\t"
                         "vmul.f32 q1, q1, %[b1]\n\t"
                         "vldrw.u32 q7, [%[f]], #16\n\t"
                         "vmlas.s32 q0, q4, %[n]\n\t"
                         "vcvt.f32.s32 q0, q0\n\t"
                         "vld20.32 {q2, q3}, [%[m]]\n\t"
                         "vmul.f32 q0, q0, %[b0]\n\t"
                         "vldrw.u32 q6, [%[s]], #16\n\t"
                         "vadd.f32 q0, q0, q1\n\t"
                         "vldrw.u32 q1, [%[f]], #16\n\t"
                         "vmul.f32 q0, q0, q5\n\t"
                         "vld21.32 {q2, q3}, [%[m]]!\n\t"
                         "vadd.f32 q0, q0, q7\n\t"
                         "vmlas.s32 q2, q4, %[n]\n\t"
                         "vmlas.s32 q3, q4, %[n]\n\t"
                         "vcvt.f32.s32 q2, q2\n\t"
                         "vstrw.32 q0, [%[o]], #16\n\t"
                         "vmul.f32 q2, q2, %[b0]\n\t"
                         "vcvt.f32.s32 q3, q3\n\t"
                         "vmul.f32 q3, q3, %[b1]\n\t"
                         "vadd.f32 q2, q2, q3\n\t"
                         "vmul.f32 q2, q2, q6\n\t"
                         "vadd.f32 q2, q2, q1\n\t"
                         "vstrw.32 q2, [%[o]], #16\n\t"
                         "le lr, 1b\n\t"
                         : [m] "+r"(mismatches), [s] "+r"(scale), [f] "+r"(offset), [o] "+r"(out)
                         : [groups] "r"(groups), [n] "r"(n), [b0] "r"(b0), [b1] "r"(b1)
                         : "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "lr", "memory");
    }
    if (done < count) {
        store_outputs_generic(betas, order, n, m_rest, count - done, s_rest, f_rest, act, o_rest);
    }
    if (act->kind != HORQ_ACT_NONE) {
        horq_activation_apply(o_first, o_first, done, act);
    }
}

/* Helium takes orders 1 and 2 here, and the shared code below is store_outputs_generic (kept
 * apart: with this in its body, GCC compiled its other loops worse, and pushed q4-q7 on every
 * call). */
void horq_store_outputs(const float *betas, int32_t order, int32_t n, const int32_t *mismatches, int32_t count,
                        const float *scale, const float *offset, const horq_activation *act, float *out)
{
    if (order <= 2 && count >= 8) {
        store_outputs_mve(betas, order, n, mismatches, count, scale, offset, act, out);
    } else {
        store_outputs_generic(betas, order, n, mismatches, count, scale, offset, act, out);
    }
}
#define horq_store_outputs store_outputs_generic
#endif

void horq_store_outputs(const float *betas, int32_t order, int32_t n, const int32_t *mismatches, int32_t count,
                        const float *scale, const float *offset, const horq_activation *act, float *out)
{
    /* Orders 1 and 2 get their own loops: the betas stay in registers and no
     * inner loop runs per output. The sum order is the reference's in every case. */
#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
    /* Helium and NEON: four outputs at a time, each lane with the scalar code's
     * operations in the scalar code's order; the remainder below. */
    if (order <= 2 && count >= 4) {
        const int32_t vectors = count / 4;
        const int32x4_t nv = vdupq_n_s32(n);
        const float b0 = betas[0], b1 = order == 2 ? betas[1] : 0.0f;
        const int32_t *m = mismatches;
        const float *s = scale, *f = offset;
        float *o = out;
        if (order == 1) {
            for (int32_t v = 0; v < vectors; ++v, m += 4, s += 4, f += 4, o += 4) {
                const int32x4_t d = vsubq_s32(nv, vshlq_n_s32(vld1q_s32(m), 1));
                const float32x4_t acc = vmulq_n_f32(vcvtq_f32_s32(d), b0);
                vst1q_f32(o, vaddq_f32(vmulq_f32(acc, vld1q_f32(s)), vld1q_f32(f)));
            }
        } else {
            for (int32_t v = 0; v < vectors; ++v, m += 8, s += 4, f += 4, o += 4) {
                const int32x4x2_t d = vld2q_s32(m);
                const float32x4_t t0 = vmulq_n_f32(vcvtq_f32_s32(vsubq_s32(nv, vshlq_n_s32(d.val[0], 1))), b0);
                const float32x4_t t1 = vmulq_n_f32(vcvtq_f32_s32(vsubq_s32(nv, vshlq_n_s32(d.val[1], 1))), b1);
                vst1q_f32(o, vaddq_f32(vmulq_f32(vaddq_f32(t0, t1), vld1q_f32(s)), vld1q_f32(f)));
            }
        }
        const int32_t done = 4 * vectors;
        if (done < count) {
            horq_store_outputs(betas, order, n, mismatches + done * order, count - done, scale + done, offset + done,
                               act, out + done);
        }
        if (act->kind != HORQ_ACT_NONE) {
            horq_activation_apply(out, out, done, act);
        }
        return;
    }
#endif
    if (order == 1) {
        const float b0 = betas[0];
        for (int32_t o = 0; o < count; ++o) {
            out[o] = b0 * (float)(n - 2 * mismatches[o]) * scale[o] + offset[o];
        }
    } else if (order == 2) {
        const float b0 = betas[0], b1 = betas[1];
#if defined(HORQ_ARM_DSP) && defined(__GNUC__) && defined(__thumb2__) && defined(__ARM_FP) && defined(__OPTIMIZE__)
        /* Cortex-M4/M7: 16 instructions an output, against 19 from GCC (which
         * loads the counts one by one and moves them to the FPU one by one). Not at -O0,
         * where GCC cannot give the asm its registers: the C loop below then. */
        float *o = out;
        const float *const end = out + count;
        const int32_t *m = mismatches;
        const float *s = scale, *f = offset;
        if (count > 0) {
            __asm__ volatile("1:\n\t"
                             "ldrd r2, r3, [%[m]], #8\n\t"
                             "sub r2, %[n], r2, lsl #1\n\t"
                             "sub r3, %[n], r3, lsl #1\n\t"
                             "vmov s16, s17, r2, r3\n\t"
                             "vcvt.f32.s32 s16, s16\n\t"
                             "vcvt.f32.s32 s17, s17\n\t"
                             "vmul.f32 s16, s16, %[b0]\n\t"
                             "vmul.f32 s17, s17, %[b1]\n\t"
                             "vadd.f32 s16, s16, s17\n\t"
                             "vldmia %[s]!, {s18}\n\t"
                             "vldmia %[f]!, {s19}\n\t"
                             "vmul.f32 s16, s16, s18\n\t"
                             "vadd.f32 s16, s16, s19\n\t"
                             "vstmia %[o]!, {s16}\n\t"
                             "cmp %[o], %[end]\n\t"
                             "bne 1b\n\t"
                             : [m] "+r"(m), [s] "+r"(s), [f] "+r"(f), [o] "+r"(o)
                             : [n] "r"(n), [b0] "t"(b0), [b1] "t"(b1), [end] "r"(end)
                             : "r2", "r3", "s16", "s17", "s18", "s19", "cc", "memory");
        }
#else
        for (int32_t o = 0; o < count; ++o) {
            const float acc = b0 * (float)(n - 2 * mismatches[2 * o]) + b1 * (float)(n - 2 * mismatches[2 * o + 1]);
            out[o] = acc * scale[o] + offset[o];
        }
#endif
    } else {
        for (int32_t o = 0; o < count; ++o) {
            float acc = betas[0] * (float)(n - 2 * mismatches[o * order]);
            for (int32_t k = 1; k < order; ++k) {
                acc += betas[k] * (float)(n - 2 * mismatches[o * order + k]);
            }
            out[o] = acc * scale[o] + offset[o];
        }
    }
    if (act->kind != HORQ_ACT_NONE) {
        horq_activation_apply(out, out, count, act);
    }
}

#if defined(HORQ_MVE_STORE_OUTPUTS)
#undef horq_store_outputs
#endif

#if defined(HORQ_ARM_NEON)
/* horq_store_outputs for 4 positions at once (the block kernel's counts): orders 1 and 2 take
 * 8 channels x 4 positions a pass, the scales and offsets loaded once for the 4, each lane
 * with the scalar code's operations in its order; the rest through horq_store_outputs. */
void horq_store_outputs_block4(const float *betas, int32_t order, int32_t n, const int32_t *mismatches,
                               int32_t count, const float *scale, const float *offset, const horq_activation *act,
                               float *out, ptrdiff_t out_stride)
{
    int32_t o = 0;
    if (order <= 2) {
        const int32x4_t nv = vdupq_n_s32(n);
        for (; o + 8 <= count; o += 8) {
            const float32x4x2_t sv = vld1q_f32_x2(scale + o), fv = vld1q_f32_x2(offset + o);
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; ++q) {
                const int32_t *m = mismatches + (ptrdiff_t)q * count * order + (ptrdiff_t)o * order;
                const float *b = betas + q * HORQ_MAX_ORDER;
                float32x4_t acc[2];
                if (order == 1) {
                    const int32x4x2_t d = vld1q_s32_x2(m);
                    _Pragma("GCC unroll 2") for (int h = 0; h < 2; ++h) {
                        acc[h] = vmulq_n_f32(vcvtq_f32_s32(vsubq_s32(nv, vshlq_n_s32(d.val[h], 1))), b[0]);
                    }
                } else {
                    _Pragma("GCC unroll 2") for (int h = 0; h < 2; ++h) {
                        const int32x4x2_t d = vld2q_s32(m + 8 * h);
                        const float32x4_t t0 = vmulq_n_f32(vcvtq_f32_s32(vsubq_s32(nv, vshlq_n_s32(d.val[0], 1))), b[0]);
                        const float32x4_t t1 = vmulq_n_f32(vcvtq_f32_s32(vsubq_s32(nv, vshlq_n_s32(d.val[1], 1))), b[1]);
                        acc[h] = vaddq_f32(t0, t1);
                    }
                }
                const float32x4x2_t y = {{vaddq_f32(vmulq_f32(acc[0], sv.val[0]), fv.val[0]),
                                          vaddq_f32(vmulq_f32(acc[1], sv.val[1]), fv.val[1])}};
                vst1q_f32_x2(out + q * out_stride + o, y);
            }
        }
        if (act->kind != HORQ_ACT_NONE && o > 0) {
            for (int q = 0; q < 4; ++q) {
                horq_activation_apply(out + q * out_stride, out + q * out_stride, o, act);
            }
        }
    }
    if (o < count) {
        for (int q = 0; q < 4; ++q) {
            horq_store_outputs(betas + q * HORQ_MAX_ORDER, order, n, mismatches + (ptrdiff_t)q * count * order +
                               (ptrdiff_t)o * order, count - o, scale + o, offset + o, act, out + q * out_stride + o);
        }
    }
}
#endif

void horq_activation_apply(const float *input, float *output, int32_t count, const horq_activation *act)
{
    for (int32_t i = 0; i < count; ++i) {
        output[i] = horq_activate(input[i], act);
    }
}

void horq_hwc_to_chw(const float *input, float *output, horq_dims d)
{
    for (int32_t y = 0; y < d.h; ++y) {
        for (int32_t x = 0; x < d.w; ++x) {
            for (int32_t c = 0; c < d.c; ++c) {
                output[((ptrdiff_t)c * d.h + y) * d.w + x] = input[((ptrdiff_t)y * d.w + x) * d.c + c];
            }
        }
    }
}

void horq_chw_to_hwc(const float *input, float *output, horq_dims d)
{
    for (int32_t y = 0; y < d.h; ++y) {
        for (int32_t x = 0; x < d.w; ++x) {
            for (int32_t c = 0; c < d.c; ++c) {
                output[((ptrdiff_t)y * d.w + x) * d.c + c] = input[((ptrdiff_t)c * d.h + y) * d.w + x];
            }
        }
    }
}
