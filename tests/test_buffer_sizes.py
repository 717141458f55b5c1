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
# int8: 0 float input, 1 int8, 2 bit-planes (static only); the int8 output and the output channels vary with it.
CONVS = [(c, h, k, order, g, scratch, int8) for c in (3, 32, 40, 64) for h in (1, 5) for k in (1, 3)
         for order in (1, 2, 3) for g in GRANULARITIES for scratch in (0, 1) for int8 in (0, 1, 2)
         if int8 < 2 or g == "static"]
FCS = [(n, order, g, int8) for n in (5, 64, 100) for order in (1, 2, 4) for g in ("patch", "tensor", "static")
       for int8 in (0, 1, 2) if int8 < 2 or g == "static"]


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
        out_c, int8_output = 8 + 12 * int8, int(int8 > 0)  # integer mode: float accumulators of every channel
        lines.append(f"conv {c} {h} {h} {k} {order} {GRANULARITIES[g]} {scratch} {int(int8 > 0)} {int(int8 == 2)} "
                     f"{out_c} {int8_output}")
        nodes.append((Node("n", Op.HORQ_CONV2D, ("input",), (out_c, h, h), dtype="i8" if int8_output else "f32",
                           attrs={"in_shape": (c, h, h), "kernel": (k, k), "order": order, "granularity": g,
                                  "planes_input": int8 == 2}),
                      bool(scratch), bool(int8)))
    for n, order, g, int8 in FCS:
        lines.append(f"fc {n} {order} {GRANULARITIES[g]} {int(int8 > 0)} {int(int8 == 2)}")
        nodes.append((Node("n", Op.HORQ_LINEAR, ("input",), (8,),
                           attrs={"in_features": n, "order": order, "granularity": g, "planes_input": int8 == 2}),
                      False, bool(int8)))
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
