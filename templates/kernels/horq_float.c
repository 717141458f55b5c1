/* Float convolution and fully connected kernels (a network's first and last layers). */
#include <stddef.h>

#include "horq_kernels.h"

/* Taps (kernel_h * kernel_w) up to which the convolution lists an output
 * position's taps once for all its output channels. */
#define HORQ_F32_LISTED_TAPS 64

void horq_conv2d_f32_hwc(const horq_conv2d_f32_params *p, const float *input, float *output)
{
    const horq_window *w = &p->win;
    const int32_t taps = w->kernel_h * w->kernel_w;
    for (int32_t oy = 0; oy < w->out.h; ++oy) {
        for (int32_t ox = 0; ox < w->out.w; ++ox) {
            float *out = output + ((ptrdiff_t)oy * w->out.w + ox) * w->out.c;
            /* The taps inside the input (padding adds +-0.0, which leaves acc unchanged),
             * in kernel row, kernel column order: their input pixel and their place in a
             * weight row. Listed once, they serve every output channel. */
            ptrdiff_t pixel[HORQ_F32_LISTED_TAPS], place[HORQ_F32_LISTED_TAPS];
            int32_t inside = 0;
            for (int32_t ky = 0; ky < w->kernel_h && taps <= HORQ_F32_LISTED_TAPS; ++ky) {
                const int32_t iy = oy * w->stride_h - w->pad_h + ky;
                for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
                    const int32_t ix = ox * w->stride_w - w->pad_w + kx;
                    if (iy >= 0 && iy < w->in.h && ix >= 0 && ix < w->in.w) {
                        pixel[inside] = ((ptrdiff_t)iy * w->in.w + ix) * w->in.c;
                        place[inside++] = (ptrdiff_t)(ky * w->kernel_w + kx) * w->in.c;
                    }
                }
            }
            /* One input channel (a first layer on a grey image): the taps' values once,
             * and for an interior position the weights in order, a plain dot product. */
            float value[HORQ_F32_LISTED_TAPS];
            const int one_channel = w->in.c == 1 && taps <= HORQ_F32_LISTED_TAPS;
            for (int32_t t = 0; one_channel && t < inside; ++t) {
                value[t] = input[pixel[t]];
            }
            for (int32_t o = 0; o < w->out.c; ++o) {
                const float *k = p->weights + (ptrdiff_t)o * taps * w->in.c;
                float acc = 0.0f;
                if (one_channel && inside == taps) {
                    for (int32_t t = 0; t < taps; ++t) {
                        acc += value[t] * k[t];
                    }
                } else if (one_channel) {
                    for (int32_t t = 0; t < inside; ++t) {
                        acc += value[t] * k[place[t]];
                    }
                } else if (taps <= HORQ_F32_LISTED_TAPS) {
                    for (int32_t t = 0; t < inside; ++t) {
                        const float *x = input + pixel[t], *kt = k + place[t];
                        for (int32_t c = 0; c < w->in.c; ++c) {
                            acc += x[c] * kt[c];
                        }
                    }
                } else {
                    for (int32_t ky = 0; ky < w->kernel_h; ++ky) {
                        const int32_t iy = oy * w->stride_h - w->pad_h + ky;
                        for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
                            const int32_t ix = ox * w->stride_w - w->pad_w + kx;
                            if (iy < 0 || iy >= w->in.h || ix < 0 || ix >= w->in.w) {
                                continue;
                            }
                            const float *x = input + ((ptrdiff_t)iy * w->in.w + ix) * w->in.c;
                            const float *kt = k + (ptrdiff_t)(ky * w->kernel_w + kx) * w->in.c;
                            for (int32_t c = 0; c < w->in.c; ++c) {
                                acc += x[c] * kt[c];
                            }
                        }
                    }
                }
                out[o] = horq_activate(acc * p->scale[o] + p->offset[o], &p->act);
            }
        }
    }
}

void horq_fc_f32(const horq_fc_f32_params *p, const float *input, float *output)
{
    for (int32_t o = 0; o < p->out_features; ++o) {
        const float *k = p->weights + (ptrdiff_t)o * p->in_features;
        float acc = 0.0f;
        for (int32_t i = 0; i < p->in_features; ++i) {
            acc += input[i] * k[i];
        }
        output[o] = horq_activate(acc * p->scale[o] + p->offset[o], &p->act);
    }
}
