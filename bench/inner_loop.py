"""The inner loop's steady-state cost: instructions per 32-bit word per plane.

    .venv/bin/python bench/inner_loop.py [--targets cortex-m7 cortex-m55 cortex-a72]

Builds a small program around ``horq_xor_popcount_rows`` (rows of 30 words,
two planes) for 32 and 64 rows, counts executed instructions between two marks
under QEMU, and divides the difference by the 32 * 30 * 2 extra word-planes, so
the costs paid once per call (set-up, staging the planes) cancel out and the
row loop's own cost stays in.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from horq_codegen.programs import build_program, run_program  # noqa: E402
from horq_codegen.targets import Target, load_target  # noqa: E402

PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
#include "horq_kernels.h"

#ifdef HORQ_SEMIHOSTING
extern void initialise_monitor_handles(void);
#endif

static uint32_t weights[ROWS * WORDS], planes[2 * WORDS];
static int32_t mismatches[2 * ROWS];

__attribute__((noinline)) void horq_bench_mark(int id) { __asm__ volatile("" : : "r"(id) : "memory"); }

int main(void)
{
#ifdef HORQ_SEMIHOSTING
    initialise_monitor_handles();
#endif
    uint32_t x = 12345u;
    for (int i = 0; i < ROWS * WORDS; ++i) { x = x * 1664525u + 1013904223u; weights[i] = x; }
    for (int i = 0; i < 2 * WORDS; ++i) { x = x * 1664525u + 1013904223u; planes[i] = x; }
    horq_prepare_weight_rows(weights, ROWS, WORDS); /* the layout the kernel reads */
    horq_bench_mark(0);
    horq_xor_popcount_rows(weights, ROWS, planes, WORDS, 2, WORDS, mismatches);
    horq_bench_mark(1);
    printf("%ld %ld\n", (long)mismatches[0], (long)mismatches[1]);
    return 0;
}
"""


WORDS = 30


def _count(target: Target, rows: int, work: Path) -> int:
    main = work / "main.c"
    main.write_text(PROGRAM)
    binary = build_program(target, main, ["horq_popcount.c"], work / f"inner-{target.name}-{rows}",
                           [f"-DWORDS={WORDS}", f"-DROWS={rows}"])
    result = run_program(target, binary, count=True)
    assert result.status == "ok" and result.marks and len(result.marks) == 2, result.describe()
    return result.marks[1] - result.marks[0]


def per_word_per_plane(target_name: str) -> float:
    target = load_target(target_name)
    with tempfile.TemporaryDirectory(prefix="horq-inner-") as tmp:
        short, long = (_count(target, rows, Path(tmp)) for rows in (32, 64))
    return (long - short) / (32 * WORDS * 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", nargs="+", default=["cortex-m7", "cortex-m4", "cortex-m55", "cortex-a72"])
    args = parser.parse_args()
    for name in args.targets:
        print(f"{name:<12} {per_word_per_plane(name):6.2f} instructions per 32-bit word per plane")
    return 0


if __name__ == "__main__":
    sys.exit(main())
