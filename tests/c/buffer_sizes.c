/* Prints the scratch sizes the HORQ kernels ask for (their _get_buffer_size
 * functions) for the shapes given on stdin, one per line:
 *   conv c h w kernel order granularity input_is_scratch int8_input planes_input out_c int8_output
 *   or   fc n order granularity int8_input planes_input
 * tests/test_buffer_sizes.py compares them with horq_codegen.memory.scratch_sizes. */
#include <stdio.h>
#include <string.h>

#include "horq_kernels.h"

int main(void)
{
    char kind[8];
    while (scanf("%7s", kind) == 1) {
        int32_t floats = -1, words = -1;
        if (strcmp(kind, "conv") == 0) {
            int c, h, w, k, order, gran, input_is_scratch, int8_input, planes_input, out_c, int8_output;
            if (scanf("%d %d %d %d %d %d %d %d %d %d %d", &c, &h, &w, &k, &order, &gran, &input_is_scratch,
                      &int8_input, &planes_input, &out_c, &int8_output) != 11) {
                return 2;
            }
            horq_bconv2d_params p;
            memset(&p, 0, sizeof p);
            p.win.in = (horq_dims){h, w, c};
            p.win.kernel_h = p.win.kernel_w = k;
            p.order = order;
            p.granularity = (horq_granularity)gran;
            p.input_is_scratch = input_is_scratch;
            p.int8_input = int8_input;
            p.planes_input = planes_input;
            p.win.out.c = out_c;
            p.store.pool = int8_output; /* 0: a float output */
            horq_bconv2d_hwc_get_buffer_size(&p, &floats, &words);
        } else {
            int n, order, gran, int8_input, planes_input;
            if (scanf("%d %d %d %d %d", &n, &order, &gran, &int8_input, &planes_input) != 5) {
                return 2;
            }
            horq_bfc_params p;
            memset(&p, 0, sizeof p);
            p.in_features = n;
            p.order = order;
            p.granularity = (horq_granularity)gran;
            p.int8_input = int8_input;
            p.planes_input = planes_input;
            horq_bfc_get_buffer_size(&p, &floats, &words);
        }
        printf("%ld %ld\n", (long)floats, (long)words);
    }
    return 0;
}
