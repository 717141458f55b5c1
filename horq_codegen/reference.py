"""The numpy reference executor of the lowered IR: the living definition of the maths.

It runs a lowered graph (channels-last, packed weights) on one sample exactly as
the C kernels do: the same sign rule (``!(x >= 0)`` sets a bit), the same packed
words, and float sums in the same order (``np.cumsum`` adds sequentially in
float32, like a C loop built with ``-ffp-contract=off``). So the C output must
equal this one bit for bit.

The same code also evaluates the maths in float64 (:func:`run_traced` with ``precision``), with
the lowered graph's float64 constants (``exact_scale``, ``exact_offset``): what
:mod:`horq_codegen.verify` compares with PyTorch's own float64 run, so that the maths is checked
to float64 rounding, apart from the float32 roundings of either side.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import numpy as np

from .ir import INPUT, Activation, Graph, Node, Op
from .integer import requantize
from .integer_quantizer import binarize_int
from .pack import pack_bits, sign_bits, xor_popcount

f32 = np.float32  # the precision the functions below compute in: float32, or float64 inside _precision


@contextlib.contextmanager
def _precision(dtype: type) -> Iterator[None]:
    global f32
    saved, f32 = f32, dtype
    try:
        yield
    finally:
        f32 = saved


def sequential_sum(terms: np.ndarray) -> np.ndarray:
    """Float32 sum over the last axis in index order, as a C ``for`` loop adds."""
    if terms.shape[-1] == 0:
        return np.zeros(terms.shape[:-1], f32)
    return np.cumsum(terms.astype(f32), axis=-1, dtype=f32)[..., -1]


LANES = 4  # the sum order of horq_quantize.c's lane sums: what one 128-bit vector holds


def lane_sum(terms: np.ndarray) -> np.ndarray:
    """Float32 sum over the last axis in four lanes, as the quantizer kernels add non-negative
    terms: lane j adds terms j, j+4, j+8, ... in order, then ``(lane0 + lane1) + (lane2 + lane3)``.
    One order for every target, so that NEON and Helium can add four terms at once and the
    scalar kernels keep four accumulators. (Missing terms are +0, which adds nothing here.)"""
    n = terms.shape[-1]
    padded = np.zeros(terms.shape[:-1] + (-(-n // LANES) * LANES,), f32)
    padded[..., :n] = terms
    lanes = np.moveaxis(padded.reshape(terms.shape[:-1] + (-1, LANES)), -1, -2)  # (..., 4, n/4)
    lane = sequential_sum(lanes)
    return ((lane[..., 0] + lane[..., 1]) + (lane[..., 2] + lane[..., 3])).astype(f32)


def activate(y: np.ndarray, act: Activation) -> np.ndarray:
    if act.kind == "relu":
        return np.where(y < 0, f32(0), y).astype(f32)
    if act.kind == "hardtanh":
        return np.where(y < act.low, f32(act.low), np.where(y > act.high, f32(act.high), y)).astype(f32)
    return y


def transform(acc: np.ndarray, node: Node) -> np.ndarray:
    """y = act(acc * scale + offset), two roundings as in C (in float64: the unrounded constants);
    an int8 node then clamps y per channel where an affine was folded into it (``clamp_low``,
    ``clamp_high``: :func:`horq_codegen.integer.fuse_affine_after_convolution`) and requantizes it
    (:func:`horq_codegen.integer.requantize`)."""
    exact = f32 is np.float64 and "exact_scale" in node.params
    scale, offset = (node.params["exact_scale"], node.params["exact_offset"]) if exact else \
        (node.params["scale"], node.params["offset"])
    y = activate((acc.astype(f32) * scale).astype(f32) + offset, node.activation)
    if "clamp_low" in node.params:
        low, high = node.params["clamp_low"], node.params["clamp_high"]
        y = np.where(y < low, low, y)
        y = np.where(y > high, high, y).astype(f32)
    return y if node.dtype == "f32" else requantize(y)


def residual_after(x: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """R_k after the planes whose betas are given (last axis of ``betas``, per group)."""
    for k in range(betas.shape[-1]):
        b = betas[..., k:k + 1]
        x = np.where(x >= 0, x - b, x + b).astype(f32)
    return x


def binarize_rows(values: np.ndarray, order: int, pad_count: int = 0,
                  fixed_betas: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Order-K residual binarization of groups ``values[g]`` shaped (rows, cols).

    Returns ``betas`` (G, K) and sign ``planes`` (G, K, rows, words). Mirrors
    ``horq_binarize_rows``: betas are mean |R_{k-1}| over the values plus
    ``pad_count`` zeros that stand for padding left out of ``values``, summed row
    by row and then across rows (a row is a pixel's channels).
    """
    groups, rows, cols = values.shape
    flat = values.reshape(groups, rows * cols).astype(f32)
    betas = np.zeros((groups, order), f32)
    if fixed_betas is not None:
        betas[:] = fixed_betas.astype(f32)
    else:
        for k in range(order):
            # Each row's |R| in order, then the row sums in order (horq_quantize.c's compute_betas).
            magnitudes = np.abs(residual_after(flat, betas[:, :k])).reshape(groups, rows, cols)
            total = sequential_sum(sequential_sum(magnitudes))
            if pad_count:
                zero_residual = residual_after(np.zeros((groups, 1), f32), betas[:, :k])[:, 0]
                total = (total + f32(pad_count) * np.abs(zero_residual)).astype(f32)
            betas[:, k] = total / f32(rows * cols + pad_count)
    planes = []
    residual = flat
    for k in range(order):
        negative = sign_bits(residual)  # sgn: x >= 0 is +1, NaN is -1
        planes.append(pack_bits(negative.reshape(groups, rows, cols)))
        b = betas[:, k:k + 1]
        residual = np.where(negative, residual + b, residual - b).astype(f32)
    return betas, np.stack(planes, axis=1)


