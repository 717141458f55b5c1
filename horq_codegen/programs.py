"""Small stand-alone C programs around the fixed kernels, built and run on a target.

The kernel tests and the inner-loop benchmarks link a `main` of their own with a
few files of ``templates/kernels``: as firmware with the emulator's linker script
and start-up code on Cortex-M, as a static program elsewhere. Generated model
projects do not come through here; they have their own build (``runners``).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import jinja2

from . import emulator
from .resources import templates_dir
from .targets import Target


def build_program(target: Target, main: Path, kernels: list[str], binary: Path,
                  cflags: list[str] | tuple[str, ...] = ()) -> Path:
    """Compiles ``main`` with the named kernel files (e.g. ``"horq_popcount.c"``) into
    ``binary`` with the target's compiler and flags plus ``cflags``."""
    kernel_dir = templates_dir() / "kernels"
    extra: list[str] = []
    if target.kind == "cortex-m":
        script = binary.with_suffix(".ld")
        template = jinja2.Template((templates_dir() / "firmware" / "link.ld.jinja").read_text())
        script.write_text(template.render(**target.memory))
        extra = ["-T", str(script), str(templates_dir() / "firmware" / "startup_cortexm.c")]
    subprocess.run([target.cc, *target.cflags, *cflags, f"-I{kernel_dir}", str(main),
                    *(str(kernel_dir / name) for name in kernels), *extra, "-o", str(binary), *target.ldflags],
                   check=True)
    return binary


def run_program(target: Target, binary: Path, *, count: bool = False,
                profile: Path | None = None, segments: Path | None = None) -> emulator.RunResult:
    """Runs a program built by :func:`build_program` under the target's emulator."""
    emu = target.emulator
    if target.kind == "cortex-m":
        return emulator.run_system(binary, emu["machine"], timeout_s=emu["timeout_s"], count=count,
                                   nm=emu["nm"], profile=profile, segments=segments)
    return emulator.run_user(binary, qemu=emu["command"], timeout_s=emu["timeout_s"], count=count,
                             nm=emu["nm"], profile=profile, segments=segments)
