"""Stage 3 of ``horq-codegen report``: the figures and charts into one self-contained HTML page
(``templates/report/report.html.jinja``), written whole or not at all."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import jinja2
from markupsafe import Markup

from .. import __version__
from ..errors import HorqError
from ..quant_error import ORDERS
from ..report import LayerRow
from ..resources import templates_dir
from ..verify import IntegerComparison
from . import plots
from .collect import ReportData, float32_baselines


def _shape(s: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in s)


def _n(value: int | float | None, fmt: str = ",") -> str:
    return "-" if value is None else format(value, fmt)


def _ratio(num: int | float | None, den: int | float | None) -> str:
    return f"{num / den:.1f}x" if num and den else "-"


def _layer_label(name: str, source: str) -> str:
    return f"{name} ({source})" if source else name


def _layer_table(rows: list[LayerRow]) -> dict:
    body = [dict(name=r.name, op=r.op, source=r.source, in_shape=_shape(r.in_shape), out_shape=_shape(r.out_shape),
                 order=r.order or "-", granularity=r.granularity or "-", macs=_n(r.macs), packed=_n(r.packed_bytes),
                 float32=_n(r.float32_bytes), dtype=r.dtype, out_bytes=_n(r.output_bytes), live=_n(r.live_bytes))
            for r in rows]
    packed, as_float = sum(r.packed_bytes for r in rows), sum(r.float32_bytes for r in rows)
    return dict(rows=body, macs=_n(sum(r.macs for r in rows)), packed=_n(packed), float32=_n(as_float),
                ratio=_ratio(as_float, packed), binary_macs=_n(sum(r.macs for r in rows if r.order)))


def _speed(data: ReportData) -> dict:
    b = data.bench
    if b is None:
        return dict(available=False, why=data.bench_missing)
    with_cycles = b.horq.estimated_cycles is not None
    rows, labels, horq, flt, horq_c, flt_c = [], [], [], [], [], []
    for layer, other in zip(b.horq.layers, float32_baselines(b)):
        rows.append(dict(name=layer.name, op=layer.op, source=layer.source, horq=_n(layer.instructions),
                         float_layers=", ".join(other.layers) if other else "-",
                         float32=_n(other and other.instructions), ratio=_ratio(other and other.instructions,
                                                                                  layer.instructions),
                         horq_cycles=_n(layer.estimated_cycles), float_cycles=_n(other and other.estimated_cycles),
                         cycles_ratio=_ratio(other and other.estimated_cycles, layer.estimated_cycles)))
        labels.append(_layer_label(layer.name, layer.source))
        horq.append(layer.instructions)
        flt.append(other.instructions if other else None)
        horq_c.append(layer.estimated_cycles)
        flt_c.append(other.estimated_cycles if other else None)
    f = b.float32
    sizes = [(label, a, None if f is None else getattr(f, key)) for label, key, a in
             (("parameters", "parameter_bytes", b.horq.parameter_bytes), ("flash", "flash_bytes", b.horq.flash_bytes),
              ("RAM", "ram_bytes", b.horq.ram_bytes), ("arena", "arena_bytes", b.horq.arena_bytes))]
    chart = plots.instructions_chart(labels, horq, flt, horq_c if with_cycles else None, flt_c if with_cycles else None)
    return dict(available=True, rows=rows, with_cycles=with_cycles, chart=Markup(chart), emulator=b.emulator,
                total=_n(b.horq.total_instructions), total_float=_n(f and f.total_instructions),
                total_ratio=_ratio(f and f.total_instructions, b.horq.total_instructions),
                total_cycles=_n(b.horq.estimated_cycles), total_float_cycles=_n(f and f.estimated_cycles),
                total_cycles_ratio=_ratio(f and f.estimated_cycles, b.horq.estimated_cycles),
                sizes=[dict(label=l, horq=_n(a), float32=_n(z), ratio=_ratio(z, a)) for l, a, z in sizes],
                float32_missing=b.float32_missing, cycles_model=b.cycles_model, cycles_asked=data.cycles)


def _memory(data: ReportData) -> dict:
    with_weights = [r for r in data.rows if r.float32_bytes]
    weights = plots.weights_chart([_layer_label(r.name, r.source) for r in with_weights],
                                  [r.packed_bytes for r in with_weights], [r.float32_bytes for r in with_weights])
    plan = data.plan
    arena = plots.arena_chart(data.spans, len(data.graph.nodes), {"float": 4 * plan.float_arena,
                                                                   "words": 4 * plan.word_arena})
    return dict(weights=Markup(weights), arena=Markup(arena), arena_bytes=_n(plan.arena_bytes),
                float_bytes=_n(4 * plan.float_arena), word_bytes=_n(4 * plan.word_arena))


def _quantization(data: ReportData) -> dict:
    if not data.quant_errors:
        return dict(available=False)
    labels = {name: f"{_layer_label(name, source)}: order {order}, {granularity}"
              for name, (source, order, granularity) in data.quant_layers.items()}
    chart = plots.quant_error_chart(data.quant_errors, labels, ORDERS,
                                    {name: order for name, (_, order, _) in data.quant_layers.items()})
    rows = [dict(name=name, source=source, order=order, granularity=granularity,
                 errors=[f"{e:.4f}" for e in data.quant_errors[name]])
            for name, (source, order, granularity) in data.quant_layers.items()]
    return dict(available=True, chart=Markup(chart), rows=rows, orders=ORDERS)


def _agreement(data: ReportData) -> dict:
    c = data.verified.comparison
    percent = lambda v: "-" if v is None else f"{100 * v:.2f} %"
    rows = dict(samples=str(c.samples), bit_exact="bit-exact" if c.bit_exact else "DIFFERENT",
                max_diff_reference=f"{c.max_diff_reference:.6g}", max_diff_torch=f"{c.max_diff_torch:.6g}",
                argmax_agree=f"{c.argmax_agree} / {c.samples}",
                argmax_percent=f"{100 * c.argmax_agree / c.samples:.1f} %" if c.samples else "-",
                accuracy_c=percent(c.accuracy_c), accuracy_torch=percent(c.accuracy_torch),
                passed="PASS" if c.passed else "FAIL")
    mode = ("integer mode: C against the int8 reference bit for bit, against PyTorch's float model by argmax"
            if isinstance(c, IntegerComparison) else
            "float mode: C against the float32 reference bit for bit, against PyTorch to float32 rounding")
    confusion = None
    if data.confusion is not None:
        confusion = Markup(plots.confusion_chart(data.confusion))
    return dict(rows=rows, mode=mode, confusion=confusion, description=data.verified.samples.description)


def render(data: ReportData) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    speedups = [dict(name=s.name, source=s.source, order=s.order, channels=s.channels, taps=s.filter_size,
                     analytic=f"{s.analytic:.1f}x", measured="-" if s.measured is None else f"{s.measured:.1f}x")
                for s in data.speedups]
    return env.get_template("report/report.html.jinja").render(
        version=__version__, model=data.model, sha256=data.sha256, target=data.target.name,
        target_description=data.target.description, activations=data.activations,
        layers=_layer_table(data.rows), speed=_speed(data), speedups=speedups, memory=_memory(data),
        quantization=_quantization(data), agreement=_agreement(data))


def check_writable(path: Path) -> None:
    """Refuses, before any work, an output the page could not be written to."""
    if path.is_dir():
        raise HorqError(f"{path} is a folder; name the HTML file to write (e.g. -o {path}/report.html)")
    folder = path.absolute().parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise HorqError(f"cannot write {path}: {existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise HorqError(f"cannot write {path}: permission denied")


def write_atomically(path: Path, text: str) -> None:
    """The whole page or nothing: a temporary file in the same folder, renamed over ``path``."""
    folder = path.absolute().parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
