"""``horq-codegen bench``: executed instructions per layer, flash and RAM, against a float32 build.

Instruction counts come from QEMU with the project's counting plugin: exact and
identical from run to run (QEMU is not cycle accurate, so it measures no cycles).
Each layer's count runs from its marker call to the next one, so it includes the
few instructions of one marker call. Sizes are read from the ELF.

With ``cycles=True`` (``--cycles``) each layer also gets an estimated-cycles
figure: the plugin's per-address counts for the layer's stretch, cut into basic
blocks, each block's steady-state cycles from llvm-mca-19's scheduling model of
the target's core times its executions (:mod:`horq_codegen.cycles`). That is a
model's estimate, not a board's measurement.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from . import cycles as mca
from . import emulator, passes
from .errors import HorqError
from .fit import model_constant_bytes
from .importer import ImportedModel
from .ir import Graph
from .pipeline import Lowering, generate_project, load_and_lower
from .runners import RunOptions, run_raw
from .targets import Target, load_target
from .samples import pick_samples


@dataclass(frozen=True)
class LayerCount:
    name: str
    op: str
    source: str
    instructions: int
    estimated_cycles: int | None = None   # llvm-mca model estimate; None when not asked for or no model


@dataclass(frozen=True)
class BuildFigures:
    layers: list[LayerCount]
    total_instructions: int
    flash_bytes: int       # text + rodata + data initialisers
    ram_bytes: int         # data + bss (arena included) + stack
    arena_bytes: int
    parameter_bytes: int   # the model's constants as stored
    estimated_cycles: int | None = None             # the layers' estimates summed
    cycles_dropped_instructions: int | None = None  # executed, but skipped by llvm-mca (no scheduling data)
    cycles_fallback_instructions: int | None = None  # executed, estimated at one cycle each (no block model)


@dataclass(frozen=True)
class BenchReport:
    model: str
    target: str
    emulator: str
    horq: BuildFigures
    float32: BuildFigures | None   # None when the float32 build does not fit the emulator's memory
    float32_missing: str = ""
    cycles_model: str = ""         # with cycles: which llvm-mca model gave the estimates

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)


def elf_sizes(elf: Path, target: Target) -> tuple[int, int]:
    """(flash, RAM) of an image: read-only sections in flash, writable ones in RAM (plus the stack)."""
    flash = ram = 0
    with open(elf, "rb") as f:
        image = ELFFile(f)
        for section in image.iter_sections():
            if not section["sh_flags"] & SH_FLAGS.SHF_ALLOC or section["sh_size"] == 0:
                continue
            if section["sh_type"] == "SHT_NOBITS":
                ram += section["sh_size"]
            elif section["sh_flags"] & SH_FLAGS.SHF_WRITE:  # .data: initial values in flash, variables in RAM
                ram += section["sh_size"]
                flash += section["sh_size"]
            else:
                flash += section["sh_size"]
    return flash, ram + target.memory.get("stack_size", 0)


# The float32 baseline is built at -O3 (the last -O on the command line wins): the strongest
# plain-C float code GCC makes, the baseline the speed targets are stated against.
FLOAT32_OPT = "-O3"


def _measure(model: ImportedModel, graph: Graph, target: Target, sample, work: Path,
             extra_cflags: str = "", cycle_model: mca.McaModel | None = None) -> BuildFigures:
    generated = generate_project(model, graph, target, work, sample, check_board=False)
    segments = work / "segments.txt" if cycle_model else None
    run = run_raw(generated.out_dir, target, RunOptions(count=True, extra_cflags=f"-DHORQ_BENCH {extra_cflags}".strip(),
                                                        segments=segments))
    marks = run.marks or ()
    if len(marks) != len(graph.nodes) + 1:
        raise HorqError(f"expected {len(graph.nodes) + 1} layer marks from the counting plugin, got {len(marks)}")
    counts = [marks[i + 1] - marks[i] for i in range(len(graph.nodes))]
    estimated: list[int | None] = [None] * len(counts)
    total_cycles = dropped = fallback = None
    if cycle_model is not None:
        stretches = emulator.read_segments(segments)
        if [sum(s.values()) for s in stretches] != counts:
            raise HorqError("the counting plugin's per-layer profile does not add up to its layer counts")
        estimate = mca.estimate(run.binary, stretches, cycle_model)
        # Rounded per layer, and the total their sum, so that the table adds up.
        estimated = [round(c) for c in estimate.cycles]
        total_cycles = sum(estimated)
        dropped, fallback = estimate.dropped_instructions, estimate.fallback_instructions
    layers = [LayerCount(n.name, n.op.value, n.source, counts[i], estimated[i]) for i, n in enumerate(graph.nodes)]
    flash, ram = elf_sizes(run.binary, target)
    return BuildFigures(layers, marks[-1] - marks[0], flash, ram, generated.plan.arena_bytes,
                        model_constant_bytes(graph), total_cycles, dropped, fallback)


def bench(model_path: str | Path, target_name: str, input_shape: tuple[int, ...] | None = None,
          progress: Callable[[str], None] = lambda line: None, lowering: Lowering = Lowering(),
          cycles: bool = False) -> BenchReport:
    """``progress`` hears one line once the model is loaded, before the long work. With ``cycles``,
    layers and totals also carry llvm-mca's estimated cycles (None where the target names no model)."""
    target = load_target(target_name)
    if target.kind == "host":
        raise HorqError("bench counts instructions in an emulator: choose an ARM target "
                        "(e.g. --target cortex-m7)")
    model, graph = load_and_lower(model_path, input_shape, lowering)
    progress(f"benchmarking {model_path} on {target.name} (two builds under QEMU) ...")
    return bench_graph(model, graph, target, cycles=cycles, name=str(model_path))


