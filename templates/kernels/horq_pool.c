/* Max and average pooling over channels-last feature maps. The channels run
 * innermost (a pixel's values are contiguous): each tap is checked against the
 * input's border once for all channels, not once per channel. */
#include <math.h>
#include <stddef.h>

#include "horq_kernels.h"

void horq_maxpool2d_hwc(const horq_window *w, const float *input, float *output)
{
    const int32_t channels = w->out.c;
    for (int32_t oy = 0; oy < w->out.h; ++oy) {
        for (int32_t ox = 0; ox < w->out.w; ++ox) {
            float *out = output + ((ptrdiff_t)oy * w->out.w + ox) * channels;
            for (int32_t c = 0; c < channels; ++c) {
                out[c] = -INFINITY;
            }
            for (int32_t ky = 0; ky < w->kernel_h; ++ky) {
                const int32_t iy = oy * w->stride_h - w->pad_h + ky;
                for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
                    const int32_t ix = ox * w->stride_w - w->pad_w + kx;
                    if (iy < 0 || iy >= w->in.h || ix < 0 || ix >= w->in.w) {
                        continue; /* PyTorch pads max pooling with -inf */
                    }
                    const float *x = input + ((ptrdiff_t)iy * w->in.w + ix) * w->in.c;
                    for (int32_t c = 0; c < channels; ++c) {
                        const float v = x[c];
                        if (v > out[c] || isnan(v)) {
                            out[c] = v; /* once NaN, no comparison is true: NaN propagates */
                        }
                    }
                }
            }
        }
    }
}

void horq_avgpool2d_hwc(const horq_window *w, const float *input, float *output)
{
    const int32_t channels = w->out.c;
    const float count = (float)(w->kernel_h * w->kernel_w);
    for (int32_t oy = 0; oy < w->out.h; ++oy) {
        for (int32_t ox = 0; ox < w->out.w; ++ox) {
            float *out = output + ((ptrdiff_t)oy * w->out.w + ox) * channels;
            for (int32_t c = 0; c < channels; ++c) {
                out[c] = 0.0f;
            }
            for (int32_t ky = 0; ky < w->kernel_h; ++ky) {
                const int32_t iy = oy * w->stride_h - w->pad_h + ky;
                for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
                    const int32_t ix = ox * w->stride_w - w->pad_w + kx;
                    if (iy < 0 || iy >= w->in.h || ix < 0 || ix >= w->in.w) {
                        continue; /* padding counts in the divisor only (count_include_pad) */
                    }
                    const float *x = input + ((ptrdiff_t)iy * w->in.w + ix) * w->in.c;
                    for (int32_t c = 0; c < channels; ++c) {
                        out[c] += x[c];
                    }
                }
            }
            for (int32_t c = 0; c < channels; ++c) {
                out[c] /= count;
            }
        }
    }
}
