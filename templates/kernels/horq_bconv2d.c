/* HORQ convolution over a channels-last input (shared/HORQ.md, "The layer"). */
#include <stddef.h>

#include "horq_kernels.h"

void horq_bconv2d_hwc_get_buffer_size(const horq_bconv2d_params *p, int32_t *floats, int32_t *words)
{
    const horq_window *w = &p->win;
    const int32_t cw = HORQ_WORDS_FOR(w->in.c);
    const int32_t taps = w->kernel_h * w->kernel_w;
    const int32_t pixels = w->in.h * w->in.w;
    switch (p->granularity) {
    case HORQ_GRAN_PATCH: /* one gathered patch and its planes */
        *floats = taps * w->in.c + p->order;
        *words = p->order * taps * cw;
        break;
    case HORQ_GRAN_PIXEL: /* betas and planes of every pixel */
        *floats = pixels * p->order;
        *words = pixels * p->order * cw;
        break;
    default: /* TENSOR, STATIC: planes of every pixel plus the padding's words */
        *floats = p->order;
        *words = (pixels + 1) * p->order * cw;
        break;
    }
}

/* Copies the receptive field at (oy, ox) into patch[taps][c], zeros outside the input. */
static void gather_patch(const horq_window *w, const float *input, int32_t oy, int32_t ox, float *patch)
{
    for (int32_t ky = 0; ky < w->kernel_h; ++ky) {
        const int32_t iy = oy * w->stride_h - w->pad_h + ky;
        for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
            const int32_t ix = ox * w->stride_w - w->pad_w + kx;
            float *dst = patch + (ptrdiff_t)(ky * w->kernel_w + kx) * w->in.c;
            const int inside = iy >= 0 && iy < w->in.h && ix >= 0 && ix < w->in.w;
            const float *src = input + ((ptrdiff_t)iy * w->in.w + ix) * w->in.c;
            for (int32_t c = 0; c < w->in.c; ++c) {
                dst[c] = inside ? src[c] : 0.0f;
            }
        }
    }
}

/* acc = sum_k beta_k * (n - 2 * mismatches_k) over a whole patch whose plane-k
 * words for tap t are at plane_of(k, t). Used by PATCH, TENSOR and STATIC. */
static float patch_accumulate(const horq_bconv2d_params *p, const uint32_t *weights_o,
                              const uint32_t *planes, int32_t plane_stride, const uint32_t *pad_words,
                              const float *betas, int32_t oy, int32_t ox, int gathered)
{
    const horq_window *w = &p->win;
    const int32_t cw = HORQ_WORDS_FOR(w->in.c);
    const int32_t n = w->kernel_h * w->kernel_w * w->in.c;
    float acc = 0.0f;
    for (int32_t k = 0; k < p->order; ++k) {
        int32_t mismatches = 0;
        for (int32_t ky = 0; ky < w->kernel_h; ++ky) {
            const int32_t iy = oy * w->stride_h - w->pad_h + ky;
            for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
                const int32_t ix = ox * w->stride_w - w->pad_w + kx;
                const int32_t tap = ky * w->kernel_w + kx;
                const uint32_t *src;
                if (gathered) {
                    src = planes + (ptrdiff_t)k * plane_stride + (ptrdiff_t)tap * cw;
                } else if (iy >= 0 && iy < w->in.h && ix >= 0 && ix < w->in.w) {
                    src = planes + (ptrdiff_t)k * plane_stride + ((ptrdiff_t)iy * w->in.w + ix) * cw;
                } else {
                    src = pad_words + (ptrdiff_t)k * cw;
                }
                mismatches += horq_xor_popcount(weights_o + (ptrdiff_t)tap * cw, src, cw);
            }
        }
        acc += betas[k] * (float)(n - 2 * mismatches);
    }
    return acc;
}

/* PIXEL: each input pixel has its own betas, so the sum runs tap by tap. Padding
 * pixels are all zeros: their betas are 0 and they add nothing. */
