/* HORQ convolution over a channels-last input (shared/HORQ.md, "The layer"). */
#include <stddef.h>
#include <string.h>

#include "horq_kernels.h"

#if defined(HORQ_ARM_NEON)
#include <arm_neon.h>
#endif

/* Output channels whose mismatch counts are computed in one call of the inner loop. */
#define HORQ_ROW_CHUNK HORQ_STORE_CHUNK

/* PATCH, order >= 2 needs every |x|; order 2 reads nothing else of the input after computing
 * them, so they can replace it when the input is scratch (order 3 and up gather it again). */
static int patch_magnitudes_in_scratch(const horq_bconv2d_params *p)
{
    return p->order >= 2 && !(p->order == 2 && p->input_is_scratch);
}

static void own_buffer_size(const horq_bconv2d_params *p, int32_t *floats, int32_t *words)
{
    const horq_window *w = &p->win;
    const int32_t cw = HORQ_WORDS_FOR(w->in.c);
    const int32_t taps = w->kernel_h * w->kernel_w;
    const int32_t pixels = w->in.h * w->in.w;
    if (p->int8_input && p->granularity == HORQ_GRAN_PATCH) {
        /* order <= 2: per-pixel |q| sums and sign words, the patch's planes; order >= 3: one
           gathered int8 patch and its planes */
        *floats = p->order + (p->order >= 3 ? (taps * w->in.c + 3) / 4 : 0);
        *words = (p->order >= 3 ? 0 : pixels + pixels * cw) + p->order * taps * cw;
        return;
    }
    switch (p->granularity) {
    case HORQ_GRAN_PATCH: /* per-pixel |x| sums and sign words, the patch's planes; order >= 2: every |x|
                             (in the input itself when it may be overwritten); order >= 3: one gathered patch */
        *floats = pixels + (patch_magnitudes_in_scratch(p) ? pixels * w->in.c : 0) +
                  (p->order >= 3 ? taps * w->in.c : 0) + p->order;
        *words = pixels * cw + p->order * taps * cw;
        break;
    case HORQ_GRAN_PIXEL: /* betas and planes of every pixel */
        *floats = pixels * p->order;
        *words = pixels * p->order * cw;
        break;
    default: /* TENSOR, STATIC: planes of every pixel (unless a producer wrote them), the padding's
                words, one gathered patch */
        *floats = p->order;
        *words = ((p->planes_input ? 0 : pixels) + 1 + taps) * p->order * cw;
        break;
    }
}

/* The floats the kernel's quantization uses, before the integer mode's accumulators. */
static int32_t bconv_own_floats(const horq_bconv2d_params *p)
{
    int32_t floats, words;
    own_buffer_size(p, &floats, &words);
    return floats;
}

void horq_bconv2d_hwc_get_buffer_size(const horq_bconv2d_params *p, int32_t *floats, int32_t *words)
{
    own_buffer_size(p, floats, words);
    if (p->store.pool > 0) { /* integer mode: a stored position's float accumulators */
        *floats += p->win.out.c;
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
            if (iy >= 0 && iy < w->in.h && ix >= 0 && ix < w->in.w) {
                /* a pixel's channels are contiguous: one block copy (ldm/stm on Cortex-M) */
                memcpy(dst, input + ((ptrdiff_t)iy * w->in.w + ix) * w->in.c, (size_t)w->in.c * sizeof *dst);
            } else {
                memset(dst, 0, (size_t)w->in.c * sizeof *dst); /* all-zero bits are +0.0f */
            }
        }
    }
}

/* The same for an int8 input. */
static void gather_patch_i8(const horq_window *w, const int8_t *input, int32_t oy, int32_t ox, int8_t *patch)
{
    for (int32_t ky = 0; ky < w->kernel_h; ++ky) {
        const int32_t iy = oy * w->stride_h - w->pad_h + ky;
        for (int32_t kx = 0; kx < w->kernel_w; ++kx) {
            const int32_t ix = ox * w->stride_w - w->pad_w + kx;
            int8_t *dst = patch + (ptrdiff_t)(ky * w->kernel_w + kx) * w->in.c;
            if (iy >= 0 && iy < w->in.h && ix >= 0 && ix < w->in.w) {
                memcpy(dst, input + ((ptrdiff_t)iy * w->in.w + ix) * w->in.c, (size_t)w->in.c);
            } else {
                memset(dst, 0, (size_t)w->in.c);
            }
        }
    }
}

