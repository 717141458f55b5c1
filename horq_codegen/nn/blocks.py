"""Building blocks of real binary networks: learnable shifts, downsampling shortcuts, Bi-Real blocks.

Each block is a plain ``nn.Module`` whose forward is ordinary PyTorch (plus the HORQ
layers of :mod:`horq_codegen.nn.layers`), so that ``torch.export`` captures it as
primitive ATen ops (``add``, ``avg_pool2d``, ``conv2d``, batch norm, ``prelu``) and
``horq.conv2d`` nodes, with no special case.

Papers:

- Bi-Real Net: Liu, Wu, Luo, Yang, Liu, Cheng, "Bi-Real Net: Enhancing the Performance
  of 1-bit CNNs with Improved Representational Capability and Advanced Training
  Algorithm", ECCV 2018 (arXiv 1808.00278): a real-valued shortcut around every
  binary convolution, so the real activations survive the sign function.
- ReActNet: Liu, Shen, Savvides, Cheng, "ReActNet: Towards Precise Binary Neural
  Network with Generalized Activation Functions", ECCV 2020 (arXiv 2003.03488):
  a learnable per-channel shift before the sign (RSign) and a PReLU-like
  activation (RPReLU) after the residual addition; downsampling shortcuts of
  average pooling and a real 1x1 convolution.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import HORQConv2d


class LearnableShift(nn.Module):
    """ReActNet's learnable per-channel shift (the threshold of its RSign), on feature maps.

    Forward::

        y[n, c, h, w] = x[n, c, h, w] + b[c]

    with ``b`` an ``nn.Parameter`` of shape ``(1, C, 1, 1)`` initialised to zeros, so a
    fresh shift is the identity. Placed before a HORQ layer, it moves the point where
    ``sgn`` switches per channel (the layer quantizes ``x + b``). Gradient: ``dL/db[c]``
    is the sum of ``dL/dy`` over the batch and spatial positions.

    Only 4-D ``(N, C, H, W)`` inputs are accepted (a 2-D ``(N, C)`` input would
    broadcast against ``(1, C, 1, 1)`` into a wrong shape). It exports as a single
    ``aten.add.Tensor(x, b)``.

    Paper: Liu et al., "ReActNet", ECCV 2020.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.channels = channels
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"LearnableShift({self.channels}) takes (N, {self.channels}, H, W) feature maps,"
                             f" got shape {tuple(x.shape)}")
        return x + self.bias

    def extra_repr(self) -> str:
        return f"{self.channels}"


class DownsampleShortcut(nn.Sequential):
    """The real-valued shortcut of a block that changes resolution or width (Bi-Real Net, ReActNet).

    Forward::

        y = BN(Conv1x1(AvgPool_s(x)))

    ``AvgPool_s`` is ``nn.AvgPool2d(kernel_size=s, stride=s)`` (omitted when ``s == 1``),
    ``Conv1x1`` a float ``nn.Conv2d(in, out, 1, bias=False)`` and ``BN`` an
    ``nn.BatchNorm2d(out)``. Everything stays real-valued: the shortcut carries the
    information that the binary path loses. Pooling before the 1x1 convolution (rather
    than a strided 1x1 convolution) averages every input pixel instead of dropping
    three in four.

    Papers: Liu et al., "Bi-Real Net", ECCV 2018; Liu et al., "ReActNet", ECCV 2020.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        if not isinstance(stride, int) or isinstance(stride, bool) or stride < 1:
            raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
        layers: list[nn.Module] = []
        if stride > 1:
            layers.append(nn.AvgPool2d(kernel_size=stride, stride=stride))
        layers += [nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)]
        super().__init__(*layers)
        self.stride = stride


class BiRealBlock(nn.Module):
    """A Bi-Real Net basic block with ReActNet's shift and PReLU, its 3x3 convolution in HORQ.

    Forward::

        out = PReLU( BN( HORQConv3x3_s( x + b ) ) + shortcut(x) )

    ``x + b`` is a :class:`LearnableShift`; ``HORQConv3x3_s`` a :class:`HORQConv2d`
    (3x3, padding 1, stride ``s``, no bias, the given ``order`` and ``granularity``);
    ``shortcut`` the identity when ``stride == 1`` and ``in_channels == out_channels``,
    else a :class:`DownsampleShortcut`; ``PReLU`` an ``nn.PReLU(out_channels)`` (one
    slope per channel). The HORQ layer thus quantizes the shifted real-valued block
    input, which is signed as long as the previous block ends with a PReLU (or a
    BatchNorm) rather than a ReLU (see "A pitfall measured here" in ``shared/HORQ.md``).
    Output: ``(N, out_channels, H / s, W / s)``; with ``s > 1``, ``H`` and ``W`` must be
    multiples of ``s`` (the pooled shortcut and the padded convolution agree only then).

    Papers: Liu et al., "Bi-Real Net", ECCV 2018 (the real shortcut around each binary
    convolution); Liu et al., "ReActNet", ECCV 2020 (the shift and the PReLU); Li et al.,
    "HORQ", ICCV 2017 (the quantized convolution).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, order: int | None = 2,
                 granularity: str = "static") -> None:
        super().__init__()
        self.shift = LearnableShift(in_channels)
        self.conv = HORQConv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False,
                               order=order, granularity=granularity)
        self.bn = nn.BatchNorm2d(out_channels)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = DownsampleShortcut(in_channels, out_channels, stride)
        self.act = nn.PReLU(out_channels)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and (x.shape[2] % self.stride or x.shape[3] % self.stride):
            raise ValueError(f"BiRealBlock with stride {self.stride} needs H and W divisible by it,"
                             f" got shape {tuple(x.shape)}")
        out = self.bn(self.conv(self.shift(x))) + self.shortcut(x)
        return self.act(out)
