"""horq_pixel_stats + horq_patch_planes on whole-word channel counts (Cortex-M55: the Helium
assembly) against the numpy reference, bit for bit, with the values that decide its branches:
exact ties |x| == beta_1 (every interior patch of the "ties" input has beta_1 = 1 exactly),
+0 and -0, NaN and inf (a NaN beta_1 takes the generic code), border patches, stride 2 and two
words a pixel. (test_every_target.py's model covers normal values.) Not all-subnormal inputs: Helium's
vector float adds flush subnormals to zero under QEMU (before and after the assembly), so such a
patch's betas are 0 on the Cortex-M55 where the reference's are subnormal."""
import subprocess

import numpy as np
import pytest

from horq_codegen.programs import build_program, run_program
from horq_codegen.reference import binarize_patches
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
    static float values[H * W * C], magnitudes[H * W * C], sums[H * W];
    static uint32_t signs[H * W * WORDS], planes[2 * TAPS * WORDS];
    for (int c = 0; c < CASES; ++c) {
        memcpy(values, case_bits[c], sizeof values);
        const horq_window win = {{H, W, C}, {OUT_H, OUT_W, 1}, 3, 3, STRIDE, STRIDE, 1, 1};
        horq_pixel_stats(values, H * W, C, sums, signs, case_order[c] >= 2 ? magnitudes : NULL);
        for (int p = 0; p < OUT_H * OUT_W; ++p) {
            float betas[2] = {0.0f, 0.0f};
            horq_patch_planes(&win, sums, signs, magnitudes, p / OUT_W, p % OUT_W, case_order[c], betas, planes,
                              TAPS * WORDS);
            uint32_t beta_bits[2];
            memcpy(beta_bits, betas, sizeof beta_bits);
            printf("patch %08lx %08lx", (unsigned long)beta_bits[0], (unsigned long)beta_bits[1]);
            for (int i = 0; i < case_order[c] * TAPS * WORDS; ++i) {
                printf(" %08lx", (unsigned long)planes[i]);
            }
            printf("\n");
        }
    }
    return 0;
}
"""

H, W = 5, 6


def _inputs(c: int) -> list[tuple[np.ndarray, int]]:
    rng = np.random.default_rng(c)
    normal = rng.standard_normal((H, W, c)).astype(np.float32)
    # |x| in {0, 1, 2}, 1/4 zeros (half of them -0.0), 1/2 ones, 1/4 twos: every pixel's mean is 1,
    # so an interior patch's beta_1 is exactly 1 and half its values are ties.
    magnitude = np.tile(np.repeat(np.array([0, 1, 1, 2], np.float32), c // 4), (H, W, 1))
    ties = (rng.permuted(magnitude, axis=-1) * rng.choice(np.float32([-1, 1]), (H, W, c))).astype(np.float32)
    special = normal.copy()
    special[0, 0, 3] = np.nan
    special[4, 5, 7] = np.inf
    special[2, 2, :8] = 0.0
    special[2, 3, 8:16] = -0.0
    return [(normal, 2), (normal, 1), (ties, 2), (special, 2)]


def _header(cases, c: int, stride: int) -> str:
    out_h, out_w = (H - 1) // stride + 1, (W - 1) // stride + 1
    lines = [f"#define H {H}", f"#define W {W}", f"#define C {c}", f"#define WORDS {c // 32}", "#define TAPS 9",
             f"#define STRIDE {stride}", f"#define OUT_H {out_h}", f"#define OUT_W {out_w}",
             f"#define CASES {len(cases)}", "static const uint32_t case_bits[CASES][H * W * C] = {"]
    lines += ["{" + ",".join(f"0x{v:08x}u" for v in x.reshape(-1).view(np.uint32)) + "}," for x, _ in cases]
    lines += ["};", "static const int32_t case_order[CASES] = {" + ",".join(str(o) for _, o in cases) + "};"]
    return "\n".join(lines) + "\n"


def _patches(x: np.ndarray, stride: int) -> np.ndarray:
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(0, 1))[::stride, ::stride]
    return windows.transpose(0, 1, 3, 4, 2).reshape(-1, 9, x.shape[-1])


@pytest.mark.parametrize("target_name", ["host", "cortex-m55"])
@pytest.mark.parametrize("c,stride", [(32, 1), (64, 2)])
def test_patch_planes_are_bit_exact(tmp_path, target_name, c, stride):
    cases = _inputs(c)
    (tmp_path / "cases.h").write_text(_header(cases, c, stride))
    main = tmp_path / "main.c"
    main.write_text(PROGRAM)
    target = load_target(target_name)
    exe = build_program(target, main, ["horq_quantize.c"], tmp_path / "patch_check", [f"-I{tmp_path}"])
    if target.kind == "host":
        stdout = subprocess.run([str(exe)], check=True, capture_output=True, text=True, timeout=60).stdout
    else:
        result = run_program(target, exe)
        assert result.status == "ok", result.describe()
        stdout = result.stdout
    lines = iter(line.split()[1:] for line in stdout.splitlines() if line.startswith("patch"))
    for index, (x, order) in enumerate(cases):
        with np.errstate(invalid="ignore"):  # the inf case: inf - inf in the reference, NaN as in C
            betas, planes = binarize_patches(_patches(x, stride), order)
        for p in range(len(betas)):
            got = np.array([int(v, 16) for v in next(lines)], np.uint32)
            assert _same_floats(got[:order].view(np.float32), betas[p]), (index, p)
            np.testing.assert_array_equal(got[2:], planes[p].reshape(-1), err_msg=f"case {index}, patch {p}")
    assert next(lines, None) is None


def _same_floats(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(((a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))).all())
