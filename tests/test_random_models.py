"""Seeded random small models through export, codegen, host build and comparison (hypothesis).

`make test` runs a bounded number; `HORQ_LONG=1 make test-long` (or
`HYPOTHESIS_PROFILE=long`) runs many more. A failing example hypothesis finds is
kept in its database and should be added below as an @example regression case.
"""
import os

import numpy as np
import torch
from hypothesis import HealthCheck, example, given, settings, strategies as st
from torch import nn

from horq_codegen.nn import HORQConv2d, HORQLinear

from horq_codegen.pipeline import Lowering, lower_model

from conftest import Pipeline, assert_bit_exact, assert_matches_model, export_model, settle_batchnorm

settings.register_profile("ci", max_examples=6, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("long", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

GRANULARITIES = ("patch", "pixel", "tensor", "static")


@st.composite
def architectures(draw):
    """A list of layer specs: a float or HORQ conv stack, optional pooling, then linear layers."""
    channels = draw(st.integers(1, 5))
    size = draw(st.integers(5, 10))
    layers, c, h, w = [], channels, size, size
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(1, min(5, h, w)))
        pad = draw(st.integers(0, k // 2))
        stride = draw(st.integers(1, 2))
        out = draw(st.integers(1, 40))
        horq = draw(st.booleans())
        spec = {"kind": "conv", "in": c, "out": out, "k": k, "pad": pad, "stride": stride,
                "order": draw(st.integers(1, 4)) if horq else None,
                "granularity": draw(st.sampled_from(GRANULARITIES)), "bn": draw(st.booleans()),
                "act": draw(st.sampled_from(["relu", "hardtanh", None]))}
        h, w = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        layers.append(spec)
        c = out
        if min(h, w) >= 2 and draw(st.booleans()):
            k = draw(st.integers(2, min(5, h, w)))
            pool = {"kind": draw(st.sampled_from(["max", "avg"])), "k": k, "stride": draw(st.integers(1, k)),
                    "pad": draw(st.integers(0, k // 2))}
            layers.append(pool)
            h = (h + 2 * pool["pad"] - k) // pool["stride"] + 1
            w = (w + 2 * pool["pad"] - k) // pool["stride"] + 1
    features = c * h * w
    for _ in range(draw(st.integers(1, 2))):
        out = draw(st.integers(1, 40))
        horq = draw(st.booleans())
        layers.append({"kind": "linear", "in": features, "out": out,
                       "order": draw(st.integers(1, 4)) if horq else None,
                       "granularity": draw(st.sampled_from(["patch", "tensor", "static"])), "bn": draw(st.booleans())})
        features = out
    return channels, size, layers


def build(layers) -> nn.Sequential:
    modules, flat = [], False
    for spec in layers:
        if spec["kind"] == "conv":
            if spec["order"]:
                modules += [nn.BatchNorm2d(spec["in"]),
                            HORQConv2d(spec["in"], spec["out"], spec["k"], spec["stride"], spec["pad"],
                                       order=spec["order"], granularity=spec["granularity"])]
            else:
                modules.append(nn.Conv2d(spec["in"], spec["out"], spec["k"], spec["stride"], spec["pad"]))
            if spec["bn"]:
                modules.append(nn.BatchNorm2d(spec["out"]))
            modules += {"relu": [nn.ReLU()], "hardtanh": [nn.Hardtanh()], None: []}[spec["act"]]
        elif spec["kind"] in ("max", "avg"):
            pool = nn.MaxPool2d if spec["kind"] == "max" else nn.AvgPool2d
            modules.append(pool(spec["k"], spec["stride"], spec["pad"]))
        else:
            if not flat:
                modules.append(nn.Flatten())
                flat = True
            if spec["order"]:
                modules += [nn.BatchNorm1d(spec["in"]),
                            HORQLinear(spec["in"], spec["out"], order=spec["order"], granularity=spec["granularity"])]
            else:
                modules.append(nn.Linear(spec["in"], spec["out"]))
            if spec["bn"]:
                modules.append(nn.BatchNorm1d(spec["out"]))
    return nn.Sequential(*modules)


@settings()
@given(arch=architectures(), seed=st.integers(0, 2**16))
# Found by the long run: order 3 over zero padding gives beta_2 == beta_1 exactly in the
# maths, so the padded entries' R_2 is a true tie at 0 that rounding decides (and PyTorch
# rounds differently); the verification criterion must accept it as a tie.
@example(arch=(1, 5, [{"kind": "conv", "in": 1, "out": 2, "k": 2, "pad": 1, "stride": 1, "order": 3,
                       "granularity": "patch", "bn": False, "act": "relu"},
                      {"kind": "linear", "in": 72, "out": 1, "order": None, "granularity": "patch", "bn": False}]),
         seed=0)
@example(arch=(3, 7, [{"kind": "conv", "in": 3, "out": 33, "k": 3, "pad": 1, "stride": 2, "order": 2,
                       "granularity": "pixel", "bn": True, "act": "relu"},
                      {"kind": "linear", "in": 33 * 4 * 4, "out": 5, "order": 3, "granularity": "static", "bn": False}]),
         seed=1)
def test_random_model_c_matches_reference_and_torch(tmp_path_factory, arch, seed):
    channels, size, layers = arch
    torch.manual_seed(seed)
    model = settle_batchnorm(build(layers), (channels, size, size), seed)
    work = tmp_path_factory.mktemp("random")
    pipeline = Pipeline(export_model(model, (channels, size, size), work / "m.pt2"))
    x = np.random.default_rng(seed).standard_normal((4, channels, size, size)).astype(np.float32)
    result = pipeline.c(x, work)
    assert_bit_exact(result.outputs, pipeline.reference(x))
    assert_matches_model(pipeline, x, result.outputs)


@settings()
@given(arch=architectures(), seed=st.integers(0, 2**16))
@example(arch=(1, 5, [{"kind": "conv", "in": 1, "out": 2, "k": 2, "pad": 1, "stride": 1, "order": 3,
                       "granularity": "patch", "bn": False, "act": "relu"},
                      {"kind": "linear", "in": 72, "out": 1, "order": None, "granularity": "patch", "bn": False}]),
         seed=0)
def test_random_model_in_integer_mode_matches_the_integer_reference(tmp_path_factory, arch, seed):
    """Integer mode on the same random architectures, calibrated on other seeded inputs than the
    test's: C equals the integer reference bit for bit under ASan and UBSan (agreement with the
    float model is the bundled example's criterion, not a random network's)."""
    channels, size, layers = arch
    torch.manual_seed(seed)
    model = settle_batchnorm(build(layers), (channels, size, size), seed)
    work = tmp_path_factory.mktemp("random-int8")
    pipeline = Pipeline(export_model(model, (channels, size, size), work / "m.pt2"))
    calibration = np.random.default_rng(seed + 1).standard_normal((16, channels, size, size)).astype(np.float32)
    pipeline.graph = lower_model(pipeline.model, Lowering("int8", calibration))
    x = np.random.default_rng(seed).standard_normal((4, channels, size, size)).astype(np.float32) * 1.3
    result = pipeline.c(x, work, sanitize=True)
    assert_bit_exact(result.outputs, pipeline.reference(x))
