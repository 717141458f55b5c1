"""Every instruction-set path of the kernels, on a model made to reach their corners, bit for bit
against the reference: the host (portable C, under ASan and UBSan), Cortex-M7/M4/M33 (DSP assembly,
prefix-XOR weights), Cortex-M3 (portable C, soft float), Cortex-M55 (Helium) and Cortex-A72/A53 (NEON); and the bundled model on the
Cortex-A targets (the Cortex-M ones are in test_cortex_m.py)."""
import numpy as np
import pytest
import torch
from torch import nn

from horq_codegen.nn import HORQConv2d, HORQLinear
from horq_codegen.pipeline import Lowering, generate_project
from horq_codegen.runners import run_project
from horq_codegen.targets import load_target
from horq_codegen.verify import verify

from conftest import EXAMPLE_MODEL, Pipeline, assert_bit_exact, assert_matches_model, export_model, settle_batchnorm

TARGETS = ["host", "cortex-m7", "cortex-m4", "cortex-m55", "cortex-m33", "cortex-m3", "cortex-a72", "cortex-a53"]


@pytest.fixture(scope="module")
def corners(tmp_path_factory):
    """Channel counts of whole words (32: the vector and assembly paths), of a word and a
    part (40: the portable tail, lanes that start mid-vector), border and interior patches,
    orders 2 and 3, rows of 9, 12 and 18 words (loop-free, partial-triple and looping inner
    loops), a linear layer of 143 inputs (a partial triple and word)."""
    torch.manual_seed(11)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32),
                          HORQConv2d(32, 40, 3, padding=1, order=2), nn.BatchNorm2d(40),
                          HORQConv2d(40, 64, 3, padding=1, order=3), nn.MaxPool2d(2), nn.BatchNorm2d(64),
                          HORQConv2d(64, 16, 3, padding=1, order=2), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(64, 143), nn.BatchNorm1d(143), HORQLinear(143, 10, order=2))
    path = tmp_path_factory.mktemp("corners") / "corners.pt2"
    return Pipeline(export_model(settle_batchnorm(model, (3, 8, 8)), (3, 8, 8), path))


@pytest.mark.parametrize("target", TARGETS)
def test_every_path_is_bit_exact(corners, tmp_path, target):
    x = np.random.default_rng(12).standard_normal((4, 3, 8, 8)).astype(np.float32)
    t = load_target(target)
    generated = generate_project(corners.model, corners.graph, t, tmp_path / "fw", x, check_board=False)
    result = run_project(generated.out_dir, t, 4, 10, sanitize=target == "host")
    assert_bit_exact(result.outputs, corners.reference(x))
    assert_matches_model(corners, x, result.outputs)


@pytest.mark.parametrize("target", ["cortex-a72", "cortex-a53"])
@pytest.mark.parametrize("activations", ["int8", "float"])
def test_bundled_model_verifies_on_cortex_a(target, activations):
    report = verify(EXAMPLE_MODEL, target, samples=100, lowering=Lowering(activations))
    assert report.comparison.passed and report.comparison.bit_exact, report.summary()
    if activations == "float":
        assert report.comparison.argmax_agree == 100


BIREAL_MODEL = EXAMPLE_MODEL.parents[1] / "birealnet" / "model.pt2"


def _lowered_birealnet(activations: str):
    """The Bi-Real example (shortcuts, shifts, PReLU, global pooling) lowered, and its first test digits."""
    from horq_codegen import data
    from horq_codegen.pipeline import lower_model
    pipeline = Pipeline(BIREAL_MODEL)
    pipeline.graph = lower_model(pipeline.model, Lowering(activations))
    x, _ = data.mnist_subset("test")
    return pipeline, x[:6]


@pytest.fixture(scope="module")
def birealnet_int8():
    return _lowered_birealnet("int8")


@pytest.fixture(scope="module")
def birealnet_float():
    return _lowered_birealnet("float")


