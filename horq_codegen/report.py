"""``horq-codegen inspect``: a per-layer table of a lowered model, with totals."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ir import CONV_OPS, HORQ_OPS, LINEAR_OPS, Graph, Node, emitted_params
from .memory import plan_memory


@dataclass(frozen=True)
class LayerRow:
    name: str
    op: str
    source: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    order: int | None
    granularity: str | None
    macs: int
    packed_bytes: int     # what the generated C stores
    float32_bytes: int    # what a float32 build of the same layer stores
    dtype: str = "f32"    # the output's element type
    output_bytes: int = 0
    live_bytes: int = 0   # every buffer alive while the layer runs: inputs, output, scratch


def _weight_count(node: Node, in_shape: tuple[int, ...]) -> int:
    if node.op in CONV_OPS:
        kh, kw = node.attrs["kernel"]
        return node.shape[0] * in_shape[0] // node.attrs.get("groups", 1) * kh * kw
    if node.op in LINEAR_OPS:
        return node.shape[0] * node.attrs["in_features"]
    return 0


def _stored_weight_bytes(node: Node) -> int:
    if node.op in HORQ_OPS:
        return int(node.params["weight_bits"].nbytes)
    return int(node.params["weight"].nbytes) if "weight" in node.params else 0


def layer_rows(graph: Graph) -> list[LayerRow]:
    rows = []
    live = plan_memory(graph).live_bytes(graph)
    for node, live_bytes in zip(graph.nodes, live):
        in_shape = graph.shape_of(node.inputs[0])
        weights = _weight_count(node, in_shape)
        macs = weights * (int(np.prod(node.attrs.get("conv_out", node.shape)[1:])) if node.op in CONV_OPS else 1)
        stored = sum(int(v.nbytes) for v in emitted_params(node).values())
        as_float = stored - _stored_weight_bytes(node) + 4 * weights
        rows.append(LayerRow(node.name, node.op.value, node.source, in_shape, node.shape,
                             node.attrs.get("order"), node.attrs.get("granularity"), macs, stored, as_float,
                             node.dtype, node.tensor_bytes, live_bytes))
    return rows


def slow_layer_warnings(graph: Graph) -> list[str]:
    """Warnings for layers whose settings make them slower than the user likely expects."""
    return [f"horq-codegen: warning: {node.name} ({node.source}) uses `pixel` granularity: each input pixel's own "
            "betas cost a float multiply-add per tap, plane and output channel and an inner-loop call per tap, "
            "so it runs about 2x slower than `tensor` (1.9x on a 40->40 3x3 layer on Cortex-M7; README, "
            "\"Granularity and speed\"); `patch`, `tensor` or `static` are faster"
            for node in graph.nodes if node.attrs.get("granularity") == "pixel"]


def _shape(s: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in s)


def format_table(graph: Graph) -> str:
    rows = layer_rows(graph)
    header = ("layer", "op", "from", "in", "out", "order", "granularity", "MACs", "bytes", "float32 bytes",
              "out type", "out bytes", "live bytes")
    peak = max(range(len(rows)), key=lambda i: rows[i].live_bytes)
    body = [(r.name, r.op, r.source, _shape(r.in_shape), _shape(r.out_shape), str(r.order or "-"),
             r.granularity or "-", f"{r.macs:,}", f"{r.packed_bytes:,}", f"{r.float32_bytes:,}", r.dtype,
             f"{r.output_bytes:,}", f"{r.live_bytes:,}" + (" <- peak" if i == peak else ""))
            for i, r in enumerate(rows)]
    total_macs = sum(r.macs for r in rows)
    binary_macs = sum(r.macs for r in rows if r.order)
    packed, as_float = sum(r.packed_bytes for r in rows), sum(r.float32_bytes for r in rows)
    plan = plan_memory(graph)
    body.append(("total", "", "", "", "", "", "", f"{total_macs:,}", f"{packed:,}", f"{as_float:,}", "", "", ""))
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    right = {7, 8, 9, 11}
    fmt = lambda row: "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
    lines = [fmt(header), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in body[:-1]] + ["  ".join("-" * w for w in widths), fmt(body[-1])]
    ratio = as_float / packed if packed else 1.0
    lines.append("")
    lines.append(f"binary MACs (per plane): {binary_macs:,} of {total_macs:,}; "
                 f"parameters {packed:,} bytes against {as_float:,} as float32 ({ratio:.1f}x smaller)")
    lines.append(f"arena: {plan.arena_bytes:,} bytes ({plan.float_arena:,} floats, int8 tensors taking "
                 f"{plan.int8_bytes():,} bytes of them before sharing, + {plan.word_arena:,} words of bit-planes); "
                 f"the peak is at {rows[peak].name} "
                 "(live bytes: what its inputs, output and scratch take, before sharing by first fit)")
    live = plan.live_tensors(graph, peak)
    lines.append("live at the peak: " + ", ".join(f"{name} ({graph.node(name).tensor_bytes:,} bytes)" for name in live)
                 if live else "live at the peak: no arena tensor (the caller's input and output only)")
    return "\n".join(lines)
