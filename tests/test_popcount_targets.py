"""horq_xor_popcount_rows against the portable count on every instruction-set path.

tests/c/popcount_check.c runs the fast path on thousands of shapes (rows 1..40,
short and long rows, orders 1..4, spaced planes, largest counts) and compares it
with horq_xor_popcount. It runs on the host under AddressSanitizer and UBSan
(the portable path, and the SWAR path by -DHORQ_FORCE_SWAR), under QEMU user mode
for Cortex-A72 (NEON) and as bare-metal firmware for Cortex-M55 (Helium),
Cortex-M7, Cortex-M4 and Cortex-M33 (DSP SWAR) and Cortex-M3 (portable).
"""
import subprocess

import pytest

from horq_codegen.programs import build_program, run_program
from horq_codegen.targets import load_target

from conftest import REPO

SOURCE = REPO / "tests" / "c" / "popcount_check.c"


def _assert_no_failures(stdout: str):
    assert "failures 0 of " in stdout, stdout


@pytest.mark.parametrize("extra", [[], ["-DHORQ_FORCE_SWAR"]], ids=["portable", "swar"])
def test_host_with_sanitizers(tmp_path, extra):
    host = load_target("host")
    exe = build_program(host, SOURCE, ["horq_popcount.c"], tmp_path / "popcount_check", [*host.sanitize_flags, *extra])
    _assert_no_failures(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)


@pytest.mark.parametrize("name", ["cortex-a72", "cortex-m55", "cortex-m7", "cortex-m4", "cortex-m33", "cortex-m3"])
def test_target_in_qemu(tmp_path, name):
    target = load_target(name)
    exe = build_program(target, SOURCE, ["horq_popcount.c"], tmp_path / f"popcount_check-{name}")
    result = run_program(target, exe)
    assert result.status == "ok", result.describe()
    _assert_no_failures(result.stdout)
