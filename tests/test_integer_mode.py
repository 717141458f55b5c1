"""Integer mode (int8 tensors between layers): the generated C equals the integer reference bit
for bit, layer by layer, on the host (ASan, UBSan) and every ARM target; the bundled example
agrees with PyTorch; calibration, the CLI's choices and the memory plan."""
import concurrent.futures
import os
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

from horq_codegen import integer, passes, reference
from horq_codegen.cli import main
from horq_codegen.integer_quantizer import UNIT
from horq_codegen.ir import Activation, Graph, Node, Op
from horq_codegen.memory import plan_memory
from horq_codegen.nn import HORQConv2d, HORQLinear
from horq_codegen.pipeline import Lowering, generate_project, lower_model
from horq_codegen.runners import run_project
from horq_codegen.targets import known_targets, load_target
from horq_codegen.verify import AGREEMENT_THRESHOLD, IntegerComparison, verify

from conftest import EXAMPLE_MODEL, Pipeline, assert_bit_exact, assert_layers_bit_exact, export_model, settle_batchnorm

STATIC_EXAMPLE = EXAMPLE_MODEL.with_name("model_static.pt2")

TARGETS = ["host", "cortex-m7", "cortex-m4", "cortex-m55", "cortex-m33", "cortex-m3", "cortex-a72", "cortex-a53"]
SHAPE = (1, 12, 12)


def _int8_pipeline(path, calibration: np.ndarray) -> Pipeline:
    pipeline = Pipeline(path)
    pipeline.graph = lower_model(pipeline.model, Lowering("int8", calibration))
    return pipeline


@pytest.fixture(scope="module")
def int8_corners(tmp_path_factory):
    """Every int8 kernel and its instruction-set paths: the one-channel first convolution
    (3x3 and 4x4 taps, stride 2), 24 channels (a 16-byte vector and a tail of 8; six DSP words)
    in max pooling (fused into a convolution, and on its own), average pooling with padding, a standalone ReLU and Hardtanh (clamps in
    integer steps), an unfolded BatchNorm, a multi-channel int8 convolution, HORQ layers of every
    granularity reading int8 inputs, an int8 linear layer in the middle and one at the end."""
    torch.manual_seed(5)
    model = nn.Sequential(
        nn.Conv2d(1, 24, 3, padding=1), nn.BatchNorm2d(24), nn.ReLU(), nn.MaxPool2d(2),   # 12 -> 6
        nn.BatchNorm2d(24), HORQConv2d(24, 20, 3, padding=1, order=2, granularity="patch"),
        nn.Hardtanh(-0.5, 1.5), nn.AvgPool2d(3, 1, 1), nn.BatchNorm2d(20),
        HORQConv2d(20, 16, 3, padding=1, order=2, granularity="pixel"), nn.ReLU(),
        nn.MaxPool2d(3, 1, 1),  # window 3, stride 1: not fused, the int8 max pooling kernel
        nn.Conv2d(16, 12, 3, padding=1), nn.BatchNorm2d(12),
        HORQConv2d(12, 12, 3, padding=1, order=2, granularity="tensor"), nn.MaxPool2d(2),  # 6 -> 3
        nn.Flatten(), nn.Linear(108, 40), nn.BatchNorm1d(40),
        HORQLinear(40, 24, order=2, granularity="static"), nn.ReLU(), nn.Linear(24, 5))
    path = export_model(settle_batchnorm(model, SHAPE), SHAPE, tmp_path_factory.mktemp("int8") / "corners.pt2")
    calibration = np.random.default_rng(3).standard_normal((40, *SHAPE)).astype(np.float32)
    return _int8_pipeline(path, calibration)


@pytest.fixture(scope="module")
def four_by_four(tmp_path_factory):
    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(1, 20, 4, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(20 * 36, 3))
    path = export_model(settle_batchnorm(model, SHAPE), SHAPE, tmp_path_factory.mktemp("4x4") / "m.pt2")
    return _int8_pipeline(path, np.random.default_rng(4).standard_normal((20, *SHAPE)).astype(np.float32))


