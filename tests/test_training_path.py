"""The training forward and backward of HORQ layers (``functional.conv2d/linear(train=True)``) against
the textbook form: autograd through ``residual_quantize`` on the unfolded input with the
straight-through estimator applied to the unfolded values. The fast path writes the STE out by hand
(``_PatchConvSTE``) and quantizes without a graph; it must give the same numbers."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from horq_codegen.nn import functional
from horq_codegen.nn.quantizers import binarize_weights, residual_quantize, static_quantize, ste


def textbook_conv2d(x, weight, bias, stride, padding, order, granularity, betas):
    signs, alpha = binarize_weights(weight)
    w_q = ste(weight, alpha.view(-1, 1, 1, 1) * signs)
    padded = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
    if granularity == "patch":
        columns = F.unfold(padded, weight.shape[2:], stride=stride)
        q = ste(columns, residual_quantize(columns, order, (1,))[0])
        out_h = (padded.shape[2] - weight.shape[2]) // stride[0] + 1
        out_w = (padded.shape[3] - weight.shape[3]) // stride[1] + 1
        out = (w_q.flatten(1) @ q).view(x.shape[0], weight.shape[0], out_h, out_w)
    elif granularity == "static":
        out = F.conv2d(ste(padded, static_quantize(padded, betas)), w_q, None, stride)
    else:
        dims = {"pixel": (1,), "tensor": (1, 2, 3)}[granularity]
        out = F.conv2d(ste(padded, residual_quantize(padded, order, dims)[0]), w_q, None, stride)
    return out + bias.view(1, -1, 1, 1)


def _forward_backward(fn, x, weight, bias, *args):
    x = x.clone().requires_grad_()
    weight = weight.clone().requires_grad_()
    bias = bias.clone().requires_grad_()
    out = fn(x, weight, bias, *args)
    out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
    return out.detach(), x.grad, weight.grad, bias.grad


@pytest.mark.parametrize("granularity", ["patch", "pixel", "tensor", "static"])
@pytest.mark.parametrize("order,stride,padding,kernel",
                         [(1, 1, 1, 3), (2, 2, 1, 3), (3, 1, 0, 2), (2, 2, 0, 3), (2, 1, 0, 1), (1, 2, 0, 1)])
def test_conv2d_training_path_matches_the_textbook_form(granularity, order, stride, padding, kernel):
    torch.manual_seed(order * 10 + stride + padding)
    x = 0.8 * torch.randn(3, 5, 7, 6)
    x[0, 0, 0, :3] = torch.tensor([0.0, -0.0, 2.5])  # zeros of both signs (sgn = +1) and a value the STE cuts
    weight = 0.5 * torch.randn(4, 5, kernel, kernel)
    bias = torch.randn(4)
    betas = torch.tensor([0.7, 0.3, 0.1])[:order]
    args = ([stride, stride], [padding, padding], order, granularity, betas)
    before = x.clone()
    fast = _forward_backward(lambda *a: functional.conv2d(*a, train=True), x, weight, bias, *args)
    assert torch.equal(x, before) and torch.equal(x.signbit(), before.signbit())  # the input left alone, -0.0 too
    slow = _forward_backward(textbook_conv2d, x, weight, bias, *args)
    for got, want, what in zip(fast, slow, ("output", "input gradient", "weight gradient", "bias gradient")):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5, msg=what)
    assert fast[1].abs().sum() > 0 and fast[1][0, 0, 0, 2] == 0  # |x| > 1 passes no gradient


@pytest.mark.parametrize("granularity", ["patch", "static"])
def test_linear_training_path_matches_the_textbook_form(granularity):
    torch.manual_seed(1)
    x, weight, bias = torch.randn(4, 20), 0.5 * torch.randn(3, 20), torch.randn(3)
    betas = torch.tensor([0.6, 0.2])

    def textbook(x, weight, bias):
        signs, alpha = binarize_weights(weight)
        w_q = ste(weight, alpha.view(-1, 1) * signs)
        q = static_quantize(x, betas) if granularity == "static" else residual_quantize(x, 2, (1,))[0]
        return F.linear(ste(x, q), w_q, bias)

    fast = _forward_backward(lambda x, w, b: functional.linear(x, w, b, 2, granularity, betas, train=True),
                             x, weight, bias)
    slow = _forward_backward(textbook, x, weight, bias)
    for got, want in zip(fast, slow):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
