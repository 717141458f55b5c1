/*
 * horq_types.h - the one place that defines HORQ's bit convention in C.
 *
 * Bit convention (shared/HORQ.md, mirrored by horq_codegen/pack.py):
 *   - a bit 1 means -1, a bit 0 means +1 (sgn(v) = +1 for v >= 0);
 *   - bits are packed least significant first into uint32_t words;
 *   - each pixel's channel vector starts a new word; padding bits are 0 in
 *     both operands, so they never count as a mismatch;
 *   - the dot product of two +-1 vectors of n real entries is
 *     n - 2 * popcount(a XOR b).
 */
#ifndef HORQ_TYPES_H
#define HORQ_TYPES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* C linkage, so that a C++ firmware links the C kernels and model */
#endif

/* The project's own instruction-set flags, mapped once from the compiler's ACLE
 * macros (the CMSIS-NN pattern). Kernels test only these. Helium wins over the
 * DSP extension on a Cortex-M55, which has both. */
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define HORQ_ARM_MVE 1
#elif defined(__ARM_NEON) && defined(__aarch64__)
#define HORQ_ARM_NEON 1
#elif defined(__ARM_FEATURE_DSP) && (__ARM_FEATURE_DSP == 1)
#define HORQ_ARM_DSP 1
#endif

#define HORQ_WORD_BITS 32
/* Longest order a layer may use (passes.MAX_ORDER refuses larger ones). */
#define HORQ_MAX_ORDER 8
#define HORQ_WORDS_FOR(n) (((n) + HORQ_WORD_BITS - 1) / HORQ_WORD_BITS)

/* Population count of one word. The compiler builtin becomes a single
 * instruction where the target has one and a library call elsewhere. */
static inline int32_t horq_popcount(uint32_t v)
{
#if defined(__GNUC__)
    return (int32_t)__builtin_popcount(v);
#else
    v = v - ((v >> 1) & 0x55555555u);
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    v = (v + (v >> 4)) & 0x0F0F0F0Fu;
    return (int32_t)((v * 0x01010101u) >> 24);
#endif
}

/* Number of differing bits between a[0..words) and b[0..words): the portable
 * definition. horq_xor_popcount_planes (horq_popcount.c) is the fast path. */
static inline int32_t horq_xor_popcount(const uint32_t *a, const uint32_t *b, int32_t words)
{
    int32_t mismatches = 0;
    for (int32_t i = 0; i < words; ++i) {
        mismatches += horq_popcount(a[i] ^ b[i]);
    }
    return mismatches;
}

typedef enum {
    HORQ_ACT_NONE = 0,
    HORQ_ACT_RELU = 1,
    HORQ_ACT_HARDTANH = 2
} horq_act_kind;

typedef struct {
    horq_act_kind kind;
    float low;  /* hardtanh only */
    float high; /* hardtanh only */
} horq_activation;

/* Which values share one set of betas (shared/HORQ.md, "Scaling groups"). */
typedef enum {
    HORQ_GRAN_PATCH = 0,  /* one receptive field of the zero-padded input */
    HORQ_GRAN_PIXEL = 1,  /* one pixel's channel vector, before patches are formed */
    HORQ_GRAN_TENSOR = 2, /* the whole zero-padded input of one sample */
    HORQ_GRAN_STATIC = 3  /* per-layer constant betas stored in the model */
} horq_granularity;

/* Dimensions of a channels-last tensor [h][w][c]. */
typedef struct {
    int32_t h, w, c;
} horq_dims;

/* Activations keep NaN as PyTorch does: NaN < low is false, so it passes. */
static inline float horq_activate(float y, const horq_activation *act)
{
    switch (act->kind) {
    case HORQ_ACT_RELU:
        return y < 0.0f ? 0.0f : y;
    case HORQ_ACT_HARDTANH:
        return y < act->low ? act->low : (y > act->high ? act->high : y);
    default:
        return y;
    }
}

/* Requantization, the one way a value becomes int8 (integer mode; horq_codegen/integer.py
 * defines the same): y is already in integer steps of the output's scale; it is clamped to
 * [-128, 127] (NaN to -128) and rounded half to even by adding and subtracting 1.5 * 2^23,
 * exact in float32 for |y| <= 2^22 and the same on every target (no fused operations, so
 * the build's -ffp-contract=off keeps both roundings). */
static inline int8_t horq_round_clamped(float clamped) /* clamped: already within [-128, 127] */
{
    return (int8_t)(int32_t)((clamped + 12582912.0f) - 12582912.0f);
}

static inline int8_t horq_requantize(float y)
{
    return horq_round_clamped(y > 127.0f ? 127.0f : (y >= -128.0f ? y : -128.0f));
}

#ifdef __cplusplus
}
#endif

#endif /* HORQ_TYPES_H */
