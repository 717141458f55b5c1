"""Verify: run the generated C on test inputs and compare with PyTorch and the reference.

Criteria (README, "Verification"):

1. **C against the float32 reference: bit-exact** (NaN where the reference has NaN). Both run
   the same integer XOR-popcount products and the same float sums in the same order, so any
   difference is a bug.
2. **The maths against PyTorch's, in float64.** The reference evaluates the same lowered graph
   in float64 (with the constants before their rounding to float32), and PyTorch runs the model
   in float64. Their outputs may differ only by float64 rounding: every output must lie within
   ``SAFETY`` times the bound of :mod:`horq_codegen.error_bound` (about ``1e-13`` of the output's
   size; a sign tie of a quantizer, where the two float64 runs could take different signs,
   enters the bound as the flip it could be). A mistake in the maths that the kernels and the
   reference share shows here, down to that size.
3. **Float32 rounding of our code is of PyTorch's order:** over the samples, the median of
   ``max |C - reference64|`` is at most ``ROUNDING_FACTOR`` times the median of
   ``max |PyTorch32 - PyTorch64|`` (plus ``16 u`` of the outputs' size). A loss of precision that
   C and the reference share (a narrower accumulator) shows here.
4. **The argmax of C equals PyTorch's float32 argmax** on every sample, unless PyTorch's two
   top outputs lie within the float32 difference of C and PyTorch of each other.

In integer mode (int8 tensors between layers, :mod:`horq_codegen.integer`) C must still equal the
reference bit for bit, but PyTorch's float model is only approximated: the criterion is that C's
argmax equals PyTorch's on at least ``AGREEMENT_THRESHOLD`` of the samples; the accuracy of both
is reported when labels are known.

What float32 rounding then does is reported, not bounded: PyTorch and the reference sum in
different orders, so where a quantizer's residual lies within a few ulps of 0 one of them may
take the other sign, which moves outputs by about ``2 alpha beta``; the summary counts such
samples (whose float32 difference exceeds ``FLIP_SHOWN * (1 + max |t|)``).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import error_bound, fit, integer, reference
from .importer import ImportedModel
from .ir import Graph
from .memory import plan_memory
from .pipeline import Lowering, generate_project, load_and_lower
from .runners import run_project
from .samples import Samples, UserData, pick_samples
from .targets import Target, load_target

AGREEMENT_THRESHOLD = 0.99  # integer mode: the share of samples whose argmax must equal PyTorch's
ROUNDING_FACTOR = 16.0  # our sums are sequential, PyTorch's blocked: ours may be a few times less accurate
FLIP_SHOWN = 1e-4


@dataclass(frozen=True)
class Expected:
    """What C must produce, and the float64 runs that check the maths, for one batch of inputs."""
    reference: np.ndarray    # float32 reference outputs: C must equal these bit for bit
    reference64: np.ndarray  # the same maths in float64
    bound64: np.ndarray      # SAFETY * the rounding bound on |reference64 - torch64|
    ties64: np.ndarray       # per sample: quantizer signs at a float64 tie (their flips are in the bound)
    torch: np.ndarray        # PyTorch, float32
    torch64: np.ndarray      # PyTorch, float64


def expected_outputs(model: ImportedModel, graph: Graph, inputs: np.ndarray) -> Expected:
    ref64, bounds, ties = [], [], []
    for sample in inputs:
        values = reference.run_traced(graph, sample, np.float64)
        bound = error_bound.sample_bound(graph, values, error_bound.FLOAT64_U)
        ref64.append(values[graph.output].reshape(-1))
        bounds.append(error_bound.SAFETY * bound.output)
        ties.append(bound.ties)
    return Expected(reference.run(graph, inputs), np.stack(ref64), np.stack(bounds), np.array(ties),
                    model.run_torch(inputs), model.run_torch(inputs, np.float64))


@dataclass(frozen=True)
class Comparison:
    samples: int
    bit_exact: bool
    max_diff_reference: float
    max_diff_torch: float        # float32 C against float32 PyTorch
    maths_agree: int             # samples whose float64 runs agree within the bound
    maths_max_diff: float
    maths_max_ratio: float       # the largest float64 difference as a fraction of its bound
    samples_with_ties: int       # samples whose float64 bound holds a sign tie
    rounding_ours: float         # median over samples of max |C - reference64|
    rounding_torch: float        # median over samples of max |torch - torch64|
    rounding_ok: bool
    flipped: int                 # samples whose float32 difference looks like a sign flip by rounding
    argmax_agree: int
    argmax_explained: int        # disagreements where PyTorch's top two lie within the float32 difference
    accuracy_c: float | None
    accuracy_torch: float | None

    @property
    def passed(self) -> bool:
        return (self.bit_exact and self.maths_agree == self.samples and self.rounding_ok
                and self.argmax_agree + self.argmax_explained == self.samples)


def _abs_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| in float64, 0 where both are NaN (or the same infinity), inf where only one is NaN."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore"):
        diff = np.abs(a - b)
    same = (np.isnan(a) & np.isnan(b)) | (a == b)
    return np.where(same, 0.0, np.nan_to_num(diff, nan=np.inf))


def _max(values: np.ndarray) -> float:
    return float(values.max()) if values.size else 0.0


def compare(c_out: np.ndarray, expected: Expected, labels: np.ndarray | None) -> Comparison:
    ref, torch32 = expected.reference, expected.torch
    same_bits = (c_out.view(np.uint32) == ref.view(np.uint32)) | (np.isnan(c_out) & np.isnan(ref))
    maths = _abs_diff(expected.reference64, expected.torch64)
    within = (maths == 0) | (maths <= expected.bound64)  # equal (the same NaN or infinity too), or within
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(maths == 0, 0.0, maths / expected.bound64)
    float32_diff = _abs_diff(c_out, torch32)
    per_sample = float32_diff.max(axis=1) if float32_diff.size else np.zeros(len(c_out))
    scale = 1 + np.nan_to_num(np.abs(expected.torch64), nan=0.0, posinf=0.0, neginf=0.0).max(axis=1)
    ours = np.median(_abs_diff(c_out, expected.reference64).max(axis=1))
    theirs = np.median(_abs_diff(torch32, expected.torch64).max(axis=1))
    rounding_ok = bool(ours <= ROUNDING_FACTOR * theirs + 16 * error_bound.FLOAT32_U * np.median(scale))
    argmax_c, argmax_t = np.argmax(c_out, axis=1), np.argmax(torch32, axis=1)
    rows = np.arange(len(c_out))
    with np.errstate(invalid="ignore"):  # inf - inf: a NaN gap, which explains nothing
        gap = np.abs(torch32[rows, argmax_c].astype(np.float64) - torch32[rows, argmax_t])
    disagree = argmax_c != argmax_t
    accuracy = (lambda pred: float((pred == labels).mean())) if labels is not None else (lambda pred: None)
    return Comparison(
        samples=len(c_out), bit_exact=bool(same_bits.all()), max_diff_reference=_max(_abs_diff(c_out, ref)),
        max_diff_torch=_max(per_sample), maths_agree=int(within.all(axis=1).sum()),
        maths_max_diff=_max(maths), maths_max_ratio=_max(ratio), samples_with_ties=int((expected.ties64 > 0).sum()),
        rounding_ours=float(ours), rounding_torch=float(theirs), rounding_ok=rounding_ok,
        flipped=int((per_sample > FLIP_SHOWN * scale).sum()),
        argmax_agree=int((~disagree).sum()), argmax_explained=int((disagree & (gap <= 2 * per_sample)).sum()),
        accuracy_c=accuracy(argmax_c), accuracy_torch=accuracy(argmax_t))


@dataclass(frozen=True)
class IntegerComparison:
    """Integer mode: C against the integer reference (bit-exact) and PyTorch's float model (argmax)."""
    samples: int
    bit_exact: bool
    max_diff_reference: float
    max_diff_torch: float
    argmax_agree: int
    accuracy_c: float | None
    accuracy_torch: float | None

    @property
    def agreement(self) -> float:
        return self.argmax_agree / self.samples if self.samples else 1.0

    @property
    def passed(self) -> bool:
        return self.bit_exact and self.agreement >= AGREEMENT_THRESHOLD

    def lines(self) -> list[str]:
        c = self
        lines = [f"  C vs reference : {'bit-exact' if c.bit_exact else 'DIFFERENT'} (int8 mode; max abs diff "
                 f"{c.max_diff_reference:.3g})",
                 f"  C vs PyTorch   : argmax agree {c.argmax_agree}/{c.samples} ({100 * c.agreement:.1f} %, at least "
                 f"{100 * AGREEMENT_THRESHOLD:g} % needed"
                 f"{'' if c.agreement >= AGREEMENT_THRESHOLD else ': TOO FEW'}); max abs diff {c.max_diff_torch:.3g} "
                 "(int8 against float, not a criterion)"]
        if c.accuracy_c is not None:
            lines.append(f"  accuracy       : C {100 * c.accuracy_c:.2f} %, PyTorch {100 * c.accuracy_torch:.2f} % "
                         f"({100 * (c.accuracy_c - c.accuracy_torch):+.2f} points)")
        return lines


