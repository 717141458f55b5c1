"""The board image: the firmware a user flashes prints over its console UART, and is verified as flashed.

QEMU's STM32F405 (netduinoplus2) runs the NUCLEO-F446RE's own image, its USART2 on a pseudo-terminal that
pyserial reads exactly as it reads a board's /dev/ttyACM0.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import tty
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import pio_offline
from horq_codegen import importer, passes, reference
from horq_codegen.board.image import build_image, flash, read_from_port, run_in_qemu
from horq_codegen.board.protocol import BoardFault, parse_block
from horq_codegen.board.qemu import board_in_qemu
from horq_codegen.board.serial_link import ReadLimits, open_port, read_block
from horq_codegen.cli import main
from horq_codegen.errors import HorqError
from horq_codegen.targets import known_targets, load_target

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "mnist" / "model.pt2"
BOARD = "nucleo_f446re"


@pytest.fixture(scope="module")
def board_project(tmp_path_factory) -> Path:
    """The bundled model's project for the NUCLEO-F446RE, 4 embedded samples, its board image built."""
    out = tmp_path_factory.mktemp("board") / "project"
    assert main([str(MODEL), "--target", "cortex-m4", "--board", BOARD, "--samples", "4", "-o", str(out)]) == 0
    build_image(out)
    return out


def _reference_outputs(samples: int) -> np.ndarray:
    from horq_codegen.pipeline import load_and_lower
    from horq_codegen.samples import pick_samples

    model, graph = load_and_lower(MODEL)
    return reference.run(graph, pick_samples(model, samples).inputs)


def test_every_board_that_platformio_builds_has_a_console_and_qemu_boards_too():
    for name in known_targets():
        for board in load_target(name).boards.values():
            if board.platform or board.qemu_machine:
                assert board.console is not None, (name, board.key)
                assert board.mcu and board.mcu_family, (name, board.key)
                assert board.console.baud_error < 0.025, (name, board.key)


