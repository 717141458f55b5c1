"""Verify the board image itself: the firmware a user flashes, run in QEMU where QEMU models the board's MCU,
or on the board through its serial port; its UART block compared with the reference and PyTorch."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .. import fit
from ..errors import HorqError
from ..importer import ImportedModel
from ..ir import Graph
from ..memory import plan_memory
from ..pipeline import Lowering, generate_project, load_and_lower
from ..samples import UserData, pick_samples
from ..targets import Board, Target, load_target
from ..verify import VerifyReport, compare_with_model
from .image import BoardImage, build_image, flash, read_from_port, run_in_qemu
from .protocol import BoardBlock, inputs_crc32
from .serial_link import ReadLimits


@dataclass(frozen=True)
class BoardOptions:
    board: str
    port: str | None = None       # a board's serial port; None: run the image in QEMU
    flash: bool = False           # flash each image through PlatformIO before reading the port
    limits: ReadLimits = ReadLimits()


def _board_for(target: Target, options: BoardOptions) -> Board:
    if target.kind != "cortex-m":
        raise HorqError(f"--board runs a board image; target {target.name} has no boards")
    board = target.board(options.board)
    if board.console is None:
        raise HorqError(f"{board.name} has no console UART in targets/{target.name}.toml: its image has nowhere "
                        "to print")
    if options.flash and options.port is None:
        raise HorqError("--flash needs --port: the board's serial port, which the verify then reads")
    if options.port is None and not board.runs_in_qemu:
        raise HorqError(f"QEMU does not model the {board.mcu or 'MCU'} ({board.mcu_family or 'unknown family'}) "
                        f"of {board.name}, so its image cannot run here: verify on the board itself with "
                        f"--port (e.g. --port /dev/ttyACM0), adding --flash to flash it first")
    return board


def _check_block(block: BoardBlock, model: ImportedModel, inputs: np.ndarray, output_size: int, where: str) -> None:
    header = block.header
    if header.sha256 != model.file.sha256[:16]:
        raise HorqError(f"{where} runs the image of another model (sha256 {header.sha256}..., this model's is "
                        f"{model.file.sha256[:16]}...): flash this model's image (--flash)")
    if header.samples != len(inputs) or header.inputs_crc32 != inputs_crc32(inputs):
        raise HorqError(f"{where} holds other test inputs than this verify chose ({header.samples} samples, "
                        f"inputs-crc32 {header.inputs_crc32:08x}, expected {len(inputs)} with "
                        f"{inputs_crc32(inputs):08x}): pass the --samples and --inputs the image was generated "
                        "with, or --flash")
    if header.outputs != output_size:
        raise HorqError(f"{where} prints {header.outputs} outputs a sample; the model has {output_size}")


def _cycles_note(blocks: list[BoardBlock], graph: Graph, where_qemu: bool) -> list[str]:
    cycles = np.concatenate([b.cycles for b in blocks])
    if not cycles.any():
        reason = "QEMU's DWT cycle counter reads 0" if where_qemu else "the board's DWT cycle counter reads 0"
        return [f"  cycles         : none ({reason}; on a real board the image prints cycles per layer)"]
    median = np.median(cycles, axis=0)
    names = [n.name for n in graph.nodes]
    per_layer = ", ".join(f"{name} {int(c):,}" for name, c in zip(names, median))
    return [f"  cycles         : {int(np.median(cycles.sum(axis=1))):,} per inference (median, DWT at the reset "
            f"clock); per layer: {per_layer}"]


def verify_board_graph(model: ImportedModel, graph: Graph, target: Target, board: Board, options: BoardOptions,
                       requested: int | None, user: UserData | None, work_dir: Path,
                       progress: Callable[[str], None]) -> VerifyReport:
    plan = plan_memory(graph)
    output_size = int(np.prod(graph.shape_of(graph.output)))
    blocks: list[BoardBlock] = []
    images: list[BoardImage] = []
    if options.port is not None and not options.flash:
        # The board holds whatever image was flashed: read it first, then pick the same inputs it embeds.
        block = read_from_port(options.port, board, options.limits, progress)
        if requested is not None and requested != block.header.samples:
            raise HorqError(f"{options.port} holds an image with {block.header.samples} samples, not --samples "
                            f"{requested}: drop --samples, or add --flash to flash an image with {requested}")
        samples = pick_samples(model, block.header.samples, user)
        _check_block(block, model, samples.inputs, output_size, options.port)
        blocks.append(block)
    else:
        samples = pick_samples(model, requested, user)
        chunk = fit.max_samples_for_board(graph, plan, target, board)
        for start in range(0, len(samples.inputs), chunk):
            batch = samples.inputs[start:start + chunk]
            generated = generate_project(model, graph, target, work_dir / f"board-{start}", batch, board=board.key)
            image = build_image(generated.out_dir)
            images.append(image)
            if options.port is None:
                progress(f"running {image.bin.name} ({image.size:,} bytes) in QEMU {board.qemu_machine} ...")
                block = run_in_qemu(image, board, progress=progress)
                where = f"QEMU {board.qemu_machine}"
            else:
                flash(generated.out_dir, image, board, progress)
                block = read_from_port(options.port, board, options.limits, progress)
                where = options.port
            _check_block(block, model, batch, output_size, where)
            blocks.append(block)
    comparison = compare_with_model(model, graph, samples, np.concatenate([b.outputs for b in blocks]))
    ran = f"QEMU {board.qemu_machine} ({board.mcu_family} model)" if options.port is None else options.port
    notes = [f"  board          : {board.name} ({board.mcu}), console {board.console.peripheral} on "
             f"{board.console.tx_pin} at {board.console.baud} baud, read from {ran}"]
    for image in images:
        notes.append(f"  board image    : {image.bin.name}, {image.size:,} bytes, sha256 {image.sha256[:16]}..."
                     + (" (as flashed)" if options.flash else ""))
    notes.extend(_cycles_note(blocks, graph, options.port is None))
    return VerifyReport(model.file.path, f"{target.name} / {board.key}", samples, comparison, plan.arena_bytes,
                        tuple(notes))


def verify_on_board(model_path: str | Path, target_name: str, options: BoardOptions, samples: int | None = None, *,
                    keep: Path | None = None, input_shape: tuple[int, ...] | None = None,
                    user: UserData | None = None, progress: Callable[[str], None] = lambda line: None,
                    lowering: Lowering = Lowering()) -> VerifyReport:
    target = load_target(target_name)
    board = _board_for(target, options)  # every refusal before the model loads
    model, graph = load_and_lower(model_path, input_shape, lowering)
    where = options.port or f"QEMU {board.qemu_machine}"
    progress(f"verifying {model_path} on {board.name} ({where}) ...")
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return verify_board_graph(model, graph, target, board, options, samples, user, keep, progress)
    with tempfile.TemporaryDirectory(prefix="horq-verify-board-") as tmp:
        return verify_board_graph(model, graph, target, board, options, samples, user, Path(tmp), progress)
