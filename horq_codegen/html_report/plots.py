"""Stage 2 of ``horq-codegen report``: the charts, as inline SVG text made by matplotlib.

Deterministic: a fixed ``svg.hashsalt``, no date, text drawn as paths (``svg.fonttype`` "path": the
page needs no font), every element id prefixed by the chart's key so that several charts can share
one page. Figures are made without pyplot, so no global backend or state is touched.
"""
from __future__ import annotations

import io
import re
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter

from .collect import ArenaSpan

HORQ_COLOUR, FLOAT_COLOUR = "#1f77b4", "#ff7f0e"

_STYLE = {
    "svg.fonttype": "path",
    "svg.hashsalt": "horq-codegen-report",
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 72,
}


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def to_svg(fig: Figure, key: str) -> str:
    """The figure as an ``<svg>`` element for inline use, its ids prefixed with ``key``."""
    buffer = io.StringIO()
    with matplotlib.rc_context(_STYLE):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)  # the rdf block: tool and version only
    ids = set(re.findall(r'\bid="([^"]+)"', text))
    if ids:
        pattern = re.compile(r'(\bid="|href="#|url\(#)(' + "|".join(re.escape(i) for i in sorted(ids, key=len, reverse=True))
                             + r')(?=["\)])')
        text = pattern.sub(lambda m: f"{m.group(1)}{key}-{m.group(2)}", text)
    return text.strip()


def styled(draw):
    """Runs a chart function under the report's style (figure creation reads the rc parameters too)."""
    def run(*args, **kwargs) -> str:
        with matplotlib.rc_context(_STYLE):
            return draw(*args, **kwargs)
    run.__name__, run.__doc__ = draw.__name__, draw.__doc__
    return run


def _paired_bars(ax, labels: Sequence[str], first: Sequence[float | None], second: Sequence[float | None],
                 names: tuple[str, str], xlabel: str, invert: bool = True) -> None:
    y = np.arange(len(labels))
    h = 0.4
    a = [v or 0 for v in first]
    b = [v or 0 for v in second]
    ax.barh(y - h / 2, a, h, label=names[0], color=HORQ_COLOUR)
    ax.barh(y + h / 2, b, h, label=names[1], color=FLOAT_COLOUR)
    ax.set_yticks(y, labels)
    if invert:  # the first layer on top (once: axes sharing y share the inversion)
        ax.invert_yaxis()
    if max(a + b, default=0) > 0:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", visible=False)
    ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, frameon=False)


@styled
def instructions_chart(labels: Sequence[str], horq: Sequence[int], float32: Sequence[int | None],
                       horq_cycles: Sequence[int | None] | None = None,
                       float_cycles: Sequence[int | None] | None = None) -> str:
    """Per layer: executed instructions of the HORQ build and the float32 build (log scale); with
    cycles, a second panel of llvm-mca's estimates."""
    panels = 2 if horq_cycles is not None else 1
    fig = _figure(5.0 * panels + 2.5, 0.3 * len(labels) + 1.3)
    axes = fig.subplots(1, panels, sharey=True, squeeze=False)[0]
    _paired_bars(axes[0], labels, horq, float32, ("HORQ build", "float32 build"), "executed instructions (log)")
    if horq_cycles is not None:
        _paired_bars(axes[1], labels, horq_cycles, float_cycles or [None] * len(labels),
                     ("HORQ build", "float32 build"), "estimated cycles, llvm-mca (log)", invert=False)
    return to_svg(fig, "instructions")


@styled
def weights_chart(labels: Sequence[str], packed: Sequence[int], float32: Sequence[int]) -> str:
    """Per layer with parameters: the bytes the generated C stores against a float32 build's."""
    fig = _figure(8.0, 0.3 * len(labels) + 1.3)
    ax = fig.subplots()
    _paired_bars(ax, labels, packed, float32, ("as generated (packed bits, int8, float)", "float32"),
                 "parameter bytes (log)")
    return to_svg(fig, "weights")


