"""Train the Bi-Real-style example (``model.py``) on the offline MNIST subset and export it.

    python examples/birealnet/train.py                      # HORQ order 2, static -> examples/birealnet/model.pt2
    python examples/birealnet/train.py --granularity patch --out /tmp/patch.pt2
    python examples/birealnet/train.py --order none --out /tmp/float.pt2
    python examples/birealnet/train.py --smoke --out /tmp/smoke.pt2   # 256 samples, 1 epoch

Training as in ``examples/mnist/train.py``: Adam with a cosine learning-rate schedule,
cross-entropy loss, weights of HORQ layers clipped to [-1, 1] after each step
(``shared/HORQ.md``, Training); in addition, each training image is shifted by up to
``--shift`` pixels (zeros fill in), because this network overfits the 4,000 digits
without it. Runs are seeded (torch, numpy, random) and use
deterministic algorithms, so the same command on the same machine and thread count
gives the same model. One thread by default (the machine's cores are shared).
(The helpers come from ``horq_codegen.nn.training``, ``random_shift`` included, which the
CIFAR-10 example shares, not from the mnist script: importing it would also import its
``model`` module under the same name as ours.)
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for _path in (str(HERE), str(ROOT)):  # model.py beside us; horq_codegen without an install
    if _path not in sys.path:
        sys.path.insert(0, _path)

from model import build_model  # noqa: E402

import horq_codegen  # noqa: E402
from horq_codegen.errors import HorqError  # noqa: E402
from horq_codegen.nn.training import (  # noqa: E402
    evaluate, fit, mnist_tensors, parse_order, random_shift, seed_everything)

DEFAULT_OUT = HERE / "model.pt2"
SMOKE_SAMPLES = 256
EPOCHS = 30
SHIFT = 2


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--order", type=parse_order, default=2, help="HORQ order (1 = XNOR), or 'none' for float (default 2)")
    p.add_argument("--granularity", default="static", choices=("patch", "pixel", "tensor", "static"),
                   help="input scaling groups (default static)")
    p.add_argument("--epochs", type=int, default=EPOCHS, help=f"training epochs (default {EPOCHS})")
    p.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default 64)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak Adam learning rate (default 3e-3)")
    p.add_argument("--shift", type=int, default=SHIFT,
                   help=f"random shift of training images, in pixels, 0 for none (default {SHIFT})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"exported model (default {DEFAULT_OUT})")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--smoke", action="store_true",
                   help=f"fast check: {SMOKE_SAMPLES} training and test samples, 1 epoch, still exports")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error("--epochs must be >= 1")
    if args.shift < 0:
        p.error("--shift must be >= 0")
    if args.threads < 1:
        p.error("--threads must be >= 1")
    if args.smoke:
        args.epochs = 1
    return args


def train(args: argparse.Namespace) -> float:
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    x_train, y_train, x_test, y_test = mnist_tensors(SMOKE_SAMPLES if args.smoke else None)
    model = build_model(args.order, args.granularity)

    label = "float" if args.order is None else f"HORQ order {args.order} ({args.granularity})"
    parameters = sum(p.numel() for p in model.parameters())
    print(f"training Bi-Real {label}, {parameters} parameters: {len(x_train)} samples, {args.epochs} epochs,"
          f" batch {args.batch_size}, shift {args.shift}, {args.threads} threads", flush=True)
    train_time = fit(model, x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                     seed=args.seed, progress=not args.no_progress,
                     augment=lambda batch, generator: random_shift(batch, args.shift, generator))

    accuracy = evaluate(model, x_test, y_test)
    print(f"training time: {train_time:.1f} s")
    print(f"test accuracy: {100 * accuracy:.2f}%", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    path = horq_codegen.export(model.eval(), torch.zeros(1, 1, 28, 28), args.out, dataset="mnist-subset")
    print(f"exported {path}")
    return accuracy


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        train(args)
    except HorqError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
