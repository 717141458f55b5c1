"""``pio run`` builds a generated firmware project, offline.

PlatformIO's registry (ststm32, its toolchain, tool-scons) is out of reach, so
the generated project's ``platform = ststm32`` line, and nothing else, is
pointed at the local platform in ``tests/pio_offline/platform``: same board,
linker script, build_flags, build_unflags and extra_scripts as a user gets.
Its builder compiles with the system's arm-none-eabi-gcc, and PlatformIO's own
Library Dependency Finder builds ``lib/horq``. Nothing is skipped: a missing
``pio``, SCons or compiler is a failure.
"""
from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
import torch
from elftools.elf.elffile import ELFFile

import pio_offline
from conftest import export_model, settle_batchnorm
from horq_codegen.cli import main
from horq_codegen.nn import HORQConv2d
from horq_codegen.targets import load_target

FLASH_ORIGIN = 0x08000000  # STM32: flash is mapped (and boots) at 0x08000000
EF_ARM_ABI_FLOAT_HARD = 0x400

# target -> CPU flags the board's core must put on every compile and link line
CORES = {
    "cortex-m7": ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"],
    "cortex-m4": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
    "cortex-m33": ["-mcpu=cortex-m33", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"],
    "cortex-m3": ["-mcpu=cortex-m3", "-mthumb"],  # no FPU: soft float, the compiler's default
}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), HORQConv2d(4, 8, 3),
                                torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 3))
    return export_model(settle_batchnorm(model, (1, 8, 8)), (1, 8, 8), tmp_path_factory.mktemp("pio") / "m.pt2")


def _point_at_local_platform(ini: Path) -> None:
    """Rewrites the ``platform = ...`` line, and only it, to the local file:// platform."""
    before = ini.read_text()
    after, n = re.subn(r"(?m)^platform\s*=.*$", f"platform = {pio_offline.PLATFORM_URI}", before)
    assert n == 1, before
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert changed == [("platform = ststm32", f"platform = {pio_offline.PLATFORM_URI}")], changed
    ini.write_text(after)


def _commands(output: str, marker: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("arm-none-eabi-gcc ") and marker in line]


@pytest.mark.parametrize("target_name", list(CORES))
def test_pio_run_builds_the_generated_project_offline(model_file, tmp_path, target_name):
    target = load_target(target_name)
    board = target.board(None)
    env_name = board.key

    generated = tmp_path / "generated"
    assert main([str(model_file), "--target", target_name, "-o", str(generated)]) == 0
    project = tmp_path / "project"
    shutil.copytree(generated, project)
    _point_at_local_platform(project / "platformio.ini")

    pio = pio_offline.pio_executable()
    assert pio.is_file(), f"no PlatformIO next to {pio.parent} (pip install platformio)"
    assert shutil.which("arm-none-eabi-gcc"), "arm-none-eabi-gcc is not on PATH (gcc-arm-none-eabi + newlib)"
    env = pio_offline.make_core_dir(tmp_path / "pio_core")

    run = subprocess.run([str(pio), "run", "--verbose", "-d", str(project), "-e", env_name],
                         env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "[SUCCESS]" in output, output[-6000:]

    # Every C file of src/ but the semihosting harness, and of lib/horq/ (built
    # by the Library Dependency Finder into its own archive), is compiled for
    # the board's core, with the project's build_flags and without the -Os
    # that build_unflags removes.
    compiles = _commands(output, " -c ")
    sources = sorted(p.relative_to(project).as_posix()
                     for p in [*project.glob("src/*.c"), *project.glob("lib/horq/*.c")] if p.name != "harness.c")
    assert sorted(c.split()[-1] for c in compiles) == sources, compiles
    for line in compiles:
        flags = line.split()
        assert all(f in flags for f in CORES[target_name] + list(target.pio_build_flags)), line
        assert "-Os" not in flags, line

    # One link, with the generated linker script, the extra_script's
    # board-image flags and libraries, the CPU flags and lib/horq's archive.
    links = _commands(output, "firmware.elf ")
    assert len(links) == 1, links
    link = links[0].split()
    assert link[link.index("-T") + 1] == "link/board.ld", links[0]
    for flag in [*target.board_ldflags, *CORES[target_name]]:
        assert flag in link, (flag, links[0])
    assert "-Os" not in link
    assert any(f.endswith("/libhorq.a") for f in link), links[0]

    elf_path = project / ".pio" / "build" / env_name / "firmware.elf"
    assert elf_path.is_file()
    with elf_path.open("rb") as fp:
        elf = ELFFile(fp)
        assert elf["e_machine"] == "EM_ARM"
        hard_float = "-mfloat-abi=hard" in CORES[target_name]
        assert bool(elf["e_flags"] & EF_ARM_ABI_FLOAT_HARD) == hard_float, hex(elf["e_flags"])
        entry = elf["e_entry"]

        # The vector table is the first thing in flash: initial SP = top of RAM,
        # then the reset vector, which is the ELF entry (Reset_Handler, Thumb).
        vectors = elf.get_section_by_name(".isr_vector")
        assert vectors is not None and vectors["sh_addr"] == FLASH_ORIGIN
        initial_sp, reset = struct.unpack_from("<II", vectors.data())
        assert initial_sp == board.ram_origin + board.ram_bytes, hex(initial_sp)
        assert reset == entry and entry & 1, (hex(reset), hex(entry))
        assert FLASH_ORIGIN <= entry < FLASH_ORIGIN + board.flash_bytes, hex(entry)
        symbols = elf.get_section_by_name(".symtab")
        assert [s["st_value"] for s in symbols.get_symbol_by_name("Reset_Handler")] == [entry]

        # What gets flashed starts at the flash origin.
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_filesz"]]
        assert min(s["p_paddr"] for s in loads) == FLASH_ORIGIN
        assert max(s["p_paddr"] + s["p_filesz"] for s in loads) <= FLASH_ORIGIN + board.flash_bytes

    firmware_bin = elf_path.with_suffix(".bin")
    assert firmware_bin.read_bytes()[:8] == struct.pack("<II", initial_sp, reset)