/* TENSOR/STATIC: copies the words of the patch at (oy, ox), plane by plane, into
 * patch_words[k][taps][cw] so that the inner loop runs over contiguous words.
 * The copy costs taps*cw words per plane and serves every output channel. */
static void gather_words(const horq_window *w, int32_t order, const uint32_t *planes, const uint32_t *pad_words,
                         int32_t oy, int32_t ox, uint32_t *patch_words)
{
    /* The geometry in locals (stores through patch_words could alias the struct).
     * Each kernel row is padding, a run of contiguous pixels' words, padding. */
    const int32_t in_h = w->in.h, in_w = w->in.w, kernel_h = w->kernel_h, kernel_w = w->kernel_w;
    const int32_t cw = HORQ_WORDS_FOR(w->in.c);
    const ptrdiff_t plane_stride = (ptrdiff_t)in_h * in_w * cw;
    const int32_t iy0 = oy * w->stride_h - w->pad_h, ix0 = ox * w->stride_w - w->pad_w;
    const int32_t lo = ix0 < 0 ? 0 : ix0, hi = ix0 + kernel_w > in_w ? in_w : ix0 + kernel_w;
    const int32_t left = lo - ix0, run = hi > lo ? hi - lo : 0, right = kernel_w - left - run;
    uint32_t *dst = patch_words;
    for (int32_t k = 0; k < order; ++k) {
        const uint32_t *pad = pad_words + (ptrdiff_t)k * cw;
        for (int32_t ky = 0; ky < kernel_h; ++ky) {
            const int32_t iy = iy0 + ky;
            const int row_inside = (uint32_t)iy < (uint32_t)in_h;
            for (int32_t t = 0; t < (row_inside ? left : kernel_w); ++t) {
                for (int32_t i = 0; i < cw; ++i) {
                    *dst++ = pad[i];
                }
            }
            if (!row_inside) {
                continue;
            }
            const uint32_t *src = planes + k * plane_stride + ((ptrdiff_t)iy * in_w + lo) * cw;
            for (int32_t i = 0; i < run * cw; ++i) {
                *dst++ = src[i];
            }
            for (int32_t t = 0; t < right; ++t) {
                for (int32_t i = 0; i < cw; ++i) {
                    *dst++ = pad[i];
                }
            }
        }
    }
}

/* PIXEL: each input pixel has its own betas, so each output's sum runs tap by
 * tap, then plane by plane. The weights are stored tap by tap ([tap][output][words],
 * emit._weight_words), so one call counts every row of a tap against its pixel's
 * planes. Padding pixels are all zeros: their betas are 0 and they add nothing, so
 * they are skipped. */
static void pixel_accumulate_rows(const horq_bconv2d_params *p, const uint32_t *planes, const float *pixel_betas,
                                  int32_t oy, int32_t ox, int32_t first, int32_t rows, int keep, float *best)
{
    const horq_window *w = &p->win;
    const int32_t cw = HORQ_WORDS_FOR(w->in.c), order = p->order, c = w->in.c;
    int32_t mismatches[HORQ_ROW_CHUNK * HORQ_MAX_ORDER];
    float acc[HORQ_ROW_CHUNK];
    for (int32_t r = 0; r < rows; ++r) {
        acc[r] = 0.0f;
    }
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
            const ptrdiff_t tap = (ptrdiff_t)ky * w->kernel_w + kx;
            horq_xor_popcount_rows(p->weights + (tap * w->out.c + first) * cw, rows, planes + pix * order * cw, cw,
                                   order, cw, mismatches);
            const float *betas = pixel_betas + pix * order;
            const int32_t *m = mismatches;
            if (order == 2) { /* the same operations, the betas in registers */
                const float b0 = betas[0], b1 = betas[1];
                for (int32_t r = 0; r < rows; ++r, m += 2) {
                    acc[r] = (acc[r] + b0 * (float)(c - 2 * m[0])) + b1 * (float)(c - 2 * m[1]);
                }
                continue;
            }
            for (int32_t r = 0; r < rows; ++r) {
                float a = acc[r];
                for (int32_t k = 0; k < order; ++k, ++m) {
                    a += betas[k] * (float)(c - 2 * *m);
                }
                acc[r] = a;
            }
        }
    }
    for (int32_t r = 0; r < rows; ++r) {
        best[r] = keep && best[r] > acc[r] ? best[r] : acc[r];
    }
}

