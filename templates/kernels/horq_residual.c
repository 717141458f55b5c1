/* Graph joins: residual sums, channel concatenation, PReLU (horq_kernels.h documents each).
 *
 * Portable C on every target: each is one pass over a tensor that a convolution took many
 * times longer to make. The elementwise loops read element i before they write it, so an
 * output may be one of the inputs (the residual sum is computed in place). */
#include <stddef.h>

#include "horq_kernels.h"

/* A fused PReLU's slope for channel c of an add, or none (slope NULL). */
static inline float prelu_of(float y, const float *slope, int32_t c)
{
    return (slope == NULL || y > 0.0f) ? y : slope[c] * y;
}

void horq_add(const float *a, const float *b, float *out, int32_t count, int32_t channels, const float *slope,
              const horq_activation *act)
{
    for (int32_t i = 0; i < count; i += channels) {
        for (int32_t c = 0; c < channels; ++c) {
            out[i + c] = horq_activate(prelu_of(a[i + c] + b[i + c], slope, c), act);
        }
    }
}

void horq_add_i8(const int8_t *a, const int8_t *b, int8_t *out, int32_t count, float ratio_a, float ratio_b,
                 int32_t channels, const float *slope, const horq_activation *act)
{
    for (int32_t i = 0; i < count; i += channels) {
        for (int32_t c = 0; c < channels; ++c) {
            const float sum = (float)a[i + c] * ratio_a + (float)b[i + c] * ratio_b;
            out[i + c] = horq_requantize(horq_activate(prelu_of(sum, slope, c), act));
        }
    }
}

void horq_copy_channels(const float *input, float *output, int32_t pixels, int32_t channels, int32_t stride,
                        int32_t first)
{
    for (int32_t p = 0; p < pixels; ++p) {
        const float *in = input + (size_t)p * (size_t)channels;
        float *out = output + (size_t)p * (size_t)stride + first;
        for (int32_t c = 0; c < channels; ++c) {
            out[c] = in[c];
        }
    }
}

void horq_copy_channels_i8(const int8_t *input, int8_t *output, int32_t pixels, int32_t channels, int32_t stride,
                           int32_t first, float ratio)
{
    for (int32_t p = 0; p < pixels; ++p) {
        const int8_t *in = input + (size_t)p * (size_t)channels;
        int8_t *out = output + (size_t)p * (size_t)stride + first;
        if (ratio == 1.0f) { /* the output's scale: the values as they are */
            for (int32_t c = 0; c < channels; ++c) {
                out[c] = in[c];
            }
        } else {
            for (int32_t c = 0; c < channels; ++c) {
                out[c] = horq_requantize((float)in[c] * ratio);
            }
        }
    }
}

void horq_prelu(const float *input, float *output, int32_t count, int32_t channels, const float *slope)
{
    for (int32_t i = 0; i < count; i += channels) {
        for (int32_t c = 0; c < channels; ++c) {
            const float x = input[i + c];
            output[i + c] = x > 0.0f ? x : slope[c] * x;
        }
    }
}

void horq_prelu_i8(const int8_t *input, int8_t *output, int32_t count, int32_t channels, float positive,
                   const float *negative)
{
    for (int32_t i = 0; i < count; i += channels) {
        for (int32_t c = 0; c < channels; ++c) {
            const int8_t q = input[i + c];
            output[i + c] = horq_requantize((float)q * (q > 0 ? positive : negative[c]));
        }
    }
}

void horq_quantize_signs_i8(const float *input, int8_t *output, int32_t count, float inv_scale)
{
    for (int32_t i = 0; i < count; ++i) {
        const int8_t q = horq_requantize(input[i] * inv_scale);
        output[i] = (q == 0 && input[i] < 0.0f) ? (int8_t)-1 : q;
    }
}

void horq_shift_quantize_i8(const float *input, int8_t *output, int32_t count, int32_t channels, const float *scale,
                            const float *offset, float inv_scale)
{
    for (int32_t i = 0; i < count; i += channels) {
        for (int32_t c = 0; c < channels; ++c) {
            const float y = input[i + c] * scale[c] + offset[c];
            const int8_t q = horq_requantize(y * inv_scale);
            output[i + c] = (q == 0 && y < 0.0f) ? (int8_t)-1 : q;
        }
    }
}