@pytest.fixture(scope="module")
def int8_dots(tmp_path_factory):
    """The int8 dot products of the multi-channel convolution (one a kernel row: the row's taps
    inside the input times the channels) and of the linear layer, on every instruction set's
    branches: runs of 16 and 40 bytes (whole 16-byte vectors, no tail), 24 (a vector and half a
    NEON step), 60 and 63 (vectors, a Helium tail; 60 whole DSP words, 63 three bytes past them
    and seven past NEON's steps), 26 and 39 (DSP word tails), 9 (a tail only); output channels in
    blocks of rows (20) with a remainder row (13, 9) and fewer than a block (3)."""
    torch.manual_seed(13)
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 20, 3, padding=1), nn.BatchNorm2d(20), nn.ReLU(),       # runs of 24 and 16 bytes
        nn.Conv2d(20, 13, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),          # 60 and 40; 12 -> 6
        nn.Conv2d(13, 7, 3, stride=2, padding=1), nn.ReLU(),                  # 39 and 26; 6 -> 3
        nn.Flatten(), nn.Linear(63, 9), nn.ReLU(), nn.Linear(9, 3))
    path = export_model(settle_batchnorm(model, SHAPE), SHAPE, tmp_path_factory.mktemp("dots") / "dots.pt2")
    return _int8_pipeline(path, np.random.default_rng(14).standard_normal((40, *SHAPE)).astype(np.float32))


@pytest.fixture(scope="module")
def static_chain(tmp_path_factory):
    """Static HORQ layers fed with bit-planes by their producers: an int8 convolution, a HORQ
    convolution and a HORQ convolution without pooling, each followed by a BatchNorm that runs on
    its final values (per channel, and per feature for a BatchNorm1d after a flattening); 20
    channels (a partial word) and 32 (whole words, which a linear layer reads as one row)."""
    torch.manual_seed(7)
    model = nn.Sequential(
        nn.Conv2d(1, 20, 3, padding=1), nn.BatchNorm2d(20), nn.ReLU(), nn.MaxPool2d(2), nn.BatchNorm2d(20),  # 6x6
        HORQConv2d(20, 32, 3, padding=1, order=2, granularity="static"), nn.ReLU(), nn.MaxPool2d(2),       # 3x3
        nn.BatchNorm2d(32), HORQConv2d(32, 32, 3, padding=1, order=3, granularity="static"), nn.ReLU(),
        nn.Flatten(), nn.BatchNorm1d(288), HORQLinear(288, 16, order=2, granularity="static"), nn.ReLU(),
        nn.Linear(16, 5))
    path = export_model(settle_batchnorm(model, SHAPE), SHAPE, tmp_path_factory.mktemp("static") / "chain.pt2")
    calibration = np.random.default_rng(12).standard_normal((40, *SHAPE)).astype(np.float32)
    return _int8_pipeline(path, calibration)


@pytest.fixture(scope="module", params=["pool3", "dropped_row"])
def wide_pooling(request, tmp_path_factory):
    """One-channel convolutions whose fused pooling is more than one batch of four positions (3x3
    windows: 4 + 4 + 1) or leaves its last conv row out (a 2x3 kernel: 13 rows pooled by 2)."""
    torch.manual_seed(17)
    conv, pool, pooled = ((nn.Conv2d(1, 6, 3, padding=1), 3, 4) if request.param == "pool3"
                          else (nn.Conv2d(1, 6, (2, 3), padding=1), 2, 6))
    model = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(pool), nn.Flatten(), nn.Linear(6 * pooled * pooled, 3))
    path = export_model(settle_batchnorm(model, SHAPE), SHAPE, tmp_path_factory.mktemp("wide") / "m.pt2")
    return _int8_pipeline(path, np.random.default_rng(18).standard_normal((20, *SHAPE)).astype(np.float32))