def compare_integer(c_out: np.ndarray, ref: np.ndarray, torch32: np.ndarray,
                    labels: np.ndarray | None) -> IntegerComparison:
    same_bits = (c_out.view(np.uint32) == ref.view(np.uint32)) | (np.isnan(c_out) & np.isnan(ref))
    argmax_c, argmax_t = np.argmax(c_out, axis=1), np.argmax(torch32, axis=1)
    accuracy = (lambda pred: float((pred == labels).mean())) if labels is not None else (lambda pred: None)
    return IntegerComparison(len(c_out), bool(same_bits.all()), _max(_abs_diff(c_out, ref)),
                             _max(_abs_diff(c_out, torch32)), int((argmax_c == argmax_t).sum()),
                             accuracy(argmax_c), accuracy(argmax_t))


@dataclass(frozen=True)
class VerifyReport:
    model: Path
    target: str
    samples: Samples
    comparison: Comparison | IntegerComparison
    arena_bytes: int
    notes: tuple[str, ...] = ()   # what ran where (a board image: its bytes, its UART, cycles)
    outputs: np.ndarray | None = field(default=None, repr=False, compare=False)  # C's, one row per sample

    def summary(self) -> str:
        c = self.comparison
        if isinstance(c, IntegerComparison):
            return "\n".join([f"verify {self.model} on {self.target}: {self.samples.description}", *c.lines(),
                              f"  arena          : {self.arena_bytes} bytes", *self.notes,
                              "PASS" if c.passed else "FAIL: the generated code disagrees with the model"])
        ties = f"; {c.samples_with_ties} sample(s) hold a float64 sign tie" if c.samples_with_ties else ""
        flips = f"; {c.flipped} sample(s) where rounding flipped a quantizer sign" if c.flipped else ""
        explained = f" (+{c.argmax_explained} within rounding)" if c.argmax_explained else ""
        lines = [
            f"verify {self.model} on {self.target}: {self.samples.description}",
            f"  C vs reference : {'bit-exact' if c.bit_exact else 'DIFFERENT'} (max abs diff {c.max_diff_reference:.3g})",
            f"  maths (float64): reference and PyTorch within the rounding bound on {c.maths_agree}/{c.samples} "
            f"(max diff {c.maths_max_diff:.3g}, at most {c.maths_max_ratio:.2g} of the bound){ties}",
            f"  C vs PyTorch   : max abs diff {c.max_diff_torch:.3g}; float32 rounding {c.rounding_ours:.2g} (C), "
            f"{c.rounding_torch:.2g} (PyTorch){'' if c.rounding_ok else ' TOO LARGE'}{flips}; "
            f"argmax agree {c.argmax_agree}/{c.samples}{explained}",
        ]
        if c.accuracy_c is not None:
            lines.append(f"  accuracy       : C {100 * c.accuracy_c:.2f} %, PyTorch {100 * c.accuracy_torch:.2f} %")
        lines.append(f"  arena          : {self.arena_bytes} bytes")
        lines.extend(self.notes)
        lines.append("PASS" if c.passed else "FAIL: the generated code disagrees with the model")
        return "\n".join(lines)


