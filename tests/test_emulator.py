"""Tests for horq_codegen.emulator: real firmware, built and run under QEMU.

Each test compiles a tiny C program with the project's startup file and
rendered linker script (or for aarch64, as a static Linux program), runs it,
and checks the classification and the instruction counts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import jinja2
import pytest

from horq_codegen.emulator import (
    EmulatorError,
    RunResult,
    build_plugin,
    read_profile,
    read_segments,
    run_system,
    run_user,
)

FIRMWARE_DIR = Path(__file__).resolve().parents[1] / "templates" / "firmware"

MB = 1024 * 1024
KB = 1024

# machine -> (compiler flags, memory map for the linker script)
MACHINES = {
    "mps2-an500": (
        ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"],
        dict(flash_origin=0x0, flash_size=4 * MB, ram_origin=0x20000000, ram_size=4 * MB),
    ),
    "mps2-an386": (
        ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
        dict(flash_origin=0x0, flash_size=4 * MB, ram_origin=0x20000000, ram_size=4 * MB),
    ),
    "mps2-an385": (
        ["-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"],
        dict(flash_origin=0x0, flash_size=4 * MB, ram_origin=0x20000000, ram_size=4 * MB),
    ),
    # Cortex-M33, booted Secure: vector table at 0x10000000, RAM at SSRAM 2+3's Secure alias.
    "mps2-an505": (
        ["-mcpu=cortex-m33", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"],
        dict(flash_origin=0x10000000, flash_size=4 * MB, ram_origin=0x38000000, ram_size=4 * MB),
    ),
    "mps3-an547": (
        ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"],
        dict(flash_origin=0x0, flash_size=512 * KB, ram_origin=0x20000000, ram_size=512 * KB),
    ),
}

COMMON_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]

# Variants are chosen with -D: LOOP (iterations), EXIT_STATUS, and one of
# BAD_LOAD / UDF / HANG for the failure modes.
PROGRAM = r"""
#include <stdio.h>

#ifdef __aarch64__
#define initialise_monitor_handles() ((void)0)
#define SPIN_LOOP "1: subs %w0, %w0, #1\n\tb.ne 1b"
#else
void initialise_monitor_handles(void);
#define SPIN_LOOP "1: subs %0, %0, #1\n\tbne 1b"
#endif

/* noinline plus an asm body: an empty function would be found useless and
 * its calls deleted by the optimiser. */
__attribute__((noinline)) void horq_bench_mark(int id)
{
    __asm__ volatile("" : : "r"(id) : "memory");
}

/* Exactly two instructions per iteration (subs + branch), whatever the
 * optimiser does around it. */
static void spin(unsigned n)
{
    __asm__ volatile(SPIN_LOOP : "+r"(n) : : "cc");
}

/* Float code: locks up unless the startup file enabled the FPU. */
volatile float scale = 1.5f;

