"""Seeded random small DAG models (residual sums, concatenations, PReLU, shifts, global pooling)
through export, codegen, host build and comparison (hypothesis).

The DAG counterpart of test_random_models.py: a float stem conv (or none: the first block reads the
input), 1-4 blocks drawn from a residual block (optional shift, per-channel scaling or scalar affine
-> float or HORQ conv -> optional BatchNorm -> + the block input or a downsampling shortcut -> optional
PReLU/ReLU/Hardtanh/ReLU6), a channel concatenation of 2-3 branches of one input, a sum of two
different convs of one input, or a plain conv or pool; then a head (global average pooling or
flattening, a float or HORQ linear, optionally an activation and a second linear) or none (the output
is a feature map). The model is a nested ``nn.Module`` (module paths like ``blocks.1.conv``).

`make test` runs a bounded number (the "ci" profile: 5 derandomized examples per test, and COVERAGE);
`HYPOTHESIS_PROFILE=long` runs many more (300; `HORQ_DAG_EXAMPLES=N` sets that number). The
profiles are this file's own ("dag-ci", "dag-long"), applied per test, so that loading them does not
change test_random_models.py's. A failing example hypothesis finds should
be added below as an @example regression case.
"""
import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, example, given, settings, strategies as st
from torch import nn

from horq_codegen import reference
from horq_codegen.errors import HorqError
from horq_codegen.importer import load
from horq_codegen.nn import HORQConv2d, HORQLinear
from horq_codegen.pipeline import Lowering, lower_model

from conftest import Pipeline, assert_bit_exact, assert_matches_model, export_model, settle_batchnorm

_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile("dag-ci", max_examples=4, deadline=None, derandomize=True, suppress_health_check=_HEALTH)
settings.register_profile("dag-long", max_examples=int(os.environ.get("HORQ_DAG_EXAMPLES", 300)), deadline=None,
                          suppress_health_check=_HEALTH)
PROFILE = "dag-long" if os.environ.get("HYPOTHESIS_PROFILE") == "long" else "dag-ci"

GRANULARITIES = ("patch", "pixel", "tensor", "static")
LINEAR_GRANULARITIES = ("patch", "tensor", "static")
#: Before a residual block's conv: a learnt per-channel shift (ReActNet), a per-channel scaling, scalar ones.
SHIFTS = (None, "add", "mul", "scalar")
BLOCK_ACTS = ("prelu", "prelu1", "relu", "hardtanh", "relu6", None)
MAX_CHANNELS = 24
WIDE = (32, 33)


# -- the strategy -------------------------------------------------------------------------------

@st.composite
def quantization(draw, granularities=GRANULARITIES) -> dict:
    """A float layer (order None) or a HORQ one of order 1..4 and any granularity."""
    horq = draw(st.booleans())
    return {"order": draw(st.integers(1, 4)) if horq else None,
            "granularity": draw(st.sampled_from(granularities))}


