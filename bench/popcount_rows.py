"""Whole-call cost of ``horq_xor_popcount_rows`` on the shapes the layers use.

    .venv/bin/python bench/popcount_rows.py [--targets cortex-a72 cortex-m55 cortex-m7]

bench/inner_loop.py measures the steady-state loop with long rows; the layers
call the kernel with short rows (a 3x3 conv of 32 channels has 9-word rows), so
per-row and per-call overhead matter as much. This script builds one program per
target that calls the kernel once for each (rows, words, order) shape, with
planes contiguous (plane_stride = words) as the layers lay them out, counts the
instructions executed between marks around each call under QEMU, and divides by
rows * words * order: instructions per 32-bit word per plane, call overhead
included (the cost of two empty marks is subtracted).
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

SHAPES = [(32, 9, 2), (64, 18, 2), (16, 32, 2), (32, 9, 1)]

PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
#include "horq_kernels.h"

#ifdef HORQ_SEMIHOSTING
extern void initialise_monitor_handles(void);
#endif

static const int32_t shapes[][3] = {SHAPES};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))
static uint32_t weights[MAX_WEIGHTS], planes[MAX_PLANES];
static int32_t mismatches[MAX_OUT];

__attribute__((noinline)) void horq_bench_mark(int id) { __asm__ volatile("" : : "r"(id) : "memory"); }

int main(void)
{
#ifdef HORQ_SEMIHOSTING
    initialise_monitor_handles();
#endif
    uint32_t x = 12345u;
    for (int i = 0; i < MAX_WEIGHTS; ++i) { x = x * 1664525u + 1013904223u; weights[i] = x; }
    for (int i = 0; i < MAX_PLANES; ++i) { x = x * 1664525u + 1013904223u; planes[i] = x; }
    /* two empty marks first: the cost of a mark pair, subtracted from each call */
    horq_bench_mark(0);
    horq_bench_mark(1);
    long check = 0;
    for (int s = 0; s < NSHAPES; ++s) {
        const int32_t rows = shapes[s][0], words = shapes[s][1], order = shapes[s][2];
        horq_bench_mark(2 + 2 * s);
        horq_xor_popcount_rows(weights, rows, planes, words, order, words, mismatches);
        horq_bench_mark(3 + 2 * s);
        for (int i = 0; i < rows * order; ++i) check += mismatches[i];
    }
    printf("%ld\n", check);
    return 0;
}
"""


def per_word_per_plane(target_name: str, shapes: list[tuple[int, int, int]]) -> list[float]:
    target = load_target(target_name)
    table = ",".join("{%d,%d,%d}" % s for s in shapes)
    sizes = [f"-DSHAPES={table}",
             f"-DMAX_WEIGHTS={max(r * w for r, w, _ in shapes)}",
             f"-DMAX_PLANES={max(w * k for _, w, k in shapes)}",
             f"-DMAX_OUT={max(r * k for r, _, k in shapes)}"]
    with tempfile.TemporaryDirectory(prefix="horq-rows-") as tmp:
        main = Path(tmp) / "main.c"
        main.write_text(PROGRAM)
        binary = build_program(target, main, ["horq_popcount.c"], Path(tmp) / f"rows-{target.name}", sizes)
        result = run_program(target, binary, count=True)
    marks = result.marks
    assert result.status == "ok" and marks and len(marks) == 2 + 2 * len(shapes), result.describe()
    empty = marks[1] - marks[0]
    return [(marks[3 + 2 * s] - marks[2 + 2 * s] - empty) / (r * w * k) for s, (r, w, k) in enumerate(shapes)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", nargs="+", default=["cortex-a72", "cortex-m55", "cortex-m7"])
    parser.add_argument("--shapes", nargs="+", metavar="ROWS,WORDS,ORDER", default=[",".join(map(str, s)) for s in SHAPES],
                        help="shapes to time (default: the layers' shapes above)")
    args = parser.parse_args()
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes]
    print(f"{'(rows, words, order)':<14}" + "".join(f"{'%d,%d,%d' % s:>12}" for s in shapes))
    for name in args.targets:
        figures = per_word_per_plane(name, shapes)
        print(f"{name:<14}" + "".join(f"{f:12.2f}" for f in figures))
    print("instructions per 32-bit word per plane, whole call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
