"""Passes: pure ``Graph -> Graph`` functions that lower an imported graph for C.

``lower`` runs them in order; ``lower_steps`` yields each intermediate graph so
that ``horq-codegen inspect --passes`` can show what every pass did.
"""
from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from .ir import (ACTIVATION_OPS, CONV_OPS, HORQ_OPS, INPUT, LINEAR_OPS, TRANSFORM_OPS, Activation, Graph, Node, Op)
from .pack import pack_signs, words_for



def _rewire(nodes: list[Node], old: str, new: str) -> list[Node]:
    return [n.replace(inputs=tuple(new if i == old else i for i in n.inputs)) for n in nodes]


def _fusable_producer(nodes: list[Node], output: str, node: Node, ops=TRANSFORM_OPS) -> Node | None:
    """The op (one of ``ops``) right before ``node`` if ``node`` is its only reader and no activation sits between."""
    src = node.inputs[0]
    if src == INPUT:
        return None
    producer = _find(nodes, src)
    readers = [n for n in nodes if src in n.inputs]
    if producer.op in ops and producer.activation.kind == "none" and len(readers) == 1 \
            and src != output:
        return producer
    return None


def _find(nodes: list[Node], name: str) -> Node:
    return next(n for n in nodes if n.name == name)


def _put(nodes: list[Node], node: Node) -> list[Node]:
    """``nodes`` with the node of the same name replaced by ``node``."""
    return [node if n.name == node.name else n for n in nodes]


def _remove(nodes: list[Node], output: str, node: Node, replacement: str) -> tuple[list[Node], str]:
    """Drops ``node``, its readers (and the graph output, if it was) now read ``replacement``."""
    nodes = _rewire([n for n in nodes if n.name != node.name], node.name, replacement)
    return nodes, (replacement if output == node.name else output)


def _batchnorm_transform(bn: Node) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A BatchNorm's (or an AFFINE's) float64 ``scale``, ``offset`` and offset terms."""
    p = bn.params
    if bn.op == Op.AFFINE:
        return p["exact_scale"], p["exact_offset"], p["offset_terms"]
    scale = p["weight"].astype(np.float64) / np.sqrt(p["var"].astype(np.float64) + bn.attrs["eps"])
    offset = p["bias"].astype(np.float64) - p["mean"].astype(np.float64) * scale
    shift_terms = np.abs(p["bias"].astype(np.float64)) + np.abs(p["mean"].astype(np.float64) * scale)
    return scale, offset, shift_terms


def fold_batchnorm(graph: Graph) -> Graph:
    """BatchNorm, and a per-channel shift or scaling (an imported AFFINE), into the scale/offset of
    the conv/linear/affine before it when nothing else reads that; else a BatchNorm becomes an AFFINE op."""
    nodes = list(graph.nodes)
    output = graph.output
    for name in [n.name for n in graph.nodes
                 if n.op == Op.BATCHNORM or (n.op == Op.AFFINE and n.activation.kind == "none")]:
        bn = _find(nodes, name)
        scale, offset, shift_terms = _batchnorm_transform(bn)
        producer = _fusable_producer(nodes, output, bn)
        if producer is not None:
            folded = producer.replace(params={
                **producer.params,
                "scale": (producer.params["scale"] * scale).astype(np.float32),
                "offset": (producer.params["offset"] * scale + offset).astype(np.float32),
                "exact_scale": producer.params["exact_scale"] * scale,
                "exact_offset": producer.params["exact_offset"] * scale + offset,
                "offset_terms": producer.params["offset_terms"] * np.abs(scale) + shift_terms})
            nodes = _put(nodes, folded)
            nodes, output = _remove(nodes, output, bn, producer.name)
        elif bn.op == Op.BATCHNORM:
            affine = bn.replace(op=Op.AFFINE, attrs={}, params={"scale": scale.astype(np.float32),
                                                                 "offset": offset.astype(np.float32),
                                                                 "exact_scale": scale, "exact_offset": offset,
                                                                 "offset_terms": shift_terms})
            nodes = _put(nodes, affine)
    return graph.replace(nodes=tuple(nodes), output=output)


def fuse_activations(graph: Graph) -> Graph:
    """ReLU / Hardtanh into the activation slot of the op before them."""
    nodes = list(graph.nodes)
    output = graph.output
    for name in [n.name for n in graph.nodes if n.op in (Op.RELU, Op.HARDTANH)]:
        act = _find(nodes, name)
        producer = _fusable_producer(nodes, output, act, ACTIVATION_OPS)
        if producer is None:
            continue
        activation = Activation("relu") if act.op == Op.RELU else \
            Activation("hardtanh", act.attrs["low"], act.attrs["high"])
        nodes = _put(nodes, producer.replace(activation=activation))
        nodes, output = _remove(nodes, output, act, producer.name)
    return graph.replace(nodes=tuple(nodes), output=output)


def _is_feature_map(shape: tuple[int, ...]) -> bool:
    """A tensor whose channels-last order differs from PyTorch's."""
    return len(shape) == 3 and shape[0] > 1 and shape[1] * shape[2] > 1


