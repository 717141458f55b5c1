/* A uint8 input through a 256-entry table: the generated NAME_run_u8_hwc's first step. The
 * tables are the model's (horq_codegen/capi.py): the float each value q stands for,
 * scale * (q - zero_point) rounded once, or the int8 the model's input quantization makes of it. */
#include "horq_kernels.h"

void horq_lookup_u8_f32(const uint8_t *input, float *output, int32_t count, const float *table)
{
    for (int32_t i = 0; i < count; ++i) {
        output[i] = table[input[i]];
    }
}

void horq_lookup_u8_i8(const uint8_t *input, int8_t *output, int32_t count, const int8_t *table)
{
    for (int32_t i = 0; i < count; ++i) {
        output[i] = table[input[i]];
    }
}