@pytest.fixture(scope="module", params=[3, 2])
def small_patches(request, tmp_path_factory):
    """First convolutions of three and two input channels (an RGB image's 3x3: patches of 27 and 18
    bytes, in the small-patch kernel's 32-byte rows), with a folded BatchNorm and fused pooling."""
    channels = request.param
    shape = (channels, 12, 12)
    torch.manual_seed(19 + channels)
    model = nn.Sequential(nn.Conv2d(channels, 20, 3, padding=1), nn.BatchNorm2d(20), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(20 * 36, 3))
    path = export_model(settle_batchnorm(model, shape), shape, tmp_path_factory.mktemp("small") / "m.pt2")
    calibration = np.random.default_rng(20).standard_normal((20, *shape)).astype(np.float32)
    return _int8_pipeline(path, calibration), shape


def _inputs(seed: int, count: int = 4, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((count, *shape)).astype(np.float32) * 1.5
    x[0, 0, 0, :] = 40.0  # beyond the calibrated range: requantization clamps
    return x


def test_the_graph_is_integer_between_layers(int8_corners):
    graph = int8_corners.graph
    ops = [n.op for n in graph.nodes]
    assert ops[0] == Op.QUANTIZE and Op.RELU not in ops and Op.HARDTANH not in ops
    for node in graph.nodes[1:-1]:
        assert node.dtype == "i8", node.name  # even the HORQ quantizers read int8
    assert graph.nodes[-1].dtype == "f32" and graph.nodes[-1].op == Op.LINEAR  # dequantization folded in
    fused = [n for n in graph.nodes if "pool" in n.attrs]  # the first conv's and the tensor layer's pooling
    assert [n.op for n in fused] == [Op.CONV2D, Op.HORQ_CONV2D] and ops.count(Op.MAXPOOL2D) == 1
    convs = [n for n in graph.nodes if n.op in (Op.CONV2D, Op.LINEAR)]
    assert all(n.params["weight"].dtype == np.int8 for n in convs)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("fixture, outputs", [("int8_corners", 5), ("int8_dots", 3)])
def test_every_int8_path_is_bit_exact(fixture, outputs, request, tmp_path, target):
    pipeline = request.getfixturevalue(fixture)
    x = _inputs(8)
    t = load_target(target)
    generated = generate_project(pipeline.model, pipeline.graph, t, tmp_path / "fw", x, check_board=False)
    result = run_project(generated.out_dir, t, len(x), outputs, sanitize=target == "host")
    assert_bit_exact(result.outputs, pipeline.reference(x))


@pytest.mark.parametrize("target", ["host", "cortex-m7", "cortex-m55", "cortex-m3", "cortex-a53"])
def test_one_channel_convolution_of_4x4_taps_with_stride(four_by_four, tmp_path, target):
    x = _inputs(9)
    t = load_target(target)
    generated = generate_project(four_by_four.model, four_by_four.graph, t, tmp_path / "fw", x, check_board=False)
    assert_bit_exact(run_project(generated.out_dir, t, len(x), 3, sanitize=target == "host").outputs,
                     four_by_four.reference(x))


@pytest.mark.parametrize("target", TARGETS)
def test_small_patch_convolution_of_two_and_three_channels_is_bit_exact(small_patches, tmp_path, target):
    pipeline, shape = small_patches
    x = _inputs(21, shape=shape)
    t = load_target(target)
    generated = generate_project(pipeline.model, pipeline.graph, t, tmp_path / "fw", x, check_board=False)
    # the small-patch kernel's weight rows: 20 of 32 bytes (not 20 of 9 * channels: the general path)
    assert "int8_t l0_conv2d_weights[640]" in (generated.out_dir / "src" / "model.c").read_text()
    assert_bit_exact(run_project(generated.out_dir, t, len(x), 3, sanitize=target == "host").outputs,
                     pipeline.reference(x))


@pytest.mark.parametrize("fixture", ["int8_corners", "int8_dots", "static_chain"])
def test_every_layer_matches_the_reference_on_the_host(fixture, request, tmp_path):
    """Layer by layer (int8 traces in decimal, bit-planes as words), under the sanitizers: a
    difference shows where it starts."""
    pipeline = request.getfixturevalue(fixture)
    x = _inputs(10, 2)
    result = pipeline.c(x, tmp_path, sanitize=True, trace=True)
    assert_layers_bit_exact(pipeline.graph, x, result.traces)


def test_static_layers_read_bit_planes_their_producers_write(static_chain):
    graph = static_chain.graph
    assert [n.op for n in graph.nodes] == [Op.QUANTIZE, Op.CONV2D, Op.HORQ_CONV2D, Op.HORQ_CONV2D, Op.HORQ_LINEAR,
                                           Op.LINEAR]  # every BatchNorm done by the layer before it
    writers = graph.nodes[1:4]
    assert [n.dtype for n in writers] == ["bits"] * 3
    # the BatchNorm2d's fold into the transform (per-channel clamps), the BatchNorm1d runs on final values
    assert [n.params["clamp_low"].size for n in writers[:2]] == [20, 32] and "post_scale" not in writers[1].params
    assert writers[2].params["post_scale"].size == 288 and "clamp_low" not in writers[2].params
    assert all(n.attrs.get("planes_input") for n in graph.nodes[2:5])
    # two bits a value instead of eight (three for the order-3 reader): 36 pixels x 2 planes x 1 word
    assert [n.tensor_bytes for n in writers] == [4 * 2 * 36 * 1, 4 * 3 * 9 * 1, 4 * 2 * 9 * 1]


@pytest.mark.parametrize("target", TARGETS)
def test_bit_planes_and_fused_batchnorms_are_bit_exact(static_chain, tmp_path, target):
    x = _inputs(13)
    t = load_target(target)
    generated = generate_project(static_chain.model, static_chain.graph, t, tmp_path / "fw", x, check_board=False)
    result = run_project(generated.out_dir, t, len(x), 5, sanitize=target == "host")
    assert_bit_exact(result.outputs, static_chain.reference(x))


def test_bit_planes_change_no_result(static_chain):
    """The producers' planes are memory and speed only: the graph without them (each static layer
    quantizing an int8 tensor) gives the same outputs."""
    x = _inputs(15)
    lowered = passes.lower(static_chain.model.graph)
    peaks = integer.calibrate(lowered, np.random.default_rng(12).standard_normal((40, *SHAPE)).astype(np.float32))
    plain = integer.to_integer(lowered, peaks, planes=False)
    assert all(n.dtype != "bits" for n in plain.nodes) and any(n.dtype == "bits" for n in static_chain.graph.nodes)
    assert_bit_exact(reference.run(plain, x), reference.run(static_chain.graph, x))


@pytest.mark.parametrize("activation", [Activation("relu"), Activation("hardtanh", -20.0, 90.0), Activation()])
def test_an_affine_folds_into_the_transform_before_it_exactly_in_real_numbers(activation):
    """fold_affine's maths, in float64 without roundings: the two transforms and the folded one agree,
    for affine scales of both signs and zero, whatever clamps the affine's activation adds."""
    rng = np.random.default_rng(16)
    channels = 6
    conv = Node("c", Op.CONV2D, ("x",), (channels, 2, 2), activation=activation, dtype="i8", params={
        "scale": rng.uniform(0.01, 0.5, channels).astype(np.float32),
        "offset": rng.uniform(-30, 30, channels).astype(np.float32)})
    a = np.array([1.5, -0.7, 0.0, 0.3, -2.0, 0.9], np.float32)
    affine = Node("a", Op.AFFINE, ("c",), (channels, 2, 2), activation=Activation("hardtanh", -50.0, 100.0),
                  dtype="i8", params={"scale": a, "offset": rng.uniform(-40, 40, channels).astype(np.float32)})
    folded = integer.fold_affine(conv, affine)
    acc = rng.uniform(-2000, 2000, (500, channels))

    def clamp(y, act):
        low, high = integer._clamp_range(act)
        return np.clip(y, low, high)
    p = {k: v.astype(np.float64) for k, v in conv.params.items()}
    q = {k: v.astype(np.float64) for k, v in affine.params.items()}
    two_steps = clamp(clamp(acc * p["scale"] + p["offset"], activation) * q["scale"] + q["offset"],
                      affine.activation)
    f = {k: v.astype(np.float64) for k, v in folded.params.items()}
    one_step = np.clip(acc * f["scale"] + f["offset"], f["clamp_low"], f["clamp_high"])
    assert folded.activation.kind == "none"
    assert np.allclose(one_step, two_steps, rtol=1e-5, atol=1e-3)


@pytest.fixture(scope="module")
def negative_scales(tmp_path_factory):
    """A first convolution and a HORQ convolution, each with a fused max pooling, whose BatchNorms
    make half their channels' scales negative (and one zero)."""
    torch.manual_seed(7)
    model = nn.Sequential(nn.Conv2d(1, 12, 3, padding=1), nn.BatchNorm2d(12), nn.MaxPool2d(2), nn.BatchNorm2d(12),
                          HORQConv2d(12, 8, 3, padding=1, order=2, granularity="patch"), nn.BatchNorm2d(8),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 9, 4))
    settle_batchnorm(model, SHAPE)
    with torch.no_grad():
        model[1].weight.mul_(torch.tensor([-1.0, 1.0] * 6)).index_fill_(0, torch.tensor([3]), 0.0)
        model[5].weight.mul_(torch.tensor([-1.0, 1.0] * 4))
    path = export_model(model, SHAPE, tmp_path_factory.mktemp("negative") / "m.pt2")
    calibration = np.random.default_rng(5).standard_normal((20, *SHAPE)).astype(np.float32)
    pipeline = _int8_pipeline(path, calibration)
    pipeline.calibration = calibration  # to lower it again
    return pipeline


