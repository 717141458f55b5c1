"""The integer quantizers (horq_quantize_i8.c) against their definition on every instruction-set path.

tests/c/quantize_i8_check.c compares horq_binarize_rows_i8 and the patch quantizer with the
definition written out plainly, on values drawn for the corners (ties, -128, zeros); it runs on
the host under AddressSanitizer and UBSan, under QEMU user mode for Cortex-A72 (NEON) and as
bare-metal firmware for Cortex-M55 (Helium), Cortex-M7, Cortex-M4 and Cortex-M33 (DSP) and Cortex-M3
(portable, soft float). The models' tests
compare the same kernels with the numpy reference (horq_codegen.integer_quantizer).
"""
import subprocess

import numpy as np
import pytest

from horq_codegen.integer_quantizer import UNIT, binarize_int, rounded_mean
from horq_codegen.programs import build_program, run_program
from horq_codegen.targets import load_target

from conftest import REPO

SOURCE = REPO / "tests" / "c" / "quantize_i8_check.c"
KERNELS = ["horq_quantize_i8.c", "horq_quantize.c"]


def _assert_no_failures(stdout: str):
    assert "failures 0 of " in stdout, stdout


def test_host_with_sanitizers(tmp_path):
    host = load_target("host")
    exe = build_program(host, SOURCE, KERNELS, tmp_path / "quantize_i8_check", host.sanitize_flags)
    _assert_no_failures(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)


@pytest.mark.parametrize("name", ["cortex-a72", "cortex-m55", "cortex-m7", "cortex-m4", "cortex-m33", "cortex-m3"])
def test_target_in_qemu(tmp_path, name):
    target = load_target(name)
    exe = build_program(target, SOURCE, KERNELS, tmp_path / f"quantize_i8_check-{name}")
    result = run_program(target, exe)
    assert result.status == "ok", result.describe()
    _assert_no_failures(result.stdout)


def test_the_reference_follows_the_definition_by_hand():
    # q = (3, -1): R_0 = (768, -256), beta_1 = round(1024 / 2) = 512, R_1 = (256, 256), beta_2 = 256
    betas, planes = binarize_int(np.array([[[3, -1]]], np.int8), 2)
    assert betas.tolist() == [[512.0, 256.0]] and planes[0, :, 0, 0].tolist() == [0b10, 0b00]
    # a constant group: beta_1 = |q| steps exactly, R_1 = 0 for both signs, so plane 2 is all +1
    betas, planes = binarize_int(np.array([[[-2, -2, -2]]], np.int8), 2)
    assert betas.tolist() == [[2.0 * UNIT, 0.0]] and planes[0, :, 0, 0].tolist() == [0b111, 0b000]
    # padding zeros count in the mean and have their own residual chain
    betas, _ = binarize_int(np.array([[[4]]], np.int8), 2, pad_count=3)
    assert betas[0, 0] == rounded_mean(4 * UNIT, 4) == 256 and betas[0, 1] == rounded_mean(768 + 3 * 256, 4)