def to_channels_last(graph: Graph) -> Graph:
    """Feature maps live as [h][w][c]: permute conv weights, make flattening an explicit TO_CHW copy.

    Layout copies are added where the model's input or output is a feature map,
    so that ``run()`` still takes and returns PyTorch's order.
    """
    nodes: list[Node] = []
    rename: dict[str, str] = {}
    if _is_feature_map(graph.input_shape):
        nodes.append(Node("to_hwc", Op.TO_HWC, (INPUT,), graph.input_shape, source="input layout"))
        rename[INPUT] = "to_hwc"
    for n in graph.nodes:
        source_shape = graph.shape_of(n.inputs[0])
        n = n.replace(inputs=tuple(rename.get(i, i) for i in n.inputs))
        if n.op in CONV_OPS:
            n = n.replace(params={**n.params, "weight": np.ascontiguousarray(n.params["weight"].transpose(0, 2, 3, 1))})
        if n.op == Op.FLATTEN:
            if _is_feature_map(source_shape):
                n = n.replace(op=Op.TO_CHW, attrs={"dims": source_shape})
            else:
                rename[n.name] = n.inputs[0]
                continue
        nodes.append(n)
    output = rename.get(graph.output, graph.output)
    if _is_feature_map(graph.shape_of(graph.output)):
        shape = graph.shape_of(graph.output)
        nodes.append(Node("to_chw_out", Op.TO_CHW, (output,), (int(np.prod(shape)),), {"dims": shape},
                          source="output layout"))
        output = "to_chw_out"
    return graph.replace(nodes=tuple(nodes), output=output, layout="hwc")


_PER_FEATURE = (Op.AFFINE, Op.RELU, Op.HARDTANH, Op.PRELU)


def fold_reorders(graph: Graph) -> Graph:
    """Drop a flattening TO_CHW that only feeds a linear layer: permute the linear's columns instead.

    Per-feature ops between them (an unfolded BatchNorm1d, an activation) have
    their parameters permuted the same way.
    """
    nodes = list(graph.nodes)
    output = graph.output
    for name in [n.name for n in graph.nodes if n.op == Op.TO_CHW]:
        reorder = _find(nodes, name)
        chain, current = [], reorder
        while True:
            readers = [n for n in nodes if current.name in n.inputs]
            if len(readers) != 1 or current.name == output:
                break
            current = readers[0]
            chain.append(current)
            if current.op not in _PER_FEATURE:
                break
        if not chain or chain[-1].op not in LINEAR_OPS:
            continue
        c, h, w = reorder.attrs["dims"]
        perm = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)  # hwc position -> chw index
        replaced = {}
        for n in chain:
            if n.op in LINEAR_OPS:
                replaced[n.name] = n.replace(params={**n.params, "weight": np.ascontiguousarray(n.params["weight"][:, perm])})
            elif n.op in (Op.AFFINE, Op.PRELU):
                replaced[n.name] = n.replace(params={k: v[perm] for k, v in n.params.items()})
        nodes = [replaced.get(n.name, n) for n in nodes]
        nodes, output = _remove(nodes, output, reorder, reorder.inputs[0])
    return graph.replace(nodes=tuple(nodes), output=output)


