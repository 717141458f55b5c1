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


class _PatchConvSTE(torch.autograd.Function):
    """Training form of a ``patch`` convolution, with the straight-through estimator written out.

    Forward: unfold into one row per output position (``(N, L, C*kh*kw)``, so each patch's
    reduction runs along contiguous memory), residual-quantize each row without an autograd graph
    (the STE discards it), one matrix product. Backward: because the STE's mask ``|x| <= 1``
    depends only on the pixel, the input's gradient is the ordinary convolution input gradient of
    the quantized weights times that mask (no col2im of the unfolded gradient), and the weights'
    gradient is one product of the output gradient with the quantized rows kept from the forward
    pass. Autograd through the unfolded quantizer took 3-4x as long (``bench/train_step.py``).
    """

    @staticmethod
    def forward(ctx, x, w_q, stride, padding, order):  # type: ignore[override]
        n, kernel = x.shape[0], w_q.shape[2:]
        padded = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
        # Rows ordered (kh, kw, C), gathered from a channels-last copy: the gather then moves runs of
        # C contiguous floats (F.unfold's (N, C*kh*kw, L) would need a second, transposing copy). A
        # patch's betas do not depend on the order of its values; the weights are permuted to match.
        patches = padded.permute(0, 2, 3, 1).unfold(1, kernel[0], stride[0]).unfold(2, kernel[1], stride[1])
        out_h, out_w = patches.shape[1], patches.shape[2]
        # Always a fresh contiguous tensor (a reshape may return a view of x, e.g. for a 1x1 kernel,
        # and the quantizer works in place on it).
        rows = x.new_empty((n, out_h * out_w, w_q[0].numel()))  # (N, L, kh*kw*C)
        rows.view(n, out_h, out_w, kernel[0], kernel[1], -1).copy_(patches.permute(0, 1, 2, 4, 5, 3))
        q = _train_quantize(rows, order, (2,), copy=False)
        w_rows = w_q.permute(0, 2, 3, 1).reshape(w_q.shape[0], -1)  # (O, kh*kw*C)
        out = (q.view(-1, q.shape[2]) @ w_rows.t()).view(n, out_h * out_w, -1)
        ctx.save_for_backward(x, w_q, q)
        ctx.stride, ctx.padding = stride, padding
        return out.transpose(1, 2).reshape(n, -1, out_h, out_w)

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[override]
        x, w_q, q = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.nn.grad.conv2d_input(x.shape, w_q, grad_out, ctx.stride, ctx.padding)
            grad_x.mul_((x.abs() <= 1.0).to(grad_x.dtype))
        if ctx.needs_input_grad[1]:
            rows_grad = grad_out.flatten(2).transpose(1, 2).reshape(-1, grad_out.shape[1])  # (N*L, O)
            o, c, kh, kw = w_q.shape
            grad_w = (rows_grad.t() @ q.view(-1, q.shape[2])).view(o, kh, kw, c).permute(0, 3, 1, 2).contiguous()
        return grad_x, grad_w, None, None, None


def _train_quantize(x: torch.Tensor, order: int, dims: tuple[int, ...], betas: torch.Tensor | None = None,
                    copy: bool = True) -> torch.Tensor:
    """x_hat of the order-K residual quantization for training: the maths of ``residual_quantize``
    (or of ``static_quantize`` with ``betas``) without an autograd graph and without a new
    full-size temporary per operation.

    A training step's quantizer was dominated by allocating (and page-faulting) tensors the size
    of the unfolded input; here ``|R|`` and then the plane ``copysign(beta, R)`` go into one reused
    buffer (the first plane straight into x_hat), and the sums are in place. (``where(R >= 0, beta,
    -beta)`` and ``vector_norm`` are 5-10x slower than ``copysign`` and ``abs`` + ``sum`` here.) ``R_0 = x + 0.0``
    turns a -0.0 input into +0.0, so copysign's sign agrees with ``sgn`` (0 counts as positive).
    Sums are in a different order than ``mean``, so a beta may differ in its last bit. With
    ``copy=False`` the caller's ``x`` (a temporary of its own) becomes the residual.
    """
    with torch.no_grad():
        residual = x + 0.0 if copy else x.add_(0.0)
        groups = 1
        for d in dims:
            groups *= x.shape[d]
        x_hat = torch.empty_like(x)
        plane = x_hat  # order 1 needs no buffer besides x_hat
        for k in range(order):
            if k == 1:
                plane = torch.empty_like(x)
            if betas is not None:
                beta = betas[k]
            else:  # |R| into the plane's buffer, which the plane then overwrites
                beta = torch.abs(residual, out=plane).sum(dim=dims, keepdim=True).div_(groups)
            torch.copysign(beta, residual, out=plane)
            if k > 0:
                x_hat.add_(plane)
            if k + 1 < order:
                residual.sub_(plane)
    return x_hat


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: list[int],
           padding: list[int], order: int, granularity: str, betas: torch.Tensor | None,
           train: bool = False) -> torch.Tensor:
    """HORQ convolution of an NCHW batch; zero padding is quantized like any other value."""
    w_q = _quantized_weight(weight, train)
    if granularity == "patch" and train:
        out = _PatchConvSTE.apply(x, w_q, stride, padding, order)
    elif granularity == "patch":
        padded = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
        kernel = weight.shape[2:]
        columns = F.unfold(padded, kernel, stride=stride)  # (N, C*kh*kw, L): one group per column
        q = residual_quantize(columns, order, (1,))[0]
        out_h = (padded.shape[2] - kernel[0]) // stride[0] + 1
        out_w = (padded.shape[3] - kernel[1]) // stride[1] + 1
        out = (w_q.flatten(1) @ q).view(x.shape[0], weight.shape[0], out_h, out_w)
    else:
        padded = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
        group_dims = {"pixel": (1,), "tensor": (1, 2, 3), "static": ()}[granularity]
        if train:
            q = ste(padded, _train_quantize(padded, order, group_dims, betas if granularity == "static" else None))
        else:
            q = quantize_groups(padded, order, granularity, betas, group_dims)
        out = F.conv2d(q, w_q, None, stride)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, order: int,
           granularity: str, betas: torch.Tensor | None, train: bool = False) -> torch.Tensor:
    """HORQ fully connected layer; each sample's input vector is one group (patch/tensor)."""
    w_q = _quantized_weight(weight, train)
    if train:
        q = ste(x, _train_quantize(x, order, (1,), betas if granularity == "static" else None))
    else:
        q = quantize_groups(x, order, granularity, betas, (1,))
    return F.linear(q, w_q, bias)