def test_negative_scales_of_a_pooled_convolution_are_flipped_so_pooling_the_accumulators_is_exact(
        negative_scales, monkeypatch):
    """A fused pooling runs on the accumulators (horq_kernels.h, horq_conv2d_i8_params), which equals
    pooling the int8 outputs only where the transform is non-decreasing: the generator negates the
    channels of negative scale. With the BatchNorms after the poolings left as their own passes, the
    fused graph equals the graph that pools int8 tensors, bit for bit, and would not unflipped."""
    monkeypatch.setattr(integer, "fuse_affine_after_convolution", lambda graph: graph)
    lower = lambda: lower_model(negative_scales.model, Lowering("int8", negative_scales.calibration))
    flipped_graph = lower()
    with monkeypatch.context() as m:
        m.setattr(integer, "nonnegative_scales", lambda conv: conv)
        unflipped = lower()
    with monkeypatch.context() as m:
        m.setattr(integer, "fuse_max_pooling", lambda graph: graph)
        pooled_int8 = lower()
    pooled = [(b, a) for b, a in zip(unflipped.nodes, flipped_graph.nodes) if "pool" in a.attrs]
    assert [(b.op, int((b.params["scale"] < 0).sum())) for b, _ in pooled] == [(Op.CONV2D, 6), (Op.HORQ_CONV2D, 4)]
    for before, after in pooled:
        assert (after.params["scale"] >= 0).all()
        flipped = before.params["scale"] < 0
        if before.op == Op.CONV2D:
            assert np.array_equal(after.params["weight"][flipped], -before.params["weight"][flipped])
        else:  # the 12 real bits of each tap's word inverted, the padding bits left 0
            assert np.array_equal(after.params["weight_bits"][flipped], before.params["weight_bits"][flipped] ^ 0xFFF)
        key = "weight" if before.op == Op.CONV2D else "weight_bits"
        assert np.array_equal(after.params[key][~flipped], before.params[key][~flipped])
    assert sum(n.op == Op.MAXPOOL2D for n in pooled_int8.nodes) == 2
    x = _inputs(12, 8)
    assert_bit_exact(reference.run(flipped_graph, x), reference.run(pooled_int8, x))
    assert not np.array_equal(reference.run(unflipped, x), reference.run(pooled_int8, x))