def bench_graph(model: ImportedModel, graph: Graph, target: Target, cycles: bool = False,
                name: str | None = None) -> BenchReport:
    """:func:`bench` of a model already loaded and lowered (``graph``) on an emulated ``target``;
    ``name``: the model as the report names it (default: its file's path)."""
    if target.kind == "host":
        raise HorqError("bench counts instructions in an emulator: choose an ARM target "
                        "(e.g. --target cortex-m7)")
    float_graph = passes.lower(passes.to_float32(model.graph))
    sample = pick_samples(model, 1).inputs
    cycle_model = mca.mca_model(target) if cycles else None
    with tempfile.TemporaryDirectory(prefix="horq-bench-") as tmp:
        horq = _measure(model, graph, target, sample, Path(tmp) / "horq", cycle_model=cycle_model)
        baseline, missing = None, ""
        try:
            baseline = _measure(model, float_graph, target, sample, Path(tmp) / "float32", FLOAT32_OPT, cycle_model)
        except HorqError as exc:
            if "overflowed" not in str(exc) and "will not fit" not in str(exc):
                raise
            missing = "the float32 build does not fit the emulator's memory"
    emulated = target.emulator.get("machine") or target.emulator.get("command", "")
    model_name = cycle_model.describe() if cycle_model else ("no llvm-mca model for this target" if cycles else "")
    return BenchReport(name or str(model.file.path), target.name, emulated, horq, baseline, missing, model_name)


def _ratio(a: int, b: int) -> str:
    return f"{b / a:.1f}x" if a else "-"


def _cycles(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def format_report(report: BenchReport) -> str:
    h = report.horq
    f = report.float32 or BuildFigures([LayerCount(l.name, l.op, l.source, 0) for l in h.layers], 0, 0, 0, 0, 0)
    with_cycles = h.estimated_cycles is not None
    rows = [("layer", "op", "from", "HORQ instr", "float32 instr", "speedup")]
    if with_cycles:
        rows[0] += ("HORQ est. cycles", "float32 est. cycles", "speedup")
    # The builds' layers are matched by the model layer they come from: integer mode adds ops
    # (quantize, widen) that the float32 build has not, and those show "-".
    by_source = {l.source: l for l in f.layers}
    for mine in h.layers:
        base = by_source.get(mine.source)
        row = (mine.name, mine.op, mine.source, f"{mine.instructions:,}",
               "-" if base is None else f"{base.instructions:,}",
               "-" if base is None else _ratio(mine.instructions, base.instructions))
        if with_cycles:
            base_cycles = None if base is None else base.estimated_cycles
            row += (_cycles(mine.estimated_cycles), _cycles(base_cycles),
                    "-" if base_cycles is None else _ratio(mine.estimated_cycles or 0, base_cycles))
        rows.append(row)
    total = ("total", "", "", f"{h.total_instructions:,}", f"{f.total_instructions:,}",
             _ratio(h.total_instructions, f.total_instructions))
    if with_cycles:
        total += (_cycles(h.estimated_cycles), _cycles(f.estimated_cycles),
                  "-" if f.estimated_cycles is None else _ratio(h.estimated_cycles, f.estimated_cycles))
    rows.append(total)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    line = lambda r: "  ".join(c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    rule = "  ".join("-" * w for w in widths)
    out = [f"bench {report.model} on {report.target} (QEMU {report.emulator}; executed instructions, one inference)",
           line(rows[0]), rule, *map(line, rows[1:-1]), rule, line(rows[-1]), ""]
    out.append(f"{'':<22}{'HORQ':>14}{'float32':>14}{'ratio':>9}")
    for label, a, b in (("parameters (bytes)", h.parameter_bytes, f.parameter_bytes),
                        ("flash (bytes)", h.flash_bytes, f.flash_bytes),
                        ("RAM (bytes)", h.ram_bytes, f.ram_bytes),
                        ("arena (bytes)", h.arena_bytes, f.arena_bytes)):
        out.append(f"{label:<22}{a:>14,}{b:>14,}{_ratio(a, b):>9}")
    out.append("flash: text + rodata + data initialisers, with 1 embedded test input and the C library's "
               "printf; RAM: data + bss (arena included) + stack")
    out.append(f"float32: the same network with float layers, built with the target's flags and {FLOAT32_OPT}")
    if report.float32 is None:
        out.append(f"float32 columns are empty: {report.float32_missing}")
    if with_cycles:
        out.append(f"est. cycles: a model's estimate, not a board's measurement: {report.cycles_model}, "
                   "steady-state cycles of each executed basic block x its executions; no memory system "
                   "(every load hits), no branch cost")
        unmodelled = [(name, b) for name, b in (("HORQ", h), ("float32", report.float32))
                      if b is not None and (b.cycles_dropped_instructions or b.cycles_fallback_instructions)]
        for name, b in unmodelled:
            out.append(f"  {name}: {b.cycles_dropped_instructions:,} executed instructions without scheduling data "
                       f"(counted 0 cycles), {b.cycles_fallback_instructions:,} outside any modelled block "
                       "(counted 1 cycle each)")
    elif report.cycles_model:
        out.append(f"est. cycles: none, {report.cycles_model}")
    return "\n".join(out)
