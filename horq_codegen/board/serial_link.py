"""Reading the board image's block from a serial port: a board's tty (``/dev/ttyACM0``, the ST-LINK's virtual
COM port) or the pseudo-terminal of QEMU running the same image. The same code reads both.

Whatever the port sends, the reader ends within its limits with a block or one clear error: nothing at all,
bytes that never make a begin line (another program, the wrong baud rate), a block that stops or fails its
checksum, or the image's fault line.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Protocol

from ..errors import HorqError
from .protocol import BoardBlock, fault_from_line, parse_block, parse_header

_MAX_LINE = 1 << 16


class ByteSource(Protocol):
    def read(self, size: int = 1) -> bytes: ...


@dataclass(frozen=True)
class ReadLimits:
    idle_s: float = 30.0          # no byte for this long: the board has stopped, or never started, sending
    total_s: float = 900.0        # the whole read, however slowly the bytes trickle in
    garbage_bytes: int = 8192     # bytes of lines that belong to no block before the first begin line


def open_port(path: str, baud: int):
    """Opens ``path`` at ``baud`` 8N1 with pyserial; a missing or busy port is a clear error."""
    import serial  # pyserial

    try:
        return serial.Serial(path, baudrate=baud, timeout=0.1)
    except serial.SerialException as exc:
        hint = " (add yourself to the dialout group)" if "ermission" in str(exc) else ""
        raise HorqError(f"cannot open the serial port {path}: {exc}{hint}") from None


def _printable(line: str) -> bool:
    return all(" " <= ch <= "~" for ch in line)


class _Lines:
    """Splits the byte stream into lines, enforcing the idle and total limits."""

    def __init__(self, source: ByteSource, where: str, limits: ReadLimits, clock: Callable[[], float]):
        self.source, self.where, self.limits, self.clock = source, where, limits, clock
        self.start = self.last = clock()
        self.buffer = b""
        self.received = 0

    def next(self) -> str:
        while b"\n" not in self.buffer:
            if len(self.buffer) > _MAX_LINE:
                raise HorqError(f"{self.where} sends a line longer than {_MAX_LINE} bytes: not a horq board image, "
                                "or the wrong baud rate")
            now = self.clock()
            if now - self.start > self.limits.total_s:
                raise HorqError(f"no complete block from {self.where} within {self.limits.total_s:g} s "
                                f"({self.received} bytes received)")
            if now - self.last > self.limits.idle_s:
                if self.received == 0:
                    raise HorqError(f"nothing received from {self.where} within {self.limits.idle_s:g} s: is the "
                                    "board connected and flashed with the board image (make board, or pio run -t "
                                    "upload)? Press its RESET button, or pass --flash")
                raise HorqError(f"{self.where} stopped sending for {self.limits.idle_s:g} s after "
                                f"{self.received} bytes, in the middle of a block")
            chunk = self.source.read(4096)
            if chunk:
                self.received += len(chunk)
                self.last = self.clock()
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode("latin-1").rstrip("\r")


def read_block(source: ByteSource, where: str, limits: ReadLimits = ReadLimits(),
               progress: Callable[[str], None] = lambda line: None,
               clock: Callable[[], float] = time.monotonic) -> BoardBlock:
    """The first whole block ``source`` sends. ``where`` names the port in messages."""
    lines = _Lines(source, where, limits, clock)
    skipped = 0
    while True:
        line = lines.next()
        fault = fault_from_line(line)
        if fault is not None:
            raise fault
        header = parse_header(line) if line.startswith("horq-begin") else None
        if header is None:
            # The tail of a block already under way is expected; anything else counts towards the limit.
            if not (line.startswith(("y ", "c ", "horq-end")) and _printable(line)):
                skipped += len(line) + 1
                if skipped > limits.garbage_bytes:
                    raise HorqError(f"{where} sent {skipped} bytes that are not the board image's lines "
                                    f"(a sample: {line[:40]!r}): another program, or a baud rate other than "
                                    "the image's")
            continue
        progress(f"receiving {header.samples} samples from {where} ...")
        begin, body = line, []
        while True:
            line = lines.next()
            fault = fault_from_line(line)
            if fault is not None:
                raise fault
            if not _printable(line):
                raise HorqError(f"garbled line from {where} (non-text bytes in {line[:40]!r}): check the baud "
                                "rate and the cable")
            if line.startswith("horq-begin"):  # the board was reset mid-block: start over
                header = parse_header(line)
                if header is None:
                    raise HorqError(f"garbled begin line from {where}: {line[:80]!r}")
                begin, body = line, []
                continue
            if line.startswith("horq-end"):
                return parse_block(begin, body, line)
            if len(body) >= 2 * header.samples:
                raise HorqError(f"{where} sent more lines than a block of {header.samples} samples holds")
            body.append(line)
