"""A small mutation run: hand-written bugs in the kernels, the reference, the packer and the passes.

Each mutant changes one line of a copy of the checkout; the test suite (``pytest -x``, as
``make test`` runs it) must then fail. A mutant it survives is a blind spot of the suite.

    .venv/bin/python scripts/mutants.py            # every mutant; `make mutants`
    .venv/bin/python scripts/mutants.py 3 7        # some of them, by number

Prints one line per mutant and the score, and exits 1 if any mutant survived.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    path: str
    original: str
    mutated: str
    what: str


MUTANTS = (
    Mutant("templates/kernels/horq_pool.c", "out[c] /= count;", "out[c] *= 1.0f / count;",
           "average pooling multiplies by the inverse of its divisor"),
    Mutant("templates/kernels/horq_pool.c", "if (v > out[c] || isnan(v)) {", "if (v > out[c]) {",
           "max pooling drops NaN"),
    Mutant("templates/kernels/horq_float.c", "if (iy >= 0 && iy < w->in.h && ix >= 0 && ix < w->in.w) {",
           "if (iy >= 0 && iy < w->in.h && ix >= 0 && ix <= w->in.w) {",
           "float convolution reads one column past the input"),
    Mutant("templates/kernels/horq_quantize.c", "mask |= (uint32_t)(any_below && bits <= limit) << i;",
           "mask |= (uint32_t)(any_below && bits < limit) << i;", "plane 2's |x| < beta_1 test off by one ulp"),
    Mutant("templates/kernels/horq_quantize.c", "bits |= (uint32_t)!(x[i] >= 0.0f) << i;",
           "bits |= (uint32_t)(x[i] < 0.0f) << i;", "the sign of NaN"),
    Mutant("horq_codegen/reference.py", "((lane[..., 0] + lane[..., 1]) + (lane[..., 2] + lane[..., 3]))",
           "(((lane[..., 0] + lane[..., 1]) + lane[..., 2]) + lane[..., 3])", "the reference's lane sum order"),
    Mutant("horq_codegen/reference.py", "(sequential_sum(_pool_taps(x, node, 0.0)) / f32(kh * kw))",
           "(sequential_sum(_pool_taps(x, node, 0.0)) * (f32(1) / f32(kh * kw)))",
           "the reference's average pooling multiplies by the inverse"),
    Mutant("horq_codegen/error_bound.py", "tie = np.abs(residual) < e\n", "tie = np.abs(residual) <= np.inf\n",
           "every quantizer sign counts as a tie (the sign-tie excuse excuses everything)"),
    Mutant("horq_codegen/error_bound.py", "tie = np.abs(residual) < e\n", "tie = np.zeros(residual.shape, bool)\n",
           "no quantizer sign is ever a tie"),
    Mutant("horq_codegen/verify.py", "(maths <= expected.bound64)",
           "(maths <= 1e-3 * (1 + np.abs(expected.torch64)))", "the old loose tolerance on the maths"),
    Mutant("horq_codegen/pack.py", 'np.packbits(padded, axis=-1, bitorder="little")',
           'np.packbits(padded, axis=-1, bitorder="big")', "bits packed most significant first"),
    Mutant("horq_codegen/pack.py", "        if j % 3:\n", "        if j % 3 == 1:\n",
           "the prefix-XOR weight layout misses the third word"),
    Mutant("horq_codegen/passes.py", 'np.sqrt(p["var"].astype(np.float64) + bn.attrs["eps"])',
           'np.sqrt(p["var"].astype(np.float64))', "BatchNorm folded without its epsilon"),
    Mutant("horq_codegen/passes.py", ".transpose(1, 2, 0).reshape(-1)  # hwc position",
           ".transpose(2, 1, 0).reshape(-1)  # hwc position", "flattening folded with height and width swapped"),
    Mutant("horq_codegen/passes.py", "mean(axis=1, dtype=np.float64)", "mean(axis=1, dtype=np.float32)",
           "alpha averaged in float32 (a few ulps off)"),
    Mutant("horq_codegen/shapes.py", "return out_channels, (h + 2 * ph - kh) // sh + 1,",
           "return out_channels, (h + 2 * ph - kh + sh - 1) // sh + 1,", "the shape rule in ceil mode"),
    Mutant("horq_codegen/project.py", "foreign = [f for f in present if f not in recorded]", "foreign = []",
           "regenerating overwrites files the user added"),
    Mutant("horq_codegen/model_file/archive.py", "if name in seen:", "if False:",
           "duplicate member names accepted"),
    Mutant("horq_codegen/model_file/pickles.py", "checker = self.policy.reducers.get(func.name)",
           "checker = self.policy.reducers.get(func.name, (lambda args: None) if func.name in self.policy.classes else None)",
           "a pickle may call an allowed layer's constructor"),
)


def _copy_checkout(destination: Path) -> None:
    """Tracked and untracked (not ignored) files: what CI would see, with the work in progress."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _apply(copy: Path, mutant: Mutant) -> None:
    path = copy / mutant.path
    text = path.read_text()
    if text.count(mutant.original) != 1:
        raise SystemExit(f"mutant '{mutant.what}': the line to change occurs {text.count(mutant.original)} "
                         f"times in {mutant.path}; update scripts/mutants.py")
    path.write_text(text.replace(mutant.original, mutant.mutated))