def _run_birealnet(pipeline, x, target: str, tmp_path) -> np.ndarray:
    t = load_target(target)
    generated = generate_project(pipeline.model, pipeline.graph, t, tmp_path / "fw", x, check_board=False)
    result = run_project(generated.out_dir, t, len(x), 10, sanitize=target == "host")
    assert_bit_exact(result.outputs, pipeline.reference(x))
    return result.outputs


@pytest.mark.parametrize("target", TARGETS)
def test_birealnet_example_in_integer_mode_is_bit_exact_on_every_target(birealnet_int8, target, tmp_path):
    pipeline, x = birealnet_int8
    outputs = _run_birealnet(pipeline, x, target, tmp_path)
    assert (outputs.argmax(1) == pipeline.torch(x).argmax(1)).all()  # the model's digits


# Float activations: Cortex-M4 and M33 run Cortex-M7's code, Cortex-A53 Cortex-A72's (the suite's time).
@pytest.mark.parametrize("target", ["host", "cortex-m7", "cortex-m55", "cortex-m3", "cortex-a72"])
def test_birealnet_example_with_float_activations_is_bit_exact(birealnet_float, target, tmp_path):
    pipeline, x = birealnet_float
    assert_matches_model(pipeline, x, _run_birealnet(pipeline, x, target, tmp_path))


@pytest.fixture(scope="module")
def neon_blocks(tmp_path_factory):
    """Float activations, the path of NEON's block kernel (8 rows x 4 positions): rows of 9, 9,
    27, 9, 18, 9 and 9 words (tails of 1, 2 and 3 words), output channels not a multiple of 8,
    25 and 9 positions (not a multiple of 4), orders 1 to 4, granularities static, tensor and
    patch, a stride of 2, a fused hardtanh; inputs of 32 and 64 channels (NEON's binarization and pixel sums of
    whole words, with and without the magnitudes) and of 13, 70, 24 and 9."""
    from horq_codegen.pipeline import lower_model
    torch.manual_seed(13)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32),
                          HORQConv2d(32, 13, 3, padding=1, order=1, granularity="static"), nn.BatchNorm2d(13),
                          HORQConv2d(13, 70, 3, padding=1, order=2, granularity="tensor"), nn.BatchNorm2d(70),
                          HORQConv2d(70, 32, 3, padding=1, order=3, granularity="patch"), nn.BatchNorm2d(32),
                          HORQConv2d(32, 64, 3, padding=1, order=2, granularity="patch"), nn.BatchNorm2d(64),
                          HORQConv2d(64, 24, 3, padding=1, order=1, granularity="patch"), nn.BatchNorm2d(24),
                          nn.Hardtanh(),
                          HORQConv2d(24, 9, 3, stride=2, padding=1, order=4, granularity="static"),
                          nn.BatchNorm2d(9), HORQConv2d(9, 12, 3, padding=1, order=1), nn.Flatten(),
                          nn.Linear(108, 10))
    path = tmp_path_factory.mktemp("neon_blocks") / "neon_blocks.pt2"
    pipeline = Pipeline(export_model(settle_batchnorm(model, (3, 5, 5)), (3, 5, 5), path))
    pipeline.graph = lower_model(pipeline.model, Lowering("float"))
    return pipeline


@pytest.mark.parametrize("target", ["host", "cortex-a72"])
def test_neon_block_kernel_is_bit_exact(neon_blocks, tmp_path, target):
    x = np.random.default_rng(14).standard_normal((3, 3, 5, 5)).astype(np.float32)
    t = load_target(target)
    generated = generate_project(neon_blocks.model, neon_blocks.graph, t, tmp_path / "fw", x, check_board=False)
    result = run_project(generated.out_dir, t, len(x), 10, sanitize=target == "host")
    assert_bit_exact(result.outputs, neon_blocks.reference(x))
    assert_matches_model(neon_blocks, x, result.outputs)
