"""Integer mode: int8 tensors between layers, scales from calibration (README, "Integer mode").

A tensor between layers is int8 with one scale per tensor, symmetric (no zero point): the
real value of ``q`` is ``q * scale``. Symmetric, because zero is then exactly the integer 0, so
zero padding stays exact, and the HORQ quantizers' sign rule ``sgn(x) = +1 iff x >= 0`` is the
sign of the integer itself; and no kernel carries zero-point corrections. The price is one bit
of range on tensors that are never negative (after a ReLU).

**Requantization**, defined here and in ``horq_types.h`` (``horq_requantize``), the only way a
value becomes int8: a float32 ``y`` already in integer steps of the output's scale is clamped to
``[-128, 127]`` (NaN to -128) and rounded half to even by adding and subtracting ``1.5 * 2**23``
(exact in float32 for ``|y| <= 2**22``, and the same on every target with ``-ffp-contract=off``).
Every layer computes ``y = act(acc * scale[o] + offset[o])`` in float32 from its accumulator
(an int32 sum of int8 products, or a HORQ layer's float sum of ``beta * dot``), with the tensor
scales folded into ``scale`` and ``offset`` at generation time, then requantizes ``y``. So one
float multiply-add per output remains; every sum over inputs is integer (or, in HORQ layers,
a float sum of integers, exact below ``2**24``).

**Calibration**: each tensor's scale is ``max |x| / 127`` over the calibration inputs, run
through the float reference of the same lowered graph; a tensor read only by ``static`` HORQ
layers spans at most ``STATIC_HEADROOM`` times their largest threshold instead (what lies beyond
gives the same planes). Max pooling, average pooling, layout
copies, a standalone ReLU or Hardtanh keep their input's scale.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .errors import HorqError
from .integer_quantizer import UNIT, static_betas_in_units
from .pack import pack_signs
from .ir import ANALYSIS_PARAMS, HORQ_OPS, INPUT, Activation, Graph, Node, Op

ACTIVATIONS = ("int8", "float")  # the first is the default


@dataclass(frozen=True)
class Lowering:
    """How to lower: ``int8`` tensors between layers (calibrated on ``calibration``, else on the
    model's dataset, else on seeded random inputs with a warning) or ``float`` ones."""
    activations: str = ACTIVATIONS[0]
    calibration: np.ndarray | None = None
    calibration_source: str = "--calibration"
    warn: Callable[[str], None] | None = None
    residual: str = "float"  # RESIDUALS: the residual stream's type in integer mode


#: The residual stream in integer mode (the first is the default): ``float`` keeps residual sums,
#: PReLUs and the shifts, clamps, poolings and concatenations of their outputs in float32, and the
#: real-valued convolutions that only feed them (a stem, 1x1 shortcuts); the HORQ convolutions
#: between them read int8 (each quantizes its input at its own scale) and write float for a float
#: reader; ``int8`` makes every tensor int8. Why float: a Bi-Real network's stream spans
#: its largest values, so one int8 step of it is a sizeable part of the distance between the
#: binarizing thresholds, and signs flip block after block (the bundled Bi-Real example: 94.4 %
#: of its test digits classified as by the model with an int8 stream, 100 % with a float one).
RESIDUALS = ("float", "int8")
#: Ops that are the residual stream: float where the stream is.
STREAM_OPS = frozenset({Op.ADD, Op.PRELU})
#: Ops that stay in the float stream when every tensor they read is in it.
STREAM_FOLLOWERS = frozenset({Op.AFFINE, Op.RELU, Op.HARDTANH, Op.CONCAT, Op.MAXPOOL2D, Op.AVGPOOL2D, Op.TO_CHW})


QMIN, QMAX = -128, 127
ROUNDING_MAGIC = np.float32(12582912.0)  # 1.5 * 2**23: adding it rounds a float32 to an integer, half to even
CALIBRATION_SAMPLES = 200  # at most this many inputs are run to find the scales,
CALIBRATION_VALUES = 1 << 24  # and at most this many input values in all (64 MB of float32)
CALIBRATION_SEED = 0

STATIC_HEADROOM = 1.05  # a tensor read only by static quantizers spans 5 % past their largest threshold

#: Ops that keep their input's scale: they only select, average or copy int8 values.
SCALE_PRESERVING = frozenset({Op.MAXPOOL2D, Op.AVGPOOL2D, Op.TO_CHW, Op.RELU, Op.HARDTANH})


ALIGNED_STEPS = 126.5  # an order-2 static threshold's place on the int8 grid: halfway between 126 and 127


def aligned_scale(readers: list[Node]) -> float | None:
    """The scale that puts the one threshold of order-2 static readers (all with the same beta_1)
    halfway between two int8 steps, ``beta_1 = 126.5 * scale``, or None.

    Why: a value's second plane is ``sgn(x - beta_1)`` (positive x) or ``sgn(x + beta_1)``; with
    the threshold halfway between steps, rounding x to the nearest step never crosses it, so the
    int8 planes are the float value's planes exactly (the first plane's threshold, 0, is a step:
    ``horq_quantize_signs_i8`` keeps it exact too). Values past ``127 * scale`` clip, which
    changes no plane. ``beta_1`` in residual units is then ``126.5 * 256``, an integer.

    >>> from .ir import Node, Op
    >>> layer = Node("h", Op.HORQ_CONV2D, ("x",), (1, 1, 1), {"order": 2, "granularity": "static"},
    ...              {"betas": np.array([0.5, 0.25], np.float32)})
    >>> aligned_scale([layer]) == float(np.float32(0.5 / 126.5)), aligned_scale([layer.replace(attrs={"order": 3})])
    (True, None)
    """
    if not readers or any(n.attrs.get("order") != 2 or n.attrs.get("granularity") != "static" for n in readers):
        return None
    first = {float(n.params["betas"][0]) for n in readers}
    if len(first) != 1 or not next(iter(first)) > 0:
        return None
    return float(np.float32(next(iter(first)) / ALIGNED_STEPS))


def requantize(y: np.ndarray) -> np.ndarray:
    """Float32 values in integer steps to int8: clamp (NaN to -128), round half to even.

    >>> requantize(np.array([0.5, 1.5, -2.5, 126.7, 300.0, -1e9, np.nan], np.float32)).tolist()
    [0, 2, -2, 127, 127, -128, -128]
    """
    y = np.asarray(y, np.float32)
    with np.errstate(invalid="ignore"):
        clamped = np.where(y > QMAX, np.float32(QMAX), np.where(y >= QMIN, y, np.float32(QMIN))).astype(np.float32)
    return ((clamped + ROUNDING_MAGIC) - ROUNDING_MAGIC).astype(np.int8)


def tensor_scale(max_abs: float) -> float:
    """The scale that maps ``max_abs`` to 127 (1 for an all-zero tensor), rounded to float32.

    >>> tensor_scale(127.0), tensor_scale(0.0)
    (1.0, 1.0)
    """
    return float(np.float32(max_abs / QMAX)) if max_abs > 0 and np.isfinite(max_abs) else 1.0


def quantize_weights(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per output channel symmetric int8 weights: (int8 weights, float64 scales).

    >>> q, s = quantize_weights(np.array([[0.5, -1.0], [0.0, 0.0]], np.float32))
    >>> q.tolist(), s.tolist()
    ([[64, -127], [0, 0]], [0.007874015748031496, 1.0])
    """
    rows = weight.reshape(weight.shape[0], -1).astype(np.float64)
    peak = np.abs(rows).max(axis=1)
    scales = np.where(peak > 0, peak / QMAX, 1.0)
    q = np.clip(np.rint(rows / scales[:, None]), -QMAX, QMAX).astype(np.int8)
    return q.reshape(weight.shape), scales


def calibration_inputs(shape: tuple[int, ...], given: np.ndarray | None, what: str,
                       warn: Callable[[str], None] | None = None) -> np.ndarray:
    """The inputs scales are measured on: ``given`` (at most CALIBRATION_SAMPLES of them, and at most
    CALIBRATION_VALUES values), else seeded random normal inputs, with a warning that the scales then
    fit no real data."""
    count = max(1, min(CALIBRATION_SAMPLES, CALIBRATION_VALUES // max(1, int(np.prod(shape)))))
    if given is not None:
        if tuple(given.shape) == tuple(shape):
            given = given[None]  # one sample without its batch axis
        if tuple(given.shape[1:]) != tuple(shape):
            raise HorqError(f"{what}: inputs of shape {tuple(given.shape)}, but the model takes "
                            f"(N, {', '.join(map(str, shape))})")
        return np.ascontiguousarray(given[:count], np.float32)
    (warn or (lambda line: print(line, file=sys.stderr)))(
        "horq-codegen: warning: no calibration data (the model names no dataset; give --calibration FILE.npy): "
        f"int8 scales come from {count} seeded random normal inputs and may fit your data badly")
    rng = np.random.default_rng(CALIBRATION_SEED)
    return rng.standard_normal((count, *shape), dtype=np.float32)


def calibrate(graph: Graph, inputs: np.ndarray) -> dict[str, float]:
    """max |x| of every tensor of a lowered float graph (and of its input) over ``inputs``."""
    from . import reference  # the reference requantizes with this module's function
    peaks: dict[str, float] = {}
    for sample in inputs:
        for name, values in reference.run_traced(graph, sample).items():
            finite = np.abs(values[np.isfinite(values)])
            peak = float(finite.max()) if finite.size else 0.0
            peaks[name] = max(peaks.get(name, 0.0), peak)
    return peaks


def _in_steps(activation: Activation, scale: float) -> Activation:
    """An activation's clamps in integer steps of ``scale``."""
    if activation.kind != "hardtanh":
        return activation
    return Activation("hardtanh", float(np.float32(activation.low / scale)), float(np.float32(activation.high / scale)))


def _transform_params(node: Node, scale: np.ndarray, offset: np.ndarray) -> dict[str, np.ndarray]:
    params = {k: v for k, v in node.params.items() if k not in ANALYSIS_PARAMS}
    params["scale"], params["offset"] = scale.astype(np.float32), offset.astype(np.float32)
    return params


class _Builder:
    """Walks a lowered float graph in order and writes its integer version."""

    def __init__(self, graph: Graph, peaks: dict[str, float], residual: str = RESIDUALS[0]):
        if residual not in RESIDUALS:
            raise HorqError(f"unknown residual stream {residual!r}; choose one of: {', '.join(RESIDUALS)}")
        self.graph, self.peaks, self.residual = graph, peaks, residual
        self.stream: set[str] = set()      # float tensors of the residual stream
        self.float_of: dict[str, str] = {}  # an int8 tensor's name -> its float version
        self.nodes: list[Node] = []
        self.int8_of: dict[str, str] = {}  # a float tensor's name -> its int8 version
        self.scale_of: dict[str, float] = {}
        self.dtype_of: dict[str, str] = {INPUT: "f32"}

    def add(self, node: Node) -> Node:
        self.nodes.append(node)
        self.dtype_of[node.name] = node.dtype
        if node.dtype == "i8":
            self.scale_of[node.name] = node.out_scale
        return node

    def int8_input(self, name: str) -> str:
        """The int8 tensor that stands for ``name``: itself, or a QUANTIZE of it (made once)."""
        if self.dtype_of[name] == "i8":
            return name
        if name not in self.int8_of:
            scale = self.int8_scale(name) if name != INPUT else tensor_scale(self.peaks.get(name, 0.0))
            # A tensor of the float stream that only HORQ quantizers read keeps every value's sign: a
            # PReLU's small negatives (the slope shrinks them) would otherwise round to 0, which is +1.
            readers = [n for n in self.graph.nodes if name in n.inputs]
            keep_signs = name in self.stream and bool(readers) and all(n.op in HORQ_OPS for n in readers)
            quantize = Node(f"{name}_q", Op.QUANTIZE, (name,), self.graph.shape_of(name),
                            attrs={"keep_signs": True} if keep_signs else {},
                            params={"inv_scale": np.array([1.0 / scale], np.float32)},
                            source="int8 input", dtype="i8", out_scale=scale)
            if keep_signs:
                quantize = self.absorb_shift(quantize)
            self.add(quantize)
            self.int8_of[name] = quantize.name
        return self.int8_of[name]

    def absorb_shift(self, quantize: Node) -> Node:
        """A QUANTIZE of a float affine (ReActNet's learnable shift before a HORQ layer) that nothing
        else reads does the affine itself: one pass over the stream (``horq_shift_quantize_i8``) and
        no float tensor of the shifted values. This is the shift folded into the HORQ layer's input."""
        affine = next((n for n in self.nodes if n.name == quantize.inputs[0]), None)
        readers = [n for n in self.graph.nodes if quantize.inputs[0] in n.inputs]
        if affine is None or affine.op != Op.AFFINE or affine.dtype != "f32" or affine.activation.kind != "none" \
                or len(readers) != 1 or affine.inputs[0] == INPUT:
            return quantize
        self.nodes.remove(affine)
        params = {**quantize.params, "pre_scale": affine.params["scale"], "pre_offset": affine.params["offset"]}
        return quantize.replace(name=f"{affine.name}_q", inputs=affine.inputs, params=params,
                                source=f"{affine.source} + int8 input")

    def float_input(self, name: str) -> str:
        """The float tensor that stands for ``name``: itself, or a DEQUANTIZE of it (made once)."""
        if self.dtype_of[name] == "f32":
            return name
        if name not in self.float_of:
            source = next(n for n in self.nodes if n.name == name)
            dequantize = Node(f"{name}_dq", Op.DEQUANTIZE, (name,), source.shape,
                              params={"scale": np.array([source.out_scale], np.float32)}, source="float stream")
            self.add(dequantize)
            self.float_of[name] = dequantize.name
        return self.float_of[name]

    def in_stream(self, node: Node) -> bool:
        """Whether ``node`` stays float: the residual stream (``residual="float"``)."""
        if self.residual != "float":
            return False
        return node.op in STREAM_OPS or (node.op in STREAM_FOLLOWERS and all(i in self.stream for i in node.inputs))

    def real_valued_into_stream(self, node: Node) -> bool:
        """A float convolution or linear layer read only by the float stream (a stem, a 1x1 shortcut
        of Bi-Real Net) stays float: in int8 it would quantize the stream at the stream's full range
        and add that error into it (the Bi-Real example: 98.4 % argmax agreement with int8 stem and
        shortcuts, 100 % on the same digits with float ones, for about 15 % more instructions)."""
        return (self.residual == "float" and node.op in (Op.CONV2D, Op.LINEAR) and node.name != self.graph.output
                and self.output_scale(node)[0] == "f32")

    def output_scale(self, node: Node) -> tuple[str, float]:
        """The node's output type: float for the graph's output (dequantization folded in) and for a
        convolution read only by the float residual stream, else int8."""
        if node.name == self.graph.output:
            return "f32", 1.0
        readers = [n for n in self.graph.nodes if node.name in n.inputs]
        if self.residual == "float" and readers and all(n.op in STREAM_OPS for n in readers):
            return "f32", 1.0
        return "i8", self.int8_scale(node.name)

    def int8_scale(self, name: str) -> float:
        """The int8 scale of tensor ``name``: its calibrated range, narrowed for static quantizers."""
        peak = self.peaks.get(name, 0.0)
        readers = [n for n in self.graph.nodes if name in n.inputs]
        if readers and all(n.op in HORQ_OPS and n.attrs["granularity"] == "static" for n in readers):
            # Only static quantizers read it, and they see it through their thresholds only (0 and the
            # sums of all but the last beta): a value beyond the largest threshold gives the same planes
            # however far it lies, so the range can end a little past it and the steps be finer.
            threshold = max(float(np.abs(n.params["betas"][:-1]).sum()) for n in readers)
            aligned = aligned_scale(readers)
            if aligned is not None and (peak == 0 or peak >= threshold):
                return aligned
            if threshold > 0:
                peak = min(peak, STATIC_HEADROOM * threshold) if peak > 0 else STATIC_HEADROOM * threshold
        return tensor_scale(peak)

    def join_scale(self, node: Node) -> float:
        """The int8 scale of an ADD, CONCAT or PReLU output; the graph's output too is int8 here (the
        kernels write int8 only), dequantized after (:meth:`finish`)."""
        if node.name == self.graph.output:
            return tensor_scale(self.peaks.get(node.name, 0.0))
        return self.int8_scale(node.name)

    def lower_join(self, node: Node) -> None:
        """ADD, CONCAT and PReLU on int8 tensors: each input's scale over the output's folded into
        the kernel's ratios (``horq_add_i8``, ``horq_copy_channels_i8``, ``horq_prelu_i8``)."""
        sources = tuple(self.int8_input(name) for name in node.inputs)
        s_out = self.join_scale(node)
        ratios = np.array([self.scale_of[name] / s_out for name in sources], np.float32)
        if node.op == Op.PRELU:
            negative = node.params["slope"].astype(np.float64) * self.scale_of[sources[0]] / s_out
            params = {"positive": ratios, "negative": negative.astype(np.float32)}
        else:
            params = {"ratios": ratios}
            if "slope" in node.params:  # a fused PReLU, on values in output steps: the same slopes
                params["slope"] = node.params["slope"]
        self.add(node.replace(inputs=sources, params=params, activation=_in_steps(node.activation, s_out),
                              dtype="i8", out_scale=s_out))

    def lower(self, node: Node) -> None:
        if node.op == Op.TO_HWC:  # the caller's float input, reordered: quantized after the copy
            self.add(node)
            return
        if self.in_stream(node) or self.real_valued_into_stream(node):
            self.stream.add(node.name)
            self.add(node.replace(inputs=tuple(self.float_input(name) for name in node.inputs)))
            return
        if node.op in (Op.ADD, Op.CONCAT, Op.PRELU):
            self.lower_join(node)
            return
        source = self.int8_input(node.inputs[0])
        s_in = self.scale_of[source]
        if node.op in SCALE_PRESERVING:
            if node.op in (Op.RELU, Op.HARDTANH):  # a clamp in integer steps: an affine with scale 1
                activation = Activation("relu") if node.op == Op.RELU else \
                    _in_steps(Activation("hardtanh", node.attrs["low"], node.attrs["high"]), s_in)
                channels = node.shape[-1] if len(node.shape) == 1 else node.shape[0]
                node = node.replace(op=Op.AFFINE, attrs={}, activation=activation,
                                    params={"scale": np.ones(channels, np.float32),
                                            "offset": np.zeros(channels, np.float32)})
            self.add(node.replace(inputs=(source,), dtype="i8", out_scale=s_in))
            return
        dtype, s_out = self.output_scale(node)
        scale = node.params["scale"].astype(np.float64) * s_in / s_out
        offset = node.params["offset"].astype(np.float64) / s_out
        activation = _in_steps(node.activation, s_out) if dtype == "i8" else node.activation
        if node.op in (Op.CONV2D, Op.LINEAR):
            weights, weight_scales = quantize_weights(node.params["weight"])
            params = _transform_params(node, scale * weight_scales, offset)
            params["weight"] = weights
        elif node.op in HORQ_OPS:  # the quantizer reads the int8 input; its betas come in 1/UNIT steps
            params = _transform_params(node, scale / UNIT, offset)
            if node.attrs["granularity"] == "static":
                params["betas"] = static_betas_in_units(node.params["betas"], s_in)
        elif node.op == Op.AFFINE:
            params = _transform_params(node, scale, offset)
        else:
            raise HorqError(f"internal: no integer form for {node.op.value} ({node.source})")
        self.add(node.replace(inputs=(source,), params=params, activation=activation, dtype=dtype, out_scale=s_out))

    def finish(self) -> Graph:
        output = self.graph.output
        last = self.nodes[-1]
        if last.dtype == "i8":  # an output that is not a layer's transform (a pooling): back to float
            self.add(Node(f"{output}_dq", Op.DEQUANTIZE, (last.name,), last.shape,
                          params={"scale": np.array([last.out_scale], np.float32)}, source="float output"))
            output = self.nodes[-1].name
        elif last.name != output:
            raise HorqError("internal: the output must be computed by the last op")
        return self.graph.replace(nodes=tuple(self.nodes), output=output)


def nonnegative_scales(conv: Node) -> Node:
    """A convolution whose channels of negative scale have their weights and scale negated.

    Why: a convolution with a fused max pooling (int8 weights) pools its int32 accumulators and
    transforms only each window's largest, which equals the max of the transformed values only
    where the transform ``requantize(act(float(acc) * scale + offset))`` is non-decreasing in acc,
    that is where scale >= 0 (horq_kernels.h, horq_conv2d_i8_params). Negating a channel changes
    nothing, bit for bit: int8 weights lie in [-127, 127], so their negation is exact, the int32
    accumulator negates exactly, float conversion and float products round symmetrically, so
    ``float(-acc) * -scale == float(acc) * scale``.

    >>> node = Node("c", Op.CONV2D, ("x",), (2, 1, 1), params={
    ...     "weight": np.array([[[[3]]], [[[-5]]]], np.int8), "scale": np.array([-0.5, 0.25], np.float32),
    ...     "offset": np.zeros(2, np.float32)}, dtype="i8")
    >>> flipped = nonnegative_scales(node)
    >>> flipped.params["weight"].ravel().tolist(), flipped.params["scale"].tolist()
    ([-3, -5], [0.5, 0.25])
    """
    if conv.op == Op.HORQ_CONV2D:
        return _nonnegative_horq_scales(conv)
    weight, scale = conv.params["weight"], conv.params["scale"]
    if weight.dtype != np.int8 or not (scale < 0).any():
        return conv
    if (weight == QMIN).any():
        raise HorqError(f"internal: int8 weights of {conv.source} reach {QMIN}, whose negation is not int8")
    sign = np.where(scale < 0, -1, 1)
    weight = (weight.astype(np.int16) * sign.reshape(-1, *[1] * (weight.ndim - 1))).astype(np.int8)
    return conv.replace(params={**conv.params, "weight": weight, "scale": (scale * sign).astype(np.float32)})


def _nonnegative_horq_scales(conv: Node) -> Node:
    """The same for a HORQ convolution, whose pooling keeps the largest float accumulator
    ``sum_k beta_k * dot_k``: a channel's weight bits are inverted (its real bits only: padding
    bits stay 0), which negates every dot product exactly, and so the accumulator (float rounding
    is symmetric), and its scale is negated."""
    scale = conv.params["scale"]
    if not (scale < 0).any():
        return conv
    c = conv.attrs["in_shape"][0]
    taps = int(np.prod(conv.attrs["kernel"]))
    real_bits = pack_signs(-np.ones((taps, c), np.float32)).reshape(-1)  # each tap's channels start a word
    flip = np.where((scale < 0)[:, None], real_bits[None, :], np.uint32(0)).astype(np.uint32)
    params = {**conv.params, "weight_bits": conv.params["weight_bits"] ^ flip,
              "scale": np.where(scale < 0, -scale, scale).astype(np.float32)}
    return conv.replace(params=params)


def fuse_max_pooling(graph: Graph) -> Graph:
    """A max pooling of window = stride, no padding, right after an int8 convolution (float or HORQ)
    that nothing else reads, done by the convolution: it keeps each pooled position's running max of
    its outputs, so the unpooled tensor never exists. It keeps the max of its accumulators (int32 for
    an int8 convolution, float ``sum_k beta_k dot_k`` for a HORQ one) and transforms it once, which
    is the max of the transformed values because its scales are made non-negative first
    (:func:`nonnegative_scales`)."""
    nodes = list(graph.nodes)
    for pool in [n for n in graph.nodes if n.op == Op.MAXPOOL2D]:
        (kh, kw), (sh, sw), (ph, pw) = pool.attrs["kernel"], pool.attrs["stride"], pool.attrs["padding"]
        source = pool.inputs[0]
        readers = [n for n in nodes if source in n.inputs]
        conv = next((n for n in nodes if n.name == source), None)
        if conv is None or conv.op not in (Op.CONV2D, Op.HORQ_CONV2D) or conv.dtype != "i8" or len(readers) != 1 \
                or not (kh == kw == sh == sw and ph == pw == 0 and kh > 1) or source == graph.output:
            continue
        fused = conv.replace(shape=pool.shape, attrs={**conv.attrs, "pool": kh, "conv_out": conv.shape},
                             source=f"{conv.source} + {pool.source}")
        fused = nonnegative_scales(fused)
        nodes = [fused if n.name == conv.name else n for n in nodes if n.name != pool.name]
        nodes = [n.replace(inputs=tuple(conv.name if i == pool.name else i for i in n.inputs)) for n in nodes]
        if graph.output == pool.name:
            graph = graph.replace(output=conv.name)
    return graph.replace(nodes=tuple(nodes))


def _only_reader(graph: Graph, name: str) -> Node | None:
    readers = [n for n in graph.nodes if name in n.inputs]
    return readers[0] if len(readers) == 1 and name != graph.output else None


def _without(graph: Graph, removed: Node, replacement: Node) -> Graph:
    """``graph`` with ``replacement`` in the place of the node of its name and ``removed`` gone, its
    readers reading ``replacement`` instead."""
    nodes = [replacement if n.name == replacement.name else n for n in graph.nodes if n.name != removed.name]
    nodes = [n.replace(inputs=tuple(replacement.name if i == removed.name else i for i in n.inputs)) for n in nodes]
    output = replacement.name if graph.output == removed.name else graph.output
    return graph.replace(nodes=tuple(nodes), output=output)


def _clamp_range(activation: Activation) -> tuple[float, float]:
    """The interval an activation (in integer steps) and requantization leave a value in."""
    low, high = float(QMIN), float(QMAX)
    if activation.kind == "relu":
        low = 0.0
    elif activation.kind == "hardtanh":
        low, high = max(low, activation.low), min(high, activation.high)
    return low, high


def fold_affine(conv: Node, affine: Node) -> Node:
    """``conv`` computing ``affine(conv)`` in one transform: ``requantize(clamp(acc * S + O, low, high))``
    per channel, with ``S = scale * A``, ``O = offset * A + B`` (A, B: the affine's) and the clamps of
    the convolution's activation mapped through the affine (swapped where A < 0), within the affine's
    own activation. Exact in real numbers: ``A * clamp(t, l, h) + B = clamp(A t + B, A l + B, A h + B)``
    for A >= 0, and ``clamp(clamp(x, a, b), c, d) = clamp(x, clamp(a, c, d), clamp(b, c, d))``. The
    int8 value between them, and its rounding, are gone. A fused pooling stays on the accumulators,
    before the transform, which is where the model pools (before the affine)."""
    a = affine.params["scale"].astype(np.float64)
    b = affine.params["offset"].astype(np.float64)
    low, high = _clamp_range(conv.activation)
    ends = np.stack([a * low + b, a * high + b])
    inner_low, inner_high = ends.min(axis=0), ends.max(axis=0)
    outer_low, outer_high = _clamp_range(affine.activation)
    params = {**conv.params,
              "scale": (conv.params["scale"].astype(np.float64) * a).astype(np.float32),
              "offset": (conv.params["offset"].astype(np.float64) * a + b).astype(np.float32),
              "clamp_low": np.clip(inner_low, outer_low, outer_high).astype(np.float32),
              "clamp_high": np.clip(inner_high, outer_low, outer_high).astype(np.float32)}
    return conv.replace(params=params, activation=Activation(), out_scale=affine.out_scale,
                        source=f"{conv.source} + {affine.source}")


def fuse_affine_after_convolution(graph: Graph) -> Graph:
    """An int8 AFFINE (a BatchNorm that could not fold into the float graph, after an activation or
    a max pooling) that alone reads an int8 convolution's output is done by the convolution: no
    separate pass over the tensor, and the tensor between them never exists. Per channel, it folds
    into the convolution's transform (:func:`fold_affine`); per feature (a BatchNorm1d after a
    flattening), it runs on each final value with its own requantization (``post_scale``,
    ``post_offset``, repeating every ``post_period`` values of the [h][w][c] output)."""
    for name in [n.name for n in graph.nodes if n.op == Op.AFFINE and n.dtype == "i8"]:
        affine = graph.node(name)
        conv = next((n for n in graph.nodes if n.name == affine.inputs[0]), None)
        reader = None if conv is None else _only_reader(graph, conv.name)
        if conv is None or conv.op not in (Op.CONV2D, Op.HORQ_CONV2D) or conv.dtype != "i8" \
                or "post_scale" in conv.params or "clamp_low" in conv.params or reader is None \
                or reader.name != name:
            continue
        if affine.params["scale"].size == conv.shape[0]:
            fused = fold_affine(conv, affine)
        else:
            fused = conv.replace(params={**conv.params, "post_scale": affine.params["scale"],
                                         "post_offset": affine.params["offset"]},
                                 attrs={**conv.attrs, "post_activation": affine.activation},
                                 out_scale=affine.out_scale, source=f"{conv.source} + {affine.source}")
        graph = _without(graph, affine, fused)
    return graph


def write_static_planes(graph: Graph) -> Graph:
    """A convolution whose only reader is a ``static`` HORQ layer writes that layer's bit-planes of
    its int8 values instead of the values (``dtype`` ``bits``): with the betas fixed, each value's
    planes depend on it alone, so they are made once, where the value is made, and the tensor
    between the layers holds K bits a value. The planes are those the reader would make (the same
    integer quantizer), so nothing changes but the memory. A linear reader takes the planes as one
    row, which is the producer's layout only when its channels fill whole words."""
    for name in [n.name for n in graph.nodes if n.op in (Op.CONV2D, Op.HORQ_CONV2D) and n.dtype == "i8"]:
        conv, reader = graph.node(name), _only_reader(graph, name)
        if reader is None or reader.op not in HORQ_OPS or reader.attrs["granularity"] != "static" \
                or (reader.op == Op.HORQ_LINEAR and conv.shape[0] % 32):
            continue
        writer = conv.replace(dtype="bits", attrs={**conv.attrs, "plane_order": reader.attrs["order"]},
                              params={**conv.params, "plane_betas": reader.params["betas"]})
        nodes = [writer if n.name == name else reader.replace(attrs={**reader.attrs, "planes_input": True})
                 if n.name == reader.name else n for n in graph.nodes]
        graph = graph.replace(nodes=tuple(nodes))
    return graph


def to_integer(graph: Graph, peaks: dict[str, float], planes: bool = True, residual: str = RESIDUALS[0]) -> Graph:
    """A lowered float graph with int8 tensors between its layers, at the scales ``peaks`` give (the
    residual stream float or int8: :data:`RESIDUALS`). ``planes=False`` leaves the static layers'
    bit-planes to them, which changes no result (the tests compare both)."""
    builder = _Builder(graph, peaks, residual)
    for node in graph.nodes:
        builder.lower(node)
    graph = fuse_affine_after_convolution(fuse_max_pooling(builder.finish()))
    return write_static_planes(graph) if planes else graph


def is_integer(graph: Graph) -> bool:
    return any(n.dtype != "f32" for n in graph.nodes)
