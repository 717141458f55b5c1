"""Verify: run the generated C on test inputs and compare with PyTorch and the reference.

Criteria (also in the README):
- C against the numpy reference: **bit-exact** (NaN where the reference has NaN).
  Both run the same integer XOR-popcount products and the same float sums in
  the same order, so any difference is a bug.
- C against PyTorch: the same argmax on every sample, and per sample
  ``max |c - t| <= 1e-3 * (1 + max |t|)`` unless the sample holds a sign tie.
  PyTorch sums in other orders, so the last bits differ; where a quantizer's
  residual lies within ``TIE_MARGIN * beta_1`` of 0 (the reference reports how
  close each sample comes), one side may take the other sign, which moves an
  output by about ``2 * alpha * beta``. Such samples are counted and shown, and
  a sample beyond tolerance *without* a tie fails verification.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import fit, reference
from .errors import HorqError
from .importer import ImportedModel
from .ir import Graph
from .memory import plan_memory
from .pipeline import generate_project, load_and_lower
from .runners import run_project
from .samples import Samples, UserData, pick_samples
from .targets import Target, load_target

RELATIVE_TOLERANCE = 1e-3
TIE_MARGIN = 1e-5  # about 80 float32 ulps of beta_1: PyTorch and the reference differ by a few ulps
@dataclass(frozen=True)
class Comparison:
    samples: int
    bit_exact: bool
    max_diff_reference: float
    max_diff_torch: float
    within_tolerance: int
    explained_by_ties: int       # samples beyond tolerance that hold a sign tie
    argmax_agree: int
    accuracy_c: float | None
    accuracy_torch: float | None

    @property
    def passed(self) -> bool:
        return (self.bit_exact and self.within_tolerance + self.explained_by_ties == self.samples
                and self.argmax_agree == self.samples)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a.astype(np.float64) - b.astype(np.float64)))
    return float(np.nan_to_num(diff, nan=np.inf).max()) if diff.size else 0.0


def compare(c_out: np.ndarray, ref_out: np.ndarray, torch_out: np.ndarray, labels: np.ndarray | None,
            margins: np.ndarray | None = None) -> Comparison:
    same_bits = (c_out.view(np.uint32) == ref_out.view(np.uint32)) | (np.isnan(c_out) & np.isnan(ref_out))
    per_sample = [_max_diff(c, t) for c, t in zip(c_out, torch_out)]
    bounds = RELATIVE_TOLERANCE * (1 + np.nan_to_num(np.abs(torch_out), nan=0.0).max(axis=1))
    margins = np.full(len(c_out), np.inf) if margins is None else margins
    beyond = [d > b for d, b in zip(per_sample, bounds)]
    argmax_c, argmax_t = np.argmax(c_out, axis=1), np.argmax(torch_out, axis=1)
    accuracy = (lambda pred: float((pred == labels).mean())) if labels is not None else (lambda pred: None)
    return Comparison(
        samples=len(c_out), bit_exact=bool(same_bits.all()), max_diff_reference=_max_diff(c_out, ref_out),
        max_diff_torch=max(per_sample, default=0.0), within_tolerance=len(beyond) - int(sum(beyond)),
        explained_by_ties=int(sum(b and m < TIE_MARGIN for b, m in zip(beyond, margins))),
        argmax_agree=int((argmax_c == argmax_t).sum()), accuracy_c=accuracy(argmax_c), accuracy_torch=accuracy(argmax_t))


@dataclass(frozen=True)
class VerifyReport:
    model: Path
    target: str
    samples: Samples
    comparison: Comparison
    arena_bytes: int

    def summary(self) -> str:
        c = self.comparison
        lines = [
            f"verify {self.model} on {self.target}: {self.samples.description}",
            f"  C vs reference : {'bit-exact' if c.bit_exact else 'DIFFERENT'} (max abs diff {c.max_diff_reference:.3g})",
            f"  C vs PyTorch   : max abs diff {c.max_diff_torch:.3g}, within tolerance {c.within_tolerance}/{c.samples}"
            + (f" (+{c.explained_by_ties} at sign ties)" if c.explained_by_ties else "")
            + f", argmax agree {c.argmax_agree}/{c.samples}",
        ]
        if c.accuracy_c is not None:
            lines.append(f"  accuracy       : C {100 * c.accuracy_c:.2f} %, PyTorch {100 * c.accuracy_torch:.2f} %")
        lines.append(f"  arena          : {self.arena_bytes} bytes")
        lines.append("PASS" if c.passed else "FAIL: the generated code disagrees with the model")
        return "\n".join(lines)


def verify_graph(model: ImportedModel, graph: Graph, target: Target, samples: Samples,
                 work_dir: Path, *, sanitize: bool = False) -> VerifyReport:
    ref_out, margins = reference.run_with_margins(graph, samples.inputs)
    torch_out = model.run_torch(samples.inputs)
    plan = plan_memory(graph)
    # Verification runs in the emulator's memory map, not the board's; many inputs take several images.
    chunk = fit.max_samples_for_emulator(graph, plan, target)
    outputs = []
    for start in range(0, len(samples.inputs), chunk):
        batch = samples.inputs[start:start + chunk]
        generated = generate_project(model, graph, target, work_dir / f"project-{start}", batch, check_board=False)
        outputs.append(run_project(generated.out_dir, target, len(batch), ref_out.shape[1], sanitize=sanitize).outputs)
    comparison = compare(np.concatenate(outputs), ref_out, torch_out, samples.labels, margins)
    return VerifyReport(model.file.path, target.name, samples, comparison, plan.arena_bytes)


def verify(model_path: str | Path, target_name: str, samples: int | None = None, *, sanitize: bool = False,
           keep: Path | None = None, input_shape: tuple[int, ...] | None = None,
           user: UserData | None = None, progress: Callable[[str], None] = lambda line: None) -> VerifyReport:
    """``samples``: how many inputs (default: 100, or all of the user's). ``progress`` hears one
    line once the model is loaded and the inputs chosen, before the long work."""
    target = load_target(target_name)
    model, graph = load_and_lower(model_path, input_shape)
    chosen = pick_samples(model, samples, user)
    progress(f"verifying {model_path} on {target.name} with {chosen.description} ...")
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return verify_graph(model, graph, target, chosen, keep, sanitize=sanitize)
    with tempfile.TemporaryDirectory(prefix="horq-verify-") as tmp:
        return verify_graph(model, graph, target, chosen, Path(tmp), sanitize=sanitize)
