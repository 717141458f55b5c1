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

/* Taps (kernel_h * kernel_w) up to which the convolution lists an output position's taps
 * once for all its output channels (larger kernels take the general loop). */
#define HORQ_I8_LISTED_TAPS 64

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
    y = y < low ? low : y;
    return horq_round_clamped(y > high ? high : y);
}

#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
static inline void requantize4(float32x4_t y, float low, float high, int8_t *out)
{
    y = vminnmq_f32(vmaxnmq_f32(y, vdupq_n_f32(low)), vdupq_n_f32(high));
    y = vsubq_f32(vaddq_f32(y, vdupq_n_f32(12582912.0f)), vdupq_n_f32(12582912.0f));
    store4_i8(out, vcvtq_s32_f32(y)); /* an integer already: the conversion is exact */
}
#endif

/* out[o] = act(acc[o] * scale[o] + offset[o]) for `count` channels, as float into out_f or
 * requantized into out_q (the other NULL). One loop per case, nothing decided per output. */
static void transform_outputs(const int32_t *acc, int32_t count, const float *scale, const float *offset,
                              const horq_activation *act, float *out_f, int8_t *out_q)
{
    if (out_f) {
        for (int32_t o = 0; o < count; ++o) {
            out_f[o] = horq_activate((float)acc[o] * scale[o] + offset[o], act);
        }
        return;
    }
    float low, high;
    int8_bounds(act, &low, &high);
    int32_t o = 0;
#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
    /* four outputs a vector, the remainder below */
    for (; o + 4 <= count; o += 4) {
        const float32x4_t y = vaddq_f32(vmulq_f32(vcvtq_f32_s32(vld1q_s32(acc + o)), vld1q_f32(scale + o)),
                                        vld1q_f32(offset + o));
        requantize4(y, low, high, out_q + o);
    }
#endif
    for (; o < count; ++o) {
        out_q[o] = clamp_and_round((float)acc[o] * scale[o] + offset[o], low, high);
    }
}

