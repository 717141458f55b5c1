"""``torch.library`` custom ops, so that an exported graph keeps each HORQ layer as one node.

The importer reads ``horq.conv2d`` and ``horq.linear`` nodes with their arguments
instead of pattern-matching the quantizer back out of primitive ops. The ops are
inference-only: training goes through :mod:`horq_codegen.nn.functional` directly.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from . import functional


@torch.library.custom_op("horq::conv2d", mutates_args=())
def horq_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], stride: list[int],
                padding: list[int], order: int, granularity: str,
                betas: Optional[torch.Tensor]) -> torch.Tensor:
    return functional.conv2d(x, weight, bias, stride, padding, order, granularity, betas)


@horq_conv2d.register_fake
def _(x, weight, bias, stride, padding, order, granularity, betas):
    return F.conv2d(x, weight, bias, stride, padding)


@torch.library.custom_op("horq::linear", mutates_args=())
def horq_linear(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], order: int,
                granularity: str, betas: Optional[torch.Tensor]) -> torch.Tensor:
    return functional.linear(x, weight, bias, order, granularity, betas)


@horq_linear.register_fake
def _(x, weight, bias, order, granularity, betas):
    return x.new_empty((x.shape[0], weight.shape[0]))
