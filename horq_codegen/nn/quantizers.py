"""HORQ quantizers as plain torch functions (the maths of ``shared/HORQ.md``).

Every function here is pure: no state, no autograd tricks. The straight-through
estimators live in :func:`ste`, so the same quantizer serves the training path
(wrapped in ``ste``) and the export path (called under ``no_grad`` inside the
custom ops of :mod:`horq_codegen.nn.ops`).
"""
from __future__ import annotations

import torch

GRANULARITIES = ("patch", "pixel", "tensor", "static")


def sgn(x: torch.Tensor) -> torch.Tensor:
    """+1 where ``x >= 0`` and -1 elsewhere (never 0, as larq does)."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


def binarize_weights(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """XNOR-Net's BWN: ``B_o = sgn(W_o)``, ``alpha_o = mean(|W_o|)`` per output channel.

    Returns ``(B, alpha)`` with ``B`` shaped like ``weight`` and ``alpha`` of shape
    ``(out_channels,)``.
    """
    alpha = weight.abs().flatten(1).mean(dim=1)
    return sgn(weight), alpha


def residual_quantize(x: torch.Tensor, order: int, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Order-K residual quantization of ``x``; each group spans the axes ``dims``.

    ``R_0 = x; H_k = sgn(R_{k-1}); beta_k = mean(|R_{k-1}|); R_k = R_{k-1} - beta_k H_k``.
    Returns ``(x_hat, betas)`` where ``x_hat = sum_k beta_k H_k`` and ``betas`` has
    the order as its first axis and ``x``'s shape with ``dims`` reduced to 1.
    """
    residual = x
    x_hat = torch.zeros_like(x)
    betas = []
    for _ in range(order):
        beta = residual.abs().mean(dim=dims, keepdim=True)
        plane = beta * sgn(residual)
        x_hat = x_hat + plane
        residual = residual - plane
        betas.append(beta)
    return x_hat, torch.stack(betas)


def static_quantize(x: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """Residual quantization with fixed per-layer ``betas`` (shape ``(K,)``): no reduction."""
    residual = x
    x_hat = torch.zeros_like(x)
    for beta in betas:
        plane = beta * sgn(residual)
        x_hat = x_hat + plane
        residual = residual - plane
    return x_hat


def tensor_betas(x: torch.Tensor, order: int) -> torch.Tensor:
    """The betas of one group spanning the whole batch: what ``static`` layers track in training."""
    _, betas = residual_quantize(x, order, tuple(range(x.dim())))
    return betas.flatten()


def ste(x: torch.Tensor, quantized: torch.Tensor, clip: float = 1.0) -> torch.Tensor:
    """Forward ``quantized``; backward pass the gradient to ``x`` where ``|x| <= clip``.

    This is the straight-through estimator of XNOR-Net and BNN: the gradient of
    ``sgn`` is taken as 1 inside [-clip, clip] and 0 outside.
    """
    mask = (x.detach().abs() <= clip).to(x.dtype)
    return quantized.detach() + (x - x.detach()) * mask
