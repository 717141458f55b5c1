"""Seconds per training step of the bundled MNIST network: HORQ against its float twin.

    python bench/train_step.py                 # batch 64, 2 threads, orders float/1/2 x patch/static
    python bench/train_step.py --orders 2 --granularities patch --steps 30

One step is what ``horq_codegen.nn.training.fit`` does per batch: forward, cross-entropy, backward,
Adam, the weight clip. The figure is the median over ``--steps`` timed steps after ``--warmup``
untimed ones, on random digits (the data does not change the work), with the determinism settings
of ``seed_everything`` that the training scripts use. The networks take turns step by step, so a
change in the machine's load falls on all of them alike; wall time is still noisy on a shared
machine, so read the ratios, not the seconds.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
for _path in (str(ROOT / "examples" / "mnist"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from model import build_model  # noqa: E402

from horq_codegen.nn.training import clip_horq_weights, parse_order, seed_everything  # noqa: E402


class _Trainer:
    """One network with its optimizer and a fixed random batch."""

    def __init__(self, order: int | None, granularity: str, batch: int) -> None:
        seed_everything(0)
        self.model = build_model(order, granularity).train()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.images = torch.rand(batch, 1, 28, 28)
        self.labels = torch.randint(0, 10, (batch,))

    def step(self) -> float:
        """Wall seconds of one step."""
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(self.model(self.images), self.labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        clip_horq_weights(self.model)
        return time.perf_counter() - start


def step_seconds(networks: dict[str, tuple[int | None, str]], batch: int, steps: int, warmup: int
                 ) -> dict[str, float]:
    """Median wall seconds of one training step of each network. The networks take turns, one step
    each per round, so that a change in the machine's load falls on all of them alike."""
    trainers = {name: _Trainer(order, granularity, batch) for name, (order, granularity) in networks.items()}
    times: dict[str, list[float]] = {name: [] for name in networks}
    for i in range(warmup + steps):
        for name, trainer in trainers.items():
            seconds = trainer.step()
            if i >= warmup:
                times[name].append(seconds)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--orders", nargs="+", type=parse_order, default=[None, 1, 2, 3, 4],
                   help="orders to time; 'none' is the float twin (default none 1 2 3 4)")
    p.add_argument("--granularities", nargs="+", default=["patch", "static"])
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    networks: dict[str, tuple[int | None, str]] = {}
    if None in args.orders:
        networks["float"] = (None, "patch")
    for order in [o for o in args.orders if o is not None]:
        for granularity in args.granularities:
            networks[f"HORQ-{order} {granularity}"] = (order, granularity)
    seconds = step_seconds(networks, args.batch_size, args.steps, args.warmup)
    float_time = seconds.get("float")
    rows = [{"network": name, "seconds": value} for name, value in seconds.items()]
    print(f"training step of the bundled MNIST network, batch {args.batch_size}, {args.threads} threads "
          f"(median of {args.steps} steps)")
    print(f"{'network':<20} {'s/step':>8} {'x float':>8}")
    for row in rows:
        ratio = f"{row['seconds'] / float_time:.2f}" if float_time else "-"
        row["vs_float"] = row["seconds"] / float_time if float_time else None
        print(f"{row['network']:<20} {row['seconds']:>8.4f} {ratio:>8}")
    if args.json:
        args.json.write_text(json.dumps({"batch_size": args.batch_size, "threads": args.threads,
                                         "torch": torch.__version__, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