@pytest.mark.parametrize("target", ["host", "cortex-m7", "cortex-m55", "cortex-m3", "cortex-a53"])
def test_a_pooled_convolution_with_negative_scales_is_bit_exact(negative_scales, tmp_path, target):
    x = _inputs(13)
    t = load_target(target)
    generated = generate_project(negative_scales.model, negative_scales.graph, t, tmp_path / "fw", x,
                                 check_board=False)
    assert_bit_exact(run_project(generated.out_dir, t, len(x), 4, sanitize=target == "host").outputs,
                     negative_scales.reference(x))


@pytest.mark.parametrize("target", ["host", "cortex-m7", "cortex-m55", "cortex-m3", "cortex-a72"])
def test_pooling_windows_of_more_than_four_positions_and_dropped_rows_are_bit_exact(wide_pooling, tmp_path, target):
    assert next(n for n in wide_pooling.graph.nodes if "pool" in n.attrs).op == Op.CONV2D
    x = _inputs(19)
    t = load_target(target)
    generated = generate_project(wide_pooling.model, wide_pooling.graph, t, tmp_path / "fw", x, check_board=False)
    assert_bit_exact(run_project(generated.out_dir, t, len(x), 3, sanitize=target == "host").outputs,
                     wide_pooling.reference(x))


