"""Train the CIFAR-10 example (``model.py``) on the user's copy of CIFAR-10 and export it.

    python examples/cifar10/train.py --data ~/data/cifar-10-batches-bin    # HORQ order 2 -> examples/cifar10/model.pt2
    python examples/cifar10/train.py --data ~/data --order 1 --out /tmp/xnor.pt2
    python examples/cifar10/train.py --data ~/data --order none --width 64 --out /tmp/float.pt2
    python examples/cifar10/train.py --data ~/data --smoke --out /tmp/smoke.pt2   # 256 samples, 1 epoch

``--data`` is the binary version's ``cifar-10-batches-bin`` folder, or the folder holding it
(https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz; ``horq_codegen.data.load_cifar10``).
Training as in ``examples/mnist/train.py``: Adam with a cosine learning-rate schedule,
cross-entropy loss, weights of HORQ layers clipped to [-1, 1] after each step
(``shared/HORQ.md``, Training); each training image is padded by 4 zero pixels and cropped back
to 32 x 32 at a random place, then mirrored left to right with probability 1/2 (``--no-augment``
turns both off). Images are fed as loaded, in [0, 1] (the float first layer's BatchNorm does the
normalizing), so that the exported model takes what ``load_cifar10`` returns. Runs are seeded
(torch, numpy, random) and use deterministic algorithms, so the same command on the same
machine and thread count gives the same model.
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

from model import WIDTH, build_model  # noqa: E402

import horq_codegen  # noqa: E402
from horq_codegen.data import load_cifar10  # noqa: E402
from horq_codegen.errors import HorqError  # noqa: E402
from horq_codegen.nn.training import (  # noqa: E402
    evaluate, fit, parse_order, random_flip, random_shift, seed_everything)

DEFAULT_OUT = HERE / "model.pt2"
SMOKE_SAMPLES = 256
EPOCHS = 30
CROP_PADDING = 4


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True,
                   help="the cifar-10-batches-bin folder of CIFAR-10's binary version, or the folder holding it")
    p.add_argument("--order", type=parse_order, default=2, help="HORQ order (1 = XNOR), or 'none' for float (default 2)")
    p.add_argument("--granularity", default="patch", choices=("patch", "pixel", "tensor", "static"),
                   help="input scaling groups (default patch)")
    p.add_argument("--width", type=int, default=WIDTH,
                   help=f"channels of the first stage; the others have 2x and 4x (default {WIDTH}, the papers')")
    p.add_argument("--epochs", type=int, default=EPOCHS, help=f"training epochs (default {EPOCHS})")
    p.add_argument("--batch-size", type=int, default=128, help="mini-batch size (default 128)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak Adam learning rate (default 3e-3)")
    p.add_argument("--no-augment", action="store_true", help="no random crops and flips of the training images")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"exported model (default {DEFAULT_OUT})")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--smoke", action="store_true",
                   help=f"fast check: {SMOKE_SAMPLES} training and test samples, 1 epoch, still exports")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    args = p.parse_args(argv)
    for name in ("epochs", "width", "batch_size", "threads"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.smoke:
        args.epochs = 1
    return args


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random crop of the image padded by 4 zeros on each side, then a random left-right flip."""
    return random_flip(random_shift(images, CROP_PADDING, generator), generator)


def cifar10_tensors(folder: Path, smoke_samples: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Train images, labels, test images, labels; with ``smoke_samples``, only that many of each."""
    x_train, y_train = load_cifar10(folder, "train")
    x_test, y_test = load_cifar10(folder, "test")
    if smoke_samples:
        x_train, y_train = x_train[:smoke_samples], y_train[:smoke_samples]
        x_test, y_test = x_test[:smoke_samples], y_test[:smoke_samples]
    return tuple(torch.from_numpy(a) for a in (x_train, y_train, x_test, y_test))  # type: ignore[return-value]


def train(args: argparse.Namespace) -> float:
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    x_train, y_train, x_test, y_test = cifar10_tensors(args.data, SMOKE_SAMPLES if args.smoke else None)
    model = build_model(args.order, args.granularity, args.width)

    label = "float" if args.order is None else f"HORQ order {args.order} ({args.granularity})"
    parameters = sum(p.numel() for p in model.parameters())
    print(f"training {label}, width {args.width}, {parameters:,} parameters: {len(x_train)} samples,"
          f" {args.epochs} epochs, batch {args.batch_size}, augment {'off' if args.no_augment else 'on'},"
          f" {args.threads} threads", flush=True)
    train_time = fit(model, x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                     seed=args.seed, progress=not args.no_progress, augment=None if args.no_augment else augment)

    accuracy = evaluate(model, x_test, y_test)
    print(f"training time: {train_time:.1f} s")
    print(f"test accuracy: {100 * accuracy:.2f}% ({len(x_test)} test images)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # No dataset named: the test images are the user's files; verify takes them with --inputs.
    path = horq_codegen.export(model.eval(), torch.zeros(1, 3, 32, 32), args.out)
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
