"""A rounding-error bound between two evaluations of the same lowered graph, per output.

:mod:`horq_codegen.verify` runs the model's maths twice in float64: the reference, over the
lowered graph with its unrounded constants, and PyTorch, over the exported model. They use
different orders (blocked sums, BatchNorm unfolded, the patch quantizer's ``2 (S - M) / n``
form of ``beta_2``), so they may differ by rounding, and by nothing else. This module bounds
that difference, after the standard model of floating-point arithmetic (Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., 2002, §2.2 and §3.1): a sum of n terms computed in
any order is within ``gamma(n) sum |terms|`` of the exact sum, ``gamma(n) = n u / (1 - n u)``.
Walking the graph beside the reference's values, each node gets ``e``, a bound on
``|ours - PyTorch's|`` for each of its outputs (README, "Verification"):

- conv and linear: ``e_y = |s| ((1 + g) sum |w| e_x + 2 g sum |w x|) + 8u (|s| sum |w x| + T + |y|)``,
  ``g = gamma(n)`` for either side's sum, ``s`` the output scale, ``T`` the magnitudes of the
  terms folded into the offset (a bias, BatchNorm's shift and mean: ``offset_terms``), which
  bound the roundings of PyTorch's unfolded BatchNorm and of our folding;
- ReLU and Hardtanh are 1-Lipschitz, and an output both sides clamp is exact; max pooling
  passes the largest ``e`` of its window; average pooling ``mean e + 2 gamma(k) mean |x| + 2u |y|``;
- a HORQ quantizer: ``beta_k``, a mean of magnitudes, is off by at most
  ``mean e_R + 4 gamma(n) (mean |x| + sum_{j<k} beta_j + mean e_R) + 2u beta_k`` (4: either
  side's sum, and the patch kernel's difference of two sums for ``beta_2``). A sign is **at a
  tie** where ``|R| < e_R``: the other side may take the other sign there. A tie enters the
  bound as the flip it could be: ``2 (beta_k + e_beta)`` on every output whose patch holds it,
  and ``2 beta`` on that residual for the later planes. A value both sides know to be
  non-negative (a ReLU's output) never ties at plane 1;
- a HORQ layer's accumulator: ``sum_k (e_beta |d_k| + 2 (beta_k + e_beta) m_k) + 2 gamma(K T) sum_k (beta_k + e_beta) |d_k|``
  over its ``K`` planes and ``T`` tap groups (``d_k`` the integer dots, ``m_k`` the patch's ties),
  then the transform as above, with ``gamma(n_w)`` more for PyTorch's ``alpha = mean |W|``.

Magnitudes are evaluated at our values (a first-order analysis), so callers multiply by
:data:`SAFETY`. In float64 the bound is about ``1e-13`` of an output's magnitude, so any error in
the shared maths above that (in a kernel and the reference alike) fails verification. The same
walk with float32's ``u`` bounds float32 rounding, but only loosely: worst-case propagation
through a HORQ network overestimates what rounding does by orders of magnitude.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import reference
from .ir import INPUT, Graph, Node, Op
from .pack import unpack_signs, words_for

FLOAT32_U = 2.0 ** -24
FLOAT64_U = 2.0 ** -53
SAFETY = 2.0
_TRANSFORM_ROUNDINGS = 8  # ours: scale and offset folded, a multiply, an add; PyTorch's unfolded
#                           bias add, BatchNorm subtract, scale (its sqrt and divide), shift


def gamma(n: int | np.ndarray, u: float = FLOAT32_U) -> float | np.ndarray:
    """Higham's ``gamma_n = n u / (1 - n u)`` (``n`` roundings, the products of a dot product included).

    >>> f"{gamma(1):.3g} {gamma(576):.3g} {gamma(576, FLOAT64_U):.3g}"
    '5.96e-08 3.43e-05 6.39e-14'
    """
    return n * u / (1.0 - n * u)


@dataclass(frozen=True)
class SampleBound:
    output: np.ndarray  # per output (PyTorch order): a bound on |ours - PyTorch's|, before SAFETY
    ties: int           # quantizer signs within rounding of a change, whose flips the bound includes


@dataclass(frozen=True)
class _Value:
    error: np.ndarray
    nonnegative: bool = False  # both sides' values are >= 0 (ReLU outputs and what keeps them so)


def _transform(node: Node, e_acc, acc_abs, pre, y, u: float, weight_count: int = 0) -> np.ndarray:
    """Bound after ``y = act(acc * scale + offset)``; ``pre`` is our value before the activation."""
    scale = np.abs(node.params["scale"].astype(np.float64))
    terms = node.params.get("offset_terms", np.abs(node.params["offset"])).astype(np.float64)
    alpha_rounding = gamma(weight_count, u) + u if weight_count else 0.0
    e = (scale * e_acc + (_TRANSFORM_ROUNDINGS * u + alpha_rounding) * scale * acc_abs
         + _TRANSFORM_ROUNDINGS * u * (terms + np.abs(y)))
    act = node.activation
    if act.kind == "relu":
        e = np.where(pre + e < 0, 0.0, e)  # both sides clamp to exactly 0
    elif act.kind == "hardtanh":
        e = np.where((pre + e < act.low) | (pre - e > act.high), 0.0, e)
    return e


def _pre_activation(node: Node, acc: np.ndarray) -> np.ndarray:
    return acc * node.params["scale"] + node.params["offset"]


def _float_layer(node: Node, x: np.ndarray, e: np.ndarray, y: np.ndarray, u: float) -> np.ndarray:
    flat_w = node.params["weight"].astype(np.float64).reshape(node.params["weight"].shape[0], -1)
    g = gamma(flat_w.shape[1], u)  # the terms of one output's sum
    if node.op == Op.CONV2D and node.attrs.get("groups", 1) > 1:
        flat_w = _dense_weights(node).reshape(flat_w.shape[0], -1)
    if node.op == Op.CONV2D:
        xs = reference._patches(x, node).reshape(-1, flat_w.shape[1]).astype(np.float64)
        es = reference._patches(e, node).reshape(xs.shape)
    else:
        xs, es = x.reshape(1, -1).astype(np.float64), e.reshape(1, -1)
    abs_w = np.abs(flat_w).T
    acc_abs = np.abs(xs) @ abs_w
    e_acc = (1 + g) * (es @ abs_w) + 2 * g * acc_abs
    pre = _pre_activation(node, xs @ flat_w.T)
    return _transform(node, e_acc, acc_abs, pre, y.reshape(pre.shape), u).reshape(y.shape)


def _dense_weights(node: Node) -> np.ndarray:
    """A grouped convolution's weights (O, kh, kw, C / groups) as an ungrouped one's (O, kh, kw, C),
    zero outside each output's group: the same sums of products, exact zeros added."""
    weight = node.params["weight"].astype(np.float64)
    out_c, per_group = weight.shape[0], weight.shape[-1]
    groups = node.attrs["groups"]
    dense = np.zeros(weight.shape[:-1] + (per_group * groups,))
    for o in range(out_c):
        g = o // (out_c // groups)
        dense[o, ..., g * per_group:(g + 1) * per_group] = weight[o]
    return dense