def test_requantization_rounds_half_to_even_and_clamps():
    y = np.array([-128.6, -127.5, -0.5, 0.49999997, 2.5, 3.5, 126.5, 127.4, np.inf, -np.inf], np.float32)
    assert integer.requantize(y).tolist() == [-128, -128, 0, 0, 2, 4, 126, 127, 127, -128]


def test_weights_are_per_channel_and_symmetric():
    w = np.array([1.0, -0.25, 0.004, 0.001], np.float32).reshape(2, 2, 1, 1)
    q, scales = integer.quantize_weights(w)
    assert q.reshape(2, -1).tolist() == [[127, -32], [127, 32]]  # -31.75 and 31.75 round away from the .75
    assert np.allclose(scales, [1 / 127, 0.004 / 127])


def test_scales_follow_the_calibration_data(small_model):
    pipeline = Pipeline(small_model)
    narrow = np.random.default_rng(0).standard_normal((20, 1, 10, 10)).astype(np.float32) * 0.1
    wide = narrow * 30
    scale = lambda g: g.node("input_q").out_scale
    a = lower_model(pipeline.model, Lowering("int8", narrow))
    b = lower_model(pipeline.model, Lowering("int8", wide))
    assert scale(b) == pytest.approx(30 * scale(a), rel=1e-5)
    assert scale(a) == pytest.approx(np.abs(narrow).max() / 127, rel=1e-6)


def test_without_calibration_data_random_inputs_are_used_with_a_warning(small_model):
    warnings: list[str] = []
    graph = lower_model(Pipeline(small_model).model, Lowering("int8", warn=warnings.append))
    assert len(warnings) == 1 and "seeded random" in warnings[0] and "--calibration" in warnings[0]
    assert integer.is_integer(graph)


def test_both_examples_fit_every_cortex_m_board_in_integer_mode(tmp_path, capsys):
    boards = [("cortex-m4", None), ("cortex-m4", "nucleo_l476rg"), ("cortex-m7", None), ("cortex-m55", None),
              ("cortex-m33", None), ("cortex-m33", "rpi_pico2")]
    for model, target, board in ([(EXAMPLE_MODEL, *b) for b in boards] + [(STATIC_EXAMPLE, *b) for b in boards[:2]]
                                 + [(STATIC_EXAMPLE, "cortex-m3", None)]):
        out = tmp_path / f"{model.stem}-{target}-{board}"
        args = [str(model), "--target", target, "-o", str(out)] + (["--board", board] if board else [])
        assert main(args) == 0, capsys.readouterr().err
        assert (out / "src" / "model.c").exists()
    assert main([str(EXAMPLE_MODEL), "--target", "cortex-m4", "--activations", "float", "-o",
                 str(tmp_path / "float")]) == 2
    assert "does not fit ST NUCLEO-F446RE" in capsys.readouterr().err


