"""Where one inference spends its instructions: executed instructions per C function.

    .venv/bin/python bench/hotspots.py MODEL --target cortex-m7 [--top 15]

Generates the model's project for the target with one test input, runs it under
QEMU with the counting plugin's per-instruction profile, and credits each
instruction to its function (``nm -S``). The harness's own functions (start-up,
printf of the outputs) are listed too; the inference alone is the total between
the first and the last layer mark, printed last.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from horq_codegen import emulator  # noqa: E402
from horq_codegen.pipeline import generate_project, load_and_lower  # noqa: E402
from horq_codegen.runners import RunOptions, run_raw  # noqa: E402
from horq_codegen.targets import load_target  # noqa: E402
from horq_codegen.verify import pick_samples  # noqa: E402


def profile(model_path: Path, target_name: str) -> tuple[dict[str, int], int]:
    """(instructions per function over the whole run, instructions of the inference)."""
    target = load_target(target_name)
    model, graph = load_and_lower(model_path)
    sample = pick_samples(model, 1).inputs
    with tempfile.TemporaryDirectory(prefix="horq-hotspots-") as tmp:
        generated = generate_project(model, graph, target, Path(tmp) / "project", sample, check_board=False)
        counts = Path(tmp) / "profile.txt"
        run = run_raw(generated.out_dir, target, RunOptions(count=True, extra_cflags="-DHORQ_BENCH", profile=counts))
        functions = emulator.read_profile(counts, run.binary, target.emulator["nm"])
    marks = run.marks or (0,)
    return functions, marks[-1] - marks[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--top", type=int, default=15, help="functions to list (default 15)")
    args = parser.parse_args()
    functions, inference = profile(args.model, args.target)
    for name, count in sorted(functions.items(), key=lambda item: -item[1])[:args.top]:
        print(f"{count:>12,}  {name}")
    print(f"{inference:>12,}  the inference (first to last layer mark)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
