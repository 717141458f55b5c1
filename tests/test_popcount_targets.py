"""horq_xor_popcount_rows against the portable count on every instruction-set path.

tests/c/popcount_check.c runs the fast path on thousands of shapes (rows 1..40,
short and long rows, orders 1..4, spaced planes, largest counts) and compares it
with horq_xor_popcount. It runs on the host under AddressSanitizer and UBSan
(the portable path, and the SWAR path by -DHORQ_FORCE_SWAR), under QEMU user mode
for Cortex-A72 (NEON) and as bare-metal firmware for Cortex-M55 (Helium),
Cortex-M7 and Cortex-M4 (DSP SWAR).
"""
import subprocess

import jinja2
import pytest

from horq_codegen import emulator
from horq_codegen.resources import templates_dir
from horq_codegen.targets import load_target

from conftest import REPO

SOURCE = REPO / "tests" / "c" / "popcount_check.c"


def _sources():
    kernels = templates_dir() / "kernels"
    return [f"-I{kernels}", str(SOURCE), str(kernels / "horq_popcount.c")]


def _assert_no_failures(stdout: str):
    assert "failures 0 of " in stdout, stdout


@pytest.mark.parametrize("extra", [[], ["-DHORQ_FORCE_SWAR"]], ids=["portable", "swar"])
def test_host_with_sanitizers(tmp_path, extra):
    host = load_target("host")
    exe = tmp_path / "popcount_check"
    subprocess.run([host.cc, *host.cflags, *host.sanitize_flags, *extra, *_sources(), "-o", str(exe),
                    *host.ldflags], check=True)
    _assert_no_failures(subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout)


@pytest.mark.parametrize("name", ["cortex-a72", "cortex-m55", "cortex-m7", "cortex-m4"])
def test_target_in_qemu(tmp_path, name):
    target = load_target(name)
    exe = tmp_path / f"popcount_check-{name}"
    extra: list[str] = []
    if target.kind == "cortex-m":
        script = tmp_path / "link.ld"
        template = jinja2.Template((templates_dir() / "firmware" / "link.ld.jinja").read_text())
        script.write_text(template.render(**target.memory))
        extra = ["-T", str(script), str(templates_dir() / "firmware" / "startup_cortexm.c")]
    subprocess.run([target.cc, *target.cflags, *_sources(), *extra, "-o", str(exe), *target.ldflags], check=True)
    emu = target.emulator
    if target.kind == "cortex-m":
        result = emulator.run_system(exe, emu["machine"], nm=emu["nm"])
    else:
        result = emulator.run_user(exe, qemu=emu["command"], nm=emu["nm"])
    assert result.status == "ok", result.describe()
    _assert_no_failures(result.stdout)
