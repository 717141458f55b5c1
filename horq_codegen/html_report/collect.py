"""Stage 1 of ``horq-codegen report``: every figure the page shows, gathered from the pipeline's own
functions (``inspect``'s rows, ``verify``, ``bench``, the memory plan, :mod:`horq_codegen.quant_error`)."""
from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from .. import importer, passes, quant_error
from ..bench import BenchReport, bench_graph
from ..integer import Lowering
from ..ir import HORQ_OPS, Graph, Op
from ..memory import MemoryPlan, last_use_steps, plan_memory
from ..pipeline import lower_model
from ..report import LayerRow, layer_rows
from ..samples import UserData, pick_samples
from ..speedup import analytic_speedup
from ..targets import Target
from ..verify import VerifyReport, verify_graph

STAGES = 5
WORD_BITS = 32  # the kernels' uint32_t words (horq_types.h)


@dataclass(frozen=True)
class SpeedupRow:
    name: str
    source: str
    order: int
    channels: int       # input channels (a linear layer: input features)
    filter_size: int    # kh * kw (a linear layer: 1)
    analytic: float     # analytic_speedup(channels, filter_size, order, WORD_BITS)
    measured: float | None  # float32 build's instructions / the HORQ layer's, None without bench


@dataclass(frozen=True)
class ArenaSpan:
    """One buffer's life in an arena: ``[first, last]`` op indices at ``[offset, offset + size)`` bytes."""
    name: str
    arena: str          # "float" (floats and int8) or "words" (bit-planes)
    first: int
    last: int
    offset: int         # bytes
    size: int           # bytes
    scratch: bool


@dataclass(frozen=True)
class ReportData:
    model: str                       # as the user named it
    sha256: str
    target: Target
    activations: str
    graph: Graph
    rows: list[LayerRow]
    plan: MemoryPlan
    spans: list[ArenaSpan]
    verified: VerifyReport
    confusion: np.ndarray | None     # [label][C's prediction] counts, where labels exist
    bench: BenchReport | None
    bench_missing: str               # why there is no bench ("" when there is)
    cycles: bool
    quant_errors: dict[str, list[float]]   # HORQ layer (float lowering's name) -> error at ORDERS
    quant_layers: dict[str, tuple[str, int, str]]  # name -> (source, order, granularity)
    speedups: list[SpeedupRow]


