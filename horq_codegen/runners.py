"""Build and run a generated project on its target, one runner per target kind (data in targets/*.toml)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from .build import HarnessOutput, make, parse_outputs, run_host
from .errors import HorqError
from .targets import Target


def _run_host(project: Path, target: Target, sanitize: bool) -> str:
    make(project, *(["SANITIZE=1"] if sanitize else []))
    return run_host(project / "model_test")


RUNNERS: dict[str, Callable[[Path, Target, bool], str]] = {
    "host": _run_host,
}


def run_project(project: Path, target: Target, samples: int, output_size: int, *,
                sanitize: bool = False) -> HarnessOutput:
    runner = RUNNERS.get(target.kind)
    if runner is None:
        raise HorqError(f"target {target.name}: no runner for kind {target.kind!r}")
    return parse_outputs(runner(project, target, sanitize), samples, output_size)