# The suite in an order that fails fast: host-only tests first, QEMU and PlatformIO last.
FAST_FIRST = ("test_kernels.py", "test_verification.py", "test_codegen_host.py", "test_patch_quantizer.py",
              "test_hostile_models.py", "test_output_folder.py", "test_model_formats.py", "test_user_inputs.py",
              "test_cli.py", "test_extreme_values.py", "test_random_models.py", "test_buffer_sizes.py")


def _suite(copy: Path) -> list[str]:
    files = sorted(p.name for p in (copy / "tests").glob("test_*.py"))
    ordered = [f for f in FAST_FIRST if f in files] + [f for f in files if f not in FAST_FIRST]
    return [f"tests/{f}" for f in ordered] + ["horq_codegen"]  # the doctests, as the configured testpaths


def _pytest(copy: Path, args: list[str], timeout_s: int) -> subprocess.CompletedProcess | None:
    env = {**os.environ, "PYTHONPATH": str(copy)}
    try:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=copy,
                              env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None


def _first_failure(run: subprocess.CompletedProcess) -> str | None:
    failed = [line for line in run.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    return failed[0].split(" ", 1)[1].split(" - ")[0] if failed else None


def _run_suite(copy: Path, pristine: Path, timeout_s: int) -> tuple[bool, str]:
    """(killed, the test that killed it or why it survived). A test that fails on the pristine
    checkout too (a flaky one, under load) does not count: the suite reruns without it."""
    deselected: list[str] = []
    while True:
        run = _pytest(copy, ["-x", *_suite(copy), *[f"--deselect={t}" for t in deselected]], timeout_s)
        if run is None:
            return True, f"the suite ran past {timeout_s} s (a hang counts as killed)"
        if run.returncode == 0:
            return False, "every test passed" + (f" (besides {', '.join(deselected)}, flaky)" if deselected else "")
        test = _first_failure(run)
        if test is None:
            return True, f"pytest exited {run.returncode}: {run.stdout.strip().splitlines()[-1:]}"
        again = _pytest(pristine, [test], timeout_s)
        if again is not None and again.returncode == 0:
            return True, test
        deselected.append(test)  # fails without the mutant too


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("numbers", nargs="*", type=int, help="mutants to run (1-based; default: all)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per suite run")
    args = parser.parse_args()
    chosen = args.numbers or list(range(1, len(MUTANTS) + 1))
    with tempfile.TemporaryDirectory(prefix="horq-mutants-") as tmp:
        pristine = Path(tmp) / "pristine"
        _copy_checkout(pristine)
        for number in chosen:  # check every line to change first: a stale mutant is an error, not a survivor
            _apply(Path(shutil.copytree(pristine, Path(tmp) / "check", dirs_exist_ok=True)), MUTANTS[number - 1])
            shutil.rmtree(Path(tmp) / "check")
        survivors = []
        for number in chosen:
            mutant = MUTANTS[number - 1]
            copy = Path(tmp) / f"mutant-{number}"
            shutil.copytree(pristine, copy)
            _apply(copy, mutant)
            start = time.monotonic()
            killed, how = _run_suite(copy, pristine, args.timeout)
            shutil.rmtree(copy, ignore_errors=True)
            print(f"{number:2d} {'killed ' if killed else 'SURVIVED'} {time.monotonic() - start:6.0f} s  "
                  f"{mutant.what}  ({mutant.path}): {how}", flush=True)
            if not killed:
                survivors.append(number)
    print(f"mutation score: {len(chosen) - len(survivors)}/{len(chosen)} killed"
          + (f"; survivors: {', '.join(map(str, survivors))}" if survivors else ""))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
