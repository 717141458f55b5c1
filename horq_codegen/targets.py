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


# How the console UART's registers are laid out (the C driver in board_console.c.jinja has one branch each):
#   stm32-usart-sr   STM32F1/F2/F4: SR, DR, BRR, CR1 at 0x00, 0x04, 0x08, 0x0C
#   stm32-usart-isr  STM32F0/F3/F7/L4/U5/H7: CR1, BRR, ISR, TDR at 0x00, 0x0C, 0x1C, 0x28
UART_KINDS = ("stm32-usart-sr", "stm32-usart-isr")
# How a pin is switched to its alternate function:
#   stm32-moder      MODER (2 bits a pin) = 0b10 and AFRL/AFRH (4 bits a pin) = the function number
#   stm32f1-crl      CRL/CRH (4 bits a pin) = 0xB: alternate function push-pull output, 50 MHz
GPIO_KINDS = ("stm32-moder", "stm32f1-crl")


@dataclass(frozen=True)
class ClockEnable:
    """One bit to set in a clock-enable register (RCC) before a peripheral is touched."""
    register: int
    bit: int


@dataclass(frozen=True)
class Console:
    """The UART a board's image prints on: on Nucleo boards the one wired to the ST-LINK's virtual COM port.

    Every register address is data, so that adding a board of a known UART and GPIO kind is a data change.
    ``clock_hz`` is the UART's kernel clock at reset (the image never touches the clock tree)."""
    peripheral: str            # e.g. "USART2", for messages
    kind: str                  # one of UART_KINDS
    base: int
    clock_enable: ClockEnable
    tx_pin: str                # e.g. "PA2"
    gpio_kind: str             # one of GPIO_KINDS
    gpio_base: int             # the TX pin's port
    gpio_clock_enable: ClockEnable
    pin: int                   # the TX pin's number in its port
    alternate_function: int    # stm32-moder only (AF7 for USART1..3 on STM32)
    clock_hz: int
    baud: int = 115200

    @property
    def divider(self) -> int:
        """BRR for 16x oversampling: the clock over the baud rate, rounded (both STM32 layouts)."""
        return (2 * self.clock_hz + self.baud) // (2 * self.baud)

    @property
    def baud_error(self) -> float:
        return abs(self.clock_hz / self.divider - self.baud) / self.baud


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
    mcu: str = ""           # the part on the board, e.g. STM32F446RE
    mcu_family: str = ""    # e.g. stm32f4
    # The QEMU machine that models this MCU family closely enough to run the board's own image (same core,
    # same console UART registers at the same address, flash and RAM at least as large); empty if none.
    qemu_machine: str = ""
    qemu_console_serial: int = 0   # which of QEMU's -serial options the console UART is (USART2 of the F405: 1)
    console: Console | None = None

    @property
    def runs_in_qemu(self) -> bool:
        return bool(self.qemu_machine) and self.console is not None


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
    # The board image's flags (`make board`; PlatformIO's are pio_build_flags plus the board's CPU flags).
    board_cflags: tuple[str, ...] = ()
    board_ldflags: tuple[str, ...] = ()
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
    # How to estimate cycles with llvm-mca (horq_codegen.cycles): mca_triple, mca_cpu, objdump, and optionally
    # mca_attrs and a note naming the model when it is a proxy; empty where LLVM has no model.
    cycles: dict[str, Any] = field(default_factory=dict)

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
    boards = {key: _board(name, key, value) for key, value in data.pop("boards", {}).items()}
    for key in ("cflags", "ldflags", "sanitize_flags", "pio_build_flags", "board_cflags", "board_ldflags",
                "library_flags"):
        if key in data:
            data[key] = tuple(data[key])
    target = Target(boards=boards, **data)
    if target.weight_layout not in WEIGHT_LAYOUTS:
        raise HorqError(f"target {name}: unknown weight_layout {target.weight_layout!r} "
                        f"(known: {', '.join(WEIGHT_LAYOUTS)})")
    return target


WEIGHT_LAYOUTS = ("plain", "prefix-xor-triples")
MAX_BAUD_ERROR = 0.025  # a UART receiver tolerates about 2-3 % between the two ends' rates


def _console(where: str, data: dict[str, Any]) -> Console:
    data = dict(data)
    try:
        for key in ("clock_enable", "gpio_clock_enable"):
            data[key] = ClockEnable(**data[key])
        console = Console(**data)
    except (TypeError, KeyError) as exc:
        raise HorqError(f"{where}: the console entry is incomplete or has an unknown field ({exc})") from None
    if console.kind not in UART_KINDS:
        raise HorqError(f"{where}: unknown UART kind {console.kind!r} (known: {', '.join(UART_KINDS)})")
    if console.gpio_kind not in GPIO_KINDS:
        raise HorqError(f"{where}: unknown GPIO kind {console.gpio_kind!r} (known: {', '.join(GPIO_KINDS)})")
    if console.baud_error > MAX_BAUD_ERROR:
        raise HorqError(f"{where}: {console.baud} baud from a {console.clock_hz} Hz clock is off by "
                        f"{100 * console.baud_error:.1f} %")
    return console


def _board(target: str, key: str, data: dict[str, Any]) -> Board:
    data = dict(data)
    console = data.pop("console", None)
    where = f"target {target}, board {key}"
    return Board(key=key, console=_console(where, console) if console is not None else None, **data)