def pack_weights(graph: Graph) -> Graph:
    """HORQ weights to sign bits (one word-aligned row per kernel tap), alpha folded into the scale."""
    nodes = []
    for n in graph.nodes:
        if n.op in HORQ_OPS:
            weight = n.params["weight"].astype(np.float32)
            alpha = np.abs(weight.reshape(weight.shape[0], -1)).mean(axis=1, dtype=np.float64)
            if n.op == Op.HORQ_CONV2D:  # (O, kh, kw, C): each tap's channel vector starts a new word
                bits = pack_signs(weight.reshape(weight.shape[0], -1, weight.shape[-1]))
                bits = bits.reshape(weight.shape[0], -1)
            else:
                bits = pack_signs(weight)
            params = {k: v for k, v in n.params.items() if k != "weight"}
            params["weight_bits"] = bits
            params["scale"] = (n.params["scale"].astype(np.float64) * alpha).astype(np.float32)
            params["exact_scale"] = n.params["exact_scale"] * alpha
            n = n.replace(params=params)
        nodes.append(n)
    return graph.replace(nodes=tuple(nodes))


def to_float32(graph: Graph) -> Graph:
    """The same network with every HORQ layer as a float layer: the float32 baseline a user would ship.

    Runs on an imported (not yet lowered) graph; the real-valued weights and biases
    are kept, quantization is dropped.
    """
    as_float = {Op.HORQ_CONV2D: Op.CONV2D, Op.HORQ_LINEAR: Op.LINEAR}
    nodes = []
    for n in graph.nodes:
        if n.op in as_float:
            attrs = {k: v for k, v in n.attrs.items() if k not in ("order", "granularity")}
            params = {k: v for k, v in n.params.items() if k != "betas"}
            n = n.replace(op=as_float[n.op], attrs=attrs, params=params)
        nodes.append(n)
    return graph.replace(nodes=tuple(nodes))


def fuse_prelu(graph: Graph) -> Graph:
    """A PReLU right after a residual sum that nothing else reads is done by the sum (Bi-Real's
    ``PReLU(BN(conv(x)) + x)``): one pass over the tensor, ``slope`` kept on the ADD."""
    nodes = list(graph.nodes)
    output = graph.output
    for name in [n.name for n in graph.nodes if n.op == Op.PRELU]:
        prelu = _find(nodes, name)
        producer = _fusable_producer(nodes, output, prelu, frozenset({Op.ADD}))
        if producer is None or "slope" in producer.params:
            continue
        nodes = _put(nodes, producer.replace(params={**producer.params, "slope": prelu.params["slope"]},
                                             source=f"{producer.source} + {prelu.source}"))
        nodes, output = _remove(nodes, output, prelu, producer.name)
    return graph.replace(nodes=tuple(nodes), output=output)


PASSES: tuple[Callable[[Graph], Graph], ...] = (
    fold_batchnorm, fuse_activations, fuse_prelu, to_channels_last, fold_reorders, pack_weights)


def lower_steps(graph: Graph) -> Iterator[tuple[str, Graph]]:
    yield "import", graph
    for p in PASSES:
        graph = p(graph)
        yield p.__name__, graph


def lower(graph: Graph) -> Graph:
    for _, graph in lower_steps(graph):
        pass
    return graph


__all__ = ["lower", "lower_steps", "PASSES", "words_for"]
