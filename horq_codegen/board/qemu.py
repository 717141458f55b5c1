"""Running a board's own image in the QEMU machine that models its MCU, its console UART on a pseudo-terminal.

The image QEMU loads is the raw ``.bin`` a programmer writes at the start of flash: QEMU's STM32 machines
load a raw ``-kernel`` at address 0, where the MCU maps its flash, so the bytes that run are the bytes that
get flashed. The console UART becomes ``-serial pty`` (the ones before it ``-serial null``), read through
the same code as a board's tty.
"""
from __future__ import annotations

import contextlib
import re
import selectors
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

from ..errors import HorqError
from ..targets import Board

START_TIMEOUT_S = 15.0
_PTY = re.compile(r"char device redirected to (\S+) \(label (\S+)\)")


def qemu_command(image: Path, board: Board, qemu: str = "qemu-system-arm") -> list[str]:
    serials = ["-serial", "null"] * board.qemu_console_serial + ["-serial", "pty"]
    return [qemu, "-M", board.qemu_machine, "-display", "none", "-monitor", "none", *serials,
            "-kernel", str(image)]


def _pty_path(process: subprocess.Popen, deadline: float) -> str:
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    seen = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            rest = (process.stdout.read() or "") + (process.stderr.read() or "")
            raise HorqError(f"QEMU stopped at start (exit {process.returncode}): {(seen + rest).strip()[:400]}")
        if selector.select(timeout=0.1):
            line = process.stdout.readline()
            seen += line
            match = _PTY.search(line)
            if match:
                return match.group(1)
    raise HorqError(f"QEMU did not open its serial pseudo-terminal within {START_TIMEOUT_S:g} s")


@contextlib.contextmanager
def board_in_qemu(image: Path, board: Board, qemu: str = "qemu-system-arm") -> Iterator[str]:
    """Starts QEMU on ``image``; yields the path of the console's pseudo-terminal; stops QEMU afterwards."""
    if not board.runs_in_qemu:
        raise HorqError(f"QEMU models no {board.mcu or board.name}: the image of {board.name} cannot run in QEMU")
    if shutil.which(qemu) is None:
        raise HorqError(f"{qemu} is not installed (run the project's set-up: make setup)")
    # QEMU names the pseudo-terminal on its standard output (where its monitor would print).
    process = subprocess.Popen(qemu_command(image, board, qemu), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield _pty_path(process, time.monotonic() + START_TIMEOUT_S)
    finally:
        process.kill()
        process.wait()
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()
