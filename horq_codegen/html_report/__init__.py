"""``horq-codegen report``: one self-contained HTML page about a model on a target.

Three stages, one module each: :mod:`.collect` gathers the figures from the pipeline's own
functions (inspect's rows, verify, bench, the memory plan, :mod:`horq_codegen.quant_error`),
:mod:`.plots` draws them as inline SVG, :mod:`.page` fills ``templates/report/report.html.jinja``
and writes the file whole or not at all. The same model gives the same bytes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..integer import Lowering
from ..samples import UserData
from ..targets import load_target
from . import collect
from .collect import ReportData
from .page import check_writable, render, write_atomically

__all__ = ["ReportData", "build_report", "render"]


def build_report(model_path: str | Path, target_name: str, output: str | Path, *, samples: int | None = None,
                 user: UserData | None = None, input_shape: tuple[int, ...] | None = None,
                 lowering: Lowering = Lowering(), cycles: bool = False,
                 progress: Callable[[str], None] = lambda line: None) -> ReportData:
    """Writes the report of ``model_path`` on ``target_name`` to ``output``; returns its figures.

    ``samples``: how many inputs verify and the quantization error use (default 100, or all of the
    user's); ``cycles``: add llvm-mca's estimated cycles (slower)."""
    output = Path(output)
    target = load_target(target_name)
    check_writable(output)
    data = collect.collect(Path(model_path), target, samples=samples, user=user, input_shape=input_shape,
                   lowering=lowering, cycles=cycles, progress=progress)
    progress("report [5/5] drawing the charts and writing the page ...")
    write_atomically(output, render(data))
    return data
