"""horq_binarize_rows' order-1/2 fast path (two_planes_word) on the Cortex-M DSP targets against the
numpy reference, bit for bit: its FPv5 assembly (Cortex-M7, vselge) and its FPv4 one (Cortex-M4,
conditional compares), with the values that decide its branches: +0 and -0, NaN, values exactly at
+-beta_1 and one float either side, on whole words and a partial last word. (The patch quantizer's
assembly is covered by test_every_target.py's model on the same targets.)"""
import numpy as np
import pytest

from horq_codegen.programs import build_program, run_program
from horq_codegen.reference import binarize_rows
from horq_codegen.targets import load_target

PROGRAM = r"""
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "horq_kernels.h"
#ifdef HORQ_SEMIHOSTING
extern void initialise_monitor_handles(void);
#endif
#include "cases.h"

int main(void)
{
#ifdef HORQ_SEMIHOSTING
    initialise_monitor_handles();
#endif
    static float values[ROWS * COLS];
    static uint32_t planes[2 * ROWS * WORDS];
    float betas[2];
    for (int c = 0; c < CASES; ++c) {
        memcpy(values, case_bits[c], sizeof values);
        const float *fixed = case_fixed[c] ? (const float *)(const void *)case_betas[c] : NULL;
        horq_binarize_rows(values, ROWS, COLS, 0, case_order[c], fixed, betas, planes, ROWS * WORDS);
        printf("case");
        for (int i = 0; i < case_order[c] * ROWS * WORDS; ++i) {
            printf(" %08lx", (unsigned long)planes[i]);
        }
        printf("\n");
    }
    return 0;
}
"""

ROWS = 3


def _cases(cols: int):
    rng = np.random.default_rng(cols)
    beta = np.float32(0.75)
    special = np.array([0.0, -0.0, np.nan, beta, -beta, np.nextafter(beta, np.float32(1)),
                        np.nextafter(beta, np.float32(0)), -np.nextafter(beta, np.float32(1)),
                        -np.nextafter(beta, np.float32(0)), np.float32(1e-30), -np.float32(1e-30)], np.float32)
    cases = []
    for order in (1, 2):
        x = rng.standard_normal((ROWS, cols)).astype(np.float32)
        cases.append((x, order, None))                      # betas from the values
        y = x.copy().reshape(-1)
        y[:len(special) * 3:3] = special                    # spread over the words
        cases.append((y.reshape(ROWS, cols), order, np.array([beta, 0.5], np.float32)[:order]))
    return cases


def _header(cases, cols: int) -> str:
    words = (cols + 31) // 32
    lines = [f"#define ROWS {ROWS}", f"#define COLS {cols}", f"#define WORDS {words}", f"#define CASES {len(cases)}",
             "static const uint32_t case_bits[CASES][ROWS * COLS] = {"]
    lines += ["{" + ",".join(f"0x{v:08x}u" for v in x.reshape(-1).view(np.uint32)) + "}," for x, _, _ in cases]
    lines += ["};", "static const uint32_t case_betas[CASES][2] = {"]
    for _, order, fixed in cases:
        b = np.zeros(2, np.float32) if fixed is None else np.resize(fixed, 2).astype(np.float32)
        lines.append("{" + ",".join(f"0x{v:08x}u" for v in b.view(np.uint32)) + "},")
    lines += ["};", "static const int32_t case_order[CASES] = {" + ",".join(str(o) for _, o, _ in cases) + "};",
              "static const int case_fixed[CASES] = {" + ",".join(str(int(f is not None)) for _, _, f in cases) + "};"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("target_name", ["cortex-m7", "cortex-m4"])
@pytest.mark.parametrize("cols", [64, 40])
def test_order_two_fast_path_is_bit_exact(tmp_path, target_name, cols):
    cases = _cases(cols)
    (tmp_path / "cases.h").write_text(_header(cases, cols))
    main = tmp_path / "main.c"
    main.write_text(PROGRAM)
    target = load_target(target_name)
    exe = build_program(target, main, ["horq_quantize.c"], tmp_path / "quantize_check", [f"-I{tmp_path}"])
    result = run_program(target, exe)
    assert result.status == "ok", result.describe()
    lines = [line for line in result.stdout.splitlines() if line.startswith("case")]
    assert len(lines) == len(cases)
    for (x, order, fixed), line in zip(cases, lines):
        got = np.array([int(w, 16) for w in line.split()[1:]], np.uint32)
        _, planes = binarize_rows(x[None], order, 0, fixed)
        np.testing.assert_array_equal(got, planes[0].reshape(-1))
