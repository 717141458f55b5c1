/* Grouped convolutions (groups > 1, depthwise included: horq_kernels.h), float and int8: portable
 * C, the same on every target. The generator calls them for grouped layers instead of
 * horq_conv2d_f32_hwc and horq_conv2d_i8_hwc, which stay as they were: in those functions, even a
 * test of groups that hands over shifts GCC's register allocation (int8 layers 1-2 % more or fewer
 * instructions on Cortex-M4, M7 and M55), and a second caller of horq_int8.c's store helpers stops
 * their inlining (2 % more on the bundled example's first layer, Cortex-M4). */
#include <stddef.h>

#include "horq_kernels.h"

/* The kernel rows (or columns) [*first, *end) of a window from input row (column) `at` that lie
 * inside the input's `size` rows: padding adds nothing, so it is left out. */
static void inside(int32_t at, int32_t kernel, int32_t size, int32_t *first, int32_t *end)
{
    *first = at < 0 ? -at : 0;
    *end = at + kernel > size ? size - at : kernel;
}

void horq_conv2d_f32_grouped_hwc(const horq_conv2d_f32_params *p, const float *input, float *output)
{
    const horq_window *w = &p->win;
    const int32_t kh = w->kernel_h, kw = w->kernel_w;
    const int32_t in_group = w->in.c / p->groups, out_group = w->out.c / p->groups;
    const ptrdiff_t row = (ptrdiff_t)kh * kw * in_group;
    for (int32_t oy = 0; oy < w->out.h; ++oy) {
        const int32_t y0 = oy * w->stride_h - w->pad_h;
        int32_t ky0, ky1;
        inside(y0, kh, w->in.h, &ky0, &ky1);
        for (int32_t ox = 0; ox < w->out.w; ++ox) {
            const int32_t x0 = ox * w->stride_w - w->pad_w;
            int32_t kx0, kx1;
            inside(x0, kw, w->in.w, &kx0, &kx1);
            float *out = output + ((ptrdiff_t)oy * w->out.w + ox) * w->out.c;
            for (int32_t g = 0; g < p->groups; ++g) {
                const float *group_input = input + (ptrdiff_t)g * in_group;
                for (int32_t o = g * out_group; o < (g + 1) * out_group; ++o) {
                    const float *k = p->weights + o * row;
                    float acc = 0.0f; /* in kernel row, kernel column, channel order, as the reference adds */
                    for (int32_t ky = ky0; ky < ky1; ++ky) {
                        for (int32_t kx = kx0; kx < kx1; ++kx) {
                            const float *x = group_input + ((ptrdiff_t)(y0 + ky) * w->in.w + x0 + kx) * w->in.c;
                            const float *kt = k + (ptrdiff_t)(ky * kw + kx) * in_group;
                            for (int32_t c = 0; c < in_group; ++c) {
                                acc += x[c] * kt[c];
                            }
                        }
                    }
                    out[o] = horq_activate(acc * p->scale[o] + p->offset[o], &p->act);
                }
            }
        }
    }
}

/* The exact int32 accumulators of output channels [first, first + rows) at (oy, ox), kept as the
 * running max best[o - first] of a pooling window (the caller starts it at INT32_MIN). */
static void grouped_position_i8(const horq_conv2d_i8_params *p, const int8_t *input, int32_t oy, int32_t ox,
                                int32_t first, int32_t rows, int32_t *best)
{
    const horq_window *w = &p->win;
    const int32_t kh = w->kernel_h, kw = w->kernel_w;
    const int32_t in_group = w->in.c / p->groups, out_group = w->out.c / p->groups;
    const int32_t y0 = oy * w->stride_h - w->pad_h, x0 = ox * w->stride_w - w->pad_w;
    int32_t ky0, ky1, kx0, kx1;
    inside(y0, kh, w->in.h, &ky0, &ky1);
    inside(x0, kw, w->in.w, &kx0, &kx1);
    const ptrdiff_t row = (ptrdiff_t)kh * kw * in_group;
    for (int32_t r = 0; r < rows; ++r) {
        const int32_t o = first + r;
        const int8_t *k = p->weights + o * row;
        const int8_t *group_input = input + (ptrdiff_t)(o / out_group) * in_group;
        int32_t acc = 0;
        for (int32_t ky = ky0; ky < ky1; ++ky) {
            for (int32_t kx = kx0; kx < kx1; ++kx) {
                const int8_t *x = group_input + ((ptrdiff_t)(y0 + ky) * w->in.w + x0 + kx) * w->in.c;
                const int8_t *kt = k + (ptrdiff_t)(ky * kw + kx) * in_group;
                for (int32_t c = 0; c < in_group; ++c) {
                    acc += (int32_t)x[c] * kt[c];
                }
            }
        }
        best[r] = acc > best[r] ? acc : best[r];
    }
}

/* horq_conv2d_i8_hwc's loops (a fused max pooling on the accumulators, chunks of
 * HORQ_STORE_CHUNK output channels) and its store: the transform from the accumulators as floats
 * (the conversion it makes first), requantized with the clamps (horq_requantize_floats), then the
 * affine after it, int8 values or bit-planes (horq_store_i8); or float outputs. */
void horq_conv2d_i8_grouped_hwc(const horq_conv2d_i8_params *p, const int8_t *input, float *output,
                                const horq_i8_output *output_i8)
{
    const horq_window *w = &p->win;
    const int32_t pool = p->store.pool > 1 ? p->store.pool : 1;
    const horq_dims grid = {w->out.h / pool, w->out.w / pool, w->out.c};
    for (int32_t y = 0; y < grid.h; ++y) {
        for (int32_t x = 0; x < grid.w; ++x) {
            for (int32_t first = 0; first < grid.c; first += HORQ_STORE_CHUNK) {
                const int32_t rows = grid.c - first < HORQ_STORE_CHUNK ? grid.c - first : HORQ_STORE_CHUNK;
                int32_t best[HORQ_STORE_CHUNK];
                float acc[HORQ_STORE_CHUNK];
                for (int32_t r = 0; r < rows; ++r) {
                    best[r] = INT32_MIN;
                }
                for (int32_t dy = 0; dy < pool; ++dy) {
                    for (int32_t dx = 0; dx < pool; ++dx) {
                        grouped_position_i8(p, input, y * pool + dy, x * pool + dx, first, rows, best);
                    }
                }
                for (int32_t r = 0; r < rows; ++r) {
                    acc[r] = (float)best[r];
                }
                if (output) {
                    float *out = output + ((ptrdiff_t)y * grid.w + x) * grid.c + first;
                    for (int32_t r = 0; r < rows; ++r) {
                        out[r] = horq_activate(acc[r] * p->scale[first + r] + p->offset[first + r], &p->act);
                    }
                } else {
                    int8_t values[HORQ_STORE_CHUNK];
                    const horq_clamps clamps = horq_clamps_from(&p->clamps, first);
                    horq_requantize_floats(acc, rows, p->scale + first, p->offset + first, &p->act, &clamps, values);
                    horq_store_i8(values, rows, first, y, x, grid, &p->store, output_i8);
                }
            }
        }
    }
}
