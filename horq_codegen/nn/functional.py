"""Forward passes of the HORQ layers, shared by training and export.

``conv2d`` and ``linear`` compute ``y = alpha_o * sum_k beta_k * dot(B_o, H_k) + bias_o``
in its float form ``(alpha * B) . x_hat + bias``, which is the same number. With
``train=True`` the quantized weights and inputs carry straight-through gradients.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .quantizers import binarize_weights, residual_quantize, static_quantize, ste


def _quantized_weight(weight: torch.Tensor, train: bool) -> torch.Tensor:
    signs, alpha = binarize_weights(weight)
    quantized = alpha.view(-1, *([1] * (weight.dim() - 1))) * signs
    return ste(weight, quantized) if train else quantized


def quantize_groups(x: torch.Tensor, order: int, granularity: str, betas: torch.Tensor | None,
                    group_dims: tuple[int, ...]) -> torch.Tensor:
    """x_hat for any granularity but ``patch`` (whose groups exist only after unfolding)."""
    if granularity == "static":
        assert betas is not None, "static granularity needs betas"
        return static_quantize(x, betas)
    return residual_quantize(x, order, group_dims)[0]


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: list[int],
           padding: list[int], order: int, granularity: str, betas: torch.Tensor | None,
           train: bool = False) -> torch.Tensor:
    """HORQ convolution of an NCHW batch; zero padding is quantized like any other value."""
    w_q = _quantized_weight(weight, train)
    padded = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
    if granularity == "patch":
        kernel = weight.shape[2:]
        columns = F.unfold(padded, kernel, stride=stride)  # (N, C*kh*kw, L): one group per column
        q = residual_quantize(columns, order, (1,))[0]
        if train:
            q = ste(columns, q)
        out_h = (padded.shape[2] - kernel[0]) // stride[0] + 1
        out_w = (padded.shape[3] - kernel[1]) // stride[1] + 1
        out = (w_q.flatten(1) @ q).view(x.shape[0], weight.shape[0], out_h, out_w)
    else:
        group_dims = {"pixel": (1,), "tensor": (1, 2, 3), "static": ()}[granularity]
        q = quantize_groups(padded, order, granularity, betas, group_dims)
        if train:
            q = ste(padded, q)
        out = F.conv2d(q, w_q, None, stride)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, order: int,
           granularity: str, betas: torch.Tensor | None, train: bool = False) -> torch.Tensor:
    """HORQ fully connected layer; each sample's input vector is one group (patch/tensor)."""
    w_q = _quantized_weight(weight, train)
    q = quantize_groups(x, order, granularity, betas, (1,))
    if train:
        q = ste(x, q)
    return F.linear(q, w_q, bias)