@dataclass(frozen=True)
class _Planes:
    betas: np.ndarray      # (G, K)
    e_betas: np.ndarray    # (G, K)
    signs: np.ndarray      # (G, K, n) of +-1
    ties: np.ndarray       # (G, K, n) bool


def _quantize(values: np.ndarray, errors: np.ndarray, order: int, fixed: np.ndarray | None,
              nonnegative: bool, u: float) -> _Planes:
    """Order-K residual binarization of groups (rows of ``values``), with the bounds and the ties."""
    groups, n = values.shape
    residual, e = values.astype(np.float64), errors.astype(np.float64)
    mean_x = np.abs(residual).mean(axis=1) if n else np.zeros(groups)
    betas, e_betas = np.zeros((groups, order)), np.zeros((groups, order))
    signs, ties = np.zeros((groups, order, n)), np.zeros((groups, order, n), bool)
    for k in range(order):
        if fixed is not None:
            beta, e_beta = np.broadcast_to(fixed[k].astype(np.float64), (groups,)), np.zeros(groups)
        else:
            beta = np.abs(residual).mean(axis=1) if n else np.zeros(groups)
            e_mean = e.mean(axis=1) if n else np.zeros(groups)
            e_beta = e_mean + 4 * gamma(n, u) * (mean_x + betas[:, :k].sum(axis=1) + e_mean) + 2 * u * beta
        tie = np.abs(residual) < e
        if k == 0 and nonnegative:
            tie[:] = False  # x >= 0 on both sides: sgn is +1 on both
        sign = np.where(residual >= 0, 1.0, -1.0)
        residual = residual - beta[:, None] * sign
        e = (e + e_beta[:, None] + u * (np.abs(residual) + beta[:, None])
             + np.where(tie, 2 * (beta + e_beta)[:, None], 0.0))
        betas[:, k], e_betas[:, k], signs[:, k], ties[:, k] = beta, e_beta, sign, tie
    return _Planes(betas, e_betas, signs, ties)


