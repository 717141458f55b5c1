"""Grouped float convolutions (``groups`` > 1, depthwise included) in both activation modes: the
generated C (host, ASan and UBSan; Cortex-M4 and Cortex-M55 in QEMU) bit for bit against the
reference, the reference against PyTorch; grouped HORQ convolutions refused."""
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

from horq_codegen import importer, reference, shapes
from horq_codegen.errors import HorqError
from horq_codegen.ir import Node, Op
from horq_codegen.nn import HORQConv2d
from horq_codegen.pipeline import Lowering, generate_project, lower_model
from horq_codegen.runners import run_project
from horq_codegen.targets import load_target

from conftest import Pipeline, assert_bit_exact, assert_matches_model, export_model, settle_batchnorm

SHAPE = (4, 10, 10)
OUTPUTS = 6


@pytest.fixture(scope="module")
def grouped(tmp_path_factory) -> Pipeline:
    """Every kind of grouped convolution: depthwise of multiplier 1 (the first layer, reading the
    model's input) and 2, groups=2 on 4 -> 6 channels with stride 2 and padding, a 1x1 grouped one,
    each with a BatchNorm and a ReLU after (folded); a BatchNorm after a ReLU (an affine, which
    integer mode folds into the convolution's clamps), a max pooling after one (fused in integer
    mode, its last row and column dropped), and a grouped convolution as the output layer (a float
    output in integer mode)."""
    torch.manual_seed(23)
    model = nn.Sequential(
        nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.BatchNorm2d(4), nn.ReLU(),                 # depthwise, x1
        nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2), nn.BatchNorm2d(6), nn.ReLU(),      # 10 -> 5
        nn.Conv2d(6, 12, 3, padding=1, groups=6), nn.ReLU(), nn.BatchNorm2d(12),              # depthwise, x2
        nn.Conv2d(12, 6, 1, groups=3, bias=False), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),  # 1x1; 5 -> 2
        nn.Conv2d(6, OUTPUTS, 2, groups=3))                                                   # -> 6 x 1 x 1
    path = export_model(settle_batchnorm(model, SHAPE), SHAPE, tmp_path_factory.mktemp("grouped") / "grouped.pt2")
    return Pipeline(path)


@pytest.fixture(scope="module")
def grouped_int8(grouped) -> Pipeline:
    pipeline = Pipeline(grouped.model.file.path)
    calibration = np.random.default_rng(24).standard_normal((40, *SHAPE)).astype(np.float32)
    pipeline.graph = lower_model(pipeline.model, Lowering("int8", calibration))
    return pipeline


def _inputs(count: int = 4) -> np.ndarray:
    return np.random.default_rng(25).standard_normal((count, *SHAPE)).astype(np.float32)


def test_groups_are_kept_on_the_convolutions(grouped):
    convs = [n for n in grouped.model.graph.nodes if n.op == Op.CONV2D]
    assert [n.attrs["groups"] for n in convs] == [4, 2, 6, 3, 3]
    assert [tuple(n.params["weight"].shape) for n in grouped.graph.nodes if n.op == Op.CONV2D] == [
        (4, 3, 3, 1), (6, 3, 3, 2), (12, 3, 3, 1), (6, 1, 1, 4), (6, 2, 2, 2)]  # (O, kh, kw, C / groups)


def test_float_reference_matches_pytorch(grouped):
    x = _inputs(8)
    out = grouped.torch(x)
    np.testing.assert_allclose(grouped.reference(x), out, atol=1e-5 * (1 + np.abs(out).max()), rtol=0)


def test_float_mode_is_bit_exact_on_the_host(grouped, tmp_path):
    x = _inputs()
    result = grouped.c(x, tmp_path, sanitize=True)
    assert_bit_exact(result.outputs, grouped.reference(x))
    assert_matches_model(grouped, x, result.outputs)


def test_integer_mode_fuses_around_grouped_convolutions(grouped_int8):
    convs = [n for n in grouped_int8.graph.nodes if n.op == Op.CONV2D]
    assert [n.attrs["groups"] for n in convs] == [4, 2, 6, 3, 3]
    assert all(n.params["weight"].dtype == np.int8 for n in convs)
    assert "clamp_low" in convs[2].params and convs[3].attrs.get("pool") == 2  # the affine, the pooling
    assert [n.dtype for n in convs] == ["i8"] * 4 + ["f32"]
    assert Op.AFFINE not in [n.op for n in grouped_int8.graph.nodes]


