"""Shape rules: every node's output shape recomputed from its input, weights and attributes.

A model file declares a shape for every tensor and every attribute of every layer; none of it is
trusted. :func:`check_graph` walks the graph from its input, recomputes each node's output shape
by the op's rule below, and checks every parameter array against the shape the kernels will
read, so that a forged channel count, padding or activation size is refused (naming the node
and both shapes) before anything is planned, rendered or run. It runs on the imported graph
and again on the lowered one (the passes are checked too). With shapes proven, the generated C
reads no array outside its bounds whatever the file said. Every size must also fit the kernels'
``int32_t`` arithmetic.

>>> from horq_codegen.ir import Node, Op
>>> node = Node("pool", Op.MAXPOOL2D, ("input",), (4, 3, 3), {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0)})
>>> expected_shape(node, (4, 7, 7))
(4, 3, 3)
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .errors import HorqError
from .ir import INPUT, Graph, Node, Op
from .pack import words_for

INT32_MAX = 2**31 - 1
MAX_ORDER = 8  # HORQ_MAX_ORDER in templates/kernels/horq_types.h
GRANULARITIES = ("patch", "pixel", "tensor", "static")


class _Mismatch(Exception):
    """One rule broken; the message says which."""


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise _Mismatch(message)


def _positive(value, what: str) -> int:
    _require(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 1 <= value <= INT32_MAX,
             f"{what} is {value!r}, not a positive 32-bit integer")
    return int(value)


def _pair(value, what: str, minimum: int = 1) -> tuple[int, int]:
    _require(isinstance(value, tuple) and len(value) == 2, f"{what} is {value!r}, not a pair")
    for v in value:
        _require(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and minimum <= v <= INT32_MAX,
                 f"{what} is {value!r}")
    return int(value[0]), int(value[1])


def _param(node: Node, key: str, shape: tuple[int, ...]) -> None:
    array = node.params.get(key)
    _require(array is not None, f"parameter {key} is missing")
    _require(tuple(array.shape) == tuple(shape), f"parameter {key} has shape {tuple(array.shape)}, expected {tuple(shape)}")


def _feature_map(shape: tuple[int, ...]) -> tuple[int, int, int]:
    _require(len(shape) == 3, f"its input has shape {shape}, not (channels, height, width)")
    return shape  # type: ignore[return-value]


def _window(node: Node, in_shape: tuple[int, ...], out_channels: int) -> tuple[int, int, int]:
    """Output of a kernel window (conv or pool) over a zero-padded input, floor mode."""
    _, h, w = _feature_map(in_shape)
    kh, kw = _pair(node.attrs.get("kernel"), "kernel")
    sh, sw = _pair(node.attrs.get("stride"), "stride")
    ph, pw = _pair(node.attrs.get("padding"), "padding", minimum=0)
    _require(h + 2 * ph >= kh and w + 2 * pw >= kw,
             f"kernel {(kh, kw)} is larger than the padded input {(h + 2 * ph, w + 2 * pw)}")
    return out_channels, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def _transform_params(node: Node, channels: int) -> None:
    _param(node, "scale", (channels,))
    _param(node, "offset", (channels,))
    for key in ("exact_scale", "exact_offset", "offset_terms"):
        if key in node.params:
            _param(node, key, (channels,))


def _horq_attrs(node: Node) -> None:
    order = node.attrs.get("order")
    _require(isinstance(order, int) and 1 <= order <= MAX_ORDER, f"order {order!r} is outside 1..{MAX_ORDER}")
    _require(node.attrs.get("granularity") in GRANULARITIES, f"granularity {node.attrs.get('granularity')!r}")
    if node.attrs["granularity"] == "static":
        _param(node, "betas", (order,))


def _conv(node: Node, in_shape: tuple[int, ...], lowered: bool) -> tuple[int, ...]:
    c, _, _ = _feature_map(in_shape)
    _require(tuple(node.attrs.get("in_shape", ())) == tuple(in_shape),
             f"it declares input shape {tuple(node.attrs.get('in_shape', ()))}, its input has {tuple(in_shape)}")
    kh, kw = _pair(node.attrs.get("kernel"), "kernel")
    weights = node.params.get("weight_bits" if lowered and node.op == Op.HORQ_CONV2D else "weight")
    _require(weights is not None and weights.ndim >= 1, "its weights are missing")
    out_channels = _positive(weights.shape[0], "the output channel count")
    groups = node.attrs.get("groups", 1)
    if node.op == Op.HORQ_CONV2D:
        _horq_attrs(node)
        _require(groups == 1, f"groups={groups!r} is not supported for HORQ convolutions")
    groups = _positive(groups, "groups")
    _require(c % groups == 0 and out_channels % groups == 0,
             f"groups={groups} does not divide both its {c} input and {out_channels} output channels")
    if lowered and node.op == Op.HORQ_CONV2D:
        _param(node, "weight_bits", (out_channels, kh * kw * words_for(c)))
    elif lowered:
        _param(node, "weight", (out_channels, kh, kw, c // groups))
    else:
        _param(node, "weight", (out_channels, c // groups, kh, kw))
    _transform_params(node, out_channels)
    return _window(node, in_shape, out_channels)


def _linear(node: Node, in_shape: tuple[int, ...], lowered: bool) -> tuple[int, ...]:
    features = math.prod(in_shape)
    _require(node.attrs.get("in_features") == features,
             f"it declares {node.attrs.get('in_features')} input features, its input has {features}")
    weights = node.params.get("weight_bits" if lowered and node.op == Op.HORQ_LINEAR else "weight")
    _require(weights is not None and weights.ndim == 2, "its weights are missing or not a matrix")
    out_features = _positive(weights.shape[0], "the output feature count")
    if node.op == Op.HORQ_LINEAR:
        _horq_attrs(node)
        _param(node, "weight_bits" if lowered else "weight", (out_features, words_for(features) if lowered else features))
    else:
        _param(node, "weight", (out_features, features))
    _transform_params(node, out_features)
    return (out_features,)


def _per_channel(in_shape: tuple[int, ...]) -> int:
    """Channels of a feature map, features of a vector: what per-channel parameters are indexed by."""
    return in_shape[0] if len(in_shape) == 3 else math.prod(in_shape)


def _batchnorm(node: Node, in_shape: tuple[int, ...], lowered: bool) -> tuple[int, ...]:
    channels = _per_channel(in_shape)
    for key in ("mean", "var", "weight", "bias"):
        _param(node, key, (channels,))
    eps = node.attrs.get("eps")
    _require(isinstance(eps, float) and math.isfinite(eps) and eps >= 0, f"eps is {eps!r}")
    return in_shape


def _affine(node: Node, in_shape: tuple[int, ...], lowered: bool) -> tuple[int, ...]:
    _transform_params(node, _per_channel(in_shape))
    return in_shape


def _elementwise(node: Node, in_shape: tuple[int, ...], lowered: bool) -> tuple[int, ...]:
    if node.op == Op.HARDTANH:
        low, high = node.attrs.get("low"), node.attrs.get("high")
        _require(isinstance(low, float) and isinstance(high, float) and low <= high, f"bounds {low!r}, {high!r}")
    return in_shape


def _pool(node: Node, in_shape: tuple[int, ...], lowered: bool) -> tuple[int, ...]:
    c, _, _ = _feature_map(in_shape)
    kh, kw = _pair(node.attrs.get("kernel"), "kernel")
    ph, pw = _pair(node.attrs.get("padding"), "padding", minimum=0)
    _require(2 * ph <= kh and 2 * pw <= kw, f"padding {(ph, pw)} is more than half the kernel {(kh, kw)}")
    return _window(node, in_shape, c)


def _flatten(node: Node, in_shape: tuple[int, ...], lowered: bool) -> tuple[int, ...]:
    return (math.prod(in_shape),)


def _to_chw(node: Node, in_shape: tuple[int, ...], lowered: bool) -> tuple[int, ...]:
    _require(tuple(node.attrs.get("dims", ())) == tuple(in_shape),
             f"it reorders dims {node.attrs.get('dims')}, its input has {tuple(in_shape)}")
    return (math.prod(in_shape),)


def _to_hwc(node: Node, in_shape: tuple[int, ...], lowered: bool) -> tuple[int, ...]:
    return in_shape


def _prelu(node: Node, in_shape: tuple[int, ...], lowered: bool) -> tuple[int, ...]:
    _param(node, "slope", (_per_channel(in_shape),))
    return in_shape


def _add(node: Node, in_shapes: list[tuple[int, ...]], lowered: bool) -> tuple[int, ...]:
    _require(len(in_shapes) == 2, f"it adds {len(in_shapes)} tensors, not two")
    _require(math.prod(in_shapes[0]) == math.prod(in_shapes[1]) and (lowered or in_shapes[0] == in_shapes[1]),
             f"it adds tensors of shapes {in_shapes[0]} and {in_shapes[1]}")
    return in_shapes[0] if len(in_shapes[0]) >= len(in_shapes[1]) else in_shapes[1]


def _concat(node: Node, in_shapes: list[tuple[int, ...]], lowered: bool) -> tuple[int, ...]:
    _require(len(in_shapes) >= 2, f"it concatenates {len(in_shapes)} tensor")
    if all(len(s) == 1 or math.prod(s[1:]) == 1 for s in in_shapes):  # vectors (or 1x1 maps): appended
        features = sum(_per_channel(s) for s in in_shapes)
        return (features,) if len(in_shapes[0]) == 1 else (features, 1, 1)
    spatial = {tuple(s[1:]) for s in in_shapes}
    _require(all(len(s) == 3 for s in in_shapes) and len(spatial) == 1,
             f"it concatenates the channels of tensors of shapes {', '.join(map(str, in_shapes))}")
    return (sum(s[0] for s in in_shapes), *in_shapes[0][1:])


_Rule = Callable[[Node, tuple, bool], tuple]
_RULES: dict[Op, _Rule] = {
    Op.CONV2D: _conv, Op.HORQ_CONV2D: _conv, Op.LINEAR: _linear, Op.HORQ_LINEAR: _linear,
    Op.BATCHNORM: _batchnorm, Op.AFFINE: _affine, Op.RELU: _elementwise, Op.HARDTANH: _elementwise,
    Op.MAXPOOL2D: _pool, Op.AVGPOOL2D: _pool, Op.FLATTEN: _flatten, Op.TO_CHW: _to_chw, Op.TO_HWC: _to_hwc,
    Op.PRELU: _prelu,
}
#: Rules of the ops that read several tensors: they get every input's shape.
_MULTI_RULES: dict[Op, Callable[[Node, list, bool], tuple]] = {Op.ADD: _add, Op.CONCAT: _concat}


def expected_shape(node: Node, in_shape, lowered: bool = False) -> tuple[int, ...]:
    """The output shape that ``node``'s op gives for an input of ``in_shape`` (a list of shapes for
    ADD and CONCAT); raises on a broken rule."""
    if node.op in _MULTI_RULES:
        return tuple(int(d) for d in _MULTI_RULES[node.op](node, [tuple(s) for s in in_shape], lowered))
    _require(node.op in _RULES, f"op {node.op.value} has no shape rule")
    return tuple(int(d) for d in _RULES[node.op](node, tuple(in_shape), lowered))


def check_graph(graph: Graph) -> None:
    """Every node's declared shape and parameters against the rules; :class:`HorqError` naming the first broken one."""
    lowered = graph.layout == "hwc"
    shapes = {INPUT: tuple(graph.input_shape)}
    for d in graph.input_shape:
        if not 1 <= d <= INT32_MAX:
            raise HorqError(f"the model input has shape {tuple(graph.input_shape)}")
    for node in graph.nodes:
        where = f"layer {node.name} ({node.source or node.op.value})"
        arity_ok = len(node.inputs) >= 2 if node.op in _MULTI_RULES else len(node.inputs) == 1
        if not arity_ok or any(i not in shapes for i in node.inputs):
            raise HorqError(f"{where} reads {node.inputs}, which no earlier layer computes")
        in_shapes = [shapes[i] for i in node.inputs]
        if lowered and len(node.shape) == 1 and node.op != Op.TO_CHW:
            # A vector op reading a feature map whose flattening was folded away.
            in_shapes = [(math.prod(s),) if len(s) == 3 else s for s in in_shapes]
        in_shape = in_shapes if node.op in _MULTI_RULES else in_shapes[0]
        try:
            expected = expected_shape(node, in_shape, lowered)
        except _Mismatch as exc:
            raise HorqError(f"{where}: {exc}") from None
        if tuple(node.shape) != expected:
            raise HorqError(f"{where} declares output shape {tuple(node.shape)}, but its input {in_shape}, "
                            f"weights and attributes give {expected}")
        if math.prod(expected) > INT32_MAX:
            raise HorqError(f"{where} has {math.prod(expected):,} outputs, more than the kernels' 32-bit indices reach")
        shapes[node.name] = expected
    if graph.output not in shapes or graph.output == INPUT:
        raise HorqError(f"the model's output {graph.output} is not computed by a layer")