def arena_spans(graph: Graph, plan: MemoryPlan) -> list[ArenaSpan]:
    """Where each tensor and scratch buffer of ``plan`` lives, and while which ops run; a tensor
    computed in place of another shows as its own span in the same bytes."""
    step = {n.name: i for i, n in enumerate(graph.nodes)}
    last = last_use_steps(graph)
    spans = []
    if plan.staged_input is not None:
        spans.append(ArenaSpan("input (uint8 entry)", "float", 0, 0, 4 * plan.staged_input.offset,
                               4 * plan.staged_input.size, False))
    for n in graph.nodes:
        buf = plan.outputs.get(n.name)
        if buf is not None:
            unit = 1 if buf.arena == "i8" else 4
            spans.append(ArenaSpan(n.name, "words" if buf.arena == "words" else "float", step[n.name], last[n.name],
                                   unit * buf.offset, unit * buf.size, False))
        for arena, scratch in (("float", plan.scratch_floats.get(n.name)), ("words", plan.scratch_words.get(n.name))):
            if scratch is not None and scratch.size:
                spans.append(ArenaSpan(f"{n.name} scratch", arena, step[n.name], step[n.name], 4 * scratch.offset,
                                       4 * scratch.size, True))
    return spans


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """[label][prediction] counts."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


@dataclass(frozen=True)
class Baseline:
    """The float32 build's figures for one layer of the HORQ build: the float32 layers made of the
    same model layers, summed (integer mode fuses a pooling and a BatchNorm into the convolution
    before them; the float32 build runs them as ops of their own)."""
    layers: tuple[str, ...]
    instructions: int
    estimated_cycles: int | None


def _parts(source: str) -> list[str]:
    return [p.strip() for p in source.split(" + ") if p.strip()]


def float32_baselines(bench: BenchReport) -> list[Baseline | None]:
    """Per layer of ``bench.horq``: its float32 :class:`Baseline`, or None where no float32 layer
    comes from the same model layers (quantize, widen)."""
    if bench.float32 is None:
        return [None] * len(bench.horq.layers)
    owner: dict[str, int] = {}
    for i, layer in enumerate(bench.horq.layers):
        for part in _parts(layer.source):
            owner.setdefault(part, i)
    matched: dict[int, list] = {}
    for layer in bench.float32.layers:
        parts = _parts(layer.source)
        homes = {owner.get(p) for p in parts}
        if len(homes) == 1 and None not in homes:  # every model layer it runs belongs to one HORQ-build layer
            matched.setdefault(homes.pop(), []).append(layer)
    result: list[Baseline | None] = []
    for i in range(len(bench.horq.layers)):
        group = matched.get(i)
        if not group:
            result.append(None)
            continue
        cycles = [l.estimated_cycles for l in group]
        result.append(Baseline(tuple(l.name for l in group), sum(l.instructions for l in group),
                               None if None in cycles else sum(cycles)))
    return result


def _speedups(graph: Graph, bench: BenchReport | None) -> list[SpeedupRow]:
    base = {l.name: b.instructions for l, b in zip(bench.horq.layers, float32_baselines(bench)) if b} if bench else {}
    mine = {l.name: l.instructions for l in bench.horq.layers} if bench else {}
    rows = []
    for node in graph.nodes:
        if node.op not in HORQ_OPS:
            continue
        if node.op == Op.HORQ_CONV2D:
            kh, kw = node.attrs["kernel"]
            channels, taps = node.attrs["in_shape"][0], kh * kw
        else:
            channels, taps = node.attrs["in_features"], 1
        order = node.attrs["order"]
        measured = base[node.name] / mine[node.name] if node.name in base and mine.get(node.name) else None
        rows.append(SpeedupRow(node.name, node.source, order, channels, taps,
                               analytic_speedup(channels, taps, order, WORD_BITS), measured))
    return rows


def collect(model_path: Path, target: Target, *, samples: int | None = None, user: UserData | None = None,
            input_shape: tuple[int, ...] | None = None, lowering: Lowering = Lowering(), cycles: bool = False,
            progress: Callable[[str], None] = lambda line: None) -> ReportData:
    stage = lambda i, text: progress(f"report [{i}/{STAGES}] {text}")
    model = importer.load(model_path, input_shape)  # a file that is no model fails here, before any progress line
    stage(1, f"lowering {model_path} ({lowering.activations} activations) ...")
    graph = lower_model(model, lowering)
    chosen = pick_samples(model, samples, user)
    stage(2, f"verifying on {target.name} with {chosen.description} ...")
    with tempfile.TemporaryDirectory(prefix="horq-report-") as tmp:
        verified = verify_graph(model, graph, target, chosen, Path(tmp))
    confusion = None
    if chosen.labels is not None and verified.outputs is not None:
        confusion = confusion_matrix(chosen.labels, np.argmax(verified.outputs, axis=1), verified.outputs.shape[1])
    bench, missing = None, ""
    if target.kind == "host":
        missing = "the host target runs natively: instruction counts need an emulated ARM target (e.g. --target cortex-m7)"
        stage(3, "no instruction counts on the host target")
    else:
        what = " and llvm-mca's estimated cycles" if cycles else ""
        stage(3, f"counting instructions{what} of the HORQ and float32 builds under QEMU ...")
        bench = bench_graph(model, graph, target, cycles=cycles, name=str(model_path))
    stage(4, f"quantization error by order on {chosen.description} ...")
    float_graph = passes.lower(model.graph)
    inputs = tqdm(chosen.inputs, desc="quantization error", unit="sample", file=sys.stderr, disable=None, leave=False)
    errors = quant_error.layer_input_errors(float_graph, inputs)
    quant_layers = {n.name: (n.source, n.attrs["order"], n.attrs["granularity"])
                    for n in float_graph.nodes if n.op in HORQ_OPS}
    plan = plan_memory(graph)
    return ReportData(str(model_path), model.file.sha256, target, lowering.activations, graph, layer_rows(graph), plan,
                      arena_spans(graph, plan), verified, confusion, bench, missing, cycles, errors, quant_layers,
                      _speedups(graph, bench))