def test_the_bundled_model_board_image_is_verified_in_the_stm32_emulator(tmp_path, capsys):
    assert main(["verify", str(MODEL), "--board", BOARD, "--samples", "12", "--keep", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "bit-exact" in out and out.rstrip().endswith("PASS"), out
    assert "QEMU netduinoplus2" in out and "board image    : model-board.bin" in out, out
    image = (tmp_path / "board-0" / "model-board.bin").read_bytes()
    assert f"{len(image):,} bytes" in out
    # What ran is the raw image a programmer writes at 0x08000000: the stack at the top of the F446's
    # 128 KB of RAM, the reset vector in its flash.
    initial_sp, reset = struct.unpack_from("<II", image)
    assert initial_sp == 0x20000000 + 131072
    assert 0x08000000 <= reset < 0x08000000 + len(image) and reset & 1


def test_the_uart_block_holds_lossless_outputs_cycles_and_a_checksum(board_project):
    board = load_target("cortex-m4").board(BOARD)
    image = build_image(board_project)
    block = run_in_qemu(image, board)
    lines = block.text.splitlines()
    assert lines[0].startswith("horq-begin 1 model=model sha256=") and "samples=4 outputs=10" in lines[0]
    assert lines[-1].startswith("horq-end samples=4 crc32=")
    assert int(lines[-1].split("crc32=")[1], 16) == zlib.crc32("".join(l + "\n" for l in lines[:-1]).encode())
    assert block.cycles.shape == (4, block.header.layers) and not block.cycles.any()  # QEMU's DWT reads 0
    np.testing.assert_array_equal(block.outputs.view(np.uint32), _reference_outputs(4).view(np.uint32))


def test_serial_verify_reads_the_emulated_boards_pty_as_it_reads_a_tty(board_project, capsys):
    board = load_target("cortex-m4").board(BOARD)
    with board_in_qemu(board_project / "model-board.bin", board) as pty:
        assert main(["verify", str(MODEL), "--board", BOARD, "--port", pty]) == 0
    out = capsys.readouterr().out
    assert "4 samples" in out and f"read from {pty}" in out and "bit-exact" in out, out


PROGRAMMER = '''
"""A stand-in programmer: "flashes" an image into an emulated board (QEMU netduinoplus2) and exposes its
USART2 as the symbolic link STATE/tty, as a board's /dev/ttyACM0."""
import os, re, shutil, subprocess, sys, time
image, state = sys.argv[1], os.environ["HORQ_TEST_BOARD_STATE"]
pid_file = os.path.join(state, "qemu.pid")
if os.path.exists(pid_file):
    try:
        os.kill(int(open(pid_file).read()), 9)
    except ProcessLookupError:
        pass
flashed = os.path.join(state, "flashed.bin")
shutil.copyfile(image, flashed)
log = open(os.path.join(state, "qemu.log"), "w")
qemu = subprocess.Popen(["qemu-system-arm", "-M", "netduinoplus2", "-display", "none", "-monitor", "none",
                         "-serial", "null", "-serial", "pty", "-kernel", flashed],
                        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
open(pid_file, "w").write(str(qemu.pid))
for _ in range(300):
    match = re.search(r"redirected to (\\S+)", open(log.name).read())
    if match:
        break
    time.sleep(0.05)
else:
    sys.exit("QEMU opened no pty")
tty = os.path.join(state, "tty")
if os.path.lexists(tty):
    os.remove(tty)
os.symlink(match.group(1), tty)
print("flashed", os.path.getsize(flashed), "bytes")
'''


def test_flash_uploads_the_verified_bytes_through_platformio_and_they_run(board_project, tmp_path):
    board = load_target("cortex-m4").board(BOARD)
    project = tmp_path / "project"
    subprocess.run(["cp", "-r", str(board_project), str(project)], check=True)
    ini = project / "platformio.ini"
    ini.write_text(ini.read_text().replace("platform = ststm32", f"platform = {pio_offline.PLATFORM_URI}"))
    state = tmp_path / "state"
    state.mkdir()
    (tmp_path / "programmer.py").write_text(PROGRAMMER)
    env = pio_offline.make_core_dir(tmp_path / "core")
    env["HORQ_TEST_PROGRAMMER"] = f"{sys.executable} {tmp_path / 'programmer.py'}"
    env["HORQ_TEST_BOARD_STATE"] = str(state)
    image = build_image(project)
    try:
        flash(project, image, board, env=env)
        assert (state / "flashed.bin").read_bytes() == image.bin.read_bytes()  # uploaded = verified, byte for byte
        block = read_from_port(str(state / "tty"), board, ReadLimits(idle_s=60))
    finally:
        if (state / "qemu.pid").exists():
            try:
                os.kill(int((state / "qemu.pid").read_text()), 9)
            except ProcessLookupError:
                pass
    np.testing.assert_array_equal(block.outputs.view(np.uint32), _reference_outputs(4).view(np.uint32))


def test_a_fault_prints_the_stacked_pc_over_the_uart_and_halts(board_project, tmp_path):
    project = tmp_path / "project"
    subprocess.run(["cp", "-r", str(board_project), str(project)], check=True)
    # A constructor runs before main: an undefined instruction there faults before the console is up.
    (project / "src" / "fault.c").write_text(
        "void horq_test_fault(void) __attribute__((constructor, noinline));\n"
        "void horq_test_fault(void) { __asm__ volatile(\"udf #7\"); }\n")
    (project / "model-board.elf").unlink()
    subprocess.run(["make", "-s", "-C", str(project), "board", "EXTRA_SRCS=src/fault.c"], check=True,
                   capture_output=True)
    board = load_target("cortex-m4").board(BOARD)
    with pytest.raises(BoardFault) as fault:
        run_in_qemu(build_image(project), board, ReadLimits(idle_s=30))
    symbols = subprocess.run(["arm-none-eabi-nm", str(project / "model-board.elf")], capture_output=True,
                             text=True, check=True).stdout
    address = next(int(line.split()[0], 16) for line in symbols.splitlines() if line.endswith(" horq_test_fault"))
    assert fault.value.pc == address & ~1  # the udf is the function's first instruction
    assert "in horq_test_fault()" in str(fault.value) and "halted" in str(fault.value)
    assert fault.value.cfsr & (1 << 16)  # UFSR.UNDEFINSTR


# ---- the serial reader against a pseudo-terminal fed by the test ----

def _pty_feed(chunks: list[bytes], pause_s: float = 0.0):
    """A pseudo-terminal whose far end sends ``chunks``, once the port is open (pyserial empties the input on
    opening, as a board's bytes sent before the reader came would be lost too)."""
    master, slave = os.openpty()
    tty.setraw(slave)  # as pyserial leaves a port: no byte is translated
    port = open_port(os.ttyname(slave), 115200)

    def write():
        for chunk in chunks:
            os.write(master, chunk)
            time.sleep(pause_s)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return master, slave, port, thread


def _block(samples: int = 2, corrupt: bool = False) -> bytes:
    lines = ["horq-begin 1 model=m sha256=0123456789abcdef samples=%d outputs=2 layers=1 inputs-crc32=00000000"
             % samples]
    for i in range(samples):
        lines += [f"y {i} 3f800000 40000000", f"c {i} 0"]
    text = "".join(line + "\n" for line in lines)
    crc = zlib.crc32(text.encode()) ^ (1 if corrupt else 0)
    return (text + f"horq-end samples={samples} crc32={crc:08x}\n").encode()


def _read(chunks: list[bytes], limits: ReadLimits, pause_s: float = 0.0):
    master, slave, port, thread = _pty_feed(chunks, pause_s)
    try:
        return read_block(port, port.port, limits)
    finally:
        port.close()
        thread.join()
        os.close(master)
        os.close(slave)


def test_the_reader_joins_mid_block_and_returns_the_next_whole_one():
    whole = _block()
    block = _read([whole[len(whole) // 2:], b"\r\n", whole], ReadLimits(idle_s=5))
    assert block.outputs.tolist() == [[1.0, 2.0], [1.0, 2.0]]


@pytest.mark.parametrize("chunks, message", [
    ([], "nothing received"),
    ([bytes(range(256)) * 40], "not the board image's lines"),
    ([_block(corrupt=True)], "fails its checksum"),
    ([_block()[:60]], "stopped sending"),
    ([b"horq-fault pc=08000123 lr=08000200 cfsr=00010000 hfsr=40000000\n"], "faulted at pc=0x08000123"),
])
def test_the_reader_ends_bad_input_with_one_clear_message_within_its_timeout(chunks, message):
    start = time.monotonic()
    with pytest.raises(HorqError, match=message):
        _read(chunks, ReadLimits(idle_s=1.5, total_s=10, garbage_bytes=4096))
    assert time.monotonic() - start < 10


def test_a_block_with_a_sample_missing_is_refused():
    text = _block().decode().splitlines()
    with pytest.raises(HorqError, match="checksum|samples"):
        parse_block(text[0], text[1:3], text[-1])


def test_boards_qemu_does_not_model_are_refused_with_a_pointer_to_port(tmp_path, capsys):
    assert main(["verify", str(MODEL), "--board", "nucleo_l476rg"]) == 2
    err = capsys.readouterr().err
    assert "QEMU does not model the STM32L476RG" in err and "--port" in err, err
    assert main(["verify", str(MODEL), "--board", BOARD, "--flash"]) == 2
    assert "--flash needs --port" in capsys.readouterr().err
    assert main(["verify", str(MODEL), "--port", "/dev/ttyACM0"]) == 2
    assert "--board" in capsys.readouterr().err
    assert main(["verify", str(MODEL), "--board", BOARD, "--port", str(tmp_path / "no-such-tty")]) == 2
    assert "cannot open the serial port" in capsys.readouterr().err


CONSOLE_BOARDS = [(name, key) for name in known_targets() for key, board in sorted(load_target(name).boards.items())
                  if board.console is not None]


@pytest.mark.parametrize("target_name, board_key", CONSOLE_BOARDS)
def test_every_boards_image_builds_warning_free_with_its_console_driver(tiny_model, tmp_path, target_name,
                                                                         board_key):
    out = tmp_path / "project"
    assert main([str(tiny_model), "--target", target_name, "--board", board_key, "--samples", "1", "-o", str(out)]) == 0
    image = build_image(out)  # -Wall -Wextra -Werror, the board's console registers compiled in
    board = load_target(target_name).board(board_key)
    initial_sp, reset = struct.unpack_from("<II", image.bin.read_bytes())
    assert initial_sp == board.ram_origin + board.ram_bytes
    assert board.flash_origin <= reset < board.flash_origin + board.flash_bytes
    driver = (out / "src" / "board_console.c").read_text()
    assert f"0x{board.console.base:08X}u" in driver and f"CONSOLE_DIVIDER {board.console.divider}u" in driver