int main(void)
{
    initialise_monitor_handles();
    printf("hello from horq %d\n", (int)(scale * 2.0f));
#if defined(BAD_LOAD)
    printf("%d\n", *(volatile int *)0xF0000000u);
#elif defined(UDF)
    __asm__ volatile("udf #0");
#elif defined(HANG)
    while (1) {
    }
#endif
    horq_bench_mark(0);
    spin(LOOP);
    horq_bench_mark(1);
    return EXIT_STATUS;
}
"""

LOOP_INSTRUCTIONS = 2  # per iteration of spin()


def _defines(loop: int, exit_status: int, mode: str | None) -> list[str]:
    flags = [f"-DLOOP={loop}", f"-DEXIT_STATUS={exit_status}"]
    return flags + ([f"-D{mode}"] if mode else [])


def _compile(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def build_firmware(tmp_path: Path, machine: str, *, loop: int = 100,
                   exit_status: int = 0, mode: str | None = None) -> Path:
    """Build the test program as Cortex-M firmware for ``machine``."""
    cpu_flags, memory = MACHINES[machine]
    template = jinja2.Template((FIRMWARE_DIR / "link.ld.jinja").read_text())
    linker_script = tmp_path / f"{machine}.ld"
    linker_script.write_text(template.render(stack_size=16 * KB, **memory))
    source = tmp_path / "main.c"
    source.write_text(PROGRAM)
    elf = tmp_path / f"{machine}-{loop}-{exit_status}-{mode}.elf"
    _compile(["arm-none-eabi-gcc", *COMMON_CFLAGS, *cpu_flags,
              *_defines(loop, exit_status, mode),
              "--specs=rdimon.specs", "-nostartfiles", "-T", str(linker_script),
              str(source), str(FIRMWARE_DIR / "startup_cortexm.c"),
              "-lrdimon", "-o", str(elf)])
    return elf


def build_aarch64(tmp_path: Path, *, loop: int = 100, mode: str | None = None) -> Path:
    """Build the test program as a static aarch64 Linux executable."""
    source = tmp_path / "main.c"
    source.write_text(PROGRAM)
    exe = tmp_path / f"aarch64-{loop}-{mode}"
    _compile(["aarch64-linux-gnu-gcc", *COMMON_CFLAGS, "-static",
              *_defines(loop, 0, mode), str(source), "-o", str(exe)])
    return exe


def mark_delta(result: RunResult) -> int:
    assert result.marks is not None and len(result.marks) == 2, result
    return result.marks[1] - result.marks[0]


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_firmware_runs_and_prints(tmp_path: Path, machine: str) -> None:
    result = run_system(build_firmware(tmp_path, machine), machine, timeout_s=20)
    assert result.status == "ok", result.stderr
    assert result.exit_code == 0
    assert "hello from horq 3" in result.stdout
    assert result.marks is None and result.total_instructions is None


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_counts_are_exact_and_repeatable(tmp_path: Path, machine: str) -> None:
    short = build_firmware(tmp_path, machine, loop=100)
    long = build_firmware(tmp_path, machine, loop=200)
    first = run_system(short, machine, timeout_s=20, count=True)
    second = run_system(short, machine, timeout_s=20, count=True)
    longer = run_system(long, machine, timeout_s=20, count=True)

    assert first.status == second.status == longer.status == "ok"
    assert "hello from horq 3" in first.stdout
    assert first.marks == second.marks
    assert first.total_instructions == second.total_instructions
    assert first.total_instructions > first.marks[1] > first.marks[0] > 0
    # 100 more iterations of a 2-instruction loop, and nothing else changes.
    assert mark_delta(longer) - mark_delta(first) == 100 * LOOP_INSTRUCTIONS
    assert (longer.total_instructions - first.total_instructions
            == 100 * LOOP_INSTRUCTIONS)


@pytest.mark.parametrize("machine", sorted(MACHINES))
@pytest.mark.parametrize("mode", ["BAD_LOAD", "UDF"])
def test_crash_is_a_fault(tmp_path: Path, machine: str, mode: str) -> None:
    result = run_system(build_firmware(tmp_path, machine, mode=mode), machine,
                        timeout_s=20, count=True)
    assert result.status == "fault", result.stderr
    assert result.exit_code == 134
    assert "hello from horq 3" in result.stdout
    assert result.marks is None
    assert result.describe() == "firmware hard-faulted (QEMU lock-up, exit 134)"


def test_endless_loop_is_a_hang(tmp_path: Path) -> None:
    result = run_system(build_firmware(tmp_path, "mps2-an500", mode="HANG"),
                        "mps2-an500", timeout_s=1, count=True)
    assert result.status == "hang"
    assert result.exit_code is None
    assert result.describe() == "timed out after 1 s: the firmware hangs"


def test_nonzero_exit_is_an_error(tmp_path: Path) -> None:
    result = run_system(build_firmware(tmp_path, "mps2-an500", exit_status=3),
                        "mps2-an500", timeout_s=20, count=True)
    assert result.status == "error"
    assert result.exit_code == 3
    # The plugin still reports when the firmware exits on its own.
    assert result.marks is not None and len(result.marks) == 2


def test_missing_marker_raises(tmp_path: Path) -> None:
    elf = build_firmware(tmp_path, "mps2-an500")
    with pytest.raises(EmulatorError, match="no_such_marker"):
        run_system(elf, "mps2-an500", count=True, mark_symbol="no_such_marker")


def test_aarch64_user_mode_counts(tmp_path: Path) -> None:
    short = build_aarch64(tmp_path, loop=100)
    long = build_aarch64(tmp_path, loop=200)
    first = run_user(short, timeout_s=20, count=True)
    second = run_user(short, timeout_s=20, count=True)
    longer = run_user(long, timeout_s=20, count=True)

    assert first.status == second.status == longer.status == "ok", first.stderr
    assert "hello from horq 3" in first.stdout
    assert first.marks == second.marks
    assert first.total_instructions == second.total_instructions
    assert mark_delta(longer) - mark_delta(first) == 100 * LOOP_INSTRUCTIONS


def test_aarch64_segfault_is_a_fault(tmp_path: Path) -> None:
    result = run_user(build_aarch64(tmp_path, mode="BAD_LOAD"), timeout_s=20)
    assert result.status == "fault"
    assert result.exit_code == 139
    assert result.describe() == "program crashed with SIGSEGV (exit 139)"


def test_plugin_is_cached_by_hash(tmp_path: Path) -> None:
    first = build_plugin(tmp_path)
    mtime = first.stat().st_mtime_ns
    second = build_plugin(tmp_path)
    assert first == second and second.stat().st_mtime_ns == mtime
    assert first.name.startswith("insn_count-") and first.suffix == ".so"
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_plugin_build_failure_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "broken.c"
    broken.write_text("this is not C\n")
    monkeypatch.setattr("horq_codegen.emulator.PLUGIN_SOURCE", broken)
    with pytest.raises(EmulatorError, match="building the QEMU counting plugin failed"):
        build_plugin(tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_profile_credits_every_instruction_to_a_function(tmp_path: Path) -> None:
    # The profile covers the instructions from the first mark to the last, so its
    # counts add up to their difference; the longer loop's 100 extra iterations
    # all land in the function that holds it.
    counts = {}
    for loop in (100, 200):
        elf = build_firmware(tmp_path, "mps2-an500", loop=loop)
        profile = tmp_path / f"profile-{loop}.txt"
        segments = tmp_path / f"segments-{loop}.txt"
        result = run_system(elf, "mps2-an500", timeout_s=20, count=True, profile=profile, segments=segments)
        assert result.status == "ok"
        counts[loop] = read_profile(profile, elf, "arm-none-eabi-nm")
        assert sum(counts[loop].values()) == mark_delta(result)
        # Two marks, one stretch between them: the same per-address counts as the profile.
        (stretch,) = read_segments(segments)
        assert stretch == {int(a, 16): int(n) for a, n in map(str.split, profile.read_text().splitlines())}
    grown = {name: counts[200].get(name, 0) - counts[100].get(name, 0) for name in counts[200]}
    assert sorted(grown.values())[-1] == 100 * LOOP_INSTRUCTIONS
    assert sum(grown.values()) == 100 * LOOP_INSTRUCTIONS
