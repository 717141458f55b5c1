"""Build a generated project and run it: host binary, QEMU firmware or user-mode program.

The harness prints ``y <i> <hex>...`` per sample (float bits, lossless) and
``t <layer> <hex>...`` per layer when traced; :func:`parse_outputs` reads it back.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import HorqError

BUILD_TIMEOUT_S = 300


@dataclass(frozen=True)
class HarnessOutput:
    outputs: np.ndarray                 # (samples, output_size) float32
    traces: list[dict[str, np.ndarray]]  # per sample: layer name -> values (memory order)


def _hex_floats(words: list[str]) -> np.ndarray:
    return np.array([int(w, 16) for w in words], dtype=np.uint32).view(np.float32)


def parse_outputs(text: str, expected_samples: int, output_size: int) -> HarnessOutput:
    """Reads the harness's output; anything missing or malformed is an error, never a pass."""
    outputs, traces, current = [], [], {}
    done = None
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        try:
            if parts[0] == "t":
                current[parts[1]] = _hex_floats(parts[2:])
            elif parts[0] == "tw":  # a layer's bit-planes, as words
                current[parts[1]] = _hex_floats(parts[2:]).view(np.uint32)
            elif parts[0] == "ti":  # an int8 layer's values, in decimal
                values = np.array([int(v) for v in parts[2:]], np.int64)
                if values.size and (values.min() < -128 or values.max() > 127):
                    raise ValueError(f"int8 trace value out of range in {line[:80]}")
                current[parts[1]] = values.astype(np.int8)
            elif parts[0] == "y":
                values = _hex_floats(parts[2:])
                if int(parts[1]) != len(outputs) or values.size != output_size:
                    raise ValueError(line[:80])
                outputs.append(values)
                traces.append(current)
                current = {}
            elif parts[0] == "done":
                done = int(parts[1])
        except (ValueError, IndexError) as exc:
            raise HorqError(f"garbled output from the generated program: {exc}") from None
    if done != expected_samples or len(outputs) != expected_samples:
        raise HorqError(f"the generated program printed {len(outputs)} of {expected_samples} outputs"
                        + ("" if done is not None else " and never finished"))
    return HarnessOutput(np.stack(outputs) if outputs else np.zeros((0, output_size), np.float32), traces)


def check_guards(stdout: str) -> None:
    """The harness prints ``guard <sample>`` when a write escaped the memory plan."""
    for line in stdout.splitlines():
        if line.startswith("guard "):
            raise HorqError(f"the generated code wrote outside its planned arena (sample {line.split()[1]}): "
                            "a code generator bug, please report it")


def make(project: Path, *args: str, timeout_s: float = BUILD_TIMEOUT_S) -> None:
    """Runs ``make`` in the project; a compiler error becomes a HorqError with its first lines."""
    if shutil.which("make") is None:
        raise HorqError("'make' is not installed (run the project's set-up: make setup)")
    try:
        result = subprocess.run(["make", "-s", *args], cwd=project, capture_output=True, text=True,
                                timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise HorqError(f"build of {project} timed out after {timeout_s:.0f} s") from None
    if result.returncode != 0:
        details = "\n".join((result.stderr or result.stdout).strip().splitlines()[:20])
        raise HorqError(f"build failed in {project}:\n{details}")


def run_host(executable: Path, timeout_s: float = 120) -> str:
    try:
        result = subprocess.run([str(executable)], capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise HorqError(f"{executable.name} timed out after {timeout_s:.0f} s: the program hangs") from None
    check_guards(result.stdout)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        raise HorqError(f"{executable.name} failed with exit status {result.returncode}:\n{tail}")
    return result.stdout