/* Planes (and betas) of an int8 input, before the output loop: PIXEL, TENSOR, STATIC all of
 * them; PATCH of order <= 2 the pixels' sums and sign words (the patches' planes come from them
 * at each position, in quantize_patch_i8). */
static void quantize_input_i8(const horq_bconv2d_params *p, const int8_t *input, float *betas, uint32_t *scratch_w)
{
    const horq_window *w = &p->win;
    const int32_t cw = HORQ_WORDS_FOR(w->in.c), pixels = w->in.h * w->in.w;
    if (p->granularity == HORQ_GRAN_PIXEL) {
        for (int32_t pix = 0; pix < pixels; ++pix) {
            horq_binarize_rows_i8(input + (ptrdiff_t)pix * w->in.c, 1, w->in.c, 0, p->order, NULL,
                                  betas + (ptrdiff_t)pix * p->order, scratch_w + (ptrdiff_t)pix * p->order * cw, cw);
        }
    } else if (p->granularity == HORQ_GRAN_PATCH) {
        if (p->order <= 2) {
            horq_pixel_stats_i8(input, pixels, w->in.c, scratch_w, scratch_w + pixels);
        }
    } else {
        const int32_t padded = (w->in.h + 2 * w->pad_h) * (w->in.w + 2 * w->pad_w);
        const float *fixed = p->granularity == HORQ_GRAN_STATIC ? p->static_betas : NULL;
        horq_binarize_rows_i8(input, pixels, w->in.c, (padded - pixels) * w->in.c, p->order, fixed, betas, scratch_w,
                              pixels * cw);
        horq_padding_words(w->in.c, p->order, betas, scratch_w + (ptrdiff_t)pixels * p->order * cw);
    }
}

static void quantize_patch_i8(const horq_bconv2d_params *p, const int8_t *input, int32_t oy, int32_t ox,
                              float *scratch_f, uint32_t *scratch_w, uint32_t *patch)
{
    const horq_window *w = &p->win;
    const int32_t taps = w->kernel_h * w->kernel_w, pixels = w->in.h * w->in.w;
    const int32_t patch_words = taps * HORQ_WORDS_FOR(w->in.c);
    if (p->order <= 2) {
        horq_patch_planes_i8(w, input, scratch_w, scratch_w + pixels, oy, ox, p->order, scratch_f, patch, patch_words);
    } else { /* the patch gathered, then every plane by the residual chain */
        int8_t *gathered = (int8_t *)(scratch_f + p->order);
        gather_patch_i8(w, input, oy, ox, gathered);
        horq_binarize_rows_i8(gathered, taps, w->in.c, 0, p->order, NULL, scratch_f, patch, patch_words);
    }
}

/* What the output loop needs besides the params: where each kind of quantization keeps its planes. */
typedef struct {
    const float *input;
    const int8_t *input_i8;
    float *scratch_f;
    uint32_t *scratch_w;
    float *betas;
    const uint32_t *planes;   /* PIXEL/TENSOR/STATIC: every pixel's planes */
    const uint32_t *pad_words;
    uint32_t *patch;          /* PATCH/TENSOR/STATIC: the planes of one position's patch */
    float *magnitudes;        /* PATCH, order >= 2 */
    float *gathered;          /* PATCH, order >= 3 */
} bconv_state;

/* The planes of the patch at (oy, ox), for every granularity but PIXEL (whose pixels have theirs). */
static void quantize_position(const horq_bconv2d_params *p, const bconv_state *s, int32_t oy, int32_t ox)
{
    const horq_window *w = &p->win;
    const int32_t taps = w->kernel_h * w->kernel_w, patch_words = taps * HORQ_WORDS_FOR(w->in.c);
    if (p->granularity == HORQ_GRAN_PATCH && s->input_i8 != NULL) {
        quantize_patch_i8(p, s->input_i8, oy, ox, s->scratch_f, s->scratch_w, s->patch);
    } else if (p->granularity == HORQ_GRAN_PATCH) {
        horq_patch_planes(w, s->scratch_f, s->scratch_w, s->magnitudes, oy, ox, p->order, s->betas, s->patch,
                          patch_words);
        if (p->order > 2) { /* planes 3..K from the residuals, one pass each */
            gather_patch(w, s->input, oy, ox, s->gathered);
            horq_apply_plane(s->gathered, taps, w->in.c, s->patch, s->betas[0]);
            horq_binarize_next_planes(s->gathered, taps, w->in.c, 2, p->order, s->betas, s->patch, patch_words);
        }
    } else if (p->granularity != HORQ_GRAN_PIXEL) {
        gather_words(w, p->order, s->planes, s->pad_words, oy, ox, s->patch);
    }
}

