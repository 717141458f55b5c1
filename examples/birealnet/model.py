"""A small Bi-Real-style binary ResNet for 1x28x28 MNIST digits.

A float stem (one input channel: binarizing it would lose most of the image), then three
stages of :class:`~horq_codegen.nn.BiRealBlock` (shift -> HORQ 3x3 conv -> BN, plus a
real-valued shortcut, then PReLU), global average pooling and a float classifier::

    Conv2d(1, 16, 3, p=1, no bias)  BN  PReLU            16 x 28 x 28
    BiRealBlock(16, 16)                                   16 x 28 x 28
    BiRealBlock(16, 32, stride 2)  BiRealBlock(32, 32)    32 x 14 x 14
    BiRealBlock(32, 64, stride 2)  BiRealBlock(64, 64)    64 x  7 x  7
    AdaptiveAvgPool2d(1)  Flatten  Linear(64, 10)

The stem ends with BatchNorm and PReLU rather than ReLU, and every block ends with a
PReLU, so each HORQ layer quantizes a *signed* input (see "A pitfall measured here"
in ``shared/HORQ.md``). The stride-2 blocks' shortcuts are AvgPool2d(2) + 1x1 conv + BN.

Papers: Liu et al., "Bi-Real Net", ECCV 2018; Liu et al., "ReActNet", ECCV 2020;
Li et al., "HORQ", ICCV 2017.
"""
from __future__ import annotations

from torch import nn

from horq_codegen.nn import BiRealBlock

STAGES = ((16, 1, 1), (32, 2, 2), (64, 2, 2))  # (channels, stride of the first block, blocks)


def build_model(order: int | None = 2, granularity: str = "static") -> nn.Sequential:
    """The example network; ``order=None`` gives the same network all in float."""
    layers: list[nn.Module] = [nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.PReLU(16)]
    channels = 16
    for width, stride, blocks in STAGES:
        for i in range(blocks):
            layers.append(BiRealBlock(channels, width, stride=stride if i == 0 else 1, order=order,
                                      granularity=granularity))
            channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, 10)]
    return nn.Sequential(*layers)