def compare_with_model(model: ImportedModel, graph: Graph, samples: Samples,
                       c_out: np.ndarray) -> Comparison | IntegerComparison:
    """C's outputs on ``samples`` against the reference (bit for bit) and PyTorch (by the mode's criteria)."""
    if integer.is_integer(graph):
        return compare_integer(c_out, reference.run(graph, samples.inputs), model.run_torch(samples.inputs),
                               samples.labels)
    return compare(c_out, expected_outputs(model, graph, samples.inputs), samples.labels)


def verify_graph(model: ImportedModel, graph: Graph, target: Target, samples: Samples,
                 work_dir: Path, *, sanitize: bool = False) -> VerifyReport:
    plan = plan_memory(graph)
    output_size = int(np.prod(graph.shape_of(graph.output)))
    # Verification runs in the emulator's memory map, not the board's; many inputs take several images.
    chunk = fit.max_samples_for_emulator(graph, plan, target)
    outputs = []
    for start in range(0, len(samples.inputs), chunk):
        batch = samples.inputs[start:start + chunk]
        generated = generate_project(model, graph, target, work_dir / f"project-{start}", batch, check_board=False)
        outputs.append(run_project(generated.out_dir, target, len(batch), output_size, sanitize=sanitize).outputs)
    c_out = np.concatenate(outputs)
    comparison = compare_with_model(model, graph, samples, c_out)
    return VerifyReport(model.file.path, target.name, samples, comparison, plan.arena_bytes, outputs=c_out)


def verify(model_path: str | Path, target_name: str, samples: int | None = None, *, sanitize: bool = False,
           keep: Path | None = None, input_shape: tuple[int, ...] | None = None,
           user: UserData | None = None, progress: Callable[[str], None] = lambda line: None,
           lowering: Lowering = Lowering()) -> VerifyReport:
    """``samples``: how many inputs (default: 100, or all of the user's). ``progress`` hears one
    line once the model is loaded and the inputs chosen, before the long work."""
    target = load_target(target_name)
    model, graph = load_and_lower(model_path, input_shape, lowering)
    chosen = pick_samples(model, samples, user)
    progress(f"verifying {model_path} on {target.name} with {chosen.description} ...")
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return verify_graph(model, graph, target, chosen, keep, sanitize=sanitize)
    with tempfile.TemporaryDirectory(prefix="horq-verify-") as tmp:
        return verify_graph(model, graph, target, chosen, Path(tmp), sanitize=sanitize)
