"""Targets are data: one TOML file each in ``targets/``.

A difference between targets is an entry in its file (compiler, flags, emulator,
memory map, boards), never an ``if target == ...`` in code or templates.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from typing import Any

from .errors import HorqError
from .resources import targets_dir


@dataclass(frozen=True)
class Board:
    key: str
    name: str
    flash_bytes: int
    ram_bytes: int
    flash_origin: int = 0
    ram_origin: int = 0x20000000
    platform: str = ""      # PlatformIO platform; empty when PlatformIO has none for the board
    pio_board: str = ""


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    kind: str                      # "host" | "cortex-m" | "linux-user": which harness and runner
    cc: str
    cflags: tuple[str, ...]
    ldflags: tuple[str, ...] = ()
    sanitize_flags: tuple[str, ...] = ()
    pio_build_flags: tuple[str, ...] = ()
    # What the model's and kernels' sources need in a library (--format library): defines and exact-float
    # options only, never CPU flags (the user's toolchain or board supplies those).
    library_flags: tuple[str, ...] = ()
    emulator: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, int] = field(default_factory=dict)
    boards: dict[str, Board] = field(default_factory=dict)
    default_board: str = ""
    # How packed HORQ weights are stored: "plain" rows, or "prefix-xor-triples" (pack.prefix_xor_triples),
    # the layout the Cortex-M DSP kernels read; the target's flags then define HORQ_WEIGHTS_PREFIX_XOR.
    weight_layout: str = "plain"

    def board(self, key: str | None) -> Board | None:
        key = key or self.default_board
        if not key:
            return None
        if key not in self.boards:
            known = ", ".join(sorted(self.boards)) or "none"
            raise HorqError(f"unknown board {key!r} for target {self.name} (known: {known})")
        return self.boards[key]


def known_targets() -> list[str]:
    return sorted(p.stem for p in targets_dir().glob("*.toml"))


def load_target(name: str) -> Target:
    path = targets_dir() / f"{name}.toml"
    if not path.is_file():
        raise HorqError(f"unknown target {name!r} (known: {', '.join(known_targets())})")
    data = tomllib.loads(path.read_text())
    boards = {key: Board(key=key, **value) for key, value in data.pop("boards", {}).items()}
    for key in ("cflags", "ldflags", "sanitize_flags", "pio_build_flags", "library_flags"):
        if key in data:
            data[key] = tuple(data[key])
    target = Target(boards=boards, **data)
    if target.weight_layout not in WEIGHT_LAYOUTS:
        raise HorqError(f"target {name}: unknown weight_layout {target.weight_layout!r} "
                        f"(known: {', '.join(WEIGHT_LAYOUTS)})")
    return target


WEIGHT_LAYOUTS = ("plain", "prefix-xor-triples")