def _horq_accumulator(betas, e_betas, signs, ties, weights, u: float, per_tap: bool):
    """(acc, e_acc, acc_abs), each (P, O), from per-patch planes: betas (P, T, K), signs and ties
    (P, T, K, C), weights (O, T, C) of +-1. Unless ``per_tap`` (pixel groups), a patch's taps share
    their betas, and the dots run over the whole patch."""
    patches, taps, order, c = signs.shape
    if per_tap:
        dots = np.einsum("ptkc,otc->pokt", signs, weights, optimize=True)          # (P, O, K, T)
        b, eb = betas.transpose(0, 2, 1)[:, None], e_betas.transpose(0, 2, 1)[:, None]
        tie_count = ties.sum(axis=-1).transpose(0, 2, 1)[:, None]
    else:
        flat = signs.transpose(0, 2, 1, 3).reshape(patches, order, taps * c)
        dots = (flat @ weights.reshape(len(weights), -1).T).transpose(0, 2, 1)[..., None]  # (P, O, K, 1)
        b, eb = betas[:, :1].transpose(0, 2, 1)[:, None], e_betas[:, :1].transpose(0, 2, 1)[:, None]
        tie_count = ties.sum(axis=(1, 3))[:, None, :, None]
    upper = b + eb
    terms = order * (taps if per_tap else 1)
    e_acc = (eb * np.abs(dots) + 2 * upper * tie_count).sum(axis=(2, 3)) \
        + 2 * gamma(terms, u) * (upper * np.abs(dots)).sum(axis=(2, 3))
    return (b * dots).sum(axis=(2, 3)), e_acc, (b * np.abs(dots)).sum(axis=(2, 3))


def _windows(grid: np.ndarray, node: Node) -> np.ndarray:
    """Each output position's taps of a padded grid: (P, T, ...)."""
    (kh, kw), (sh, sw) = node.attrs["kernel"], node.attrs["stride"]
    _, out_h, out_w = node.shape
    return np.stack([grid[oy * sh:oy * sh + kh, ox * sw:ox * sw + kw].reshape(kh * kw, *grid.shape[2:])
                     for oy in range(out_h) for ox in range(out_w)])