@st.composite
def same_convs(draw, c_in: int, out: int, stride: int = 1) -> dict:
    """A conv whose padding keeps the size at stride 1 (k odd, pad k // 2)."""
    k = draw(st.sampled_from((1, 3, 5)))
    return {"in": c_in, "out": out, "k": k, "pad": k // 2, "stride": stride, **draw(quantization())}


def _out_size(h: int, k: int, stride: int, pad: int) -> int:
    return (h + 2 * pad - k) // stride + 1


@st.composite
def residual_blocks(draw, c: int, h: int) -> tuple[dict, int, int]:
    stride = draw(st.sampled_from((1, 2))) if h >= 2 else 1
    out = c if draw(st.booleans()) else draw(st.integers(1, MAX_CHANNELS))
    conv = draw(same_convs(c, out, stride))
    if stride == 1 and out == c:
        shortcut = {"kind": "identity"}
    elif stride == 1:
        shortcut = {"kind": "conv"}
    else:  # a strided 1x1 conv, or an average pooling (then a 1x1 conv if the channels change)
        shortcut = draw(st.sampled_from([{"kind": "conv"}, {"kind": "pool", "k": 1}, {"kind": "pool", "k": 3}]))
    block = {"kind": "residual", "in": c, "out": out, "stride": stride, "shift": draw(st.sampled_from(SHIFTS)),
             "conv": conv, "bn": draw(st.booleans()), "shortcut": shortcut, "act": draw(st.sampled_from(BLOCK_ACTS))}
    return block, out, _out_size(h, 1, stride, 0)


@st.composite
def concat_blocks(draw, c: int, h: int) -> tuple[dict, int, int]:
    kinds = draw(st.lists(st.sampled_from(["conv", "identity", "maxpool", "avgpool", "relu6"]), min_size=2, max_size=3))
    fixed = c * sum(k != "conv" for k in kinds)
    if fixed + kinds.count("conv") > MAX_CHANNELS:  # too wide: every branch a conv
        kinds, fixed = ["conv"] * len(kinds), 0
    budget = max(1, (MAX_CHANNELS - fixed) // max(1, kinds.count("conv")))
    branches = []
    for kind in kinds:
        if kind == "conv":
            branches.append({"kind": "conv", **draw(same_convs(c, draw(st.integers(1, min(12, budget))))),
                             "bn": draw(st.booleans()), "act": draw(st.sampled_from(BLOCK_ACTS))})
        else:
            branches.append({"kind": kind})
    out = sum(b["out"] if b["kind"] == "conv" else c for b in branches)
    return {"kind": "concat", "in": c, "branches": branches, "dim": 1}, out, h


@st.composite
def add_blocks(draw, c: int, h: int) -> tuple[dict, int, int]:
    stride = draw(st.sampled_from((1, 2))) if h >= 2 else 1
    out = draw(st.integers(1, MAX_CHANNELS))
    a, b = ({**draw(same_convs(c, out, stride)), "bn": draw(st.booleans())} for _ in range(2))
    block = {"kind": "add", "in": c, "a": a, "b": b, "act": draw(st.sampled_from(BLOCK_ACTS))}
    return block, out, _out_size(h, 1, stride, 0)


@st.composite
def plain_blocks(draw, c: int, h: int) -> tuple[dict, int, int]:
    if h >= 2 and draw(st.booleans()):
        k = draw(st.integers(2, min(3, h)))
        pool = {"kind": draw(st.sampled_from(["maxpool", "avgpool"])), "k": k, "stride": draw(st.integers(1, k)),
                "pad": draw(st.integers(0, k // 2))}
        return {"kind": "plain", "layer": pool}, c, _out_size(h, k, pool["stride"], pool["pad"])
    k = draw(st.integers(1, min(5, h)))
    pad, stride = draw(st.integers(0, k // 2)), draw(st.integers(1, 2))
    # Now and then wider, at a word boundary: HORQ layers then pack 2 words a pixel, and a static
    # HORQ linear can read the bit-planes of a conv of 32 channels (integer.write_static_planes).
    out = draw(st.sampled_from(WIDE)) if draw(st.integers(0, 5)) == 0 else draw(st.integers(1, MAX_CHANNELS))
    conv = {"kind": "conv", "in": c, "out": out, "k": k, "pad": pad, "stride": stride, **draw(quantization()),
            "bn": draw(st.booleans()), "act": draw(st.sampled_from(BLOCK_ACTS))}
    return {"kind": "plain", "layer": conv}, out, _out_size(h, k, stride, pad)


BLOCKS = {"residual": residual_blocks, "concat": concat_blocks, "add": add_blocks, "plain": plain_blocks}


@st.composite
def linears(draw, features: int) -> dict:
    return {"in": features, "out": draw(st.integers(1, 16)), **draw(quantization(LINEAR_GRANULARITIES))}


@st.composite
def dags(draw) -> tuple[int, int, dict]:
    """(input channels, input size, spec): stem, blocks and head, each block with its own shapes."""
    channels, size = draw(st.integers(1, 4)), draw(st.integers(5, 9))
    c, h, stem = channels, size, None
    if draw(st.booleans()):  # else the first block reads the model input
        stem_k = draw(st.sampled_from((1, 3)))
        c = draw(st.integers(2, 12))
        stem = {"in": channels, "out": c, "k": stem_k, "pad": stem_k // 2, "stride": 1, "order": None,
                "granularity": "patch", "bn": draw(st.booleans()), "act": draw(st.sampled_from(("relu", None)))}
    blocks = []
    for _ in range(draw(st.integers(1, 4))):
        block, c, h = draw(BLOCKS[draw(st.sampled_from(sorted(BLOCKS)))](c, h))
        blocks.append(block)
    pool = draw(st.sampled_from(["adaptive", "mean", "mean_keepdim", "flatten", None]))
    if pool is None:  # no head: the model's output is the last block's feature map
        return channels, size, {"stem": stem, "blocks": blocks, "head": None}
    features = c * h * h if pool == "flatten" else c
    first = draw(linears(features))
    tail = None
    if draw(st.booleans()):
        tail = {"act": draw(st.sampled_from(("prelu", "prelu1", "relu", None))), "linear": draw(linears(first["out"]))}
    return channels, size, {"stem": stem, "blocks": blocks, "head": {"pool": pool, "linear": first, "tail": tail}}


# -- the model ----------------------------------------------------------------------------------

def _conv(spec: dict) -> nn.Module:
    if spec["order"]:
        return HORQConv2d(spec["in"], spec["out"], spec["k"], spec["stride"], spec["pad"],
                          order=spec["order"], granularity=spec["granularity"])
    return nn.Conv2d(spec["in"], spec["out"], spec["k"], spec["stride"], spec["pad"])


def _linear(spec: dict) -> nn.Module:
    if spec["order"]:
        return HORQLinear(spec["in"], spec["out"], order=spec["order"], granularity=spec["granularity"])
    return nn.Linear(spec["in"], spec["out"])


def _act(kind, channels: int) -> nn.Module:
    if kind in ("prelu", "prelu1"):
        act = nn.PReLU(channels if kind == "prelu" else 1)
        with torch.no_grad():
            act.weight.uniform_(-0.5, 0.5)
        return act
    return {"relu": nn.ReLU, "hardtanh": nn.Hardtanh, "relu6": nn.ReLU6, None: nn.Identity}[kind]()


def _bn(on: bool, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if on else nn.Identity()


class Unit(nn.Module):
    """conv -> optional BatchNorm -> activation."""

    def __init__(self, spec: dict):
        super().__init__()
        self.conv, self.bn, self.act = _conv(spec), _bn(spec["bn"], spec["out"]), _act(spec.get("act"), spec["out"])

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Residual(nn.Module):
    def __init__(self, spec: dict):
        super().__init__()
        c, out, stride = spec["in"], spec["out"], spec["stride"]
        self.shift_kind = spec["shift"]
        self.shift = nn.Parameter(torch.randn(1, c, 1, 1) * 0.3 + (spec["shift"] == "mul")) \
            if spec["shift"] in ("add", "mul") else None
        self.conv, self.bn = _conv(spec["conv"]), _bn(spec["bn"], out)
        shortcut = spec["shortcut"]
        if shortcut["kind"] == "identity":
            self.shortcut = nn.Identity()
        elif shortcut["kind"] == "conv":
            self.shortcut = nn.Conv2d(c, out, 1, stride)
        else:
            k = shortcut["k"]
            pool = [nn.AvgPool2d(k, stride, k // 2)]
            self.shortcut = nn.Sequential(*pool, *([nn.Conv2d(c, out, 1)] if out != c else []))
        self.act = _act(spec["act"], out)

    def forward(self, x):
        y = {"add": lambda: x + self.shift, "mul": lambda: x * self.shift, "scalar": lambda: 0.25 - x * 0.75,
             None: lambda: x}[self.shift_kind]()
        return self.act(self.bn(self.conv(y)) + self.shortcut(x))


class Concat(nn.Module):
    def __init__(self, spec: dict):
        super().__init__()
        self.dim = spec["dim"]
        self.branches = nn.ModuleList(
            Unit(b) if b["kind"] == "conv" else
            {"identity": lambda: nn.Identity(), "relu6": lambda: nn.ReLU6(),
             "maxpool": lambda: nn.MaxPool2d(3, 1, 1), "avgpool": lambda: nn.AvgPool2d(3, 1, 1),
             "maxpool_ceil": lambda: nn.MaxPool2d(3, 1, 1, ceil_mode=True)}[b["kind"]]()
            for b in spec["branches"])

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], self.dim)


class Add(nn.Module):
    def __init__(self, spec: dict):
        super().__init__()
        self.a, self.b = Unit(spec["a"]), Unit(spec["b"])
        self.act = _act(spec["act"], spec["a"]["out"])

    def forward(self, x):
        return self.act(self.a(x) + self.b(x))


class Plain(nn.Module):
    def __init__(self, spec: dict):
        super().__init__()
        layer = spec["layer"]
        if layer["kind"] == "conv":
            self.layer = Unit(layer)
        else:
            pool = nn.MaxPool2d if layer["kind"] == "maxpool" else nn.AvgPool2d
            self.layer = pool(layer["k"], layer["stride"], layer["pad"])

    def forward(self, x):
        return self.layer(x)


class Head(nn.Module):
    def __init__(self, spec: dict):
        super().__init__()
        self.pool = spec["pool"]
        self.flatten = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()) if self.pool == "adaptive" else nn.Flatten()
        self.fc = _linear(spec["linear"])
        tail = spec["tail"]
        self.act = _act(tail["act"], spec["linear"]["out"]) if tail else nn.Identity()
        self.out = _linear(tail["linear"]) if tail else nn.Identity()

    def forward(self, x):
        if self.pool == "mean":
            x = x.mean((2, 3))
        elif self.pool == "mean_keepdim":
            x = x.mean((2, 3), keepdim=True).flatten(1)
        else:
            x = self.flatten(x)
        return self.out(self.act(self.fc(x)))


class Dag(nn.Module):
    def __init__(self, spec: dict):
        super().__init__()
        self.stem = Unit(spec["stem"]) if spec["stem"] else nn.Identity()
        self.blocks = nn.ModuleList({"residual": Residual, "concat": Concat, "add": Add, "plain": Plain}[b["kind"]](b)
                                    for b in spec["blocks"])
        self.head = Head(spec["head"]) if spec["head"] else nn.Identity()

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def build(spec: dict) -> Dag:
    return Dag(spec)


def _events(spec: dict) -> None:
    """What an example drew, for --hypothesis-show-statistics."""
    for b in spec["blocks"]:
        event(f"block {b['kind']}" + (f" ({b['shortcut']['kind']} shortcut)" if b["kind"] == "residual" else ""))
        convs = [b["conv"]] if b["kind"] == "residual" else [b["a"], b["b"]] if b["kind"] == "add" else \
            [x for x in b.get("branches", [b.get("layer")]) if x and "order" in x]
        for conv in convs:
            event(f"conv order {conv['order']} {conv['granularity'] if conv['order'] else ''}".rstrip())
    if any(b["kind"] == "plain" and b["layer"].get("out", 0) in WIDE for b in spec["blocks"]):
        event("a wide plain conv")
    head = spec["head"]
    event("no stem" if spec["stem"] is None else "stem")
    event("no head" if head is None else f"head {head['pool']}" + (" + tail" if head["tail"] else ""))


def _model(channels: int, size: int, spec: dict, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return settle_batchnorm(build(spec), (channels, size, size), seed)


# -- the tests ----------------------------------------------------------------------------------

def _conv_spec(c_in: int, out: int, k: int, stride: int = 1, order=None, granularity: str = "patch", **rest) -> dict:
    return {"in": c_in, "out": out, "k": k, "pad": k // 2, "stride": stride, "order": order,
            "granularity": granularity, **rest}


#: Always run, whatever the draws: a strided Bi-Real block that widens (shift -> static HORQ conv of
#: order 3 -> BatchNorm -> + average pooling and a 1x1 conv -> PReLU), a concatenation of three
#: branches, and a static HORQ conv of 32 channels whose bit-planes a static HORQ linear reads in
#: integer mode.
COVERAGE = (2, 6, {
    "stem": _conv_spec(2, 4, 3, bn=True, act="relu"),
    "blocks": [
        {"kind": "residual", "in": 4, "out": 6, "stride": 2, "shift": "add", "bn": True, "act": "prelu",
         "conv": _conv_spec(4, 6, 3, 2, 3, "static"), "shortcut": {"kind": "pool", "k": 3}},
        {"kind": "concat", "in": 6, "dim": 1, "branches": [
            {"kind": "identity"}, {"kind": "conv", **_conv_spec(6, 5, 1, 1, 2, "pixel", bn=True, act="relu6")},
            {"kind": "maxpool"}]},
        {"kind": "plain", "layer": {"kind": "conv", **_conv_spec(17, 32, 3, 1, 4, "static", bn=False, act="relu")}},
    ],
    "head": {"pool": "flatten", "linear": {"in": 32 * 9, "out": 5, "order": 2, "granularity": "static"},
             "tail": {"act": "prelu1", "linear": {"in": 5, "out": 3, "order": None, "granularity": "patch"}}}})


def assert_every_layer_bit_exact(pipeline: Pipeline, x: np.ndarray, traces) -> None:
    """Each node's C output (``-DHORQ_TRACE``) equals the reference's bit for bit; the first that
    differs is named, so that a failure points at its op rather than at the model's output."""
    for i, (sample, trace) in enumerate(zip(x, traces)):
        expected = reference.run_traced(pipeline.graph, sample)
        for node in pipeline.graph.nodes:
            want = expected[node.name].reshape(-1)
            kind = np.uint8 if want.dtype == np.int8 else np.uint32
            got = trace.get(node.name)
            assert got is not None and np.array_equal(got.view(kind), want.view(kind)), \
                f"sample {i}: {node.name} ({node.op.value}, {node.source}) reading {node.inputs} differs first"


@settings(settings.get_profile(PROFILE))
@given(dag=dags(), seed=st.integers(0, 2**16))
@example(dag=COVERAGE, seed=3)
def test_random_dag_c_matches_reference_and_torch(tmp_path_factory, dag, seed):
    channels, size, spec = dag
    _events(spec)
    model = _model(channels, size, spec, seed)
    work = tmp_path_factory.mktemp("random-dag")
    pipeline = Pipeline(export_model(model, (channels, size, size), work / "m.pt2"))
    x = np.random.default_rng(seed).standard_normal((4, channels, size, size)).astype(np.float32)
    result = pipeline.c(x, work, trace=True)
    assert_every_layer_bit_exact(pipeline, x, result.traces)
    assert_bit_exact(result.outputs, pipeline.reference(x))
    assert_matches_model(pipeline, x, result.outputs)


@settings(settings.get_profile(PROFILE))
@given(dag=dags(), seed=st.integers(0, 2**16))
@example(dag=COVERAGE, seed=3)
def test_random_dag_in_integer_mode_matches_the_integer_reference(tmp_path_factory, dag, seed):
    """Integer mode, calibrated on other seeded inputs than the test's: C equals the integer
    reference bit for bit, every layer, under ASan and UBSan."""
    channels, size, spec = dag
    _events(spec)
    model = _model(channels, size, spec, seed)
    work = tmp_path_factory.mktemp("random-dag-int8")
    pipeline = Pipeline(export_model(model, (channels, size, size), work / "m.pt2"))
    calibration = np.random.default_rng(seed + 1).standard_normal((16, channels, size, size)).astype(np.float32)
    pipeline.graph = lower_model(pipeline.model, Lowering("int8", calibration))
    x = np.random.default_rng(seed).standard_normal((4, channels, size, size)).astype(np.float32) * 1.3
    result = pipeline.c(x, work, sanitize=True, trace=True)
    assert_every_layer_bit_exact(pipeline, x, result.traces)
    assert_bit_exact(result.outputs, pipeline.reference(x))


def _stem(channels: int) -> dict:
    return {"in": 2, "out": channels, "k": 3, "pad": 1, "stride": 1, "order": None, "granularity": "patch",
            "bn": False, "act": None}


def _head(features: int) -> dict:
    return {"pool": "mean", "tail": None,
            "linear": {"in": features, "out": 3, "order": None, "granularity": "patch"}}


_IDENTITY_RESIDUAL = {"kind": "residual", "in": 4, "out": 4, "stride": 1, "shift": "add", "bn": True,
                      "conv": {"in": 4, "out": 4, "k": 3, "pad": 1, "stride": 1, "order": 2, "granularity": "patch"},
                      "shortcut": {"kind": "identity"}, "act": "prelu"}


@pytest.mark.parametrize("blocks,features,where,message", [
    ([{"kind": "concat", "in": 4, "branches": [{"kind": "identity"}, {"kind": "relu6"}], "dim": 2}], 4,
     "blocks.0 (Concat)", "concatenation along dim 2"),
    ([_IDENTITY_RESIDUAL,
      {"kind": "concat", "in": 4, "branches": [{"kind": "identity"}, {"kind": "maxpool_ceil"}], "dim": 1}], 8,
     "blocks.1.branches.1 (MaxPool2d)", "ceil_mode=True"),
])
def test_a_refused_op_in_a_nested_block_is_named_by_its_module_path(blocks, features, where, message, tmp_path):
    spec = {"stem": _stem(4), "blocks": blocks, "head": _head(features)}
    torch.manual_seed(0)
    path = export_model(build(spec).eval(), (2, 6, 6), tmp_path / "m.pt2")
    with pytest.raises(HorqError) as info:
        load(path)
    assert message in str(info.value) and where in str(info.value), str(info.value)
