"""HORQ layers: drop-in subclasses of ``nn.Conv2d`` and ``nn.Linear``.

Forward (order K, see ``shared/HORQ.md``)::

    y[o, p] = alpha_o * sum_k beta_k(p) * dot(B_o, H_k(p)) + bias_o

with ``B_o = sgn(W_o)``, ``alpha_o = mean|W_o|`` and ``H_k``/``beta_k`` the order-K
residual binarization of the input group ``p`` (a patch, a pixel, the whole
tensor, or fixed ``static`` betas). Backward: straight-through estimator, the
gradient of ``sgn`` passed where ``|v| <= 1``. ``order=None`` turns quantization
off: the layer is then exactly its float parent. Paper: Li et al., ICCV 2017.
"""
from __future__ import annotations

import torch
from torch import nn

from . import functional, ops  # noqa: F401  (ops registers the custom ops used below)
from .quantizers import GRANULARITIES, tensor_betas


def _check_quantization(order: int | None, granularity: str, allowed: tuple[str, ...]) -> None:
    if order is not None and (not isinstance(order, int) or isinstance(order, bool) or order < 1):
        raise ValueError(f"order must be an integer >= 1 or None, got {order!r}")
    if granularity not in allowed:
        raise ValueError(f"granularity must be one of {', '.join(allowed)}; got {granularity!r}")


class _StaticBetas:
    """Running averages of the betas for ``granularity="static"`` (kept as BatchNorm keeps its statistics)."""

    momentum = 0.1

    def _init_static_betas(self) -> None:
        if self.granularity == "static" and self.order is not None:
            self.register_buffer("static_betas", torch.zeros(self.order))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.static_betas = None

    def _betas_for(self, x: torch.Tensor) -> torch.Tensor | None:
        """Batch betas in training (updating the running ones), the stored ones in eval."""
        if self.static_betas is None:
            return None
        if not self.training:
            return self.static_betas
        with torch.no_grad():
            batch = tensor_betas(x.detach(), self.order)
            weight = 1.0 if int(self.num_batches_tracked) == 0 else self.momentum
            self.static_betas.mul_(1 - weight).add_(weight * batch)
            self.num_batches_tracked += 1
        return batch


class HORQConv2d(_StaticBetas, nn.Conv2d):
    """A ``Conv2d`` whose weights are binarized and whose inputs are residual-quantized K times."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, order: int | None = 2, granularity: str = "patch", groups: int = 1) -> None:
        if groups != 1:  # the quantizers' groups and the packed weight rows span all input channels
            raise ValueError(f"groups={groups} is not supported for HORQ convolutions (use a float nn.Conv2d "
                             "for a grouped or depthwise convolution)")
        _check_quantization(order, granularity, GRANULARITIES)
        if isinstance(padding, str):
            raise ValueError("HORQConv2d takes integer padding (zeros are quantized like any value)")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self.order = order
        self.granularity = granularity
        self._init_static_betas()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order is None:
            return super().forward(x)
        padding = [int(p) for p in self.padding]
        stride = [int(s) for s in self.stride]
        if self.training:
            betas = self._betas_for(nn.functional.pad(x, (padding[1], padding[1], padding[0], padding[0])))
            return functional.conv2d(x, self.weight, self.bias, stride, padding, self.order,
                                     self.granularity, betas, train=True)
        return torch.ops.horq.conv2d(x, self.weight, self.bias, stride, padding, self.order,
                                     self.granularity, self.static_betas)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, order={self.order}, granularity={self.granularity!r}"


class HORQLinear(_StaticBetas, nn.Linear):
    """A ``Linear`` layer with binarized weights and order-K residual-quantized inputs."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, order: int | None = 2,
                 granularity: str = "patch") -> None:
        _check_quantization(order, granularity, ("patch", "tensor", "static"))
        super().__init__(in_features, out_features, bias=bias)
        self.order = order
        self.granularity = granularity
        self._init_static_betas()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.order is None:
            return super().forward(x)
        if self.training:
            return functional.linear(x, self.weight, self.bias, self.order, self.granularity,
                                     self._betas_for(x), train=True)
        return torch.ops.horq.linear(x, self.weight, self.bias, self.order, self.granularity,
                                     self.static_betas)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, order={self.order}, granularity={self.granularity!r}"