void horq_store_outputs_i8(const float *betas, int32_t order, int32_t n, const int32_t *mismatches, int32_t count,
                           const float *scale, const float *offset, const horq_activation *act, int8_t *out)
{
    /* The accumulators are sums of finite betas times integers, so y is finite and the
     * merged clamps (int8_bounds) are exact. The sum order is horq_store_outputs'. */
    float low, high;
    int8_bounds(act, &low, &high);
    int32_t o = 0;
#if defined(HORQ_ARM_MVE) || defined(HORQ_ARM_NEON)
    if (order <= 2) { /* four outputs a vector, each lane with the scalar code's operations */
        const int32x4_t nv = vdupq_n_s32(n);
        const float b0 = betas[0], b1 = order == 2 ? betas[1] : 0.0f;
        for (; o + 4 <= count; o += 4) {
            float32x4_t acc;
            if (order == 1) {
                acc = vmulq_n_f32(vcvtq_f32_s32(vsubq_s32(nv, vshlq_n_s32(vld1q_s32(mismatches + o), 1))), b0);
            } else {
                const int32x4x2_t d = vld2q_s32(mismatches + 2 * o);
                acc = vaddq_f32(vmulq_n_f32(vcvtq_f32_s32(vsubq_s32(nv, vshlq_n_s32(d.val[0], 1))), b0),
                                vmulq_n_f32(vcvtq_f32_s32(vsubq_s32(nv, vshlq_n_s32(d.val[1], 1))), b1));
            }
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
        const int32_t *m = mismatches + (ptrdiff_t)o * order;
        float acc = betas[0] * (float)(n - 2 * m[0]);
        for (int32_t k = 1; k < order; ++k) {
            acc += betas[k] * (float)(n - 2 * m[k]);
        }
        out[o] = clamp_and_round(acc * scale[o] + offset[o], low, high);
    }
}

static void max_into(int8_t *out, const int8_t *x, int32_t c);

/* The transform of output channels [first, first + count) at (oy, ox), stored (float, or
 * int8 through horq_store_i8 and its fused pooling). */
static void store_chunk(const horq_conv2d_i8_params *p, const int32_t *accs, int32_t count, int32_t first,
                        int32_t oy, int32_t ox, float *output, const horq_i8_output *output_i8)
{
    const horq_dims out = p->win.out;
    if (output) {
        transform_outputs(accs, count, p->scale + first, p->offset + first, &p->act,
                          output + ((ptrdiff_t)oy * out.w + ox) * out.c + first, NULL);
        return;
    }
    int8_t values[HORQ_I8_CHUNK];
    transform_outputs(accs, count, p->scale + first, p->offset + first, &p->act, NULL, values);
    horq_store_i8(values, count, first, oy, ox, out, &p->store, output_i8);
}

/* The final values of channels [first, first + count) of output pixel `pixel` (of `pixels`,
 * `channels` each): the affine after the pooling, if any, then stored as int8, or as bit-planes
 * by way of `work` (count bytes, which may be `values` itself: the affine works in place). */
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

void horq_store_i8(const int8_t *values, int32_t count, int32_t first, int32_t oy, int32_t ox, horq_dims out,
                   const horq_i8_store *store, const horq_i8_output *output)
{
    const int32_t pool = store->pool;
    if (pool <= 1) {
        int8_t work[HORQ_STORE_CHUNK];
        store_final(values, work, count, first, oy * out.w + ox, out.h * out.w, out.c, store, output);
        return;
    }
    if (!horq_pool_keeps(oy, ox, out, pool)) {
        return;
    }
    const int32_t pooled_w = out.w / pool, pixel = (oy / pool) * pooled_w + ox / pool;
    /* the running maxima: in the int8 output itself, or, for bit-planes, in the pooled row's scratch */
    int8_t *dst = output->planes ? output->pool_row + (ptrdiff_t)(ox / pool) * out.c + first
                                 : output->values + (ptrdiff_t)pixel * out.c + first;
    if (oy % pool == 0 && ox % pool == 0) { /* the window's first position (rows outer, columns inner) */
        memcpy(dst, values, (size_t)count);
    } else {
        max_into(dst, values, count);
    }
    if (oy % pool == pool - 1 && ox % pool == pool - 1) { /* the window is complete */
        store_final(dst, dst, count, first, pixel, (out.h / pool) * pooled_w, out.c, store, output);
    }
}

/* sum_i a[i] * b[i] over n int8 values. */
static inline int32_t dot_i8(const int8_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    for (int32_t i = 0; i < n; ++i) {
        acc += (int32_t)a[i] * (int32_t)b[i];
    }
    return acc;
}

#if defined(HORQ_ARM_DSP)
static inline uint32_t rotate8(uint32_t word)
{
    return (word >> 8) | (word << 24);
}
#endif

/* The first layer of an image model: one input channel, at most 16 taps (3x3, 4x4). Each
 * position's patch is one 16-byte vector (zeros past the taps and at the padding), each
 * weight row is 16 bytes (the generator pads it with zeros), and a channel's accumulator is
 * one 16-lane dot product: VMLADAV on Helium, two widening multiplies on NEON, SMLAD pairs
 * of SXTB16-widened words on the DSP extension. */
static void conv_one_channel(const horq_conv2d_i8_params *p, const int8_t *input, float *output,
                             const horq_i8_output *output_i8)
{
    const horq_window *w = &p->win;
    for (int32_t oy = 0; oy < w->out.h; ++oy) {
        for (int32_t ox = 0; ox < w->out.w; ++ox) {
            if (!horq_pool_keeps(oy, ox, w->out, p->store.pool)) {
                continue;
            }
            int8_t patch[HORQ_I8_ONE_CHANNEL_ROW];
            memset(patch, 0, sizeof patch);
            for (int32_t ky = 0; ky < w->kernel_h; ++ky) {
                const int32_t iy = oy * w->stride_h - w->pad_h + ky;
                for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
                    const int32_t ix = ox * w->stride_w - w->pad_w + kx;
                    if (iy >= 0 && iy < w->in.h && ix >= 0 && ix < w->in.w) {
                        patch[ky * w->kernel_w + kx] = input[(ptrdiff_t)iy * w->in.w + ix];
                    }
                }
            }
#if defined(HORQ_ARM_MVE)
            const int8x16_t x = vld1q_s8(patch);
#elif defined(HORQ_ARM_NEON)
            const int8x16_t x = vld1q_s8(patch);
#elif defined(HORQ_ARM_DSP)
            /* bytes 0..3 of a word widen to (x0, x2) and, rotated by 8, (x1, x3), as the weights do:
             * all four words of the row (its zeros included), written out so that they stay in
             * registers and the loop below has no inner loop */
            uint32_t xw[HORQ_I8_ONE_CHANNEL_ROW / 4];
            memcpy(xw, patch, sizeof xw);
            const int32_t e0 = __sxtb16((int32_t)xw[0]), o0 = __sxtb16((int32_t)rotate8(xw[0]));
            const int32_t e1 = __sxtb16((int32_t)xw[1]), o1 = __sxtb16((int32_t)rotate8(xw[1]));
            const int32_t e2 = __sxtb16((int32_t)xw[2]), o2 = __sxtb16((int32_t)rotate8(xw[2]));
            const int32_t e3 = __sxtb16((int32_t)xw[3]), o3 = __sxtb16((int32_t)rotate8(xw[3]));
#endif
            for (int32_t first = 0; first < w->out.c; first += HORQ_I8_CHUNK) {
            const int32_t rows = w->out.c - first < HORQ_I8_CHUNK ? w->out.c - first : HORQ_I8_CHUNK;
            int32_t accs[HORQ_I8_CHUNK];
            for (int32_t r = 0; r < rows; ++r) {
                const int8_t *k = p->weights + (ptrdiff_t)(first + r) * HORQ_I8_ONE_CHANNEL_ROW;
#if defined(HORQ_ARM_MVE)
                const int32_t acc = vmladavq_s8(x, vld1q_s8(k));
#elif defined(HORQ_ARM_NEON)
                const int8x16_t kv = vld1q_s8(k); /* each product fits 15 bits, two of them 16 */
                const int16x8_t sum = vaddq_s16(vmull_s8(vget_low_s8(x), vget_low_s8(kv)),
                                                vmull_high_s8(x, kv));
                const int32_t acc = vaddlvq_s16(sum);
#elif defined(HORQ_ARM_DSP)
                uint32_t kw[HORQ_I8_ONE_CHANNEL_ROW / 4];
                memcpy(kw, k, sizeof kw);
                int32_t acc = __smlad(__sxtb16((int32_t)kw[0]), e0, 0);
                acc = __smlad(__sxtb16((int32_t)rotate8(kw[0])), o0, acc);
                acc = __smlad(__sxtb16((int32_t)kw[1]), e1, acc);
                acc = __smlad(__sxtb16((int32_t)rotate8(kw[1])), o1, acc);
                acc = __smlad(__sxtb16((int32_t)kw[2]), e2, acc);
                acc = __smlad(__sxtb16((int32_t)rotate8(kw[2])), o2, acc);
                acc = __smlad(__sxtb16((int32_t)kw[3]), e3, acc);
                acc = __smlad(__sxtb16((int32_t)rotate8(kw[3])), o3, acc);
#else
                const int32_t acc = dot_i8(patch, k, HORQ_I8_ONE_CHANNEL_ROW);
#endif
                accs[r] = acc;
            }
            store_chunk(p, accs, rows, first, oy, ox, output, output_i8);
            }
        }
    }
}

