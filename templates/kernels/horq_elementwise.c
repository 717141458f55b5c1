/* Per-channel affine (an unfolded BatchNorm), standalone activations, layout copies. */
#include <stddef.h>

#include "horq_kernels.h"

void horq_affine(const float *input, float *output, int32_t count, int32_t channels,
                 const float *scale, const float *offset, const horq_activation *act)
{
    for (int32_t i = 0; i < count; i += channels) {
        for (int32_t c = 0; c < channels; ++c) {
            output[i + c] = horq_activate(input[i + c] * scale[c] + offset[c], act);
        }
    }
}

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
