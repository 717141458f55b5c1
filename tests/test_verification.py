"""verify's criteria catch what they must: shared errors, false sign ties, shared precision loss.

A "shared" error is one that the kernels and the reference make alike, so that bit-exactness
holds; only the comparison with PyTorch can show it.
"""
from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from conftest import EXAMPLE_MODEL, Pipeline
from horq_codegen import data, error_bound, reference
from horq_codegen.ir import Activation, Graph, Node, Op
from horq_codegen.pack import pack_signs
from horq_codegen.samples import Samples
from horq_codegen.targets import load_target
from horq_codegen.verify import Expected, compare, expected_outputs, verify_graph


def _old_criterion_passes(c_out: np.ndarray, torch_out: np.ndarray) -> bool:
    """The tolerance verify used before: max |c - t| <= 1e-3 (1 + max |t|) per sample."""
    return bool((np.abs(c_out - torch_out).max(axis=1) <= 1e-3 * (1 + np.abs(torch_out).max(axis=1))).all())


def _shift_last_offset(graph: Graph, delta: float) -> Graph:
    """The graph with the last layer's offset moved by ``delta``: in C, and in both reference runs."""
    last = graph.nodes[-1]
    params = {**last.params, "offset": (last.params["offset"] + np.float32(delta)).astype(np.float32),
              "exact_offset": last.params["exact_offset"] + delta}
    return graph.replace(nodes=graph.nodes[:-1] + (last.replace(params=params),))


def _verify(pipeline: Pipeline, graph: Graph, x: np.ndarray, work):
    return verify_graph(pipeline.model, graph, load_target("host"), Samples(x, None, "test inputs"), work).comparison


def test_shared_error_of_1e_4_fails_a_float_model(pipeline_for, tmp_path):
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AvgPool2d(3, 2, 1),
                          nn.Flatten(), nn.Linear(6 * 4 * 4, 5))
    pipeline = pipeline_for(model, (2, 8, 8))
    x = np.random.default_rng(3).standard_normal((12, 2, 8, 8)).astype(np.float32)
    assert _verify(pipeline, pipeline.graph, x, tmp_path / "honest").passed
    broken = _verify(pipeline, _shift_last_offset(pipeline.graph, 1e-4), x, tmp_path / "broken")
    assert broken.bit_exact and broken.maths_agree == 0 and not broken.passed
    c_out = reference.run(_shift_last_offset(pipeline.graph, 1e-4), x)
    assert _old_criterion_passes(c_out, pipeline.torch(x))  # what the old tolerance let through


def test_shared_error_of_0_002_on_a_logit_fails_the_example(tmp_path):
    pipeline = Pipeline(EXAMPLE_MODEL)
    x = data.load("mnist-subset", "test")[0][:40]
    broken = _shift_last_offset(pipeline.graph, 0.002)
    comparison = _verify(pipeline, broken, x, tmp_path)
    assert comparison.bit_exact and comparison.maths_agree == 0 and not comparison.passed
    assert _old_criterion_passes(reference.run(broken, x), pipeline.torch(x))


def _tie_graph() -> Graph:
    """Lowered by hand: y = x / 3 - 0.25 (an unfolded BatchNorm), then an order-2 HORQ linear layer.
    For x = 0.75 the first value is 0 in exact arithmetic and a rounding residue in float64."""
    n = 8
    third = np.full(n, 1 / 3)
    affine = Node("l0_affine", Op.AFFINE, ("input",), (n,), params={
        "scale": third.astype(np.float32), "offset": np.full(n, -0.25, np.float32),
        "exact_scale": third, "exact_offset": np.full(n, -0.25), "offset_terms": np.full(n, 0.25)})
    weights = np.where(np.arange(3 * n).reshape(3, n) % 3 == 0, -1.0, 1.0)
    horq = Node("l1_horq_linear", Op.HORQ_LINEAR, ("l0_affine",), (3,),
                attrs={"in_features": n, "order": 2, "granularity": "patch"},
                params={"weight_bits": pack_signs(weights), "scale": np.full(3, 0.5, np.float32),
                        "offset": np.zeros(3, np.float32), "exact_scale": np.full(3, 0.5), "exact_offset": np.zeros(3),
                        "offset_terms": np.zeros(3)}, activation=Activation())
    return Graph((n,), (affine, horq), "l1_horq_linear", layout="hwc")


