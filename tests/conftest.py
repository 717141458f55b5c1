"""Shared helpers: export a torch model, run it through the pipeline, build and run the C."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import horq_codegen
from horq_codegen import importer, passes, reference
from horq_codegen.pipeline import generate_project
from horq_codegen.runners import run_project
from horq_codegen.targets import load_target
from horq_codegen.verify import compare, expected_outputs

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_MODEL = REPO / "examples" / "mnist" / "model.pt2"


def settle_batchnorm(model: torch.nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> torch.nn.Module:
    """Gives BatchNorm layers (and static betas) non-trivial statistics, then switches to eval."""
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn((8, *input_shape), generator=g))
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.5, 0.5, generator=g)
    return model.eval()


def export_model(model: torch.nn.Module, input_shape: tuple[int, ...], path: Path) -> Path:
    return horq_codegen.export(model, torch.zeros((1, *input_shape)), path)


class Pipeline:
    """One exported model taken through import, lowering, reference and C."""

    def __init__(self, path: Path):
        self.model = importer.load(path)
        self.graph = passes.lower(self.model.graph)

    def reference(self, x: np.ndarray) -> np.ndarray:
        return reference.run(self.graph, x)

    def torch(self, x: np.ndarray) -> np.ndarray:
        return self.model.run_torch(x)

    def c(self, x: np.ndarray, work: Path, *, sanitize: bool = False, trace: bool = False, flags: str = ""):
        target = load_target("host")
        generated = generate_project(self.model, self.graph, target, work / "project", x, force=True)
        flags = f"{flags} -DHORQ_TRACE" if trace else flags
        if flags:
            _add_flags(generated.out_dir, flags)
        return run_project(generated.out_dir, target, len(x), self.reference(x[:1]).shape[1], sanitize=sanitize)


def _add_flags(project: Path, flags: str) -> None:
    makefile = project / "Makefile"
    makefile.write_text(makefile.read_text().replace("EXTRA_CFLAGS =", f"EXTRA_CFLAGS = {flags}", 1))


def assert_matches_model(pipeline: "Pipeline", x: np.ndarray, c_out: np.ndarray) -> None:
    """verify's criteria: bit-exact with the reference, the maths equal to PyTorch's to float64
    rounding, float32 rounding of PyTorch's order, the same argmax."""
    comparison = compare(np.asarray(c_out, np.float32), expected_outputs(pipeline.model, pipeline.graph, x), None)
    assert comparison.passed, comparison


def assert_layers_bit_exact(graph, x: np.ndarray, traces: list[dict]) -> None:
    """Every layer's C trace (``pipeline.c(..., trace=True).traces``) equal to the reference's values,
    bit for bit and of the same type (int8 in decimal, floats and bit-plane words as bits)."""
    for sample, layer_traces in zip(x, traces):
        expected = reference.run_traced(graph, sample)
        assert set(layer_traces) == {n.name for n in graph.nodes}
        for name, values in layer_traces.items():
            want = expected[name].reshape(-1)
            assert values.dtype == want.dtype, name
            kind = np.uint8 if want.dtype == np.int8 else np.uint32
            assert np.array_equal(values.view(kind), want.view(kind)), name


def assert_bit_exact(a: np.ndarray, b: np.ndarray) -> None:
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    assert a.shape == b.shape
    assert np.array_equal(a.view(np.uint32), b.view(np.uint32)), f"max diff {np.abs(a - b).max()}"


@pytest.fixture
def pipeline_for(tmp_path):
    def make(model: torch.nn.Module, input_shape: tuple[int, ...], seed: int = 0) -> Pipeline:
        settle_batchnorm(model, input_shape, seed)
        return Pipeline(export_model(model, input_shape, tmp_path / "model.pt2"))
    return make


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    """A small exported model with every kind of layer the bundled one has (conv, BatchNorm, ReLU,
    max pool, HORQ conv and linear, a float classifier), on 1x10x10 inputs."""
    from torch import nn
    from horq_codegen.nn import HORQConv2d, HORQLinear
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.BatchNorm2d(8), HORQConv2d(8, 16, 3, padding=1), nn.Flatten(),
                          HORQLinear(16 * 4 * 4, 10, order=2), nn.Linear(10, 4))
    return export_model(settle_batchnorm(model, (1, 10, 10)), (1, 10, 10), tmp_path_factory.mktemp("small") / "small.pt2")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny exported model (float conv, BatchNorm, HORQ conv, float linear) on 1x6x6 inputs: quick to generate."""
    from torch import nn
    from horq_codegen.nn import HORQConv2d
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), HORQConv2d(4, 8, 3, padding=1), nn.Flatten(),
                        nn.Linear(8 * 4 * 4, 3)).eval()
    return export_model(net, (1, 6, 6), tmp_path_factory.mktemp("tiny") / "tiny.pt2")