void horq_conv2d_i8_hwc(const horq_conv2d_i8_params *p, const int8_t *input, float *output,
                        const horq_i8_output *output_i8)
{
    const horq_window *w = &p->win;
    if (w->in.c == 1 && w->kernel_h * w->kernel_w <= HORQ_I8_ONE_CHANNEL_ROW) {
        conv_one_channel(p, input, output, output_i8);
        return;
    }
    const int32_t taps = w->kernel_h * w->kernel_w;
    const int32_t c = w->in.c;
    for (int32_t oy = 0; oy < w->out.h; ++oy) {
        for (int32_t ox = 0; ox < w->out.w; ++ox) {
            if (!horq_pool_keeps(oy, ox, w->out, p->store.pool)) {
                continue;
            }
            /* The taps inside the input (padding is the integer 0 and adds nothing): their
             * pixel and their place in a weight row, listed once for every output channel. */
            ptrdiff_t pixel[HORQ_I8_LISTED_TAPS], place[HORQ_I8_LISTED_TAPS];
            int32_t inside = 0;
            const int listed = taps <= HORQ_I8_LISTED_TAPS;
            for (int32_t ky = 0; ky < w->kernel_h && listed; ++ky) {
                const int32_t iy = oy * w->stride_h - w->pad_h + ky;
                for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
                    const int32_t ix = ox * w->stride_w - w->pad_w + kx;
                    if (iy >= 0 && iy < w->in.h && ix >= 0 && ix < w->in.w) {
                        pixel[inside] = ((ptrdiff_t)iy * w->in.w + ix) * c;
                        place[inside++] = (ptrdiff_t)(ky * w->kernel_w + kx) * c;
                    }
                }
            }
            /* One input channel (a first layer on a grey image): the patch's values once, in a
             * row as the weights are, zeros at the padding; then each channel is one dot product. */
            int8_t patch[HORQ_I8_LISTED_TAPS];
            const int one_channel = c == 1 && listed;
            for (int32_t t = 0; one_channel && t < taps; ++t) {
                patch[t] = 0;
            }
            for (int32_t t = 0; one_channel && t < inside; ++t) {
                patch[place[t]] = input[pixel[t]];
            }
            int32_t accs[HORQ_I8_CHUNK];
            for (int32_t o = 0; o < w->out.c; ++o) {
                const int8_t *k = p->weights + (ptrdiff_t)o * taps * c;
                int32_t acc = 0;
                if (one_channel) {
                    acc = dot_i8(patch, k, taps);
                } else if (listed) {
                    for (int32_t t = 0; t < inside; ++t) {
                        acc += dot_i8(input + pixel[t], k + place[t], c);
                    }
                } else {
                    for (int32_t ky = 0; ky < w->kernel_h; ++ky) {
                        const int32_t iy = oy * w->stride_h - w->pad_h + ky;
                        for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
                            const int32_t ix = ox * w->stride_w - w->pad_w + kx;
                            if (iy >= 0 && iy < w->in.h && ix >= 0 && ix < w->in.w) {
                                acc += dot_i8(input + ((ptrdiff_t)iy * w->in.w + ix) * c,
                                              k + (ptrdiff_t)(ky * w->kernel_w + kx) * c, c);
                            }
                        }
                    }
                }
                accs[o % HORQ_I8_CHUNK] = acc;
                if (o % HORQ_I8_CHUNK == HORQ_I8_CHUNK - 1 || o == w->out.c - 1) {
                    const int32_t first = o - o % HORQ_I8_CHUNK;
                    store_chunk(p, accs, o - first + 1, first, oy, ox, output, output_i8);
                }
            }
        }
    }
}

void horq_fc_i8(const horq_fc_i8_params *p, const int8_t *input, float *output, int8_t *output_i8)
{
    for (int32_t first = 0; first < p->out_features; first += HORQ_I8_CHUNK) {
        const int32_t rows = p->out_features - first < HORQ_I8_CHUNK ? p->out_features - first : HORQ_I8_CHUNK;
        int32_t accs[HORQ_I8_CHUNK];
        for (int32_t r = 0; r < rows; ++r) {
            accs[r] = dot_i8(input, p->weights + (ptrdiff_t)(first + r) * p->in_features, p->in_features);
        }
        transform_outputs(accs, rows, p->scale + first, p->offset + first, &p->act, output ? output + first : NULL,
                          output ? NULL : output_i8 + first);
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
