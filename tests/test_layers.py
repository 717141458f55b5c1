"""The PyTorch HORQ layers against the numpy reference, and the quantizer's properties."""
import numpy as np
import pytest
import torch

from horq_codegen.nn import HORQConv2d, HORQLinear
from horq_codegen.nn.quantizers import residual_quantize, sgn
from horq_codegen.reference import binarize_rows

GRANULARITIES = ["patch", "pixel", "tensor", "static"]


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1), (2, 2)])
def test_conv_matches_reference(pipeline_for, granularity, order, stride, padding):
    torch.manual_seed(order * 10 + stride + padding)
    model = torch.nn.Sequential(HORQConv2d(5, 7, 3, stride=stride, padding=padding, order=order,
                                           granularity=granularity))
    p = pipeline_for(model, (5, 7, 6))
    x = np.random.default_rng(order).standard_normal((3, 5, 7, 6)).astype(np.float32)
    ref, out = p.reference(x), p.torch(x)
    np.testing.assert_allclose(ref, out, atol=1e-4 * (1 + np.abs(out).max()), rtol=0)


@pytest.mark.parametrize("granularity", ["patch", "tensor", "static"])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_linear_matches_reference(pipeline_for, granularity, order):
    torch.manual_seed(order)
    model = torch.nn.Sequential(HORQLinear(37, 11, order=order, granularity=granularity))
    p = pipeline_for(model, (37,))
    x = np.random.default_rng(order).standard_normal((4, 37)).astype(np.float32)
    out = p.torch(x)
    np.testing.assert_allclose(p.reference(x), out, atol=1e-4 * (1 + np.abs(out).max()), rtol=0)


def test_pixel_granularity_is_refused_for_linear():
    with pytest.raises(ValueError, match="granularity"):
        HORQLinear(4, 2, granularity="pixel")


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_order_is_refused(bad):
    with pytest.raises(ValueError, match="order"):
        HORQConv2d(1, 1, 3, order=bad)


def test_residual_error_never_grows_with_order():
    x = torch.randn(50, 64)
    errors = []
    for order in range(1, 7):
        x_hat, betas = residual_quantize(x, order, (1,))
        errors.append(((x - x_hat) ** 2).sum(dim=1))
    for lower, higher in zip(errors, errors[1:]):
        assert (higher <= lower + 1e-5).all()
    assert (errors[-1] < errors[0]).all()  # and it really shrinks


def test_residual_identity_holds():
    """||R_k||^2 = ||R_{k-1}||^2 - n * beta_k^2 (HORQ.md)."""
    x = torch.randn(10, 100, dtype=torch.float64)
    residual = x
    for k in range(1, 4):
        beta = residual.abs().mean(dim=1, keepdim=True)
        new = residual - beta * sgn(residual)
        expected = (residual ** 2).sum(1) - 100 * beta[:, 0] ** 2
        torch.testing.assert_close((new ** 2).sum(1), expected)
        residual = new


def test_reference_binarization_matches_torch_quantizer():
    x = np.random.default_rng(3).standard_normal((6, 4, 9)).astype(np.float32)
    betas, _ = binarize_rows(x, 3)
    _, torch_betas = residual_quantize(torch.from_numpy(x.reshape(6, 36)), 3, (1,))
    np.testing.assert_allclose(betas, torch_betas[:, :, 0].T.numpy(), rtol=1e-5)


def test_sgn_of_zero_is_plus_one():
    assert sgn(torch.tensor([0.0, -0.0, -1e-30])).tolist() == [1.0, 1.0, -1.0]


def test_order_none_is_the_float_layer():
    torch.manual_seed(0)
    horq = HORQConv2d(3, 4, 3, padding=1, order=None)
    plain = torch.nn.Conv2d(3, 4, 3, padding=1)
    plain.load_state_dict(horq.state_dict())
    x = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(horq(x), plain(x))
    lin = HORQLinear(6, 2, order=None)
    torch.testing.assert_close(lin(torch.ones(1, 6)), torch.nn.functional.linear(torch.ones(1, 6), lin.weight, lin.bias))


def test_straight_through_gradients_reach_weights_and_inputs():
    torch.manual_seed(0)
    layer = HORQConv2d(3, 4, 3, padding=1, order=2).train()
    x = (0.5 * torch.randn(2, 3, 5, 5)).requires_grad_()
    layer(x).square().sum().backward()
    assert layer.weight.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0
    big = torch.full((1, 3, 5, 5), 5.0, requires_grad=True)  # |x| > 1: the STE passes nothing
    layer(big).sum().backward()
    assert big.grad.abs().sum() == 0


def test_static_betas_track_in_training_and_freeze_in_eval():
    layer = HORQLinear(16, 4, order=2, granularity="static")
    layer.train()
    layer(torch.randn(32, 16))
    first = layer.static_betas.clone()
    assert (first > 0).all() and first[0] > first[1]
    layer(3 * torch.randn(32, 16))
    assert not torch.equal(first, layer.static_betas)
    layer.eval()
    frozen = layer.static_betas.clone()
    layer(torch.randn(32, 16))
    assert torch.equal(frozen, layer.static_betas)
