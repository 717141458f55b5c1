"""The memory plan's scratch sizes (Python) are the ones the C kernels ask for (_get_buffer_size)."""
import subprocess

import pytest

from horq_codegen.integer import Lowering
from horq_codegen.ir import Node, Op
from horq_codegen.memory import plan_memory, scratch_sizes
from horq_codegen.pipeline import load_and_lower
from horq_codegen.resources import templates_dir

from conftest import EXAMPLE_MODEL, REPO

GRANULARITIES = {"patch": 0, "pixel": 1, "tensor": 2, "static": 3}
CONVS = [(c, h, k, order, g, scratch, int8) for c in (3, 32, 40, 64) for h in (1, 5) for k in (1, 3)
         for order in (1, 2, 3) for g in GRANULARITIES for scratch in (0, 1) for int8 in (0, 1)]
FCS = [(n, order, g, int8) for n in (5, 64, 100) for order in (1, 2, 4) for g in ("patch", "tensor", "static")
       for int8 in (0, 1)]


@pytest.fixture(scope="module")
def sizes_program(tmp_path_factory):
    exe = tmp_path_factory.mktemp("sizes") / "buffer_sizes"
    kernels = templates_dir() / "kernels"
    subprocess.run(["cc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", f"-I{kernels}",
                    str(REPO / "tests/c/buffer_sizes.c"), *map(str, sorted(kernels.glob("*.c"))),
                    "-o", str(exe), "-lm"], check=True)
    return exe


def test_scratch_sizes_match_the_kernels(sizes_program):
    lines, nodes = [], []
    for c, h, k, order, g, scratch, int8 in CONVS:
        lines.append(f"conv {c} {h} {h} {k} {order} {GRANULARITIES[g]} {scratch} {int8}")
        nodes.append((Node("n", Op.HORQ_CONV2D, ("input",), (8, h, h),
                           attrs={"in_shape": (c, h, h), "kernel": (k, k), "order": order, "granularity": g}),
                      bool(scratch), bool(int8)))
    for n, order, g, int8 in FCS:
        lines.append(f"fc {n} {order} {GRANULARITIES[g]} {int8}")
        nodes.append((Node("n", Op.HORQ_LINEAR, ("input",), (8,),
                           attrs={"in_features": n, "order": order, "granularity": g}), False, bool(int8)))
    out = subprocess.run([str(sizes_program)], input="\n".join(lines) + "\n", capture_output=True, text=True,
                         check=True).stdout.split("\n")
    for line, (node, input_is_scratch, int8), got in zip(lines, nodes, out):
        assert tuple(map(int, got.split())) == scratch_sizes(node, input_is_scratch, int8), line


def test_an_order_2_float_patch_layer_keeps_its_magnitudes_in_its_dead_input():
    _, graph = load_and_lower(EXAMPLE_MODEL, lowering=Lowering("float"))
    plan = plan_memory(graph)
    horq = [n for n in graph.nodes if n.op == Op.HORQ_CONV2D]
    assert horq and all(n.name in plan.input_is_scratch for n in horq)  # each reads a BatchNorm output once
    assert all(scratch_sizes(n, True)[0] < scratch_sizes(n)[0] for n in horq if n.attrs["order"] == 2)
