"""The training-side blocks of horq_codegen.nn.blocks: shapes, the shortcut, export, gradients."""
import pytest
import torch
from torch import nn

from horq_codegen.nn import BiRealBlock, DownsampleShortcut, HORQConv2d, LearnableShift


def small_model(granularity="static"):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.PReLU(4),
        BiRealBlock(4, 4, granularity=granularity),
        BiRealBlock(4, 8, stride=2, granularity=granularity),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3),
    )


def test_learnable_shift_starts_at_zero_and_adds_per_channel():
    shift = LearnableShift(3)
    assert shift.bias.shape == (1, 3, 1, 1) and isinstance(shift.bias, nn.Parameter)
    x = torch.randn(2, 3, 4, 5)
    assert torch.equal(shift(x), x)
    with torch.no_grad():
        shift.bias.copy_(torch.tensor([1.0, -2.0, 0.5]).view(1, 3, 1, 1))
    torch.testing.assert_close(shift(x), x + torch.tensor([1.0, -2.0, 0.5]).view(1, 3, 1, 1))


@pytest.mark.parametrize("shape", [(2, 3), (2, 4, 5, 5), (3, 5, 5)])
def test_learnable_shift_takes_only_nchw_with_its_channels(shape):
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        LearnableShift(3)(torch.zeros(shape))


@pytest.mark.parametrize("stride", [1, 2])
def test_downsample_shortcut_layers_and_shape(stride):
    shortcut = DownsampleShortcut(4, 8, stride)
    kinds = [type(m) for m in shortcut]
    assert kinds == ([nn.AvgPool2d] if stride > 1 else []) + [nn.Conv2d, nn.BatchNorm2d]
    assert shortcut[-2].bias is None and shortcut[-2].kernel_size == (1, 1)
    assert shortcut(torch.randn(2, 4, 8, 8)).shape == (2, 8, 8 // stride, 8 // stride)


@pytest.mark.parametrize("cin,cout,stride,identity", [(4, 4, 1, True), (4, 8, 1, False), (4, 8, 2, False),
                                                      (4, 4, 2, False)])
def test_bireal_block_shapes_and_shortcut_kind(cin, cout, stride, identity):
    block = BiRealBlock(cin, cout, stride=stride, order=2, granularity="static")
    assert isinstance(block.shortcut, nn.Identity) == identity
    assert isinstance(block.conv, HORQConv2d) and block.conv.bias is None
    assert (block.conv.kernel_size, block.conv.padding, block.conv.stride) == ((3, 3), (1, 1), (stride, stride))
    assert (block.conv.order, block.conv.granularity) == (2, "static")
    assert isinstance(block.act, nn.PReLU) and block.act.weight.shape == (cout,)
    x = torch.randn(2, cin, 8, 8)
    assert block(x).shape == (2, cout, 8 // stride, 8 // stride)
    assert block.eval()(x).shape == (2, cout, 8 // stride, 8 // stride)


def test_bireal_block_refuses_sizes_not_divisible_by_its_stride():
    with pytest.raises(ValueError, match="divisible"):
        BiRealBlock(4, 8, stride=2)(torch.randn(1, 4, 7, 7))


@pytest.mark.parametrize("cin,cout,stride", [(4, 4, 1), (4, 8, 2)])
def test_bireal_block_adds_the_shortcut(cin, cout, stride):
    """With the binary path silenced (BN scale and offset 0) the block is PReLU(shortcut(x))."""
    torch.manual_seed(1)
    block = BiRealBlock(cin, cout, stride=stride)
    x = torch.randn(2, cin, 8, 8)
    with torch.no_grad():
        block(x)  # in training: static betas and BN statistics, so the binary path is not zero in eval
        block.bn.weight.zero_()
        block.bn.bias.zero_()
        block.act.weight.fill_(0.25)
    block.eval()
    expected = nn.functional.prelu(block.shortcut(x), block.act.weight)
    torch.testing.assert_close(block(x), expected)
    assert (expected < 0).any()  # the PReLU slope really acted
    if stride == 1:
        torch.testing.assert_close(block(x), nn.functional.prelu(x, block.act.weight))
    # and the binary path does contribute once the BN lets it through
    with torch.no_grad():
        block.bn.weight.fill_(1.0)
    assert not torch.allclose(block(x), expected)


def test_gradient_reaches_the_shift_and_every_parameter():
    model = small_model().train()
    # a non-zero shift, so the quantizer's straight-through window is not symmetric around it
    with torch.no_grad():
        model[3].shift.bias.fill_(0.1)
    loss = nn.functional.cross_entropy(model(torch.randn(4, 1, 8, 8)), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    for block in (model[3], model[4]):
        assert block.shift.bias.grad is not None and block.shift.bias.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None, name


def test_export_of_bireal_blocks_is_plain_aten_plus_horq():
    model = small_model()
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 1, 8, 8))  # static betas and BN statistics
    model.eval()
    x = torch.randn(1, 1, 8, 8)
    program = torch.export.export(model, (x,))
    targets = {n.target for n in program.graph.nodes if n.op == "call_function"}
    names = {str(t) for t in targets}
    assert "aten.add.Tensor" in names
    assert names & {"aten.prelu.default", "aten._prelu_kernel.default"}
    assert "horq.conv2d.default" in names
    custom = {name for name in names if not name.startswith("aten.")}
    assert custom <= {"horq.conv2d.default", "horq.linear.default"}, custom
    # the shift is one add of the input and its parameter
    shift_param = next(spec.arg.name for spec in program.graph_signature.input_specs
                       if spec.target == "3.shift.bias")
    adds = [n for n in program.graph.nodes if n.target == torch.ops.aten.add.Tensor]
    assert any(n.args[1].name == shift_param for n in adds)
    torch.testing.assert_close(program.module()(x), model(x))
