/* Float convolution and fully connected kernels (a network's first and last layers). */
#include <stddef.h>

#include "horq_kernels.h"

void horq_conv2d_f32_hwc(const horq_conv2d_f32_params *p, const float *input, float *output)
{
    const horq_window *w = &p->win;
    for (int32_t oy = 0; oy < w->out.h; ++oy) {
        for (int32_t ox = 0; ox < w->out.w; ++ox) {
            float *out = output + ((ptrdiff_t)oy * w->out.w + ox) * w->out.c;
            for (int32_t o = 0; o < w->out.c; ++o) {
                float acc = 0.0f;
                for (int32_t ky = 0; ky < w->kernel_h; ++ky) {
                    const int32_t iy = oy * w->stride_h - w->pad_h + ky;
                    if (iy < 0 || iy >= w->in.h) {
                        continue; /* padding adds +-0.0, which leaves acc unchanged */
                    }
                    for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
                        const int32_t ix = ox * w->stride_w - w->pad_w + kx;
                        if (ix < 0 || ix >= w->in.w) {
                            continue;
                        }
                        const float *x = input + ((ptrdiff_t)iy * w->in.w + ix) * w->in.c;
                        const float *k = p->weights + (((ptrdiff_t)o * w->kernel_h + ky) * w->kernel_w + kx) * w->in.c;
                        for (int32_t c = 0; c < w->in.c; ++c) {
                            acc += x[c] * k[c];
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
