/* Max and average pooling over channels-last feature maps. */
#include <math.h>
#include <stddef.h>

#include "horq_kernels.h"

void horq_maxpool2d_hwc(const horq_window *w, const float *input, float *output)
{
    for (int32_t oy = 0; oy < w->out.h; ++oy) {
        for (int32_t ox = 0; ox < w->out.w; ++ox) {
            float *out = output + ((ptrdiff_t)oy * w->out.w + ox) * w->out.c;
            for (int32_t c = 0; c < w->out.c; ++c) {
                float m = -INFINITY;
                for (int32_t ky = 0; ky < w->kernel_h; ++ky) {
                    const int32_t iy = oy * w->stride_h - w->pad_h + ky;
                    for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
                        const int32_t ix = ox * w->stride_w - w->pad_w + kx;
                        if (iy < 0 || iy >= w->in.h || ix < 0 || ix >= w->in.w) {
                            continue; /* PyTorch pads max pooling with -inf */
                        }
                        const float v = input[((ptrdiff_t)iy * w->in.w + ix) * w->in.c + c];
                        if (v > m || isnan(v)) {
                            m = v; /* once NaN, no comparison is true: NaN propagates */
                        }
                    }
                }
                out[c] = m;
            }
        }
    }
}

void horq_avgpool2d_hwc(const horq_window *w, const float *input, float *output)
{
    const float count = (float)(w->kernel_h * w->kernel_w);
    for (int32_t oy = 0; oy < w->out.h; ++oy) {
        for (int32_t ox = 0; ox < w->out.w; ++ox) {
            float *out = output + ((ptrdiff_t)oy * w->out.w + ox) * w->out.c;
            for (int32_t c = 0; c < w->out.c; ++c) {
                float sum = 0.0f;
                for (int32_t ky = 0; ky < w->kernel_h; ++ky) {
                    const int32_t iy = oy * w->stride_h - w->pad_h + ky;
                    for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
                        const int32_t ix = ox * w->stride_w - w->pad_w + kx;
                        if (iy >= 0 && iy < w->in.h && ix >= 0 && ix < w->in.w) {
                            sum += input[((ptrdiff_t)iy * w->in.w + ix) * w->in.c + c];
                        }
                    }
                }
                out[c] = sum / count;
            }
        }
    }
}