@styled
def arena_chart(spans: Sequence[ArenaSpan], op_count: int, arena_bytes: dict[str, int]) -> str:
    """The arenas over one inference: each buffer a rectangle from the op that writes it to the last
    op that reads it (x), at its byte offset (y); scratch hatched."""
    arenas = [a for a in ("float", "words") if arena_bytes.get(a)]
    heights = [3.2 if a == "float" else 1.8 for a in arenas] or [1.0]
    fig = _figure(9.0, sum(heights) + 0.9)
    axes = fig.subplots(len(arenas) or 1, 1, sharex=True, squeeze=False, height_ratios=heights)[:, 0]
    palette = matplotlib.colormaps["tab20"]
    names = sorted({s.name for s in spans if not s.scratch})
    colour = {name: palette(i % 20) for i, name in enumerate(names)}
    titles = {"float": "float arena (floats and int8 tensors)", "words": "word arena (packed bit-planes)"}
    for ax, arena in zip(axes, arenas):
        size = arena_bytes[arena]
        named: set[str] = set()
        for s in (s for s in spans if s.arena == arena):
            key = "scratch" if s.scratch else s.name
            box = Rectangle((s.first - 0.45, s.offset), s.last - s.first + 0.9, s.size,
                            facecolor="#dddddd" if s.scratch else colour[s.name], edgecolor="#333333", linewidth=0.5,
                            hatch="///" if s.scratch else None, label=None if key in named else key)
            named.add(key)
            ax.add_patch(box)
            if not s.scratch and s.size >= 0.06 * size:
                ax.text(s.first + (s.last - s.first) / 2, s.offset + s.size / 2, s.name, ha="center", va="center",
                        fontsize=6.5, clip_on=True)
        rows = 14
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=6, frameon=False,
                  ncol=max(1, -(-len(named) // rows)))
        ax.set_ylim(0, size)
        ax.set_ylabel("offset (bytes)")
        ax.set_title(f"{titles[arena]}: {size:,} bytes", loc="left", fontsize=8)
        ax.grid(axis="x", visible=False)
    axes[-1].set_xlim(-0.6, op_count - 0.4)
    axes[-1].set_xticks(range(op_count))
    axes[-1].set_xlabel("op (row # of the layer table), in execution order")
    return to_svg(fig, "arena")


@styled
def quant_error_chart(errors: dict[str, Sequence[float]], labels: dict[str, str], orders: Sequence[int],
                      model_orders: dict[str, int]) -> str:
    """One line per HORQ layer: relative input error against order (log scale); the model's own
    order ringed."""
    fig = _figure(7.0, 3.6)
    ax = fig.subplots()
    for name, values in errors.items():
        line, = ax.plot(orders, values, marker="o", label=labels[name])
        if model_orders.get(name) in orders:
            i = list(orders).index(model_orders[name])
            ax.plot([orders[i]], [values[i]], marker="o", markersize=11, fillstyle="none", color=line.get_color())
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:.2g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_xticks(list(orders))
    ax.set_xlabel("order K")
    ax.set_ylabel("||x - x_hat|| / ||x|| (log)")
    ax.legend(fontsize=7)
    return to_svg(fig, "quant-error")


@styled
def confusion_chart(matrix: np.ndarray) -> str:
    """Counts of [label][C's prediction], the diagonal being the correct answers."""
    classes = matrix.shape[0]
    side = min(6.0, 1.6 + 0.36 * classes)
    fig = _figure(side + 0.8, side)
    ax = fig.subplots()
    image = ax.imshow(np.log1p(matrix), cmap="Blues", interpolation="nearest")
    peak = float(np.log1p(matrix).max()) or 1.0
    for (i, j), count in np.ndenumerate(matrix):
        if count:
            ax.text(j, i, str(count), ha="center", va="center", fontsize=6.5,
                    color="white" if np.log1p(count) > 0.6 * peak else "black")
    ax.set_xticks(range(classes))
    ax.set_yticks(range(classes))
    ax.set_xlabel("C's prediction")
    ax.set_ylabel("label")
    ax.grid(False)
    del image
    return to_svg(fig, "confusion")
