"""Helpers the example training scripts share (``examples/*/train.py``): seeding, the weight clip
of HORQ layers, evaluation, the ``--order`` option."""
from __future__ import annotations

import argparse
import random

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