/* Float accumulators sum_k beta_k * dot_k of output channels [first, first + rows) at (oy, ox),
 * into best[] (`keep`: the larger of them and best's, for a fused max pooling). */
static void accumulate_rows(const horq_bconv2d_params *p, const bconv_state *s, int32_t oy, int32_t ox,
                            int32_t first, int32_t rows, int keep, float *best)
{
    const int32_t patch_words = p->win.kernel_h * p->win.kernel_w * HORQ_WORDS_FOR(p->win.in.c);
    if (p->granularity == HORQ_GRAN_PIXEL) {
        pixel_accumulate_rows(p, s->planes, s->betas, oy, ox, first, rows, keep, best);
        return;
    }
    int32_t mismatches[HORQ_ROW_CHUNK * HORQ_MAX_ORDER];
    horq_xor_popcount_rows(p->weights + (ptrdiff_t)first * patch_words, rows, s->patch, patch_words, p->order,
                           patch_words, mismatches);
    horq_accumulate(s->betas, p->order, p->win.kernel_h * p->win.kernel_w * p->win.in.c, mismatches, rows, keep,
                    best);
}

/* Integer mode: each stored position's accumulators (a fused max pooling keeps the largest of its
 * window's, which the transform turns into the largest int8 value because the generator made
 * every scale >= 0: integer.nonnegative_scales), transformed, requantized and stored. */
static void store_int8_outputs(const horq_bconv2d_params *p, const bconv_state *s, const horq_i8_output *output_i8)
{
    const horq_window *w = &p->win;
    const int32_t pool = p->store.pool > 1 ? p->store.pool : 1;
    const horq_dims grid = {w->out.h / pool, w->out.w / pool, w->out.c};
    float *best = s->scratch_f + bconv_own_floats(p);
    for (int32_t y = 0; y < grid.h; ++y) {
        for (int32_t x = 0; x < grid.w; ++x) {
            for (int32_t dy = 0; dy < pool; ++dy) {
                for (int32_t dx = 0; dx < pool; ++dx) {
                    quantize_position(p, s, y * pool + dy, x * pool + dx);
                    for (int32_t first = 0; first < grid.c; first += HORQ_ROW_CHUNK) {
                        const int32_t rows = grid.c - first < HORQ_ROW_CHUNK ? grid.c - first : HORQ_ROW_CHUNK;
                        accumulate_rows(p, s, y * pool + dy, x * pool + dx, first, rows, dy + dx > 0, best + first);
                    }
                }
            }
            for (int32_t first = 0; first < grid.c; first += HORQ_ROW_CHUNK) {
                const int32_t rows = grid.c - first < HORQ_ROW_CHUNK ? grid.c - first : HORQ_ROW_CHUNK;
                int8_t values[HORQ_ROW_CHUNK];
                const horq_clamps clamps = horq_clamps_from(&p->clamps, first);
                horq_requantize_floats(best + first, rows, p->scale + first, p->offset + first, &p->act, &clamps,
                                       values);
                horq_store_i8(values, rows, first, y, x, grid, &p->store, output_i8);
            }
        }
    }
}

#if defined(HORQ_ARM_NEON)
/* NEON, float mode: positions 4 at a time in one call of the block kernel (horq_popcount.c), each
 * weight vector loaded once for the 4. Its buffers live on the stack (Cortex-A stacks are
 * megabytes), so the memory plan stays every target's; a layer too large for them takes the
 * per-position path. TENSOR/STATIC, and PATCH of order 1, first lay their planes out as
 * zero-padded images (the padding pixels hold the padding's words; PATCH order 1: sign words,
 * whose padding is 0, and the pixels' sums of |x|, 0.0f), so that each kernel row of a patch is
 * one run of kernel_w * cw words, copied by vectors; PATCH of order 1 sums its beta over the
 * sums' image in the tap order of horq_patch_planes (a padding tap adds +0.0f, which changes
 * no sum of magnitudes). Other PATCH orders quantize each position (quantize_position). */
#define HORQ_BLOCK_BUFFER_WORDS 4096
#define HORQ_IMAGE_BUFFER_WORDS 16384
#define HORQ_IMAGE_PAD_WORDS 256

