"""The board image's UART protocol (templates/project/cortex-m/src/board_main.c.jinja), parsed and checked.

A block is a ``horq-begin`` line, per sample a ``y`` line (outputs as float bits in hex) and a ``c`` line
(cycles per layer), and a ``horq-end`` line whose CRC-32 covers every byte before it from the begin line's
first one. The image repeats its block forever, so a reader may start anywhere: it skips to a begin line.
A ``horq-fault`` line anywhere means the image faulted and halted.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import HorqError

PROTOCOL_VERSION = "1"
_BEGIN = re.compile(r"horq-begin (\S+) model=(\w+) sha256=([0-9a-f]{16}) samples=(\d+) outputs=(\d+) layers=(\d+) "
                    r"inputs-crc32=([0-9a-f]{8})")
_END = re.compile(r"horq-end samples=(\d+) crc32=([0-9a-f]{8})")
_FAULT = re.compile(r"horq-fault pc=([0-9a-f]{8}) lr=([0-9a-f]{8}) cfsr=([0-9a-f]{8}) hfsr=([0-9a-f]{8})")


class BoardFault(HorqError):
    """The image printed a fault line: the core took a fault and halted."""

    def __init__(self, pc: int, lr: int, cfsr: int, hfsr: int, where: str = ""):
        self.pc, self.lr, self.cfsr, self.hfsr = pc, lr, cfsr, hfsr
        super().__init__(f"the board image faulted at pc=0x{pc:08x}{where} (lr=0x{lr:08x}, CFSR=0x{cfsr:08x}, "
                         f"HFSR=0x{hfsr:08x}) and halted")

    def located(self, function: str | None) -> "BoardFault":
        """The same fault, its message naming the function that holds the pc."""
        return BoardFault(self.pc, self.lr, self.cfsr, self.hfsr, f" in {function}()" if function else "")


@dataclass(frozen=True)
class Header:
    model: str
    sha256: str       # the first 16 hex digits of the model file's SHA-256
    samples: int
    outputs: int
    layers: int
    inputs_crc32: int


@dataclass(frozen=True)
class BoardBlock:
    header: Header
    outputs: np.ndarray   # (samples, outputs) float32, bit for bit as the board computed them
    cycles: np.ndarray    # (samples, layers) DWT cycles per layer (all 0 under QEMU)
    text: str             # the block as received, for the record


def fault_from_line(line: str) -> BoardFault | None:
    match = _FAULT.search(line)
    if match is None:
        return None
    return BoardFault(*(int(v, 16) for v in match.groups()))


def parse_header(line: str) -> Header | None:
    match = _BEGIN.fullmatch(line.strip())
    if match is None:
        return None
    version, model, sha, samples, outputs, layers, crc = match.groups()
    if version != PROTOCOL_VERSION:
        raise HorqError(f"the board speaks protocol version {version}; this horq-codegen reads version "
                        f"{PROTOCOL_VERSION}: regenerate and flash the image")
    return Header(model, sha, int(samples), int(outputs), int(layers), int(crc, 16))


def _hex_words(words: list[str], count: int, what: str) -> np.ndarray:
    if len(words) != count or not all(len(w) == 8 for w in words):
        raise ValueError(f"{what}: {len(words)} values where {count} were expected")
    return np.array([int(w, 16) for w in words], dtype=np.uint32).view(np.float32)


def parse_block(begin_line: str, body: list[str], end_line: str) -> BoardBlock:
    """Checks and reads one block; ``begin_line`` and ``body`` lines without their newline."""
    header = parse_header(begin_line)
    if header is None:
        raise HorqError(f"garbled begin line from the board: {begin_line[:80]!r}")
    end = _END.fullmatch(end_line.strip())
    if end is None:
        raise HorqError(f"garbled end line from the board: {end_line[:80]!r}")
    counted = "".join(line + "\n" for line in [begin_line, *body]).encode("latin-1")
    got, computed = int(end.group(2), 16), zlib.crc32(counted)
    if got != computed:
        raise HorqError(f"the board's block fails its checksum (the board says crc32={got:08x}, the bytes received "
                        f"give {computed:08x}): bytes were lost or changed on the wire; check the baud rate "
                        f"({header.samples} samples) and the cable")
    if int(end.group(1)) != header.samples or len(body) != 2 * header.samples:
        raise HorqError(f"the board sent {len(body) // 2} of {header.samples} samples")
    outputs, cycles = [], []
    try:
        for i in range(header.samples):
            y, c = body[2 * i].split(), body[2 * i + 1].split()
            if y[:2] != ["y", str(i)] or c[:2] != ["c", str(i)]:
                raise ValueError(f"line {2 * i + 2} is {body[2 * i][:40]!r}")
            outputs.append(_hex_words(y[2:], header.outputs, f"sample {i}"))
            if len(c) - 2 != header.layers:
                raise ValueError(f"sample {i}: {len(c) - 2} cycle counts for {header.layers} layers")
            cycles.append([int(v) for v in c[2:]])
    except ValueError as exc:
        raise HorqError(f"garbled block from the board: {exc}") from None
    text = "".join(line + "\n" for line in [begin_line, *body, end_line])
    return BoardBlock(header, np.stack(outputs) if outputs else np.zeros((0, header.outputs), np.float32),
                      np.array(cycles, dtype=np.int64).reshape(header.samples, header.layers), text)


def inputs_crc32(inputs: np.ndarray) -> int:
    """The CRC-32 the image computes over its embedded inputs (float32, little-endian)."""
    return zlib.crc32(np.ascontiguousarray(inputs, dtype="<f4").tobytes())
