"""Helpers the example training scripts share (``examples/*/train.py``): seeding, the weight clip
of HORQ layers, evaluation, the ``--order`` option, the augmentations."""
from __future__ import annotations

import argparse
import random
import time
from typing import Callable

import numpy as np
import torch
from torch import nn

from .layers import HORQConv2d, HORQLinear


def parse_order(text: str) -> int | None:
    """``--order``: a positive integer, or ``none``/``float`` for the float network."""
    if text.lower() in ("none", "float"):
        return None
    try:
        order = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"order must be a positive integer or 'none', got {text!r}") from None
    if order < 1:
        raise argparse.ArgumentTypeError(f"order must be >= 1 or 'none', got {order}")
    return order


def seed_everything(seed: int) -> None:
    """Seeds torch, numpy and random and asks torch for deterministic algorithms: the same command on
    the same machine and thread count gives the same model."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        torch.use_deterministic_algorithms(True)
        # Deterministic mode also fills every new tensor with NaN, in case an op reads memory it
        # did not write. None of ours does, and the fill was a fifth of a HORQ training step.
        torch.utils.deterministic.fill_uninitialized_memory = False
    except Exception:  # pragma: no cover - older torch or an unsupported backend
        pass


def clip_horq_weights(model: nn.Module) -> None:
    """Keep the real-valued weights of quantized layers in [-1, 1] (the STE passes gradients only there)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (HORQConv2d, HORQLinear)) and module.order is not None:
                module.weight.clamp_(-1.0, 1.0)


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy in eval mode."""
    model.eval()
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start:start + batch_size])
        correct += int((logits.argmax(1) == labels[start:start + batch_size]).sum())
    return correct / len(images)


def mnist_tensors(smoke_samples: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The offline MNIST subset as tensors (train images, labels, test images, labels); with
    ``smoke_samples``, only that many of each (a fast check of the pipeline, not of accuracy)."""
    from .. import data
    x_train, y_train = data.mnist_subset("train")
    x_test, y_test = data.mnist_subset("test")
    if smoke_samples:
        x_train, y_train = x_train[:smoke_samples], y_train[:smoke_samples]
        x_test, y_test = x_test[:smoke_samples], y_test[:smoke_samples]
    return tuple(torch.from_numpy(a) for a in (x_train, y_train, x_test, y_test))  # type: ignore[return-value]


def random_shift(images: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Each image translated by its own (dy, dx) in [-pixels, pixels], zeros moving in at the borders.

    The same as a random crop of the image padded by ``pixels`` zeros on every side (CIFAR's usual
    "4-pixel padding and random crop").
    """
    if pixels == 0:
        return images
    n, _, h, w = images.shape
    padded = nn.functional.pad(images, (pixels, pixels, pixels, pixels))
    offsets = torch.randint(0, 2 * pixels + 1, (n, 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])


def random_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image mirrored left to right with probability 1/2 (its own coin)."""
    flip = torch.rand(len(images), generator=generator) < 0.5
    return torch.where(flip.view(-1, *([1] * (images.dim() - 1))), images.flip(-1), images)


def fit(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, epochs: int, batch_size: int, lr: float,
        seed: int, progress: bool = True, augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
        log_epochs: bool = True) -> float:
    """Trains ``model`` in place: Adam with a cosine learning-rate schedule over every step,
    cross-entropy, HORQ weights clipped after each step, batches in a seeded random order
    (``augment`` draws from the same generator). Without ``progress`` bars, a line per epoch unless
    ``log_epochs`` is false (a caller reporting progress of its own). Returns the training time in seconds."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = (len(images) + batch_size - 1) // batch_size
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    start_time = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        batches = range(steps_per_epoch)
        bar = None
        if tqdm is not None and progress:
            bar = tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", unit="batch", leave=True)
            batches = bar
        total, seen = 0.0, 0
        for step in batches:
            idx = order[step * batch_size:(step + 1) * batch_size]
            batch = images[idx] if augment is None else augment(images[idx], generator)
            loss = loss_fn(model(batch), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            clip_horq_weights(model)
            total += loss.item() * len(idx)
            seen += len(idx)
            if bar is not None:
                bar.set_postfix(loss=f"{total / seen:.4f}")
        if bar is None and log_epochs:
            print(f"epoch {epoch + 1}/{epochs}: loss {total / seen:.4f} ({time.perf_counter() - start_time:.0f} s)",
                  flush=True)
    return time.perf_counter() - start_time