def test_the_static_example_alone_fits_the_20_kb_of_a_nucleo_f103rb(tmp_path, capsys):
    """The estimate counts what the linker places: the static example in integer mode links for the
    board (the linker script asserts that .data, .bss and the stack fit); the patch example, whose
    arena, stack, input copy and C library need about 22.7 KB, is refused before anything is written."""
    out = tmp_path / "static"
    assert main([str(STATIC_EXAMPLE), "--target", "cortex-m3", "-o", str(out)]) == 0, capsys.readouterr().err
    build = subprocess.run(["make", "-C", str(out), "board"], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-800:]
    for model, mode in [(EXAMPLE_MODEL, "int8"), (STATIC_EXAMPLE, "float")]:
        assert main([str(model), "--target", "cortex-m3", "--activations", mode, "-o", str(tmp_path / mode)]) == 2
        assert "does not fit ST NUCLEO-F103RB" in capsys.readouterr().err and not (tmp_path / mode).exists()


def test_the_plan_sizes_int8_tensors_in_bytes():
    model_graph = lower_model(Pipeline(EXAMPLE_MODEL).model)
    float_graph = lower_model(Pipeline(EXAMPLE_MODEL).model, Lowering("float"))
    int8_plan, float_plan = plan_memory(model_graph), plan_memory(float_graph)
    conv = model_graph.node("l0_conv2d")  # its max pooling fused: the 32x28x28 tensor never exists
    assert conv.attrs["pool"] == 2 and conv.shape == (32, 14, 14) and conv.attrs["conv_out"] == (32, 28, 28)
    assert not any(n.op == Op.MAXPOOL2D for n in model_graph.nodes)
    assert int8_plan.outputs[conv.name].arena == "i8" and int8_plan.outputs[conv.name].size == 32 * 14 * 14
    assert int8_plan.arena_bytes < float_plan.arena_bytes / 3
    assert max(int8_plan.live_bytes(model_graph)) <= int8_plan.arena_bytes


def test_inspect_shows_output_bytes_and_the_peak(capsys):
    assert main(["inspect", str(EXAMPLE_MODEL)]) == 0
    out = capsys.readouterr().out
    assert "out bytes" in out and out.count("<- peak") == 1
    assert "l0_conv2d" in out and "6,272" in out  # 32 x 14 x 14 int8 values, the pooling fused


def test_calibration_file_is_checked(tmp_path, capsys):
    bad = tmp_path / "cal.npy"
    np.save(bad, np.zeros((5, 3, 3), np.float32))
    assert main(["inspect", str(EXAMPLE_MODEL), "--calibration", str(bad)]) == 2
    assert "inputs of shape (5, 3, 3)" in capsys.readouterr().err
    good = tmp_path / "good.npy"
    np.save(good, np.random.default_rng(0).random((8, 1, 28, 28), np.float32))
    assert main(["inspect", str(EXAMPLE_MODEL), "--calibration", str(good)]) == 0
    assert main(["inspect", str(EXAMPLE_MODEL), "--activations", "float", "--calibration", str(good)]) == 2
    assert "no use with --activations float" in capsys.readouterr().err


def test_bundled_example_is_clean_under_sanitizers_in_integer_mode():
    report = verify(EXAMPLE_MODEL, "host", samples=20, sanitize=True)
    c = report.comparison
    assert isinstance(c, IntegerComparison) and c.passed and c.bit_exact, report.summary()
    assert "argmax agree" in report.summary() and "int8 mode" in report.summary()


def test_a_tensor_read_only_by_static_quantizers_ends_past_their_largest_threshold():
    """Order 2: the one threshold beta_1 lies halfway between the two last int8 steps (aligned_scale),
    so rounding to a step never crosses it."""
    model = Pipeline(STATIC_EXAMPLE).model
    graph = lower_model(model)
    horq = lower_model(model, Lowering("float")).node("l5_horq_conv2d")
    beta_1 = float(horq.params["betas"][0])  # order 2: the thresholds are 0 and +-beta_1
    feeding = graph.node("l0_conv2d")  # the BatchNorm before l5 done by it
    assert feeding.out_scale == pytest.approx(beta_1 / integer.ALIGNED_STEPS, rel=1e-6)
    in_units = graph.node("l5_horq_conv2d").params["betas"][0] / UNIT
    assert in_units == integer.ALIGNED_STEPS  # beta_1 in integer steps: exactly between 126 and 127


