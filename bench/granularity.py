"""What granularity costs: one HORQ conv at each granularity, executed instructions under QEMU.

    .venv/bin/python bench/granularity.py [--target cortex-m7] [--orders 2 3]

The layer: 40 -> 40 channels, 3x3, stride 2, padding 1, on a 14x14 input (float activations: the
kernel alone), against its float32 build. `pixel` is the slow one (README, "Granularity and speed").
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import horq_codegen  # noqa: E402
from horq_codegen.bench import bench  # noqa: E402
from horq_codegen.integer import Lowering  # noqa: E402
from horq_codegen.nn import HORQConv2d  # noqa: E402

GRANULARITIES = ("pixel", "tensor", "patch", "static")


def layer_instructions(target: str, order: int, granularity: str, work: Path) -> tuple[int, int]:
    """(HORQ, float32) instructions of the layer."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(HORQConv2d(40, 40, 3, stride=2, padding=1, order=order, granularity=granularity))
    if granularity == "static":  # running betas with real values
        model.train()
        with torch.no_grad():
            model(torch.randn(8, 40, 14, 14))
    path = work / f"{granularity}-{order}.pt2"
    horq_codegen.export(model.eval(), torch.zeros(1, 40, 14, 14), path)
    report = bench(path, target, lowering=Lowering("float"))
    layer = next(l for l in report.horq.layers if l.op.startswith("horq"))
    base = next(l.instructions for l in report.float32.layers if l.name == layer.name)
    return layer.instructions, base


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="cortex-m7")
    parser.add_argument("--orders", nargs="+", type=int, default=[2, 3])
    args = parser.parse_args()
    print(f"{'order':<6}{'granularity':<12}{'HORQ instr':>12}{'float32 instr':>15}{'speedup':>9}")
    with tempfile.TemporaryDirectory(prefix="horq-granularity-") as tmp:
        for order in args.orders:
            for granularity in GRANULARITIES:
                horq, base = layer_instructions(args.target, order, granularity, Path(tmp))
                print(f"{order:<6}{granularity:<12}{horq:>12,}{base:>15,}{base / horq:>8.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
