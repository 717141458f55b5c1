"""A VGG-style HORQ network for 3x32x32 CIFAR-10 images, the shape of the papers' CIFAR nets.

BinaryConnect, BNN and XNOR-Net train a small VGG on CIFAR-10 (two 3x3 convolutions per
stage, 128 -> 256 -> 512 channels, a max pool after each stage); HORQ (Li et al., ICCV 2017)
compares its orders on the same kind of network. Here: a float first convolution (three input
channels: binarizing them would lose most of the image), then HORQ blocks in XNOR-Net order
(BatchNorm -> HORQ conv -> ReLU [-> pool]), so that every HORQ layer quantizes a *signed*
input (see "A pitfall measured here" in ``shared/HORQ.md``), and a float classifier. With
``width`` w (128 in the papers)::

    Conv2d(3, w, 3, p=1)  BN  ReLU                       w x 32 x 32   float first conv
    BN  HORQConv2d(w, w)    ReLU  MaxPool                w x 16 x 16
    BN  HORQConv2d(w, 2w)   ReLU                        2w x 16 x 16
    BN  HORQConv2d(2w, 2w)  ReLU  MaxPool               2w x  8 x  8
    BN  HORQConv2d(2w, 4w)  ReLU                        4w x  8 x  8
    BN  HORQConv2d(4w, 4w)  ReLU  MaxPool               4w x  4 x  4
    Flatten  BN1d(64w)  Linear(64w, 10)                 10             float classifier

(every HORQConv2d is 3x3 with padding 1). The papers' two hidden 1024-wide fully connected
layers are left out: the classifier reads the 4 x 4 x 4w features directly.
"""
from __future__ import annotations

from torch import nn

from horq_codegen.nn import HORQConv2d

WIDTH = 128  # channels of the first stage, as in BNN's and XNOR-Net's CIFAR-10 network


def build_model(order: int | None = 2, granularity: str = "patch", width: int = WIDTH) -> nn.Sequential:
    """The example network; ``order=None`` gives the same network all in float."""
    def horq(c_in: int, c_out: int, pool: bool) -> list[nn.Module]:
        block = [nn.BatchNorm2d(c_in), HORQConv2d(c_in, c_out, 3, padding=1, order=order, granularity=granularity),
                 nn.ReLU()]
        return block + [nn.MaxPool2d(2)] if pool else block

    w = width
    return nn.Sequential(
        nn.Conv2d(3, w, 3, padding=1),
        nn.BatchNorm2d(w),
        nn.ReLU(),
        *horq(w, w, pool=True),            # 32 -> 16
        *horq(w, 2 * w, pool=False),
        *horq(2 * w, 2 * w, pool=True),    # 16 -> 8
        *horq(2 * w, 4 * w, pool=False),
        *horq(4 * w, 4 * w, pool=True),    # 8 -> 4
        nn.Flatten(),
        nn.BatchNorm1d(4 * w * 4 * 4),
        nn.Linear(4 * w * 4 * 4, 10),
    )
