"""Where one inference spends its instructions: executed instructions per C function,
from the first layer mark to the last.

    .venv/bin/python bench/hotspots.py MODEL --target cortex-m7 [--top 15]
    .venv/bin/python bench/hotspots.py conv_a --order 2 --granularity patch --target cortex-m55

MODEL is a model file, or one of the suite's layers (conv_a, conv_b, conv_c, conv_d, fc;
bench/run.py), built with --order and --granularity. --activations int8 or float picks the
lowering; a suite layer defaults to float (as bench/run.py measures it), a model file to int8.

Generates the model's project for the target with one test input, runs it under
QEMU with the counting plugin's per-instruction profile, and credits each
instruction to its function (``nm -S``; "?" for code without a sized symbol).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402

import horq_codegen  # noqa: E402

from horq_codegen import emulator  # noqa: E402
from horq_codegen.integer import ACTIVATIONS, Lowering  # noqa: E402
from horq_codegen.pipeline import generate_project, load_and_lower  # noqa: E402
from horq_codegen.runners import RunOptions, run_raw  # noqa: E402
from horq_codegen.targets import load_target  # noqa: E402
from horq_codegen.samples import pick_samples  # noqa: E402
from run import LAYERS, _layer_model  # noqa: E402


def profile(model_path: Path, target_name: str, activations: str = "int8") -> tuple[dict[str, int], int]:
    """(instructions per function of the inference, instructions of the inference)."""
    target = load_target(target_name)
    model, graph = load_and_lower(model_path, lowering=Lowering(activations))
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
    parser.add_argument("model", help="a model file, or conv_a, conv_b or fc")
    parser.add_argument("--order", type=int, default=2, help="for a suite layer (default 2)")
    parser.add_argument("--granularity", default="patch", help="for a suite layer (default patch)")
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--activations", choices=ACTIVATIONS, default=None,
                        help="int8 or float (default: float for a suite layer, as bench/run.py; int8 for a model file)")
    parser.add_argument("--top", type=int, default=15, help="functions to list (default 15)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="horq-hotspots-model-") as tmp:
        model = Path(args.model)
        if args.model in LAYERS:
            spec = LAYERS[args.model]
            model = Path(tmp) / f"{args.model}.pt2"
            horq_codegen.export(_layer_model(spec, args.order, args.granularity), torch.zeros(1, *spec["shape"]), model)
        activations = args.activations or ("float" if args.model in LAYERS else "int8")
        functions, inference = profile(model, args.target, activations)
    for name, count in sorted(functions.items(), key=lambda item: -item[1])[:args.top]:
        print(f"{count:>12,}  {name}")
    print(f"{inference:>12,}  the inference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
