"""Networks that are not chains: residual sums, concatenation, PReLU, shifts, global pooling.

A Bi-Real-style block (shift -> HORQ conv -> BatchNorm -> + shortcut -> PReLU) and its
neighbours (a ReLU6 branch concatenated to it, two global averages added) through import,
lowering, memory planning and C, in both activation modes, bit-exact against the reference
(per layer, under the sanitizers) and on ARM targets in QEMU; the ops' import rules, and the
refusals that name the module."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from horq_codegen.errors import HorqError
from horq_codegen.importer import load
from horq_codegen.ir import Op
from horq_codegen.memory import in_place_inputs, plan_memory
from horq_codegen.nn import HORQConv2d
from horq_codegen.pipeline import Lowering, generate_project, lower_model
from horq_codegen.report import format_table
from horq_codegen.runners import run_project
from horq_codegen.targets import load_target

from conftest import (REPO, Pipeline, assert_bit_exact, assert_layers_bit_exact, assert_matches_model, export_model,
                      settle_batchnorm)

SHAPE = (1, 6, 6)


class _Block(nn.Module):
    """Bi-Real Net's block with ReActNet's shift, and a ReLU6 branch of the block input beside it."""

    def __init__(self, channels: int = 4, granularity: str = "static"):
        super().__init__()
        self.shift = nn.Parameter(torch.randn(1, channels, 1, 1) * 0.1)
        self.conv = HORQConv2d(channels, channels, 3, padding=1, order=2, granularity=granularity)
        self.bn = nn.BatchNorm2d(channels)
        self.act = nn.PReLU(channels)
        self.branch = nn.ReLU6()
        with torch.no_grad():
            self.act.weight.uniform_(-0.5, 0.5)

    def forward(self, x):
        y = self.act(self.bn(self.conv(x + self.shift)) + x)
        return torch.cat([y, self.branch(x)], 1)


class _Net(nn.Module):
    def __init__(self, granularity: str = "static"):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4))
        self.layer = nn.Sequential(_Block(granularity=granularity))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        z = self.layer(self.stem(x))
        return self.fc(self.pool(z).flatten(1) + z.mean((2, 3)))


def _inputs(seed: int, count: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, *SHAPE)).astype(np.float32)


def _export_net(granularity: str, folder) -> object:
    torch.manual_seed(0)
    return export_model(settle_batchnorm(_Net(granularity), SHAPE), SHAPE, folder / "net.pt2")


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    """The network with static HORQ layers (the microcontroller's mode)."""
    return _export_net("static", tmp_path_factory.mktemp("dag"))


@pytest.fixture(scope="module", params=["static", "patch"])
def nets(request, net, tmp_path_factory):
    """The same with each granularity whose quantizer differs most: static and patch."""
    return net if request.param == "static" else _export_net(request.param, tmp_path_factory.mktemp("dag-patch"))


def _pipeline(path, activations: str) -> Pipeline:
    """``float``; ``int8`` (its residual stream float, the default); ``int8-stream`` (every tensor int8)."""
    pipeline = Pipeline(path)
    if activations != "float":
        residual = "int8" if activations == "int8-stream" else "float"
        pipeline.graph = lower_model(pipeline.model, Lowering("int8", _inputs(99, 20), residual=residual))
    return pipeline


def test_the_graph_keeps_its_branches_and_module_paths(net):
    graph = load(net).graph
    ops = [n.op for n in graph.nodes]
    assert ops.count(Op.ADD) == 2 and Op.CONCAT in ops and Op.PRELU in ops and ops.count(Op.AVGPOOL2D) == 2
    add = next(n for n in graph.nodes if n.op == Op.ADD)
    assert len(add.inputs) == 2 and add.source == "layer.0 (_Block)"
    assert next(n for n in graph.nodes if n.op == Op.PRELU).source == "layer.0.act (PReLU)"
    stem = graph.nodes[0].name
    assert len([n for n in graph.nodes if stem in n.inputs or any(stem == i for i in n.inputs)]) >= 1


@pytest.mark.parametrize("activations", ["float", "int8", "int8-stream"])
def test_every_layer_is_bit_exact_on_the_host(nets, activations, tmp_path):
    pipeline = _pipeline(nets, activations)
    x = _inputs(1)
    result = pipeline.c(x, tmp_path, sanitize=True, trace=True)
    assert_layers_bit_exact(pipeline.graph, x, result.traces)
    assert_bit_exact(result.outputs, pipeline.reference(x))
    if activations == "float":
        assert_matches_model(pipeline, x, result.outputs)
    else:  # int8 steps: near the float model, with every sample's class kept on these inputs
        torch_out = pipeline.torch(x)
        assert np.abs(result.outputs - torch_out).max() < 0.1 * np.abs(torch_out).max()


@pytest.mark.parametrize("target,activations", [("cortex-m55", "int8-stream"), ("cortex-m7", "float"),
                                                ("cortex-a72", "int8"), ("cortex-m4", "int8")])
def test_arm_targets_are_bit_exact(net, target, activations, tmp_path):
    pipeline = _pipeline(net, activations)
    x = _inputs(2, 4)
    t = load_target(target)
    generated = generate_project(pipeline.model, pipeline.graph, t, tmp_path / "fw", x, check_board=False)
    assert_bit_exact(run_project(generated.out_dir, t, len(x), 3).outputs, pipeline.reference(x))


def test_integer_mode_keeps_the_residual_stream_float(net):
    """The Bi-Real example: sums and PReLUs float, HORQ convolutions int8 in and float out for them,
    each reading its shifted input quantized with every sign kept; with ``residual="int8"`` every
    tensor is int8."""
    example = Pipeline(REPO / "examples" / "birealnet" / "model.pt2")
    graph = lower_model(example.model, Lowering("int8", np.zeros((2, 1, 28, 28), np.float32) + _inputs(5, 2)[:, :, :1, :1]))
    by_op = lambda op: [n for n in graph.nodes if n.op == op]
    assert by_op(Op.ADD) and all(n.dtype == "f32" for n in by_op(Op.ADD) + by_op(Op.PRELU))
    for horq in by_op(Op.HORQ_CONV2D):
        quantize = graph.node(horq.inputs[0])
        assert quantize.op == Op.QUANTIZE and quantize.attrs["keep_signs"]
        assert "pre_scale" in quantize.params and "LearnableShift" in quantize.source  # the shift, folded in
        assert horq.dtype == "f32"  # its reader is the residual sum
    assert not by_op(Op.AFFINE)
    stream = _pipeline(net, "int8-stream").graph
    assert all(n.dtype == "i8" for n in stream.nodes if n.op in (Op.ADD, Op.PRELU, Op.CONCAT))


@pytest.mark.parametrize("activations", ["int8", "int8-stream"])
def test_the_residual_sum_is_computed_in_place(net, activations):
    graph = _pipeline(net, activations).graph
    shared = in_place_inputs(graph)
    adds = [n for n in graph.nodes if n.op == Op.ADD]
    assert adds[0].name in shared  # the block's sum over the BatchNorm'd conv output, which dies there
    plan = plan_memory(graph)
    owner = shared[adds[0].name]
    assert plan.outputs[adds[0].name].offset == plan.outputs[owner].offset
    table = format_table(graph)
    assert "live at the peak:" in table


def _refusal(model: nn.Module, shape, tmp_path) -> str:
    torch.manual_seed(0)
    path = export_model(model.eval(), shape, tmp_path / "m.pt2")
    with pytest.raises(HorqError) as info:
        load(path)
    return str(info.value)


class _Lambda(nn.Module):
    def __init__(self, fn, *modules):
        super().__init__()
        self.inner = nn.ModuleList(modules)
        self.fn = fn
        self.register_buffer("rows", torch.linspace(-1, 1, 6).view(1, 1, 6, 1))

    def forward(self, x):
        return self.fn(self, x)


@pytest.mark.parametrize("fn,message", [
    (lambda m, x: torch.cat([x, x], 2), "concatenation along dim 2"),
    (lambda m, x: x.mean(1), "a mean over dims [1]"),
    (lambda m, x: x * x, "a product of two tensors"),
    (lambda m, x: x - m.inner[0](x), "a subtraction of two tensors"),
    (lambda m, x: x + m.rows, "only one value per channel"),
    (lambda m, x: nn.functional.max_pool2d(x, 2, ceil_mode=True), "ceil_mode=True"),
])
def test_unsupported_uses_are_refused_with_the_module_path(fn, message, tmp_path):
    text = _refusal(_Lambda(fn, nn.Conv2d(2, 2, 1)), (2, 6, 6), tmp_path)
    assert message in text and "<root> (_Lambda)" in text, text


@pytest.mark.parametrize("fn", [
    lambda m, x: m.inner[0](x) - 0.25,                                  # a scalar shift
    lambda m, x: 0.5 - m.inner[0](x) * torch.tensor([1.0, -2.0]).view(1, 2, 1, 1),  # per-channel scaling
    lambda m, x: nn.functional.adaptive_avg_pool2d(m.inner[1](m.inner[0](x)), 2).flatten(1),  # 2x2 cells
    lambda m, x: m.inner[2](m.inner[0](x)),                             # one PReLU slope for every channel
    lambda m, x: torch.cat([x.mean((2, 3), keepdim=True), m.inner[0](x).mean((-1, -2), keepdim=True)], 1),
    lambda m, x: nn.functional.avg_pool2d(m.inner[0](x), 3, 2, 1) + nn.functional.max_pool2d(x, 3, 2, 1),
])
def test_more_ops_match_the_model(fn, pipeline_for, tmp_path):
    pipeline = pipeline_for(_Lambda(fn, nn.Conv2d(2, 2, 1), nn.ReLU(), nn.PReLU(1, 0.25)), (2, 6, 6))
    x = np.random.default_rng(3).standard_normal((4, 2, 6, 6)).astype(np.float32)
    out = pipeline.c(x, tmp_path, sanitize=True).outputs
    assert_bit_exact(out, pipeline.reference(x))
    assert_matches_model(pipeline, x, out)


def test_a_saved_sequential_of_bireal_blocks_loads_and_matches(tmp_path):
    """torch.save'd models may hold the blocks of horq_codegen.nn and PReLU, ReLU6 and adaptive pooling
    (their code is this package's and torch's; the file gives only their parameters)."""
    from horq_codegen.nn import BiRealBlock
    torch.manual_seed(0)
    model = settle_batchnorm(nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.PReLU(8),
                                           BiRealBlock(8, 16, stride=2), nn.ReLU6(), nn.AdaptiveAvgPool2d(1),
                                           nn.Flatten(), nn.Linear(16, 3)), (1, 8, 8))
    torch.save(model, tmp_path / "saved.pt")
    pipeline = Pipeline.__new__(Pipeline)
    pipeline.model = load(tmp_path / "saved.pt", (1, 8, 8))
    from horq_codegen import passes
    pipeline.graph = passes.lower(pipeline.model.graph)
    x = np.random.default_rng(4).standard_normal((3, 1, 8, 8)).astype(np.float32)
    out = pipeline.c(x, tmp_path, sanitize=True).outputs
    assert_bit_exact(out, pipeline.reference(x))
    assert_matches_model(pipeline, x, out)


def test_a_float_stream_too_large_for_the_board_says_how_to_shrink_it(tmp_path):
    from horq_codegen.nn import BiRealBlock
    torch.manual_seed(0)
    shape = (1, 64, 64)
    model = settle_batchnorm(nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.PReLU(16),
                                           BiRealBlock(16, 16), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                           nn.Linear(16, 2)), shape)
    pipeline = Pipeline(export_model(model, shape, tmp_path / "wide.pt2"))
    calibration = np.random.default_rng(0).standard_normal((2, *shape)).astype(np.float32)
    x = calibration[:1]
    target = load_target("cortex-m7")
    float_stream = lower_model(pipeline.model, Lowering("int8", calibration))
    with pytest.raises(HorqError, match="RAM: .*--residual-stream int8 makes it int8"):
        generate_project(pipeline.model, float_stream, target, tmp_path / "a", x)
    int8_stream = lower_model(pipeline.model, Lowering("int8", calibration, residual="int8"))
    generate_project(pipeline.model, int8_stream, target, tmp_path / "b", x)
    assert not (tmp_path / "a").exists() and (tmp_path / "b" / "src").is_dir()
