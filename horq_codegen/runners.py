"""Build and run a generated project on its target, one runner per target kind (data in targets/*.toml).

A runner returns the harness's standard output; a build error, a crash, a hang or
a missing tool is a :class:`HorqError` that says which, never a pass.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import emulator
from .build import HarnessOutput, check_guards, make, parse_outputs, run_host
from .errors import HorqError
from .programs import run_program
from .targets import Target


@dataclass(frozen=True)
class RunOptions:
    sanitize: bool = False            # host only: ASan + UBSan
    count: bool = False               # emulators only: count executed instructions at the layer marks
    extra_cflags: str = ""
    profile: Path | None = None       # with count: per-instruction counts there (emulator.read_profile)
    segments: Path | None = None      # with count: the same per stretch between marks (emulator.read_segments)


@dataclass(frozen=True)
class RawRun:
    stdout: str
    marks: tuple[int, ...] | None = None
    binary: Path | None = None


def _require_tool(tool: str) -> None:
    if shutil.which(tool) is None:
        raise HorqError(f"{tool} is not installed (run the project's set-up: make setup)")


def _make_args(options: RunOptions) -> list[str]:
    return [f"EXTRA_CFLAGS={options.extra_cflags}"] if options.extra_cflags else []


def _run_host(project: Path, target: Target, options: RunOptions) -> RawRun:
    _require_tool(target.cc)
    make(project, *(["SANITIZE=1"] if options.sanitize else []), *_make_args(options))
    return RawRun(run_host(project / "model_test"), binary=project / "model_test")


def _build_and_emulate(project: Path, target: Target, options: RunOptions, binary: str,
                       emulate: Callable[[Path], emulator.RunResult]) -> RawRun:
    """Builds with the target's cross compiler, runs under its emulator; any failure says which."""
    _require_tool(target.cc)
    _require_tool(target.emulator["command"])
    make(project, *_make_args(options))
    try:
        result = emulate(project / binary)
    except emulator.EmulatorError as exc:
        raise HorqError(f"{target.name}: {exc}") from None
    check_guards(result.stdout)
    if result.status != "ok":
        raise HorqError(f"{target.name}: {result.describe()}")
    return RawRun(result.stdout, result.marks, project / binary)


def _run_cortex_m(project: Path, target: Target, options: RunOptions) -> RawRun:
    return _build_and_emulate(project, target, options, "model.elf",
                              lambda elf: run_program(target, elf, count=options.count, profile=options.profile,
                                                          segments=options.segments))


def _run_linux_user(project: Path, target: Target, options: RunOptions) -> RawRun:
    return _build_and_emulate(project, target, options, "model_test",
                              lambda exe: run_program(target, exe, count=options.count, profile=options.profile,
                                                          segments=options.segments))


RUNNERS: dict[str, Callable[[Path, Target, RunOptions], RawRun]] = {
    "host": _run_host,
    "cortex-m": _run_cortex_m,
    "linux-user": _run_linux_user,
}


def run_raw(project: Path, target: Target, options: RunOptions = RunOptions()) -> RawRun:
    runner = RUNNERS.get(target.kind)
    if runner is None:
        raise HorqError(f"target {target.name}: no runner for kind {target.kind!r}")
    return runner(project, target, options)


def run_project(project: Path, target: Target, samples: int, output_size: int, *,
                sanitize: bool = False) -> HarnessOutput:
    return parse_outputs(run_raw(project, target, RunOptions(sanitize=sanitize)).stdout, samples, output_size)