static float pixel_accumulate(const horq_bconv2d_params *p, const uint32_t *weights_o,
                              const uint32_t *planes, const float *pixel_betas, int32_t oy, int32_t ox)
{
    const horq_window *w = &p->win;
    const int32_t cw = HORQ_WORDS_FOR(w->in.c);
    float acc = 0.0f;
    for (int32_t ky = 0; ky < w->kernel_h; ++ky) {
        const int32_t iy = oy * w->stride_h - w->pad_h + ky;
        if (iy < 0 || iy >= w->in.h) {
            continue;
        }
        for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
            const int32_t ix = ox * w->stride_w - w->pad_w + kx;
            if (ix < 0 || ix >= w->in.w) {
                continue;
            }
            const ptrdiff_t pix = (ptrdiff_t)iy * w->in.w + ix;
            const uint32_t *wt = weights_o + (ptrdiff_t)(ky * w->kernel_w + kx) * cw;
            for (int32_t k = 0; k < p->order; ++k) {
                const int32_t m = horq_xor_popcount(wt, planes + (pix * p->order + k) * cw, cw);
                acc += pixel_betas[pix * p->order + k] * (float)(w->in.c - 2 * m);
            }
        }
    }
    return acc;
}

void horq_bconv2d_hwc(const horq_bconv2d_params *p, const float *input, float *output,
                      float *scratch_f, uint32_t *scratch_w)
{
    const horq_window *w = &p->win;
    const int32_t cw = HORQ_WORDS_FOR(w->in.c);
    const int32_t taps = w->kernel_h * w->kernel_w;
    const int32_t pixels = w->in.h * w->in.w;
    const int32_t weights_per_o = taps * cw;
    float *betas = scratch_f;
    uint32_t *planes = scratch_w;
    uint32_t *pad_words = scratch_w + (ptrdiff_t)pixels * p->order * cw;
    int32_t plane_stride = pixels * cw;

    if (p->granularity == HORQ_GRAN_PIXEL) {
        for (int32_t pix = 0; pix < pixels; ++pix) {
            horq_binarize_rows(input + (ptrdiff_t)pix * w->in.c, 1, w->in.c, 0, p->order, NULL,
                               betas + (ptrdiff_t)pix * p->order, planes + (ptrdiff_t)pix * p->order * cw, cw);
        }
    } else if (p->granularity != HORQ_GRAN_PATCH) {
        const int32_t padded = (w->in.h + 2 * w->pad_h) * (w->in.w + 2 * w->pad_w);
        const int32_t pad_count = (padded - pixels) * w->in.c;
        const float *fixed = p->granularity == HORQ_GRAN_STATIC ? p->static_betas : NULL;
        horq_binarize_rows(input, pixels, w->in.c, pad_count, p->order, fixed, betas, planes, plane_stride);
        horq_padding_words(w->in.c, p->order, betas, pad_words);
    } else {
        betas = scratch_f + (ptrdiff_t)taps * w->in.c;
        plane_stride = taps * cw;
    }

    for (int32_t oy = 0; oy < w->out.h; ++oy) {
        for (int32_t ox = 0; ox < w->out.w; ++ox) {
            if (p->granularity == HORQ_GRAN_PATCH) {
                gather_patch(w, input, oy, ox, scratch_f);
                horq_binarize_rows(scratch_f, taps, w->in.c, 0, p->order, NULL, betas, planes, plane_stride);
            }
            float *out = output + ((ptrdiff_t)oy * w->out.w + ox) * w->out.c;
            for (int32_t o = 0; o < w->out.c; ++o) {
                const uint32_t *weights_o = p->weights + (ptrdiff_t)o * weights_per_o;
                const float acc = p->granularity == HORQ_GRAN_PIXEL
                                      ? pixel_accumulate(p, weights_o, planes, betas, oy, ox)
                                      : patch_accumulate(p, weights_o, planes, plane_stride, pad_words, betas,
                                                         oy, ox, p->granularity == HORQ_GRAN_PATCH);
                out[o] = horq_activate(acc * p->scale[o] + p->offset[o], &p->act);
            }
        }
    }
}
