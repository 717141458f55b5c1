"""The bundled example CNN for 1x28x28 MNIST digits.

A float first convolution (one input channel: binarizing it would lose most of the
image), then HORQ blocks in XNOR-Net order (BatchNorm -> HORQ layer -> ReLU -> pool),
so that every HORQ layer quantizes a *signed* input (see "A pitfall measured here"
in ``shared/HORQ.md``), and a float classifier::

    Conv2d(1, 32, 3, p=1) BN ReLU MaxPool          28 -> 14
    BN  HORQConv2d(32, 64, 3, p=1)  ReLU MaxPool   14 -> 7
    BN  HORQConv2d(64, 64, 3, p=1)  ReLU MaxPool    7 -> 3
    Flatten  BN1d(576)  HORQLinear(576, 128)  BN1d(128)  ReLU
    Linear(128, 10)
"""
from __future__ import annotations

from torch import nn

from horq_codegen.nn import HORQConv2d, HORQLinear

# How the bundled models are trained (train.py's defaults; README, "The bundled example", says how it
# was chosen); examples/paper/run.py trains every network of the paper experiments with it too.
RECIPE = {"epochs": 30, "batch_size": 32, "lr": 2e-3, "shift": 2}


def build_model(order: int | None = 2, granularity: str = "patch", width: float = 1.0) -> nn.Sequential:
    """The example network; ``order=None`` gives the same network all in float. ``width`` scales every
    layer's channels (the paper experiments' narrow variant uses 0.25: 8, 16, 16 channels, 32 features)."""
    c1, c2, features = (max(1, round(n * width)) for n in (32, 64, 128))
    return nn.Sequential(
        nn.Conv2d(1, c1, 3, padding=1),
        nn.BatchNorm2d(c1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 28 -> 14
        nn.BatchNorm2d(c1),
        HORQConv2d(c1, c2, 3, padding=1, order=order, granularity=granularity),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 14 -> 7
        nn.BatchNorm2d(c2),
        HORQConv2d(c2, c2, 3, padding=1, order=order, granularity=granularity),
        nn.ReLU(),
        nn.MaxPool2d(2),  # 7 -> 3
        nn.Flatten(),
        nn.BatchNorm1d(c2 * 3 * 3),
        HORQLinear(c2 * 3 * 3, features, order=order,
                   granularity=granularity if granularity in ("patch", "tensor", "static") else "patch"),
        nn.BatchNorm1d(features),
        nn.ReLU(),
        nn.Linear(features, 10),
    )