typedef struct {
    const uint32_t *words; /* the planes' images, image_words apart, 4 words of room after */
    const float *sums;     /* PATCH order 1: the pixels' sums of |x|, padded */
    ptrdiff_t image_words;
    int32_t wp, cw;        /* padded width, words per pixel */
} padded_images;

/* The planes as padded images into `image`; 0 when they do not fit. */
static __attribute__((noinline)) int padded_images_make(const horq_bconv2d_params *p, const bconv_state *s, uint32_t *image, float *sums,
                              padded_images *out)
{
    const horq_window *w = &p->win;
    const int32_t cw = HORQ_WORDS_FOR(w->in.c), hp = w->in.h + 2 * w->pad_h, wp = w->in.w + 2 * w->pad_w;
    const int32_t patch_order1 = p->granularity == HORQ_GRAN_PATCH;
    const int64_t image_words = (int64_t)hp * wp * cw;
    if (image_words * p->order + 4 > HORQ_IMAGE_BUFFER_WORDS || (int64_t)hp * wp > HORQ_IMAGE_BUFFER_WORDS / 4) {
        return 0;
    }
    const uint32_t *planes = patch_order1 ? s->scratch_w : s->planes;
    const ptrdiff_t plane_stride = (ptrdiff_t)w->in.h * w->in.w * cw;
    const int32_t run = w->in.w * cw, side = w->pad_w * cw;
    for (int32_t k = 0; k < p->order; ++k) {
        uint32_t pad[HORQ_IMAGE_PAD_WORDS]; /* the padding's words, repeated over a row */
        const int32_t pad_words = wp * cw < HORQ_IMAGE_PAD_WORDS ? wp * cw : HORQ_IMAGE_PAD_WORDS;
        for (int32_t i = 0; i < pad_words; ++i) {
            pad[i] = patch_order1 ? 0u : s->pad_words[(ptrdiff_t)k * cw + i % cw];
        }
        uint32_t *dst = image + (ptrdiff_t)k * image_words;
        for (int32_t y = 0; y < hp; ++y, dst += (ptrdiff_t)wp * cw) {
            const int32_t iy = y - w->pad_h;
            if (iy < 0 || iy >= w->in.h) {
                for (int32_t i = 0; i < wp * cw; i += pad_words) {
                    memcpy(dst + i, pad, (size_t)(wp * cw - i < pad_words ? wp * cw - i : pad_words) * sizeof *dst);
                }
                continue;
            }
            for (int32_t i = 0; i < side; ++i) {
                dst[i] = pad[i];
                dst[side + run + i] = pad[i];
            }
            memcpy(dst + side, planes + k * plane_stride + (ptrdiff_t)iy * run, (size_t)run * sizeof *dst);
        }
    }
    if (patch_order1) {
        memset(sums, 0, (size_t)hp * wp * sizeof *sums); /* all-zero bits are +0.0f */
        for (int32_t iy = 0; iy < w->in.h; ++iy) {
            memcpy(sums + (ptrdiff_t)(iy + w->pad_h) * wp + w->pad_w, s->scratch_f + (ptrdiff_t)iy * w->in.w,
                   (size_t)w->in.w * sizeof *sums);
        }
    }
    for (int32_t i = 0; i < 4; ++i) { /* the copies by vectors read up to 3 words past a run */
        image[image_words * p->order + i] = 0;
    }
    out->words = image;
    out->sums = sums;
    out->image_words = (ptrdiff_t)image_words;
    out->wp = wp;
    out->cw = cw;
    return 1;
}

/* The planes of 4 patches from the images (position q's first word at from[q], its planes
 * plane_stride apart, at patches + q * position_stride): each kernel row's run copied by whole
 * vectors (plane_stride >= the patch's words + 3). */
