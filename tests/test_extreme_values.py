"""Extreme inputs: C and the reference agree bit for bit (NaN where NaN), on the host and in QEMU.

What the generated code does (README, "Extreme values"): a NaN in a quantizer
group makes its betas NaN and so every output that uses the group NaN; +-inf
makes beta infinite and the residual inf - inf = NaN, with the same effect;
max pooling propagates NaN; ReLU and Hardtanh pass NaN through. Zeros, constants,
huge and tiny (subnormal) values are ordinary floats.
"""
import numpy as np
import pytest
import torch
from torch import nn

from horq_codegen.nn import HORQConv2d, HORQLinear
from horq_codegen.pipeline import generate_project
from horq_codegen.runners import run_project
from horq_codegen.targets import load_target

from conftest import Pipeline, assert_matches_model, export_model, settle_batchnorm

SHAPE = (2, 8, 8)


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    normal = rng.standard_normal(SHAPE).astype(np.float32)
    with_nan, with_inf = normal.copy(), normal.copy()
    with_nan[1, 3, 4] = np.nan
    with_inf[0, 0, 0] = np.inf
    return {
        "zeros": np.zeros(SHAPE, np.float32), "constant": np.full(SHAPE, 0.5, np.float32),
        "negative_constant": np.full(SHAPE, -3.0, np.float32), "huge": normal * np.float32(1e30),
        "tiny": normal * np.float32(1e-30), "subnormal": normal * np.float32(1e-41),
        "nan": with_nan, "inf": with_inf, "all_nan": np.full(SHAPE, np.nan, np.float32),
    }


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.manual_seed(2)
    net = nn.Sequential(HORQConv2d(2, 6, 3, padding=1, order=2), nn.ReLU(), nn.MaxPool2d(2),
                        nn.BatchNorm2d(6), HORQConv2d(6, 5, 3, order=3, granularity="pixel"), nn.Hardtanh(),
                        nn.Flatten(), nn.BatchNorm1d(20), HORQLinear(20, 4, order=2, granularity="tensor"))
    return Pipeline(export_model(settle_batchnorm(net, SHAPE), SHAPE, tmp_path_factory.mktemp("x") / "m.pt2"))


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(((a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))).all())


@pytest.mark.parametrize("target", ["host", "cortex-m7"])
def test_extreme_inputs_agree_with_the_reference(model, tmp_path, target):
    cases = _inputs()
    x = np.stack(list(cases.values()))
    t = load_target(target)
    generated = generate_project(model.model, model.graph, t, tmp_path / "p", x)
    outputs = run_project(generated.out_dir, t, len(x), 4, sanitize=target == "host").outputs
    expected = model.reference(x)
    for i, name in enumerate(cases):
        assert _same(outputs[i], expected[i]), name
    nan_rows = [i for i, name in enumerate(cases) if name in ("nan", "inf", "all_nan")]
    assert np.isnan(outputs[nan_rows]).any(axis=1).all()  # documented: NaN and inf reach the outputs


def test_finite_extreme_inputs_agree_with_torch(model):
    cases = {k: v for k, v in _inputs().items() if k not in ("nan", "inf", "all_nan")}
    x = np.stack(list(cases.values()))
    ref = model.reference(x)
    assert np.isfinite(ref).all()
    assert_matches_model(model, x, ref)


def test_nan_inputs_give_nan_in_torch_too(model):
    x = np.stack([_inputs()["nan"], _inputs()["inf"]])
    assert np.isnan(model.torch(x)).any(axis=1).all()