def test_integer_mode_is_bit_exact_on_the_host_and_close_to_pytorch(grouped_int8, tmp_path):
    x = _inputs()
    result = grouped_int8.c(x, tmp_path, sanitize=True, trace=True)
    assert_bit_exact(result.outputs, grouped_int8.reference(x))
    for sample, traces in zip(x, result.traces):  # layer by layer: a difference shows where it starts
        expected = reference.run_traced(grouped_int8.graph, sample)
        for name, values in traces.items():
            assert np.array_equal(values, expected[name].reshape(-1)), name
    torch_out = grouped_int8.torch(x)
    assert np.abs(result.outputs - torch_out).max() <= 0.05 * np.abs(torch_out).max()


@pytest.mark.parametrize("target, activations", [("cortex-m55", "int8"), ("cortex-m4", "float")])
def test_grouped_convolutions_are_bit_exact_on_cortex_m(grouped, grouped_int8, tmp_path, target, activations):
    pipeline = grouped_int8 if activations == "int8" else grouped
    x = _inputs(2)
    t = load_target(target)
    generated = generate_project(pipeline.model, pipeline.graph, t, tmp_path / "fw", x, check_board=False)
    result = run_project(generated.out_dir, t, len(x), OUTPUTS)
    assert_bit_exact(result.outputs, pipeline.reference(x))


@pytest.mark.parametrize("compiler", ["cc -std=c99", "c++ -x c++ -std=c++11"])
def test_grouped_model_is_warning_free_in_c_and_cpp(grouped_int8, tmp_path, compiler):
    """The grouped layers' calls and parameter structs in the generated model, and the kernels, at -O0
    and -O2 (every kernel with every Cortex-M target's flags: test_integer_mode.py)."""
    generated = generate_project(grouped_int8.model, grouped_int8.graph, load_target("host"), tmp_path / "p",
                                 _inputs(1))
    project = generated.out_dir
    model_c = (project / "src" / "model.c").read_text()
    assert model_c.count("horq_conv2d_i8_grouped_hwc(") == 5 and "horq_conv2d_i8_hwc(" not in model_c
    assert "int8_t l0_conv2d_weights[36]" in model_c  # 4 rows of 3 x 3 x 1, not padded to the small path's 16
    for level in ["-O0", "-O2"]:
        for source in [project / "src" / "model.c", *project.glob("lib/horq/horq_*.c")]:
            build = subprocess.run([*compiler.split(), level, "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
                                    f"-I{project / 'lib/horq'}", f"-I{project / 'include'}", "-c", str(source),
                                    "-o", str(tmp_path / "o.o")], capture_output=True, text=True)
            assert build.returncode == 0, f"{level} {source.name}: {build.stderr[-600:]}"


def test_grouped_horq_convolution_is_refused_when_built():
    with pytest.raises(ValueError, match="groups=2 is not supported for HORQ convolutions"):
        HORQConv2d(4, 4, 3, groups=2)


def test_grouped_horq_weights_are_refused_naming_the_layer():
    """A program whose HORQ convolution holds grouped weights (O, C / 2, kh, kw), which no HORQConv2d
    exports: refused, naming the layer and the groups."""
    torch.manual_seed(26)
    model = nn.Sequential(nn.Conv2d(4, 4, 1), HORQConv2d(4, 4, 3, padding=1)).eval()
    program = torch.export.export(model, (torch.zeros(1, *SHAPE),))
    key = next(k for k in program.state_dict if k.startswith("1.") and k.endswith("weight"))
    program.state_dict[key] = torch.randn(4, 2, 3, 3)
    with pytest.raises(HorqError, match=r"1 \(HORQConv2d\): groups=2 is not supported for HORQ convolutions"):
        importer.import_program(program)


@pytest.mark.parametrize("groups, weight, message", [
    (3, (6, 2, 3, 3), "groups=3 does not divide both its 4 input and 6 output channels"),
    (2, (6, 4, 3, 3), r"parameter weight has shape \(6, 4, 3, 3\), expected \(6, 2, 3, 3\)"),
    (0, (6, 4, 3, 3), "groups is 0"),
])
def test_shapes_check_the_groups(groups, weight, message):
    node = Node("c", Op.CONV2D, ("input",), (6, 8, 8),
                {"kernel": (3, 3), "stride": (1, 1), "padding": (0, 0), "in_shape": (4, 10, 10), "groups": groups},
                {"weight": np.zeros(weight, np.float32), "scale": np.ones(6, np.float32),
                 "offset": np.zeros(6, np.float32)})
    with pytest.raises(Exception, match=message):
        shapes.expected_shape(node, (4, 10, 10))
