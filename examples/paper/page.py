"""The paper experiments' report page: one self-contained HTML file, plots inline as SVG.

Two plots per network width: test accuracy against order (mean +- standard deviation over seeds,
``patch`` and ``static``, the float network as a band, the paper's figures as markers), and each HORQ
layer's relative input-quantization error against order (the paper's "the residual error falls with
each order"), then the tables of ``results.md``.
"""
from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

from matplotlib.figure import Figure

from horq_codegen.html_report.plots import styled, to_svg


@styled
def accuracy_plot(rows: list[dict], width: str) -> str:
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    mine = [r for r in rows if r["width"] == width]
    for granularity, marker in (("patch", "o"), ("static", "s")):
        points = sorted((r["order"], r["accuracy"], r["accuracy_std"]) for r in mine
                        if r["granularity"] == granularity and r["order"] is not None)
        if points:
            orders, means, stds = zip(*points)
            ax.errorbar(orders, means, yerr=stds, marker=marker, capsize=3, label=f"HORQ, {granularity}")
    for r in mine:
        if r["order"] is None:
            ax.axhspan(r["accuracy"] - r["accuracy_std"], r["accuracy"] + r["accuracy_std"], color="0.85")
            ax.axhline(r["accuracy"], color="0.4", linestyle="--", label="float")
    paper = sorted((r["order"], 100 - r["paper_error"]) for r in mine if r["paper_error"] is not None
                   and r["granularity"] in ("patch", "-"))
    if paper and width == "full":
        ax.plot(*zip(*paper), "k*", markersize=10, linestyle="none", label="paper (full MNIST)")
    ax.set_xlabel("order K (1 = XNOR)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{width} width: accuracy against order")
    ax.set_xticks([1, 2, 3, 4])
    ax.legend(fontsize=8)
    return to_svg(fig, f"accuracy-{width}")


@styled
def error_plot(rows: list[dict], width: str) -> str:
    """The input errors of the HORQ-2 patch network (the bundled configuration) per layer, and the
    static one's, against order."""
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for granularity, style in (("patch", "-"), ("static", ":")):
        row = next((r for r in rows if r["width"] == width and r["order"] == 2 and r["granularity"] == granularity),
                   None)
        if row is None:
            continue
        for layer, errors in row["input_errors"].items():
            ax.plot(range(1, len(errors) + 1), errors, style, marker="o", label=f"layer {layer}, {granularity}")
    ax.set_yscale("log")
    ax.set_xlabel("order K")
    ax.set_ylabel("||x - x_hat|| / ||x||")
    ax.set_title(f"{width} width: input-quantization error (HORQ-2 networks)")
    ax.set_xticks([1, 2, 3, 4])
    ax.grid(which="both")
    ax.legend(fontsize=7)
    return to_svg(fig, f"error-{width}")


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>HORQ paper experiments</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}}
pre{{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:12px}}figure{{display:inline-block;margin:0.5em}}</style>
</head><body>
<h1>HORQ paper experiments on the offline MNIST subset</h1>
<p>Made by <code>make paper</code> (<code>examples/paper/run.py</code>).</p>
{figures}
<h2>Tables</h2>
<pre>{table}</pre>
</body></html>
"""


def write_page(rows: list[dict], table: str, path: Path) -> None:
    figures = []
    for width in dict.fromkeys(r["width"] for r in rows):
        figures.append(f"<h2>{html.escape(width)} width</h2>")
        figures.append(f"<figure>{accuracy_plot(rows, width)}</figure>")
        figures.append(f"<figure>{error_plot(rows, width)}</figure>")
    text = PAGE.format(figures="\n".join(figures), table=html.escape(table))
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)