def _horq_conv_planes(node: Node, x: np.ndarray, value: _Value, u: float):
    """Per-patch (betas, e_betas, signs, ties) by the layer's granularity, and the tie count."""
    c, h, w = node.attrs["in_shape"]
    (kh, kw), (ph, pw) = node.attrs["kernel"], node.attrs["padding"]
    order, granularity, taps = node.attrs["order"], node.attrs["granularity"], kh * kw
    if granularity == "patch":
        xs = reference._patches(x, node).reshape(-1, taps * c)
        q = _quantize(xs, reference._patches(value.error, node).reshape(xs.shape), order, None, value.nonnegative, u)
        per_tap = lambda a: a.reshape(len(xs), order, taps, c).transpose(0, 2, 1, 3)
        return (np.repeat(q.betas[:, None], taps, 1), np.repeat(q.e_betas[:, None], taps, 1),
                per_tap(q.signs), per_tap(q.ties)), int(q.ties.sum())
    pad = lambda a, fill: np.pad(a, ((ph, ph), (pw, pw)) + ((0, 0),) * (a.ndim - 2), constant_values=fill)
    if granularity == "pixel":  # groups are the real pixels; padding has beta 0 and sign +1
        q = _quantize(x.reshape(h * w, c), value.error.reshape(h * w, c), order, None, value.nonnegative, u)
        grid = lambda a, fill: pad(a.reshape(h, w, *a.shape[1:]), fill)
        planes = grid(q.betas, 0.0), grid(q.e_betas, 0.0), grid(q.signs, 1.0), grid(q.ties, False)
    else:  # tensor and static: one group, the zero-padded input
        grid_x, grid_e = pad(x.astype(np.float64), 0.0), pad(value.error, 0.0)
        fixed = node.params.get("betas") if granularity == "static" else None
        q = _quantize(grid_x.reshape(1, -1), grid_e.reshape(1, -1), order, fixed, value.nonnegative, u)
        hw = grid_x.shape[:2]
        per_value = lambda a: a[0].reshape(order, *grid_x.shape).transpose(1, 2, 0, 3)
        planes = (np.broadcast_to(q.betas[0], hw + (order,)), np.broadcast_to(q.e_betas[0], hw + (order,)),
                  per_value(q.signs), per_value(q.ties))
    return tuple(_windows(p, node) for p in planes), int(q.ties.sum())


def _horq_layer(node: Node, x: np.ndarray, value: _Value, y: np.ndarray, u: float) -> tuple[np.ndarray, int]:
    if node.op == Op.HORQ_CONV2D:
        c = node.attrs["in_shape"][0]
        taps = node.attrs["kernel"][0] * node.attrs["kernel"][1]
        weights = unpack_signs(node.params["weight_bits"].reshape(node.shape[0], taps, words_for(c)), c)
        planes, ties = _horq_conv_planes(node, x, value, u)
        weight_count = taps * c
    else:
        n = weight_count = node.attrs["in_features"]
        weights = unpack_signs(node.params["weight_bits"], n)[:, None, :]          # (O, 1, n)
        fixed = node.params.get("betas") if node.attrs["granularity"] == "static" else None
        q = _quantize(x.reshape(1, n), value.error.reshape(1, n), node.attrs["order"], fixed, value.nonnegative, u)
        planes, ties = (q.betas[:, None], q.e_betas[:, None], q.signs[:, None], q.ties[:, None]), int(q.ties.sum())
    per_tap = node.op == Op.HORQ_CONV2D and node.attrs["granularity"] == "pixel"
    acc, e_acc, acc_abs = _horq_accumulator(*planes, weights, u, per_tap)
    pre = _pre_activation(node, acc)
    bound = _transform(node, e_acc, acc_abs, pre, y.reshape(pre.shape), u, weight_count)
    return bound.reshape(y.shape), ties


def _pool(node: Node, x: np.ndarray, e: np.ndarray, y: np.ndarray, u: float) -> np.ndarray:
    if node.op == Op.MAXPOOL2D:
        return reference._pool_taps(e, node, 0.0).max(axis=-1)
    kh, kw = node.attrs["kernel"]
    taps = kh * kw
    mean_e = reference._pool_taps(e, node, 0.0).sum(axis=-1) / taps
    mean_x = np.abs(reference._pool_taps(x.astype(np.float64), node, 0.0)).sum(axis=-1) / taps
    return mean_e + 2 * gamma(taps, u) * mean_x + 2 * u * np.abs(y)