static __attribute__((noinline)) void image_patches(const horq_bconv2d_params *p, const padded_images *im, const uint32_t *const *from,
                          int32_t plane_stride, int32_t position_stride, uint32_t *patches)
{
    const int32_t run = p->win.kernel_w * im->cw, kernel_h = p->win.kernel_h, vectors = (run + 3) / 4;
    const ptrdiff_t row_words = (ptrdiff_t)im->wp * im->cw;
    for (int32_t k = 0; k < p->order; ++k) {
        for (int32_t ky = 0; ky < kernel_h; ++ky) {
            const ptrdiff_t src = k * im->image_words + ky * row_words;
            uint32_t *dst = patches + k * plane_stride + ky * run;
            if (vectors <= 3) { /* 3x3 kernels of up to 128 channels: no loop */
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; ++q) {
                    const uint32_t *f = from[q] + src;
                    uint32_t *t = dst + q * position_stride;
                    const uint32x4_t v0 = vld1q_u32(f);
                    if (vectors >= 2) {
                        const uint32x4_t v1 = vld1q_u32(f + 4);
                        if (vectors == 3) {
                            vst1q_u32(t + 8, vld1q_u32(f + 8));
                        }
                        vst1q_u32(t + 4, v1);
                    }
                    vst1q_u32(t, v0);
                }
                continue;
            }
            for (int q = 0; q < 4; ++q) {
                for (int32_t i = 0; i < run; i += 4) {
                    uint32_t *to = dst + q * position_stride + i;
                    __asm__("" : "+r"(to)); /* a few vectors: GCC would call memcpy for them */
                    vst1q_u32(to, vld1q_u32(from[q] + src + i));
                }
            }
        }
    }
}

/* PATCH order 1: beta of the patch whose first pixel is `first` in the sums' image. */
static float image_beta(const horq_bconv2d_params *p, const padded_images *im, ptrdiff_t first)
{
    float abs_sum = 0.0f;
    for (int32_t ky = 0; ky < p->win.kernel_h; ++ky) {
        const float *row = im->sums + first + (ptrdiff_t)ky * im->wp;
        for (int32_t kx = 0; kx < p->win.kernel_w; ++kx) {
            abs_sum += row[kx];
        }
    }
    return abs_sum / (float)(p->win.kernel_h * p->win.kernel_w * p->win.in.c);
}