def test_other_static_readers_end_a_little_past_their_largest_threshold():
    reader = Node("h", Op.HORQ_CONV2D, ("x",), (1, 1, 1), {"order": 3, "granularity": "static"},
                  {"betas": np.array([0.5, 0.25, 0.125], np.float32)})
    assert integer.aligned_scale([reader]) is None  # two thresholds (0.5, 0.75): no one grid fits both
    builder = integer._Builder(Graph((1, 1, 1), (reader,), "h"), {"x": 10.0})
    assert builder.int8_scale("x") == pytest.approx(integer.STATIC_HEADROOM * 0.75 / 127, rel=1e-6)


def test_static_example_agrees_with_pytorch_in_integer_mode():
    # 400 of the 1,000 test digits keep the suite within CI's 15 minutes (`horq-codegen verify
    # examples/mnist/model_static.pt2 --samples 1000` checks them all)
    report = verify(STATIC_EXAMPLE, "host", samples=400)
    c = report.comparison
    # accuracy within 3 digits of PyTorch's, as on all 1,000 (0.3 %)
    assert c.passed and c.bit_exact and abs(c.accuracy_c - c.accuracy_torch) <= 3 / c.samples + 1e-9, report.summary()


@pytest.mark.parametrize("compiler", ["cc -std=c99", "c++ -x c++ -std=c++11"])
def test_generated_c_is_warning_free_at_every_level_in_c_and_cpp(int8_corners, tmp_path, compiler):
    """The whole int8 project (model, harness, every kernel) for the host; every kernel also for
    every Cortex-M target (M3 portable and soft float, M4, M7 and M33 DSP, M55 Helium) and the
    Cortex-A72 (NEON) with their own flags (arm-none-eabi-gcc/g++, aarch64-linux-gnu-gcc/g++):
    -Wall -Wextra -Werror at -O0 (a debug build: the kernels' asm steps aside there), -Og, -O1 to
    -O3 and -Os. The compilers run side by side, one per core."""
    x = _inputs(11, 1)
    generated = generate_project(int8_corners.model, int8_corners.graph, load_target("host"), tmp_path / "p", x)
    project = generated.out_dir
    sources = sorted([*project.glob("src/*.c"), *project.glob("lib/horq/*.c")])
    kernels = sorted(project.glob("lib/horq/*.c"))
    cross = {"cortex-m": "arm-none-eabi", "linux-user": "aarch64-linux-gnu"}
    # the Cortex-A53 builds the A72's code with another -mcpu: the A72 stands for both
    targets = {name: load_target(name) for name in known_targets() if name != "cortex-a53"}
    arm = {name: ([f"{cross[t.kind]}-{'gcc' if compiler.startswith('cc') else 'g++'}", *compiler.split()[1:]],
                  [f for f in t.cflags if not f.startswith(("-O", "-std="))])
           for name, t in targets.items() if t.kind in cross}
    assert {"cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "cortex-a72"} <= set(arm)
    includes = [f"-I{project / 'lib/horq'}", f"-I{project / 'include'}"]
    jobs = []
    for level in ["-O0", "-Og", "-O1", "-O2", "-O3", "-Os"]:
        jobs += [(f"host {level} {source.name}", [*compiler.split(), level, "-Wall", "-Wextra", "-Werror",
                                                  "-ffp-contract=off", *includes, "-c", str(source)])
                 for source in sources]
        jobs += [(f"{name} {level} {kernel.name}", [*cc, level, *flags, *includes, "-c", str(kernel)])
                 for name, (cc, flags) in arm.items() for kernel in kernels]

    def compile_one(index: int) -> tuple[str, subprocess.CompletedProcess]:
        what, command = jobs[index]
        return what, subprocess.run([*command, "-o", str(tmp_path / f"o{index}.o")], capture_output=True, text=True)

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for what, build in pool.map(compile_one, range(len(jobs))):
            assert build.returncode == 0, f"{what}: {build.stderr[-600:]}"