def _node_bound(node: Node, x: np.ndarray, value: _Value, y: np.ndarray, u: float) -> tuple[_Value, int]:
    e, relu = value.error, node.activation.kind == "relu"
    if node.op in (Op.CONV2D, Op.LINEAR):
        return _Value(_float_layer(node, x, e, y, u), relu), 0
    if node.op in (Op.HORQ_CONV2D, Op.HORQ_LINEAR):
        bound, ties = _horq_layer(node, x, value, y, u)
        return _Value(bound, relu), ties
    if node.op in (Op.MAXPOOL2D, Op.AVGPOOL2D):
        return _Value(_pool(node, x, e, y, u), value.nonnegative), 0
    if node.op == Op.AFFINE:
        pre = _pre_activation(node, x.astype(np.float64))
        return _Value(_transform(node, e, np.abs(x).astype(np.float64), pre, y, u), relu), 0
    if node.op == Op.RELU:
        return _Value(np.where(x + e < 0, 0.0, e), True), 0
    if node.op == Op.HARDTANH:
        low, high = node.attrs["low"], node.attrs["high"]
        return _Value(np.where((x + e < low) | (x - e > high), 0.0, e), low >= 0 or value.nonnegative), 0
    if node.op == Op.TO_CHW:
        return _Value(reference._to_chw(node, e, {}), value.nonnegative), 0
    if node.op == Op.TO_HWC:
        return _Value(reference._to_hwc(node, e, {}), value.nonnegative), 0
    if node.op == Op.PRELU:  # Lipschitz with the larger of 1 and |slope|; the product rounds on either side
        slope = np.abs(node.params["slope"]).astype(np.float64)
        flat = e.reshape(-1, slope.size)
        bound = flat * np.maximum(1.0, slope) + 2 * u * np.abs(y.reshape(flat.shape))
        return _Value(bound.reshape(e.shape), False), 0
    raise AssertionError(f"no error bound for {node.op}")


def _join_bound(node: Node, values: dict[str, np.ndarray], bounds: dict[str, _Value], u: float) -> _Value:
    """ADD: both operands' errors, one rounding of the sum on either side (an activation after it is
    1-Lipschitz); CONCAT: the inputs' errors side by side."""
    errors = [bounds[name].error for name in node.inputs]
    nonnegative = all(bounds[name].nonnegative for name in node.inputs) or node.activation.kind == "relu"
    if node.op == Op.CONCAT:
        return _Value(reference.concat(node, errors), nonnegative)
    y = values[node.name]
    error = errors[0].reshape(y.shape) + errors[1].reshape(y.shape)
    if "slope" in node.params:  # a fused PReLU: Lipschitz with the larger of 1 and |slope|, one more rounding
        gain = np.maximum(1.0, np.abs(node.params["slope"]).astype(np.float64))
        error = (error.reshape(-1, gain.size) * gain).reshape(y.shape) + 2 * u * np.abs(y)
        nonnegative = False
    return _Value(error + 2 * u * np.abs(y), nonnegative)


def sample_bound(graph: Graph, values: dict[str, np.ndarray], u: float = FLOAT64_U) -> SampleBound:
    """The bound for one sample, from the reference's values of every node (:func:`reference.run_traced`)."""
    bounds = {INPUT: _Value(np.zeros(values[INPUT].shape))}
    ties = 0
    with np.errstate(all="ignore"):
        for node in graph.nodes:
            if node.op in (Op.ADD, Op.CONCAT):
                bounds[node.name] = _join_bound(node, values, bounds, u)
                continue
            source = node.inputs[0]
            x, value = values[source], bounds[source]
            if len(node.shape) == 1 and node.op != Op.TO_CHW:
                x, value = x.reshape(-1), _Value(value.error.reshape(-1), value.nonnegative)
            bounds[node.name], layer_ties = _node_bound(node, x, value, values[node.name], u)
            ties += layer_ties
    return SampleBound(np.asarray(bounds[graph.output].error, np.float64).reshape(-1), ties)
