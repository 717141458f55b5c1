"""Whole-call cost of NEON's block kernel ``horq_xor_popcount_block4`` (8 rows x 4 positions),
in instructions per 64 binary MACs, the figure to set beside Larq Compute Engine's.

    .venv/bin/python bench/block_core.py [--shapes 64,18,1 64,36,1 128,36,1 64,18,2]

One program calls the kernel once per (rows, words, order) shape on 4 positions' patches laid
out as horq_bconv2d lays them (each plane words + 3 apart), counts the instructions executed
between marks around each call under QEMU (Cortex-A72, the project's counting plugin), subtracts
the cost of an empty mark pair, and divides by rows * 4 positions * words * order / 2: a 64-bit
word of one row against one position's plane is 64 binary MACs. The call includes its row
blocks' set-up and the stores of the int32 counts (the output transform is not in it). The
default shapes are the conv layers of bench/run.py: 3x3 over 64 channels (18-word rows) into
64 outputs, and over 128 channels (36 words) into 128, at order 1, and conv_b at order 2.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from horq_codegen.programs import build_program, run_program  # noqa: E402
from horq_codegen.targets import load_target  # noqa: E402

SHAPES = [(64, 18, 1), (64, 36, 1), (128, 36, 1), (64, 18, 2)]

PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
#include "horq_kernels.h"

static const int32_t shapes[][3] = {SHAPES};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))
static uint32_t weights[MAX_WEIGHTS], patches[MAX_PATCHES];
static int32_t mismatches[MAX_OUT];

__attribute__((noinline)) void horq_bench_mark(int id) { __asm__ volatile("" : : "r"(id) : "memory"); }

int main(void)
{
    uint32_t x = 12345u;
    for (int i = 0; i < MAX_WEIGHTS; ++i) { x = x * 1664525u + 1013904223u; weights[i] = x; }
    for (int i = 0; i < MAX_PATCHES; ++i) { x = x * 1664525u + 1013904223u; patches[i] = x; }
    horq_bench_mark(0);
    horq_bench_mark(1);
    long check = 0;
    for (int s = 0; s < NSHAPES; ++s) {
        const int32_t rows = shapes[s][0], words = shapes[s][1], order = shapes[s][2];
        const int32_t plane_stride = words + 3, position_stride = order * plane_stride;
        horq_bench_mark(2 + 2 * s);
        horq_xor_popcount_block4(weights, rows, words, patches, plane_stride, position_stride, order, mismatches,
                                 rows * order);
        horq_bench_mark(3 + 2 * s);
        for (int i = 0; i < 4 * rows * order; ++i) check += mismatches[i];
    }
    printf("%ld\n", check);
    return 0;
}
"""


def per_64_macs(shapes: list[tuple[int, int, int]], target_name: str = "cortex-a72") -> list[float]:
    target = load_target(target_name)
    table = ",".join("{%d,%d,%d}" % s for s in shapes)
    sizes = [f"-DSHAPES={table}",
             f"-DMAX_WEIGHTS={max(r * w for r, w, _ in shapes)}",
             f"-DMAX_PATCHES={max(4 * (w + 3) * k for _, w, k in shapes)}",
             f"-DMAX_OUT={max(4 * r * k for r, _, k in shapes)}"]
    with tempfile.TemporaryDirectory(prefix="horq-block-") as tmp:
        main = Path(tmp) / "main.c"
        main.write_text(PROGRAM)
        binary = build_program(target, main, ["horq_popcount.c"], Path(tmp) / "block-core", sizes)
        result = run_program(target, binary, count=True)
    marks = result.marks
    assert result.status == "ok" and marks and len(marks) == 2 + 2 * len(shapes), result.describe()
    empty = marks[1] - marks[0]
    return [(marks[3 + 2 * s] - marks[2 + 2 * s] - empty) / (r * 4 * w * k / 2) for s, (r, w, k) in enumerate(shapes)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", metavar="ROWS,WORDS,ORDER",
                        default=[",".join(map(str, s)) for s in SHAPES])
    args = parser.parse_args()
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes]
    figures = per_64_macs(shapes)
    print(f"{'rows,words,order':<18}{'instr / 64 MACs':>16}")
    for shape, figure in zip(shapes, figures):
        print(f"{'%d,%d,%d' % shape:<18}{figure:16.3f}")
    print("cortex-a72, horq_xor_popcount_block4, whole call over 4 positions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
