"""The board image: built by the generated project's ``make board``, run in QEMU or read from a board's
port, and flashed through PlatformIO."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..build import make
from ..errors import HorqError
from ..targets import Board
from .protocol import BoardBlock, BoardFault
from .qemu import board_in_qemu
from .serial_link import ReadLimits, open_port, read_block

FLASH_TIMEOUT_S = 300


@dataclass(frozen=True)
class BoardImage:
    elf: Path
    bin: Path

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.bin.read_bytes()).hexdigest()

    @property
    def size(self) -> int:
        return self.bin.stat().st_size


def build_image(project: Path, prefix: str = "model") -> BoardImage:
    """``make board`` in a generated Cortex-M project: the ELF and the raw image a programmer flashes."""
    make(project, "board")
    image = BoardImage(project / f"{prefix}-board.elf", project / f"{prefix}-board.bin")
    if not image.bin.is_file():
        raise HorqError(f"make board in {project} wrote no {image.bin.name}")
    return image


def run_in_qemu(image: BoardImage, board: Board, limits: ReadLimits = ReadLimits(idle_s=60.0, total_s=600.0),
                progress: Callable[[str], None] = lambda line: None) -> BoardBlock:
    """Runs the raw image in the QEMU machine of the board's MCU and reads one block from its console."""
    with board_in_qemu(image.bin, board) as pty:
        port = open_port(pty, board.console.baud)
        try:
            return read_block(port, f"QEMU {board.qemu_machine} ({board.console.peripheral} on {pty})", limits,
                              progress)
        except BoardFault as fault:
            raise fault.located(function_at(image.elf, fault.pc)) from None
        finally:
            port.close()


def read_from_port(path: str, board: Board, limits: ReadLimits = ReadLimits(),
                   progress: Callable[[str], None] = lambda line: None) -> BoardBlock:
    port = open_port(path, board.console.baud)
    try:
        port.reset_input_buffer()
        return read_block(port, path, limits, progress)
    finally:
        port.close()


def pio_executable() -> str | None:
    beside = Path(sys.executable).parent / ("pio.exe" if os.name == "nt" else "pio")
    return str(beside) if beside.is_file() else shutil.which("pio")


def flash(project: Path, image: BoardImage, board: Board, progress: Callable[[str], None] = lambda line: None,
          env: dict[str, str] | None = None) -> None:
    """Flashes exactly ``image`` with PlatformIO's uploader for the board.

    The image goes where PlatformIO's build would have put its own (``.pio/build/<board>/firmware.*``) and
    ``pio run -t nobuild -t upload`` uploads it without building: the bytes flashed are the bytes verified.
    """
    if not board.platform:
        raise HorqError(f"PlatformIO has no board for {board.name}: write {image.bin} at "
                        f"0x{board.flash_origin:08x} with your programmer, then run verify with --port alone")
    pio = pio_executable()
    if pio is None:
        raise HorqError("--flash uploads through PlatformIO, which is not installed (pip install platformio)")
    build_dir = project / ".pio" / "build" / board.key
    build_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(image.elf, build_dir / "firmware.elf")
    shutil.copyfile(image.bin, build_dir / "firmware.bin")
    progress(f"flashing {image.bin.name} ({image.size:,} bytes) to {board.name} with PlatformIO ...")
    try:
        result = subprocess.run([pio, "run", "-d", str(project), "-e", board.key, "-t", "nobuild", "-t", "upload",
                                 "--disable-auto-clean"],
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=FLASH_TIMEOUT_S,
                                env=env)
    except subprocess.TimeoutExpired:
        raise HorqError(f"pio run -t upload did not finish within {FLASH_TIMEOUT_S} s") from None
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-12:])
        raise HorqError(f"flashing {board.name} failed (pio run -t upload, exit {result.returncode}):\n{tail}")


def function_at(elf: Path, address: int) -> str | None:
    """The function of ``elf`` that holds ``address`` (Thumb bit ignored), from its symbol table."""
    from elftools.elf.elffile import ELFFile

    address &= ~1
    with elf.open("rb") as fp:
        symtab = ELFFile(fp).get_section_by_name(".symtab")
        if symtab is None:
            return None
        for symbol in symtab.iter_symbols():
            start = symbol["st_value"] & ~1
            if symbol["st_info"]["type"] == "STT_FUNC" and start <= address < start + max(symbol["st_size"], 1):
                return symbol.name
    return None