/* Returns the positions done, a multiple of 4. */
static __attribute__((noinline)) int32_t store_float_blocks(const horq_bconv2d_params *p, const bconv_state *s,
                                                            float *output)
{
    const horq_window *w = &p->win;
    const int32_t patch_words = w->kernel_h * w->kernel_w * HORQ_WORDS_FOR(w->in.c);
    const int32_t n = w->kernel_h * w->kernel_w * w->in.c, positions = w->out.h * w->out.w;
    /* each plane of each patch: 3 words of room for the copies by vectors */
    const int32_t plane_stride = patch_words + 3, position_stride = p->order * plane_stride;
    if (p->granularity == HORQ_GRAN_PIXEL || patch_words < 4 || 4 * position_stride > HORQ_BLOCK_BUFFER_WORDS ||
        s->input_i8 != NULL) {
        return 0;
    }
    uint32_t patches[HORQ_BLOCK_BUFFER_WORDS] __attribute__((aligned(16)));
    uint32_t image[HORQ_IMAGE_BUFFER_WORDS] __attribute__((aligned(16)));
    float sums[HORQ_IMAGE_BUFFER_WORDS / 4];
    int32_t mismatches[4 * HORQ_ROW_CHUNK * HORQ_MAX_ORDER];
    float betas[4][HORQ_MAX_ORDER]; /* PATCH: each position has its own */
    padded_images im = {NULL, NULL, 0, 0, 0};
    const int from_images = (p->granularity != HORQ_GRAN_PATCH || p->order == 1) &&
                            padded_images_make(p, s, image, sums, &im);
    /* quantize_position's planes are patch_words apart */
    const int32_t planes_apart = from_images ? plane_stride : patch_words;
    const int patch_betas = p->granularity == HORQ_GRAN_PATCH;
    for (int32_t q = 0; q < 4; ++q) { /* TENSOR/STATIC: the same for every position */
        for (int32_t k = 0; k < p->order; ++k) {
            betas[q][k] = s->betas[k];
        }
    }
    const int32_t out_w = w->out.w, out_c = w->out.c, order = p->order;
    const int32_t kernel_h = w->kernel_h, kernel_w = w->kernel_w;
    const ptrdiff_t step_y = (ptrdiff_t)w->stride_h * im.wp, step_x = w->stride_w;
    bconv_state at = *s; /* quantize_position writes each position's planes in place */
    int32_t oy = 0, ox = 0; /* of position pos + q */
    for (int32_t pos = 0; pos + 4 <= positions; pos += 4) {
        if (from_images) {
            const uint32_t *from[4];
            if (patch_betas && step_x == 1 && ox + 3 < out_w) { /* 4 positions of a row: 4 betas at once */
                const float *sums = im.sums + oy * step_y + ox;
                float32x4_t abs_sum = vdupq_n_f32(0.0f);
                for (int32_t ky = 0; ky < kernel_h; ++ky, sums += im.wp) {
                    for (int32_t kx = 0; kx < kernel_w; ++kx) {
                        abs_sum = vaddq_f32(abs_sum, vld1q_f32(sums + kx));
                    }
                }
                const float32x4_t b = vdivq_f32(abs_sum, vdupq_n_f32((float)n));
                vst1q_lane_f32(&betas[0][0], b, 0);
                vst1q_lane_f32(&betas[1][0], b, 1);
                vst1q_lane_f32(&betas[2][0], b, 2);
                vst1q_lane_f32(&betas[3][0], b, 3);
            } else if (patch_betas) {
                for (int32_t q = 0, y = oy, x = ox; q < 4; ++q, x = x + 1 < out_w ? x + 1 : 0, y += x == 0) {
                    betas[q][0] = image_beta(p, &im, y * step_y + x * step_x);
                }
            }
            for (int32_t q = 0; q < 4; ++q, ox = ox + 1 < out_w ? ox + 1 : 0, oy += ox == 0) {
                from[q] = im.words + (oy * step_y + ox * step_x) * im.cw;
            }
            image_patches(p, &im, from, plane_stride, position_stride, patches);
        } else {
            for (int32_t q = 0; q < 4; ++q, ox = ox + 1 < out_w ? ox + 1 : 0, oy += ox == 0) {
                at.patch = patches + q * position_stride;
                quantize_position(p, &at, oy, ox);
                for (int32_t k = 0; k < order; ++k) {
                    betas[q][k] = s->betas[k];
                }
            }
        }
        int32_t done = 0; /* output channels stored */
        if (order <= 2) { /* whole blocks of 8 channels counted and transformed in one pass */
            float b8[8]; /* beta_k of position q at k * 4 + q */
            for (int32_t k = 0; k < order; ++k) {
                for (int32_t q = 0; q < 4; ++q) {
                    b8[k * 4 + q] = betas[q][k];
                }
            }
            done = out_c & ~7;
            horq_xor_popcount_block4_affine(p->weights, done, patch_words, patches, planes_apart, position_stride,
                                            order, n, b8, p->scale, p->offset, output + (ptrdiff_t)pos * out_c,
                                            out_c);
            if (p->act.kind != HORQ_ACT_NONE) {
                for (int32_t q = 0; q < 4; ++q) {
                    float *y = output + (ptrdiff_t)(pos + q) * out_c;
                    horq_activation_apply(y, y, done, &p->act);
                }
            }
        }
        for (int32_t first = done; first < out_c; first += HORQ_ROW_CHUNK) {
            const int32_t rows = out_c - first < HORQ_ROW_CHUNK ? out_c - first : HORQ_ROW_CHUNK;
            horq_xor_popcount_block4(p->weights + (ptrdiff_t)first * patch_words, rows, patch_words, patches,
                                     planes_apart, position_stride, order, mismatches, rows * order);
            horq_store_outputs_block4(betas[0], order, n, mismatches, rows, p->scale + first, p->offset + first,
                                      &p->act, output + (ptrdiff_t)pos * out_c + first, out_c);
        }
    }
    return positions & ~3;
}
#endif

/* Float mode: every position's outputs, transformed. */
static void store_float_outputs(const horq_bconv2d_params *p, const bconv_state *s, float *output)
{
    const horq_window *w = &p->win;
    const int32_t n = w->kernel_h * w->kernel_w * w->in.c;
    int32_t done = 0; /* positions already stored */
#if defined(HORQ_ARM_NEON)
    done = store_float_blocks(p, s, output);
#endif
    for (int32_t oy = done / w->out.w; oy < w->out.h; ++oy) {
        for (int32_t ox = oy == done / w->out.w ? done % w->out.w : 0; ox < w->out.w; ++ox) {
            quantize_position(p, s, oy, ox);
            float *y = output + ((ptrdiff_t)oy * w->out.w + ox) * w->out.c;
            for (int32_t first = 0; first < w->out.c; first += HORQ_ROW_CHUNK) {
                const int32_t rows = w->out.c - first < HORQ_ROW_CHUNK ? w->out.c - first : HORQ_ROW_CHUNK;
                if (p->granularity == HORQ_GRAN_PIXEL) {
                    accumulate_rows(p, s, oy, ox, first, rows, 0, y + first);
                    for (int32_t o = first; o < first + rows; ++o) {
                        y[o] = horq_activate(y[o] * p->scale[o] + p->offset[o], &p->act);
                    }
                    continue;
                }
                int32_t mismatches[HORQ_ROW_CHUNK * HORQ_MAX_ORDER];
                const int32_t patch_words = w->kernel_h * w->kernel_w * HORQ_WORDS_FOR(w->in.c);
                horq_xor_popcount_rows(p->weights + (ptrdiff_t)first * patch_words, rows, s->patch, patch_words,
                                       p->order, patch_words, mismatches);
                horq_store_outputs(s->betas, p->order, n, mismatches, rows, p->scale + first, p->offset + first,
                                   &p->act, y + first);
            }
        }
    }
}