def binarize_patches(patches: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Order-K binarization of patches (G, taps, c) as the patch kernel does it (README,
    "Patch quantization"): beta_1 from row sums of |x|; plane 2 without residuals, the plane-1
    bit flipped where |x| < beta_1, and beta_2 = 2 (S - M) / n with S = sum |x| (per row in
    lanes, :func:`lane_sum`, then across rows in order: the rows' sums are shared by the
    patches) and M = sum min(|x|, beta_1) in lanes over the whole patch; planes 3..K from the
    residuals by their float sign bits (``horq_binarize_next_planes``)."""
    groups, rows, cols = patches.shape
    n = f32(rows * cols)
    x = patches.astype(f32)
    magnitude = np.abs(x)
    abs_sum = sequential_sum(lane_sum(magnitude))
    betas = np.zeros((groups, order), f32)
    betas[:, 0] = abs_sum / n
    beta1 = betas[:, :1, None]
    negative = sign_bits(x)
    planes = [negative]
    if order >= 2:
        planes.append(negative ^ (magnitude < beta1))
        min_sum = lane_sum(np.fmin(magnitude, beta1).reshape(groups, -1))  # over the whole patch
        betas[:, 1] = (f32(2) * (abs_sum - min_sum)).astype(f32) / n
    residuals = [x, np.where(negative, x + beta1, x - beta1).astype(f32)]
    for k in range(2, order):
        b = betas[:, k - 1:k, None]
        residuals.append(np.where(planes[k - 1], residuals[-1] + b, residuals[-1] - b).astype(f32))
        betas[:, k] = sequential_sum(sequential_sum(np.abs(residuals[-1]))) / n
        planes.append(np.signbit(residuals[-1]))
    return betas, np.stack([pack_bits(plane) for plane in planes[:order]], axis=1)


def _patches(x: np.ndarray, node: Node) -> np.ndarray:
    """Receptive fields of a [h][w][c] input, zero padded: (out_h * out_w, kh * kw, c), in the
    working float precision (an int8 input keeps its integers)."""
    (kh, kw), (sh, sw), (ph, pw) = node.attrs["kernel"], node.attrs["stride"], node.attrs["padding"]
    padded = np.pad(x, ((ph, ph), (pw, pw), (0, 0)))
    _, out_h, out_w = node.shape
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(0, 1))  # (., ., c, kh, kw)
    windows = windows[::sh, ::sw][:out_h, :out_w].transpose(0, 1, 3, 4, 2)
    return windows.reshape(out_h * out_w, kh * kw, -1).astype(np.int32 if x.dtype == np.int8 else f32)


def _int_dot(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Exact int32 sums of int8 products, (P, n) x (O, n) -> (P, O): the int8 kernels' accumulators."""
    acc = rows.astype(np.int64) @ weights.astype(np.int64).T
    return acc.astype(np.int32)


def _pool_taps(x: np.ndarray, node: Node, fill: float) -> np.ndarray:
    (kh, kw), (sh, sw), (ph, pw) = node.attrs["kernel"], node.attrs["stride"], node.attrs["padding"]
    padded = np.pad(x, ((ph, ph), (pw, pw), (0, 0)), constant_values=fill)
    c, out_h, out_w = node.shape
    taps = [padded[ky:ky + sh * (out_h - 1) + 1:sh, kx:kx + sw * (out_w - 1) + 1:sw, :]
            for ky in range(kh) for kx in range(kw)]
    return np.stack(taps, axis=-1)  # (out_h, out_w, c, taps)


def _group_patches(x: np.ndarray, node: Node) -> np.ndarray:
    """A grouped convolution's receptive fields, (out_h * out_w, groups, kh * kw * C / groups): group
    g's channels [g C / groups, (g + 1) C / groups) of each patch, in [kh][kw][channel] order, the
    order of a weight row (O, kh, kw, C / groups) and of the grouped kernels' sums."""
    patches = _patches(x, node)                                          # (P, taps, C)
    count, taps, channels = patches.shape
    groups = node.attrs.get("groups", 1)
    per_group = patches.reshape(count, taps, groups, channels // groups).transpose(0, 2, 1, 3)
    return per_group.reshape(count, groups, -1)


def _conv2d_accumulators(node: Node, x: np.ndarray, trace: dict) -> np.ndarray:
    """(out_h, out_w, O) sums of products: exact int32 for an int8 input, float ones in order otherwise."""
    weights = node.params["weight"].reshape(node.params["weight"].shape[0], -1)
    if node.attrs.get("groups", 1) > 1:  # output channel o reads group o // (O / groups)
        return _grouped_accumulators(node, x, weights)
    if x.dtype == np.int8:
        acc = _int_dot(_patches(x, node).reshape(-1, weights.shape[1]), weights)
    else:
        patches = _patches(x, node).reshape(-1, 1, node.params["weight"][0].size)
        acc = sequential_sum(patches * weights[None])            # (P, O)
    _, out_h, out_w = node.shape
    return acc.reshape(out_h, out_w, -1)


def _grouped_accumulators(node: Node, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    patches = _group_patches(x, node)                                    # (P, G, n)
    groups = patches.shape[1]
    per_group = weights.shape[0] // groups
    if x.dtype == np.int8:
        acc = np.concatenate([_int_dot(patches[:, g], weights[g * per_group:(g + 1) * per_group])
                              for g in range(groups)], axis=1)
    else:
        rows = np.repeat(patches, per_group, axis=1)                     # (P, O, n): output o's group
        acc = sequential_sum(rows * weights[None])
    _, out_h, out_w = node.shape
    return acc.reshape(out_h, out_w, -1)


def _linear(node: Node, x: np.ndarray, trace: dict) -> np.ndarray:
    if x.dtype == np.int8:
        return transform(_int_dot(x[None, :], node.params["weight"])[0], node)
    return transform(sequential_sum(x[None, :] * node.params["weight"]), node)


def _betas_and_planes(node: Node, x: np.ndarray, trace: dict):
    order, granularity = node.attrs["order"], node.attrs["granularity"]
    fixed = node.params.get("betas") if granularity == "static" else None
    if node.attrs.get("planes_input"):  # the producer's planes (_static_planes): (1, K, rows, words)
        rows = 1 if node.op == Op.HORQ_LINEAR else int(np.prod(node.attrs["in_shape"][1:]))
        return fixed[None].astype(np.float32), x.reshape(1, order, rows, -1)
    if x.dtype == np.int8:  # integer mode: one definition for every granularity
        rows, patches = binarize_int, binarize_int
    else:
        rows, patches = binarize_rows, binarize_patches
    if node.op == Op.HORQ_LINEAR:
        if fixed is not None:
            return rows(x.reshape(1, 1, -1), order, 0, fixed)
        return patches(x.reshape(1, 1, -1), order)  # one group, quantized as a patch is
    else:
        c, h, w = node.attrs["in_shape"]
        (ph, pw) = node.attrs["padding"]
        if granularity == "patch":
            return patches(_patches(x, node), order)
        if granularity == "pixel":
            return rows(x.reshape(h * w, 1, c), order)
        pad_count = ((h + 2 * ph) * (w + 2 * pw) - h * w) * c
        return rows(x.reshape(1, h * w, c), order, pad_count, fixed)


def _padding_words(c: int, betas: np.ndarray) -> np.ndarray:
    """(K, words): the sign words of a zero in each plane (``horq_padding_words``)."""
    _, planes = binarize_rows(np.zeros((1, 1, c), f32), betas.shape[-1], fixed_betas=betas)
    return planes[0, :, 0]


def _horq_conv2d_accumulators(node: Node, x: np.ndarray, trace: dict) -> np.ndarray:
    """(out_h, out_w, O) float sums of beta_k * dot_k."""
    order, granularity = node.attrs["order"], node.attrs["granularity"]
    c, h, w = node.attrs["in_shape"]
    kh, kw = node.attrs["kernel"]
    out_c, out_h, out_w = node.shape
    weights = node.params["weight_bits"].reshape(out_c, kh * kw, -1)     # (O, taps, words)
    betas, planes = _betas_and_planes(node, x, trace)
    if granularity == "patch":
        mismatches = np.stack([xor_popcount(weights[None], planes[:, None, k]).sum(axis=-1)
                               for k in range(order)], axis=-1)          # (P, O, K)
        dots = kh * kw * c - 2 * mismatches
        acc = sequential_sum(betas[:, None, :] * dots.astype(f32))
    else:
        # Tap planes for every output position, padding included (pixel: zero betas there).
        padded_planes, padded_betas = _padded_planes(node, betas, planes)
        (sh, sw) = node.attrs["stride"]
        tap_planes, tap_betas = [], []
        for oy in range(out_h):
            for ox in range(out_w):
                tap_planes.append(padded_planes[oy * sh:oy * sh + kh, ox * sw:ox * sw + kw].reshape(kh * kw, order, -1))
                tap_betas.append(padded_betas[oy * sh:oy * sh + kh, ox * sw:ox * sw + kw].reshape(kh * kw, order))
        tap_planes, tap_betas = np.stack(tap_planes), np.stack(tap_betas)  # (P, taps, K, words), (P, taps, K)
        mismatches = xor_popcount(weights[None, :, :, None, :], tap_planes[:, None])  # (P, O, taps, K)
        if granularity == "pixel":
            dots = (c - 2 * mismatches).astype(f32)
            acc = sequential_sum((tap_betas[:, None] * dots).reshape(dots.shape[0], out_c, -1))
        else:
            dots = (kh * kw * c - 2 * mismatches.sum(axis=2)).astype(f32)       # (P, O, K)
            acc = sequential_sum(betas[0][None, None, :] * dots)
    return acc.reshape(out_h, out_w, out_c)


def _padded_planes(node: Node, betas: np.ndarray, planes: np.ndarray):
    """Planes and betas on the zero-padded grid: (Hp, Wp, K, words) and (Hp, Wp, K)."""
    c, h, w = node.attrs["in_shape"]
    (ph, pw), order = node.attrs["padding"], node.attrs["order"]
    words = planes.shape[-1]
    if node.attrs["granularity"] == "pixel":
        grid = planes.reshape(h, w, order, words)          # groups are pixels
        grid_betas = betas.reshape(h, w, order)
        pad_words = np.zeros((order, words), np.uint32)     # zeros: beta 0, all signs +1
        pad_betas = np.zeros(order, f32)
    else:
        grid = planes[0].transpose(1, 0, 2).reshape(h, w, order, words)
        grid_betas = np.broadcast_to(betas[0], (h, w, order))
        pad_words = _padding_words(c, betas[0])
        pad_betas = betas[0]
    out = np.broadcast_to(pad_words, (h + 2 * ph, w + 2 * pw, order, words)).copy()
    out[ph:ph + h, pw:pw + w] = grid
    out_betas = np.broadcast_to(pad_betas, (h + 2 * ph, w + 2 * pw, order)).copy()
    out_betas[ph:ph + h, pw:pw + w] = grid_betas
    return out, out_betas


def _horq_linear(node: Node, x: np.ndarray, trace: dict) -> np.ndarray:
    betas, planes = _betas_and_planes(node, x, trace)
    n = node.attrs["in_features"]
    dots = (n - 2 * xor_popcount(node.params["weight_bits"][:, None, :], planes[0, :, 0][None])).astype(f32)
    return transform(sequential_sum(betas[0][None, :] * dots), node)


def _maxpool(node: Node, x: np.ndarray, trace: dict) -> np.ndarray:
    if x.dtype == np.int8:  # -128 is no larger than any value: as good as leaving padding out
        return _pool_taps(x, node, -128).max(axis=-1)
    return _pool_taps(x, node, -np.inf).max(axis=-1).astype(f32)


def _avgpool(node: Node, x: np.ndarray, trace: dict) -> np.ndarray:
    kh, kw = node.attrs["kernel"]
    if x.dtype == np.int8:  # an exact integer sum, one float division, requantized to the input's scale
        sums = _pool_taps(x, node, 0).astype(np.int32).sum(axis=-1, dtype=np.int32)
        return requantize(sums.astype(np.float32) / np.float32(kh * kw))
    return (sequential_sum(_pool_taps(x, node, 0.0)) / f32(kh * kw)).astype(f32)


def _affine(node: Node, x: np.ndarray, trace: dict) -> np.ndarray:
    return transform(x, node)


def _quantize(node: Node, x: np.ndarray, trace: dict) -> np.ndarray:
    if "pre_scale" in node.params:  # a shift done first (integer._Builder.absorb_shift): x * scale + offset
        channels = node.params["pre_scale"].size
        flat = x.astype(np.float32).reshape(-1, channels)
        x = ((flat * node.params["pre_scale"]).astype(np.float32) + node.params["pre_offset"]).astype(np.float32)
        x = x.reshape(-1)
    q = requantize(x.astype(np.float32) * node.params["inv_scale"][0])
    if node.attrs.get("keep_signs"):  # horq_quantize_signs_i8: a negative rounded to 0 keeps its sign
        q = np.where((q == 0) & (x < 0), np.int8(-1), q).astype(np.int8)
    return q


def _dequantize(node: Node, x: np.ndarray, trace: dict) -> np.ndarray:
    return (x.astype(np.float32) * node.params["scale"][0]).astype(np.float32)


def _relu(node: Node, x: np.ndarray, trace: dict) -> np.ndarray:
    return activate(x, Activation("relu"))


def _hardtanh(node: Node, x: np.ndarray, trace: dict) -> np.ndarray:
    return activate(x, Activation("hardtanh", node.attrs["low"], node.attrs["high"]))


def _prelu(node: Node, x: np.ndarray, trace: dict) -> np.ndarray:
    """``x if x > 0 else slope[c] * x`` (as PyTorch: NaN and -0.0 take the slope); an int8 tensor:
    each side's ratio of scales and the slope folded into ``positive`` and ``negative`` (per channel)."""
    channels = node.params["negative" if x.dtype == np.int8 else "slope"].size
    flat = x.reshape(-1, channels)
    if x.dtype == np.int8:
        values = flat.astype(np.float32)
        y = np.where(flat > 0, values * node.params["positive"], values * node.params["negative"])
        return requantize(y.astype(np.float32)).reshape(x.shape)
    return np.where(flat > 0, flat, (flat * node.params["slope"].astype(f32)).astype(f32)).astype(f32).reshape(x.shape)


def add(node: Node, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``act(prelu(a + b))`` (``prelu`` where a PReLU was fused: ``slope`` per channel); int8 tensors:
    ``requantize(act(prelu(a * ratio_a + b * ratio_b)))``, each ratio the operand's scale over the
    output's (``horq_add_i8``: two products, then the sum)."""
    if a.dtype == np.int8:
        ra, rb = node.params["ratios"]
        y = ((a.astype(np.float32) * ra).astype(np.float32) + (b.astype(np.float32) * rb).astype(np.float32))
        return requantize(activate(_slope(node, y.astype(np.float32)), node.activation))
    return activate(_slope(node, (a.astype(f32) + b.astype(f32)).astype(f32)), node.activation)


def _slope(node: Node, y: np.ndarray) -> np.ndarray:
    """A fused PReLU: ``y if y > 0 else slope[c] * y``."""
    if "slope" not in node.params:
        return y
    slope = node.params["slope"].astype(y.dtype)
    flat = y.reshape(-1, slope.size)
    return np.where(flat > 0, flat, (flat * slope).astype(y.dtype)).reshape(y.shape)


def concat(node: Node, parts: list[np.ndarray]) -> np.ndarray:
    """Channels of the inputs side by side, per pixel ([h][w][c] memory: each pixel's channels are
    the inputs' channels in input order); int8 inputs at another scale than the output's are
    requantized (``ratios``: each input's scale over the output's; 1 copies the values)."""
    if parts[0].dtype == np.int8:
        parts = [p if r == 1 else requantize(p.astype(np.float32) * np.float32(r))
                 for p, r in zip(parts, node.params["ratios"])]
    if len(node.shape) == 3 and node.shape[1] * node.shape[2] > 1:
        return np.concatenate(parts, axis=-1)
    return np.concatenate([p.reshape(-1) for p in parts]).reshape(node.shape if len(node.shape) == 1 else (1, 1, -1))


def _to_chw(node: Node, x: np.ndarray, trace: dict) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(2, 0, 1)).reshape(-1)


def _to_hwc(node: Node, x: np.ndarray, trace: dict) -> np.ndarray:
    return np.ascontiguousarray(x.reshape(node.shape).transpose(1, 2, 0))


#: Convolutions: their accumulators, which the transform turns into outputs (after a fused pooling).
_ACCUMULATORS: dict[Op, Callable[[Node, np.ndarray, dict], np.ndarray]] = {
    Op.CONV2D: _conv2d_accumulators, Op.HORQ_CONV2D: _horq_conv2d_accumulators}


def _convolution(node: Node, x: np.ndarray, trace: dict) -> np.ndarray:
    return transform(_ACCUMULATORS[node.op](node, x, trace), node)


_KERNELS: dict[Op, Callable[[Node, np.ndarray, dict], np.ndarray]] = {
    Op.CONV2D: _convolution, Op.LINEAR: _linear, Op.HORQ_CONV2D: _convolution, Op.HORQ_LINEAR: _horq_linear,
    Op.MAXPOOL2D: _maxpool, Op.AVGPOOL2D: _avgpool, Op.AFFINE: _affine, Op.RELU: _relu,
    Op.HARDTANH: _hardtanh, Op.TO_CHW: _to_chw, Op.TO_HWC: _to_hwc,
    Op.QUANTIZE: _quantize, Op.DEQUANTIZE: _dequantize, Op.PRELU: _prelu,
}


def run_traced(graph: Graph, sample: np.ndarray, precision: type = np.float32) -> dict[str, np.ndarray]:
    """Every node's output (memory layout) for one sample given in PyTorch's order.

    ``precision=np.float64`` evaluates the same maths in float64, with the unrounded constants."""
    assert graph.layout == "hwc", "the reference runs lowered graphs"
    with _precision(precision):
        shape = graph.input_shape
        x = np.asarray(sample, f32).reshape(shape)
        if len(shape) == 3 and not any(n.op == Op.TO_HWC for n in graph.nodes):
            x = np.ascontiguousarray(x.transpose(1, 2, 0))  # C == 1 or H*W == 1: same memory order
        values: dict[str, np.ndarray] = {INPUT: x}
        with np.errstate(all="ignore"):  # IEEE semantics are the contract: inf - inf is NaN, as in C
            for node in graph.nodes:
                _run_node(node, values)
    return values


def _run_node(node: Node, values: dict[str, np.ndarray]) -> None:
    x = values[node.inputs[0]]
    if len(node.shape) == 1 and node.op != Op.TO_CHW:
        x = x.reshape(-1)  # a vector op reading a feature map whose flattening was folded away
    if node.op == Op.ADD:
        b = values[node.inputs[1]].reshape(x.shape)
        values[node.name] = add(node, x, b)
        return
    if node.op == Op.CONCAT:
        values[node.name] = concat(node, [values[i] for i in node.inputs])
        return
    if "pool" in node.attrs:  # a fused max pooling (integer.fuse_max_pooling): on the accumulators
        k = node.attrs["pool"]
        acc = _ACCUMULATORS[node.op](node.replace(shape=node.attrs["conv_out"]), x, values)
        c, h, w = node.shape
        y = transform(acc[:h * k, :w * k].reshape(h, k, w, k, c).max(axis=(1, 3)), node)
    else:
        y = _KERNELS[node.op](node, x, values)
    if "post_scale" in node.params:  # an affine fused after it (integer.fuse_affine_after_convolution)
        y = _post_affine(node, y)
    if node.dtype == "bits":  # the planes its static reader makes (integer.write_static_planes)
        y = _static_planes(node, y)
    values[node.name] = y


def _post_affine(node: Node, y: np.ndarray) -> np.ndarray:
    """The int8 affine done on each final value: parameters repeat every ``post_period`` values."""
    flat = y.reshape(-1)
    at = np.arange(flat.size) % node.params["post_scale"].size
    z = activate((flat.astype(f32) * node.params["post_scale"][at]).astype(f32) + node.params["post_offset"][at],
                 node.attrs["post_activation"])
    return requantize(z).reshape(y.shape)


def _static_planes(node: Node, y: np.ndarray) -> np.ndarray:
    """[K][pixels][words] plane words of each pixel's int8 channels (fixed betas: padding plays no part)."""
    channels = y.shape[-1] if y.ndim == 3 else y.size
    pixels = y.reshape(-1, channels)
    _, planes = binarize_int(pixels[None], node.attrs["plane_order"], 0, node.params["plane_betas"])
    return np.ascontiguousarray(planes[0]).reshape(-1)  # (K, pixels, words)


def run(graph: Graph, samples: np.ndarray, precision: type = np.float32) -> np.ndarray:
    """Outputs (flattened, PyTorch order) for a batch of samples."""
    return np.stack([run_traced(graph, s, precision)[graph.output].reshape(-1) for s in samples]).astype(
        precision, copy=False)
