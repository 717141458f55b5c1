/*
 * horq_kernels.h - the fixed, hand-written kernels that generated models call.
 *
 * Layouts: activations are channels-last, [h][w][c] for feature maps and [n]
 * for vectors. Every conv/linear applies the output transform
 *     y[o] = act(acc[o] * scale[o] + offset[o])
 * where acc is the float dot product (float kernels) or, for HORQ kernels,
 *     acc = sum_k beta_k * (n - 2 * popcount(B_o XOR H_k))
 * with alpha_o and any folded BatchNorm inside scale/offset. Float sums run in a
 * fixed order (kernel row, kernel column, channel), which the numpy reference
 * (horq_codegen/reference.py) repeats, so C and reference agree bit for bit.
 * No kernel allocates: scratch memory comes from the caller, sized by the
 * matching _get_buffer_size function.
 */
#ifndef HORQ_KERNELS_H
#define HORQ_KERNELS_H

#include <stddef.h> /* NULL, in the inline helpers below */

#include "horq_types.h"

#ifdef __cplusplus
extern "C" { /* C linkage, so that a C++ firmware links the C kernels and model */
#endif

/* Geometry of a 2-D convolution or pooling window over a [h][w][c] input. */
typedef struct {
    horq_dims in, out;
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_h, pad_w;
} horq_window;

/* Integer mode: per-channel clamps of a convolution's transform, in the output's integer steps,
 * where an affine that followed it (a BatchNorm after its activation and pooling) is folded into
 * its scale and offset: y = clamp(acc * scale[o] + offset[o], low[o], high[o]), which replaces
 * act. low == NULL: no such clamps (act and requantization's [-128, 127] hold). */
typedef struct {
    const float *low;  /* [out.c], >= -128 */
    const float *high; /* [out.c], <= 127, >= low */
} horq_clamps;

/* The clamps of channels [first, ...). */
static inline horq_clamps horq_clamps_from(const horq_clamps *clamps, int32_t first)
{
    horq_clamps from = {NULL, NULL};
    if (clamps->low != NULL) {
        from.low = clamps->low + first;
        from.high = clamps->high + first;
    }
    return from;
}

/* How a convolution stores its int8 outputs (integer mode). pool > 1: a pool x pool max pooling
 * of stride pool, no padding, is fused (a last partial row or column left out, as PyTorch's floor
 * mode does), which the convolution does on its accumulators: the unpooled tensor never exists.
 * pool is 0 where the output is float. Then, on each final (pooled) value q at element i of the
 * output tensor [h][w][c] (horq_store_i8):
 *   - post_scale != NULL: an affine that followed the pooling (an unfolded BatchNorm),
 *     q = requantize(post_act(q * post_scale[i % post_period] + post_offset[i % post_period]));
 *   - plane_order K > 0: the output is not int8 but the K bit-planes of q that a static HORQ
 *     layer reads (horq_binarize_rows_i8 of each pixel's channels with the fixed betas
 *     plane_betas), plane k of pixel p at words [(k * pixels + p) * HORQ_WORDS_FOR(c)]. */
typedef struct {
    int32_t pool;
    const float *post_scale;   /* NULL: no affine after the pooling */
    const float *post_offset;
    int32_t post_period;
    horq_activation post_act;  /* clamps in integer steps */
    int32_t plane_order;       /* 0: int8 output */
    const float *plane_betas;  /* [plane_order], in residual units */
} horq_i8_store;

/* Where a kernel that stores through a horq_i8_store writes: int8 values, or bit-planes
 * (plane_order > 0); the other is NULL. */
typedef struct {
    int8_t *values;
    uint32_t *planes;
} horq_i8_output;

/* ---- float kernels ------------------------------------------------------ */

typedef struct {
    horq_window win;
    const float *weights; /* [out.c][kernel_h][kernel_w][in.c / groups] */
    const float *scale;   /* [out.c] */
    const float *offset;  /* [out.c] */
    horq_activation act;
    int32_t groups;       /* >= 1, divides in.c and out.c; 1 for horq_conv2d_f32_hwc */
} horq_conv2d_f32_params;

/* Float convolution with zero padding. input [in.h][in.w][in.c], output [out.h][out.w][out.c]. */
void horq_conv2d_f32_hwc(const horq_conv2d_f32_params *p, const float *input, float *output);

/* Grouped convolutions (groups > 1; depthwise: groups == in.c), float and int8 (horq_grouped.c):
 * in.c and out.c split into `groups` equal groups, and output channel o reads only the in.c /
 * groups input channels of its group g = o / (out.c / groups), channels [g * in.c / groups,
 * (g + 1) * in.c / groups), with a weight row of [kernel_h][kernel_w][in.c / groups] values.
 * Otherwise as horq_conv2d_f32_hwc and horq_conv2d_i8_hwc (which read groups == 1 rows and know
 * nothing of groups): the same layouts, sums in the same order (kernel row, kernel column,
 * channel), the same fused pooling and store. Portable C, the same on every target. */
void horq_conv2d_f32_grouped_hwc(const horq_conv2d_f32_params *p, const float *input, float *output);

typedef struct {
    int32_t in_features, out_features;
    const float *weights; /* [out_features][in_features] */
    const float *scale;   /* [out_features] */
    const float *offset;  /* [out_features] */
    horq_activation act;
} horq_fc_f32_params;

/* Float fully connected layer. input [in_features], output [out_features]. */
void horq_fc_f32(const horq_fc_f32_params *p, const float *input, float *output);

/* ---- HORQ kernels ------------------------------------------------------- */

typedef struct {
    horq_window win;
    int32_t order;                /* K >= 1 */
    horq_granularity granularity;
    const uint32_t *weights;      /* [out.c][kernel_h * kernel_w][HORQ_WORDS_FOR(in.c)] sign bits */
    const float *scale;           /* [out.c], alpha_o folded in */
    const float *offset;          /* [out.c] */
    const float *static_betas;    /* [order], HORQ_GRAN_STATIC only, else NULL */
    horq_activation act;
    horq_clamps clamps;           /* integer mode: per-channel clamps that replace act's, or none */
    int32_t input_is_scratch;     /* 1: nothing reads the input after this layer, so a PATCH layer
                                     of order 2 keeps its |x| there instead of in scratch */
    int32_t int8_input;           /* 1: the input is int8 (input_i8), quantized in integers */
    int32_t planes_input;         /* 1: STATIC, its bit-planes written by the producer (input_planes) */
    horq_i8_store store;          /* integer mode: pooling, affine, int8 or bit-planes (horq_store_i8);
                                     store.pool > 1 requires scale[o] >= 0, as for horq_conv2d_i8_params */
} horq_bconv2d_params;

/* Scratch sizes (in floats and in words) that horq_bconv2d_hwc and horq_bfc need. The HORQ
 * kernels read exactly one of `input` (float), `input_i8` (int8) and `input_planes` (the bit-planes
 * a producer wrote for a STATIC layer: [order][pixels][HORQ_WORDS_FOR(in.c)] words, or
 * [order][HORQ_WORDS_FOR(in_features)] for horq_bfc). They write float outputs to `output`, or,
 * when it is NULL (integer mode), int8 outputs requantized from the same floats to `output_i8`
 * (scale and offset then in integer steps). */
void horq_bconv2d_hwc_get_buffer_size(const horq_bconv2d_params *p, int32_t *floats, int32_t *words);

/* HORQ convolution: order-K residual binarization of the input by the layer's
 * granularity, then XOR-popcount products with the packed weights.
 * input [in.h][in.w][in.c], output [out.h][out.w][out.c]. */
void horq_bconv2d_hwc(const horq_bconv2d_params *p, const float *input, const int8_t *input_i8,
                      const uint32_t *input_planes, float *output, const horq_i8_output *output_i8,
                      float *scratch_f, uint32_t *scratch_w);

typedef struct {
    int32_t in_features, out_features;
    int32_t order;
    horq_granularity granularity; /* PATCH and TENSOR are the same here: one group per sample */
    const uint32_t *weights;      /* [out_features][HORQ_WORDS_FOR(in_features)] */
    const float *scale;           /* [out_features], alpha_o folded in */
    const float *offset;          /* [out_features] */
    const float *static_betas;    /* [order], HORQ_GRAN_STATIC only */
    horq_activation act;
    int32_t int8_input;           /* 1: the input is int8 (input_i8), quantized in integers */
    int32_t planes_input;         /* 1: STATIC, its bit-planes written by the producer (input_planes) */
} horq_bfc_params;

void horq_bfc_get_buffer_size(const horq_bfc_params *p, int32_t *floats, int32_t *words);

/* HORQ fully connected layer. input [in_features], output [out_features]. */
void horq_bfc(const horq_bfc_params *p, const float *input, const int8_t *input_i8, const uint32_t *input_planes,
              float *output, int8_t *output_i8, float *scratch_f, uint32_t *scratch_w);

/* ---- the inner loop -------------------------------------------------------- */

/* mismatches[r * order + k] = popcount(weights[r] XOR plane k) for `rows` weight
 * rows of `words` words each (stored one after another) and `order` planes at
 * planes + k * plane_stride. The instruction-set specific fast path (horq_popcount.c). */
void horq_xor_popcount_rows(const uint32_t *weights, int32_t rows, const uint32_t *planes, int32_t plane_stride,
                            int32_t order, int32_t words, int32_t *mismatches);

#if defined(HORQ_ARM_NEON)
/* NEON: the counts of `rows` rows of `words` (4 to 2047) words against the `order` planes of 4
 * positions' patches at once (position q's plane k at patches + q * position_stride +
 * k * plane_stride): mismatches[q * out_stride + r * order + k] (for each position what
 * horq_xor_popcount_rows writes). */
void horq_xor_popcount_block4(const uint32_t *weights, int32_t rows, int32_t words, const uint32_t *patches,
                              int32_t plane_stride, int32_t position_stride, int32_t order, int32_t *mismatches,
                              int32_t out_stride);
/* The same for orders 1 and 2 and whole blocks of 8 rows (rows & ~7 of them; words <= 1021, so
 * that n - 2 * count fits 16 bits for n <= 32 * words real entries), transformed as
 * horq_store_outputs transforms them without an activation: betas[k * 4 + q] is beta_k of
 * position q, out[q * out_stride + r] = (sum_k betas[k * 4 + q] * (n - 2 * count_k)) * scale[r] + offset[r]. */
void horq_xor_popcount_block4_affine(const uint32_t *weights, int32_t rows, int32_t words, const uint32_t *patches,
                                     int32_t plane_stride, int32_t position_stride, int32_t order, int32_t n,
                                     const float *betas, const float *scale, const float *offset, float *out,
                                     int32_t out_stride);
#endif

/* Weights as the inner loop reads them: where the build defines
 * HORQ_WEIGHTS_PREFIX_XOR (the Cortex-M DSP targets), each run of `run_words`
 * words (what one call covers per row) holds its triples as w0, w0^w1,
 * w0^w1^w2; the generator writes them so (pack.prefix_xor_triples). This turns
 * `runs` plain runs into that layout in place, for programs that pack their own
 * weights; elsewhere it does nothing. */
void horq_prepare_weight_rows(uint32_t *words, int32_t runs, int32_t run_words);

/* ---- residual binarization (shared by the HORQ kernels) ------------------ */

/* Order-K residual binarization of `count` values laid out as rows of `cols`
 * values (a row starts a new word). If `fixed_betas` is NULL the betas are
 * mean(|R_{k-1}|) over `count + pad_count` values, where pad_count zeros stand
 * for zero padding that is not in `values`; they are written to betas[order].
 * Plane k of the sign bits goes to planes + k * plane_stride. `values` is read
 * only; residuals are recomputed from it, so no float scratch is needed. */
void horq_binarize_rows(const float *values, int32_t rows, int32_t cols, int32_t pad_count,
                        int32_t order, const float *fixed_betas, float *betas, uint32_t *planes,
                        int32_t plane_stride);

/* The same binarization for a group that is formed once (a linear layer's
 * input), by the patch kernel's method (README, "Patch quantization"):
 * plane 2 without residuals. scratch: `count` floats when order >= 2. */
void horq_binarize_group(const float *values, int32_t count, int32_t order, float *betas, uint32_t *planes,
                         int32_t plane_stride, float *scratch);

/* Pieces of it for groups that overlap (patches). horq_pixel_stats makes, once
 * per input, each row's (pixel's) sum of |x| and plane-1 sign words, and, if
 * `magnitudes` is not NULL, every |x|. horq_patch_planes then makes planes 1
 * and 2 (order >= 2) of the patch at (oy, ox) and their betas from those: S and
 * plane 1 from its pixels' sums and words, plane 2 and beta_2 = 2 (S - M) / n
 * from |x| < beta_1 and M = sum min(|x|, beta_1). horq_apply_plane turns values
 * into the residuals after one plane (x -+ beta by the plane's bits), and
 * horq_binarize_next_planes takes residuals R_{first-1} whose planes up to
 * `first` are set and makes planes first+1..order in place, one pass each. */
void horq_pixel_stats(const float *values, int32_t rows, int32_t cols, float *sums, uint32_t *sign_words,
                      float *magnitudes);
void horq_patch_planes(const horq_window *w, const float *pixel_sums, const uint32_t *sign_words,
                       const float *magnitudes, int32_t oy, int32_t ox, int32_t order, float *betas,
                       uint32_t *planes, int32_t plane_stride);
void horq_apply_plane(float *values, int32_t rows, int32_t cols, const uint32_t *plane, float beta);
void horq_binarize_next_planes(float *residual, int32_t rows, int32_t cols, int32_t first, int32_t order,
                               float *betas, uint32_t *planes, int32_t plane_stride);

/* The same quantizers on int8 inputs, in integers (README, "Integer quantizers"): a value q is
 * the residual q * 2^HORQ_RESIDUAL_BITS, beta_k the mean |R_{k-1}| rounded half up to an integer,
 * written to betas[] as a float of that integer; fixed_betas hold such integers too. Every sum
 * and comparison is exact, so no summation order matters. horq_binarize_rows_i8 is
 * horq_binarize_rows on int8 values; horq_pixel_stats_i8 gives each row's sum of |q| (as words)
 * and plane-1 words; horq_patch_planes_i8 planes 1 and 2 (order <= 2) of the patch at (oy, ox)
 * from them and the input. */
#define HORQ_RESIDUAL_BITS 8
void horq_binarize_rows_i8(const int8_t *values, int32_t rows, int32_t cols, int32_t pad_count, int32_t order,
                           const float *fixed_betas, float *betas, uint32_t *planes, int32_t plane_stride);
void horq_pixel_stats_i8(const int8_t *values, int32_t rows, int32_t cols, uint32_t *sums, uint32_t *sign_words);
void horq_patch_planes_i8(const horq_window *w, const int8_t *input, const uint32_t *pixel_sums,
                          const uint32_t *sign_words, int32_t oy, int32_t ox, int32_t order, float *betas,
                          uint32_t *planes, int32_t plane_stride);

/* The sign word that a zero (a padding value) gets in each plane, for a row of
 * `cols` values: all real bits set where that plane's residual of 0 is negative. */
void horq_padding_words(int32_t cols, int32_t order, const float *betas, uint32_t *words_per_plane);

/* ---- pooling, elementwise, layout -------------------------------------- */

/* Max pooling, padding excluded; NaN propagates. [in.h][in.w][c] -> [out.h][out.w][c]. */
void horq_maxpool2d_hwc(const horq_window *w, const float *input, float *output);

/* Average pooling; padding counts as zeros in the divisor (count_include_pad). */
void horq_avgpool2d_hwc(const horq_window *w, const float *input, float *output);

/* y[i] = act(x[i] * scale[i % channels] + offset[i % channels]) over `count` values. */
void horq_affine(const float *input, float *output, int32_t count, int32_t channels,
                 const float *scale, const float *offset, const horq_activation *act);

/* The HORQ layers' output transform for `count` outputs:
 *     out[o] = act((sum_k betas[k] * (n - 2 * mismatches[o * order + k])) * scale[o] + offset[o])
 * with the sum in k order. */
void horq_store_outputs(const float *betas, int32_t order, int32_t n, const int32_t *mismatches, int32_t count,
                        const float *scale, const float *offset, const horq_activation *act, float *out);

/* The same transform requantized to int8 (integer mode): horq_requantize of out[o] above. */
void horq_store_outputs_i8(const float *betas, int32_t order, int32_t n, const int32_t *mismatches, int32_t count,
                           const float *scale, const float *offset, const horq_activation *act, int8_t *out);

#if defined(HORQ_ARM_NEON)
/* horq_store_outputs of 4 positions: betas[q * HORQ_MAX_ORDER + k], mismatches of position q
 * at mismatches + q * count * order (horq_xor_popcount_block4's layout), its outputs at
 * out + q * out_stride. */
void horq_store_outputs_block4(const float *betas, int32_t order, int32_t n, const int32_t *mismatches,
                               int32_t count, const float *scale, const float *offset, const horq_activation *act,
                               float *out, ptrdiff_t out_stride);
#endif

/* y[i] = act(x[i]). */
void horq_activation_apply(const float *input, float *output, int32_t count, const horq_activation *act);

/* Layout conversion between channels-last [h][w][c] and PyTorch's [c][h][w]. */
void horq_hwc_to_chw(const float *input, float *output, horq_dims dims);
void horq_chw_to_hwc(const float *input, float *output, horq_dims dims);

/* ---- integer mode: int8 tensors (horq_int8.c) ----------------------------
 * An int8 tensor's real values are q * scale (symmetric, one scale per tensor). Layers
 * compute y = act(acc * scale[o] + offset[o]) in float32 from an exact int32 accumulator,
 * with the tensor and weight scales folded into scale/offset, then write
 * horq_requantize(y), or y itself where the output is float (the model's output layer). */

/* A convolution whose patch (in.c * kernel_h * kernel_w values: the first layer of an image
 * model, one to three channels) has at most HORQ_I8_SMALL_PATCH bytes has its weight rows padded
 * with zeros to HORQ_I8_SMALL_ROW(in.c, bytes) bytes (the shape-specialised small-patch kernel
 * reads whole rows): one vector for one channel and at most 16 taps (3x3, 4x4), else two (a rare
 * small patch of more channels takes 32 too: one variant fewer of the kernel). */
#define HORQ_I8_SMALL_PATCH 32
#define HORQ_I8_SMALL_ROW(channels, bytes) ((channels) == 1 && (bytes) <= 16 ? 16 : HORQ_I8_SMALL_PATCH)

typedef struct {
    horq_window win;
    const int8_t *weights; /* [out.c][kernel_h][kernel_w][in.c / groups], per output channel scales in
                              `scale`; rows of HORQ_I8_SMALL_ROW(in.c, patch) bytes where the patch fits
                              (horq_conv2d_i8_hwc; horq_conv2d_i8_grouped_hwc's are never padded) */
    const float *scale;    /* [out.c] */
    const float *offset;   /* [out.c] */
    horq_activation act;   /* clamps in the output's integer steps */
    horq_clamps clamps;    /* per-channel clamps that replace act's, or none */
    horq_i8_store store;   /* pooling, affine, int8 or bit-planes of the outputs (horq_store_i8).
                              Contract: store.pool > 1 requires scale[o] >= 0 for every o. The
                              kernel pools the int32 accumulators and transforms each window's
                              largest once, which equals pooling the transformed values only
                              because the transform is then non-decreasing in acc (the generator
                              negates the weights and scale of a channel of negative scale:
                              integer.nonnegative_scales). */
    int32_t groups;        /* >= 1, divides in.c and out.c; 1 for horq_conv2d_i8_hwc */
} horq_conv2d_i8_params;

/* int8 convolution with zero padding; exactly one of output (float) and output_i8 is not NULL.
 * input [in.h][in.w][in.c]. */
void horq_conv2d_i8_hwc(const horq_conv2d_i8_params *p, const int8_t *input, float *output,
                        const horq_i8_output *output_i8);

/* Its grouped convolutions (groups > 1: horq_conv2d_f32_grouped_hwc). */
void horq_conv2d_i8_grouped_hwc(const horq_conv2d_i8_params *p, const int8_t *input, float *output,
                                const horq_i8_output *output_i8);

typedef struct {
    int32_t in_features, out_features;
    const int8_t *weights; /* [out_features][in_features] */
    const float *scale;    /* [out_features] */
    const float *offset;   /* [out_features] */
    horq_activation act;
} horq_fc_i8_params;

/* int8 fully connected layer; exactly one of output and output_i8 is not NULL. */
void horq_fc_i8(const horq_fc_i8_params *p, const int8_t *input, float *output, int8_t *output_i8);

/* y[i] = requantize(act(x[i] * scale[c] + offset[c])), c = i % channels (an unfolded BatchNorm, a clamp). */
void horq_affine_i8(const int8_t *input, int8_t *output, int32_t count, int32_t channels, const float *scale,
                    const float *offset, const horq_activation *act);

/* Pooling on int8 values, which keep their scale: max (padding left out) and average
 * (padding counts as zeros; the exact sum divided in float32, then requantized). */
void horq_maxpool2d_i8_hwc(const horq_window *w, const int8_t *input, int8_t *output);
void horq_avgpool2d_i8_hwc(const horq_window *w, const int8_t *input, int8_t *output);

/* The model's float input to int8: requantize(x * inv_scale); and int8 back to float: q * scale. */
void horq_quantize_i8(const float *input, int8_t *output, int32_t count, float inv_scale);
void horq_dequantize_i8(const int8_t *input, float *output, int32_t count, float scale);

/* A convolution's final int8 values at (y, x) of the grid it stores (the pooled one where a
 * pooling is fused), channels [first, first + count), count <= HORQ_STORE_CHUNK: the affine after
 * it, if any, then stored as int8 or as bit-planes (horq_i8_store). */
#define HORQ_STORE_CHUNK 64 /* the most channels one call may carry */
void horq_store_i8(const int8_t *values, int32_t count, int32_t first, int32_t y, int32_t x, horq_dims grid,
                   const horq_i8_store *store, const horq_i8_output *output);

/* The HORQ layers' float accumulators acc[o] = sum_k betas[k] * (n - 2 * mismatches[o * order + k])
 * (in k order, as horq_store_outputs sums), or with `keep` the larger of that and acc[o] (a
 * fused max pooling); and acc[o] requantized: horq_requantize(act(acc[o] * scale[o] + offset[o])),
 * or with the per-channel clamps where `clamps` has them. */
void horq_accumulate(const float *betas, int32_t order, int32_t n, const int32_t *mismatches, int32_t count,
                     int keep, float *acc);
void horq_requantize_floats(const float *acc, int32_t count, const float *scale, const float *offset,
                            const horq_activation *act, const horq_clamps *clamps, int8_t *out);

/* Layout copies of int8 tensors, as horq_hwc_to_chw and horq_chw_to_hwc. */
void horq_hwc_to_chw_i8(const int8_t *input, int8_t *output, horq_dims dims);

/* ---- graph joins (horq_residual.c): residual sums, concatenation, PReLU ------
 * Each reads and writes whole tensors in the same [h][w][c] order; the elementwise ones may
 * write over an input (out == a, out == b, out == input): the memory plan computes a residual
 * sum in place of an operand that nothing reads after it. */

/* out[i] = act(prelu(a[i] + b[i])), prelu(y) = y > 0 ? y : slope[c] * y with c = i % channels (a
 * fused PReLU), or y itself where slope is NULL (channels 1). */
void horq_add(const float *a, const float *b, float *out, int32_t count, int32_t channels, const float *slope,
              const horq_activation *act);

/* int8: out[i] = requantize(act(prelu(a[i] * ratio_a + b[i] * ratio_b))), each ratio an operand's
 * scale over the output's (two products rounded, then their sum). */
void horq_add_i8(const int8_t *a, const int8_t *b, int8_t *out, int32_t count, float ratio_a, float ratio_b,
                 int32_t channels, const float *slope, const horq_activation *act);

/* One input of a channel concatenation: its `channels` values of each of `pixels` pixels go to
 * channels [first, first + channels) of an output of `stride` channels a pixel. */
void horq_copy_channels(const float *input, float *output, int32_t pixels, int32_t channels, int32_t stride,
                        int32_t first);

/* The same for int8 values, requantized by `ratio` (input scale over output scale; 1: copied). */
void horq_copy_channels_i8(const int8_t *input, int8_t *output, int32_t pixels, int32_t channels, int32_t stride,
                           int32_t first, float ratio);

/* PReLU over `count` values, c = i % channels: y = x > 0 ? x : slope[c] * x (NaN takes the slope). */
void horq_prelu(const float *input, float *output, int32_t count, int32_t channels, const float *slope);

/* int8: y = requantize(q > 0 ? q * positive : q * negative[c]), the scales and slope folded in. */
void horq_prelu_i8(const int8_t *input, int8_t *output, int32_t count, int32_t channels, float positive,
                   const float *negative);

/* horq_quantize_i8 for a tensor only HORQ quantizers read: a negative value that rounds to 0
 * becomes -1, so that its sign (the first bit-plane) is the float value's. */
void horq_quantize_signs_i8(const float *input, int8_t *output, int32_t count, float inv_scale);

/* The same of y = x * scale[c] + offset[c], c = i % channels (a learnable shift before a HORQ
 * layer, done in the same pass: the shifted floats are never stored). */
void horq_shift_quantize_i8(const float *input, int8_t *output, int32_t count, int32_t channels, const float *scale,
                            const float *offset, float inv_scale);

/* ---- uint8 input (horq_lookup.c) ----------------------------------------
 * output[i] = table[input[i]], table of 256 entries: a quantized input (a camera frame's
 * pixels) to the floats, or straight to the int8 values, that the model's first op reads. */
void horq_lookup_u8_f32(const uint8_t *input, float *output, int32_t count, const float *table);
void horq_lookup_u8_i8(const uint8_t *input, int8_t *output, int32_t count, const int8_t *table);

#ifdef __cplusplus
}
#endif

#endif /* HORQ_KERNELS_H */
