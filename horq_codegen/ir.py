"""The intermediate representation: a tiny op enum and frozen dataclasses.

A :class:`Graph` is a DAG: a list of :class:`Node` in execution order (each after
every node it reads), each naming the nodes it reads (``"input"`` is the model
input); a node may have several readers, and ADD and CONCAT read several nodes.
Shapes are per sample and logical (``(C, H, W)`` or ``(N,)``); where a tensor lives
in memory channels-last (after :func:`horq_codegen.passes.to_channels_last`),
``Graph.layout`` says so.
"""
from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .pack import words_for

INPUT = "input"


class Op(str, enum.Enum):
    CONV2D = "conv2d"            # float convolution
    LINEAR = "linear"            # float fully connected
    HORQ_CONV2D = "horq_conv2d"  # binary weights, order-K residual-quantized inputs
    HORQ_LINEAR = "horq_linear"
    BATCHNORM = "batchnorm"      # only before lowering; becomes a scale/offset
    AFFINE = "affine"            # per-channel x * scale + offset (an unfoldable BatchNorm)
    RELU = "relu"
    HARDTANH = "hardtanh"
    MAXPOOL2D = "maxpool2d"
    AVGPOOL2D = "avgpool2d"
    FLATTEN = "flatten"
    ADD = "add"                  # elementwise sum of two tensors of one shape (a residual shortcut)
    CONCAT = "concat"            # channel concatenation of its inputs, in input order
    PRELU = "prelu"              # x if x > 0 else slope[c] * x, per channel
    TO_CHW = "to_chw"            # channels-last [h][w][c] to PyTorch's [c][h][w] (a copy)
    TO_HWC = "to_hwc"            # the model input from PyTorch's order to channels-last
    # Integer mode (horq_codegen.integer): int8 tensors between layers.
    QUANTIZE = "quantize"        # float to int8: requantize(x / scale)
    DEQUANTIZE = "dequantize"    # int8 to float: q * scale


#: Parameters kept for verification only, never emitted into C: ``exact_scale`` and ``exact_offset`` are
#: ``scale`` and ``offset`` before their rounding to float32 (the reference's float64 run uses them), and
#: ``offset_terms`` holds, per channel, the sum of the magnitudes of the terms added into ``offset`` (a
#: bias, BatchNorm's shift and mean), which bounds the rounding of PyTorch's unfolded computation
#: (:mod:`horq_codegen.error_bound`).
ANALYSIS_PARAMS = frozenset({"exact_scale", "exact_offset", "offset_terms"})


def emitted_params(node: "Node") -> dict[str, np.ndarray]:
    """The parameters that the generated C stores."""
    return {k: v for k, v in node.params.items() if k not in ANALYSIS_PARAMS}


#: Ops with a per-channel output transform ``y = acc * scale + offset`` and an activation slot.
TRANSFORM_OPS = frozenset({Op.CONV2D, Op.LINEAR, Op.HORQ_CONV2D, Op.HORQ_LINEAR, Op.AFFINE})
#: Ops with an activation slot (a ReLU or Hardtanh after them is fused into it).
ACTIVATION_OPS = TRANSFORM_OPS | {Op.ADD}
#: Ops that read several tensors.
MULTI_INPUT_OPS = frozenset({Op.ADD, Op.CONCAT})
HORQ_OPS = frozenset({Op.HORQ_CONV2D, Op.HORQ_LINEAR})
CONV_OPS = frozenset({Op.CONV2D, Op.HORQ_CONV2D})
LINEAR_OPS = frozenset({Op.LINEAR, Op.HORQ_LINEAR})


@dataclass(frozen=True)
class Activation:
    """An activation fused into the op before it: ``relu`` or ``hardtanh`` clamps."""
    kind: str = "none"  # "none" | "relu" | "hardtanh"
    low: float = 0.0
    high: float = 0.0

    def __str__(self) -> str:
        if self.kind == "hardtanh":
            return f"hardtanh[{self.low:g},{self.high:g}]"
        return self.kind


NO_ACTIVATION = Activation()


@dataclass(frozen=True, eq=False)
class Node:
    name: str
    op: Op
    inputs: tuple[str, ...]
    shape: tuple[int, ...]                       # output shape per sample, logical order
    attrs: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, np.ndarray] = field(default_factory=dict)
    activation: Activation = NO_ACTIVATION
    source: str = ""                             # where it came from, e.g. "features.3 (HORQConv2d)"
    dtype: str = "f32"                           # the output's element type: "f32", "i8", or "bits" (below)
    out_scale: float = 1.0                       # i8 and bits: the real value of one integer step

    @property
    def tensor_bytes(self) -> int:
        """The output's size in memory. A ``bits`` tensor holds the ``attrs["plane_order"]`` bit-planes that
        a static HORQ layer makes of the int8 values (plane k of a pixel: its channels in whole words)."""
        count = int(np.prod(self.shape))
        if self.dtype == "bits":
            channels = self.shape[0] if len(self.shape) == 3 else count
            return 4 * self.attrs["plane_order"] * (count // channels) * words_for(channels)
        return count if self.dtype == "i8" else 4 * count

    def replace(self, **changes: Any) -> "Node":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, eq=False)
class Graph:
    input_shape: tuple[int, ...]
    nodes: tuple[Node, ...]
    output: str
    layout: str = "chw"  # "chw" (PyTorch order) or "hwc" (channels-last, after lowering)

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def shape_of(self, name: str) -> tuple[int, ...]:
        return self.input_shape if name == INPUT else self.node(name).shape

    def replace(self, **changes: Any) -> "Graph":
        return dataclasses.replace(self, **changes)


def _format_attrs(node: Node) -> str:
    parts = [f"{k}={v}" for k, v in node.attrs.items()]
    if node.activation.kind != "none":
        parts.append(f"act={node.activation}")
    if node.dtype == "i8":
        parts.append(f"int8*{node.out_scale:.4g}")
    elif node.dtype == "bits":
        parts.append(f"{node.attrs['plane_order']} bit-planes of int8*{node.out_scale:.4g}")
    return " ".join(parts)


def format_graph(graph: Graph) -> str:
    """A readable listing, one node a line, to show what a pass did."""
    lines = [f"graph (layout {graph.layout}) input {graph.input_shape}"]
    for n in graph.nodes:
        params = ", ".join(f"{k}{list(v.shape)}:{v.dtype}" for k, v in n.params.items())
        lines.append(f"  {n.name:<14} {n.op.value:<12} {str(n.shape):<14} <- {','.join(n.inputs):<14} "
                     f"{_format_attrs(n)}  [{params}]  {n.source}".rstrip())
    lines.append(f"  output {graph.output}")
    return "\n".join(lines)
