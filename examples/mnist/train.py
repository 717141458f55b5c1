"""Train the bundled MNIST example (``model.py``) on the offline MNIST subset and export it.

    python examples/mnist/train.py                      # HORQ order 2 -> examples/mnist/model.pt2
    python examples/mnist/train.py --order 1 --out /tmp/xnor.pt2
    python examples/mnist/train.py --order none --out /tmp/float.pt2
    python examples/mnist/train.py --smoke --out /tmp/smoke.pt2   # 256 samples, 1 epoch

Training: Adam with a cosine learning-rate schedule, cross-entropy loss, weights of
HORQ layers clipped to [-1, 1] after each step (``shared/HORQ.md``, Training).
Runs are seeded (torch, numpy, random) and use deterministic algorithms, so the same
command on the same machine and thread count gives the same model.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for _path in (str(HERE), str(ROOT)):  # model.py beside us; horq_codegen without an install
    if _path not in sys.path:
        sys.path.insert(0, _path)

from model import build_model  # noqa: E402

import horq_codegen  # noqa: E402
from horq_codegen import data  # noqa: E402
from horq_codegen.errors import HorqError  # noqa: E402
from horq_codegen.nn.training import clip_horq_weights, evaluate, parse_order, seed_everything  # noqa: E402

DEFAULT_OUT = HERE / "model.pt2"
SMOKE_SAMPLES = 256


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--order", type=parse_order, default=2, help="HORQ order (1 = XNOR), or 'none' for float (default 2)")
    p.add_argument("--granularity", default="patch", choices=("patch", "pixel", "tensor", "static"),
                   help="input scaling groups (default patch)")
    p.add_argument("--epochs", type=int, default=8, help="training epochs (default 8)")
    p.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default 64)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak Adam learning rate (default 3e-3)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"exported model (default {DEFAULT_OUT})")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--smoke", action="store_true",
                   help=f"fast check: {SMOKE_SAMPLES} training and test samples, 1 epoch, still exports")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error("--epochs must be >= 1")
    if args.smoke:
        args.epochs = 1
    return args


def train(args: argparse.Namespace) -> float:
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None

    x_train, y_train = data.mnist_subset("train")
    x_test, y_test = data.mnist_subset("test")
    if args.smoke:  # a fast check of the whole pipeline, not of accuracy
        x_train, y_train = x_train[:SMOKE_SAMPLES], y_train[:SMOKE_SAMPLES]
        x_test, y_test = x_test[:SMOKE_SAMPLES], y_test[:SMOKE_SAMPLES]
    x_train, y_train = torch.from_numpy(x_train), torch.from_numpy(y_train)
    x_test, y_test = torch.from_numpy(x_test), torch.from_numpy(y_test)

    model = build_model(args.order, args.granularity)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = (len(x_train) + args.batch_size - 1) // args.batch_size
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(args.seed)

    label = "float" if args.order is None else f"HORQ order {args.order} ({args.granularity})"
    print(f"training {label}: {len(x_train)} samples, {args.epochs} epochs, batch {args.batch_size},"
          f" {args.threads} threads", flush=True)
    start_time = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=generator)
        batches = range(steps_per_epoch)
        bar = None
        if tqdm is not None and not args.no_progress:
            bar = tqdm(batches, desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch", leave=True)
            batches = bar
        total, seen = 0.0, 0
        for step in batches:
            idx = order[step * args.batch_size:(step + 1) * args.batch_size]
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            clip_horq_weights(model)
            total += loss.item() * len(idx)
            seen += len(idx)
            if bar is not None:
                bar.set_postfix(loss=f"{total / seen:.4f}")
        if bar is None:
            print(f"epoch {epoch + 1}/{args.epochs}: loss {total / seen:.4f}", flush=True)
    train_time = time.perf_counter() - start_time

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