void horq_bconv2d_hwc(const horq_bconv2d_params *p, const float *input, const int8_t *input_i8,
                      const uint32_t *input_planes, float *output, const horq_i8_output *output_i8,
                      float *scratch_f, uint32_t *scratch_w)
{
    const horq_window *w = &p->win;
    const int32_t cw = HORQ_WORDS_FOR(w->in.c);
    const int32_t taps = w->kernel_h * w->kernel_w;
    const int32_t pixels = w->in.h * w->in.w;
    const int32_t n = taps * w->in.c;
    uint32_t *planes = scratch_w; /* PIXEL/TENSOR/STATIC: every pixel's planes */
    uint32_t *pad_words = scratch_w + (ptrdiff_t)pixels * p->order * cw;
    bconv_state s = {input, input_i8, scratch_f, scratch_w, scratch_f, planes, pad_words,
                     pad_words + (ptrdiff_t)p->order * cw, NULL, NULL};

    if (input_planes != NULL) { /* STATIC, its planes written by the producer */
        for (int32_t k = 0; k < p->order; ++k) {
            s.betas[k] = p->static_betas[k];
        }
        s.planes = input_planes;
        s.pad_words = scratch_w;
        s.patch = scratch_w + (ptrdiff_t)p->order * cw;
        horq_padding_words(w->in.c, p->order, s.betas, scratch_w);
    } else if (input_i8 != NULL) {
        quantize_input_i8(p, input_i8, s.betas, scratch_w);
        if (p->granularity == HORQ_GRAN_PATCH) { /* scratch_w: [sums][sign words][patch planes] */
            s.patch = scratch_w + (p->order <= 2 ? (ptrdiff_t)pixels * (1 + cw) : 0);
        }
    } else if (p->granularity == HORQ_GRAN_PIXEL) {
        for (int32_t pix = 0; pix < pixels; ++pix) {
            horq_binarize_rows(input + (ptrdiff_t)pix * w->in.c, 1, w->in.c, 0, p->order, NULL,
                               s.betas + (ptrdiff_t)pix * p->order, planes + (ptrdiff_t)pix * p->order * cw, cw);
        }
    } else if (p->granularity == HORQ_GRAN_PATCH) {
        /* scratch_f: [pixel sums][|x|, order >= 2][gathered patch, order >= 3][betas];
         * scratch_w: [pixel sign words][patch planes] */
        if (patch_magnitudes_in_scratch(p)) {
            s.magnitudes = scratch_f + pixels;
        } else if (p->order == 2) {
            s.magnitudes = (float *)input; /* the caller's promise: nothing reads it after this layer */
        }
        horq_pixel_stats(input, pixels, w->in.c, scratch_f, scratch_w, s.magnitudes);
        s.gathered = scratch_f + pixels + (patch_magnitudes_in_scratch(p) ? (ptrdiff_t)pixels * w->in.c : 0);
        s.betas = s.gathered + (p->order >= 3 ? n : 0);
        s.patch = scratch_w + (ptrdiff_t)pixels * cw;
    } else {
        const int32_t padded = (w->in.h + 2 * w->pad_h) * (w->in.w + 2 * w->pad_w);
        const int32_t pad_count = (padded - pixels) * w->in.c;
        const float *fixed = p->granularity == HORQ_GRAN_STATIC ? p->static_betas : NULL;
        horq_binarize_rows(input, pixels, w->in.c, pad_count, p->order, fixed, s.betas, planes, pixels * cw);
        horq_padding_words(w->in.c, p->order, s.betas, pad_words);
    }
    if (output != NULL) {
        store_float_outputs(p, &s, output);
    } else {
        store_int8_outputs(p, &s, output_i8);
    }
}