TIE = np.array([0.75, 1.5, -2.0, 3.0, -1.0, 2.5, -3.5, 1.75], np.float32)
NO_TIE = np.array([1.5, 1.5, -2.0, 3.0, -1.0, 2.5, -3.5, 1.75], np.float32)


def _bound(graph: Graph, x: np.ndarray) -> error_bound.SampleBound:
    return error_bound.sample_bound(graph, reference.run_traced(graph, x, np.float64), error_bound.FLOAT64_U)


def test_the_bound_finds_a_hand_built_tie_and_no_other():
    graph = _tie_graph()
    tie, clear = _bound(graph, TIE), _bound(graph, NO_TIE)
    assert tie.ties >= 1 and clear.ties == 0
    beta1 = np.abs(reference.run_traced(graph, TIE, np.float64)["l0_affine"]).mean()
    assert tie.output.min() >= 2 * 0.5 * beta1          # the flip it could be: 2 * scale * beta_1
    assert clear.output.max() < 1e-13


def _expected(graph: Graph, x: np.ndarray, torch_delta: float) -> Expected:
    values = reference.run_traced(graph, x, np.float64)
    bound = error_bound.sample_bound(graph, values, error_bound.FLOAT64_U)
    ref64 = values[graph.output].reshape(1, -1)
    ref32 = reference.run(graph, x[None])
    return Expected(ref32, ref64, error_bound.SAFETY * bound.output[None], np.array([bound.ties]),
                    ref32 + np.float32(torch_delta), ref64 + torch_delta)


@pytest.mark.parametrize("sample,passes", [(TIE, True), (NO_TIE, False)])
def test_a_difference_the_size_of_a_flip_passes_only_at_a_tie(sample, passes):
    """If the tie test excused every sample, the second case would pass; if none, the first would fail."""
    graph = _tie_graph()
    beta1 = float(np.abs(reference.run_traced(graph, sample, np.float64)["l0_affine"]).mean())
    expected = _expected(graph, sample, 0.9 * 2 * 0.5 * beta1)
    comparison = compare(expected.reference.copy(), expected, None)
    assert comparison.bit_exact and comparison.passed == passes, comparison


def test_a_precision_loss_shared_by_c_and_the_reference_fails(monkeypatch):
    pipeline = Pipeline(EXAMPLE_MODEL)
    x = data.load("mnist-subset", "test")[0][:20]
    real_sum = reference.sequential_sum

    def half_precision(terms):  # as if both summed into a float16 accumulator
        total = real_sum(terms)
        return total.astype(np.float16).astype(np.float32) if total.dtype == np.float32 else total
    monkeypatch.setattr(reference, "sequential_sum", half_precision)
    expected = expected_outputs(pipeline.model, pipeline.graph, x)
    comparison = compare(expected.reference.copy(), expected, None)
    assert comparison.bit_exact and comparison.maths_agree == len(x) and not comparison.rounding_ok
    assert not comparison.passed


def test_rounding_bound_formula():
    """A dot product of n terms in two orders: within 2 gamma(n) sum |terms| (both sides' rounding)."""
    rng = np.random.default_rng(0)
    for n in (9, 288, 4096):
        w, x = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
        forward = np.float32(0)
        for term in (w * x):
            forward = np.float32(forward + term)
        pairwise = np.sum(w * x, dtype=np.float32)
        exact = float(np.dot(w.astype(np.float64), x.astype(np.float64)))
        bound = 2 * error_bound.gamma(n) * float(np.abs(w.astype(np.float64) * x).sum())
        assert abs(float(forward) - float(pairwise)) <= bound and abs(float(forward) - exact) <= bound / 2
