"""Does a generated firmware fit its board? An estimate made before anything is compiled.

Flash holds the model's constants (weights, scales, kernel parameters), the
embedded test inputs and the code; RAM holds the arena, the stack, the harness's
input and output buffers and the C library's own data. The code and library
figures are allowances measured on the generated firmware (arm-none-eabi-gcc 12,
-O2, newlib with semihosting printf: about 50 KB of code on Cortex-M7, whose
shape-specialised assembly kernels are the largest, 42 KB on Cortex-M55, and 3 KB
of data); ``horq-codegen bench`` reports the exact sizes read from the ELF.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import HorqError
from .ir import Graph, Op, emitted_params
from .memory import MemoryPlan
from .targets import Board, Target, known_targets, load_target

CODE_ALLOWANCE = 56 * 1024
LIBRARY_RAM_ALLOWANCE = 4 * 1024


@dataclass(frozen=True)
class Footprint:
    flash: int
    ram: int


def model_constant_bytes(graph: Graph) -> int:
    return sum(int(v.nbytes) for n in graph.nodes for v in emitted_params(n).values())


def estimate(graph: Graph, plan: MemoryPlan, target: Target, samples: int) -> Footprint:
    sample_bytes = 4 * int(np.prod(graph.input_shape))
    output_bytes = 4 * int(np.prod(graph.shape_of(graph.output)))
    flash = model_constant_bytes(graph) + samples * sample_bytes + CODE_ALLOWANCE
    # The harness copies each test input into RAM (model_run's input) and keeps one output.
    ram = (plan.arena_bytes + target.memory.get("stack_size", 0) + sample_bytes + output_bytes
           + LIBRARY_RAM_ALLOWANCE)
    return Footprint(flash, ram)


def check_fit(footprint: Footprint, where: str, flash_bytes: int, ram_bytes: int) -> None:
    problems = []
    if footprint.flash > flash_bytes:
        problems.append(f"flash: needs about {footprint.flash:,} bytes, has {flash_bytes:,}")
    if footprint.ram > ram_bytes:
        problems.append(f"RAM: needs about {footprint.ram:,} bytes, has {ram_bytes:,}")
    if problems:
        raise HorqError(f"the model does not fit {where} ({'; '.join(problems)})")


def _float_stream(graph: Graph) -> bool:
    """An integer-mode graph whose residual stream is float (``--residual-stream float``)."""
    integer = any(n.dtype != "f32" for n in graph.nodes)
    return integer and any(n.op == Op.ADD and n.dtype == "f32" for n in graph.nodes)


def check_board(graph: Graph, plan: MemoryPlan, target: Target, board: Board | None, samples: int) -> None:
    if board is None:
        return
    try:
        check_fit(estimate(graph, plan, target, samples), board.name, board.flash_bytes, board.ram_bytes)
    except HorqError as exc:
        if _float_stream(graph):
            raise HorqError(f"{exc}; its residual stream is float: --residual-stream int8 makes it int8, "
                            "a smaller arena at some accuracy") from None
        raise


def max_samples_for_emulator(graph: Graph, plan: MemoryPlan, target: Target) -> int:
    """How many test inputs one firmware image can embed in the emulator's memory map."""
    if not target.memory:
        return 1 << 30
    base = estimate(graph, plan, target, 0)
    check_fit(base, f"the {target.emulator.get('machine', target.name)} emulator",
              target.memory["flash_size"], target.memory["ram_size"])
    sample_bytes = 4 * int(np.prod(graph.input_shape))
    return max(1, (target.memory["flash_size"] - base.flash) // sample_bytes)


def max_samples_for_board(graph: Graph, plan: MemoryPlan, target: Target, board: Board) -> int:
    """How many test inputs one board image can embed in the board's flash."""
    base = estimate(graph, plan, target, 0)
    check_fit(base, board.name, board.flash_bytes, board.ram_bytes)
    sample_bytes = 4 * int(np.prod(graph.input_shape))
    return max(1, (board.flash_bytes - base.flash) // sample_bytes)


def largest_boards() -> tuple[Board, Board]:
    """The board with the most flash and the one with the most RAM, over every target."""
    boards = [b for name in known_targets() for b in load_target(name).boards.values()]
    return max(boards, key=lambda b: b.flash_bytes), max(boards, key=lambda b: b.ram_bytes)


def check_any_target(graph: Graph, plan: MemoryPlan) -> None:
    """Refuses a model that no target could hold, before anything is written or run."""
    most_flash, most_ram = largest_boards()
    if plan.arena_bytes > most_ram.ram_bytes:
        raise HorqError(f"the model needs an arena of {plan.arena_bytes:,} bytes for its activations, more than any "
                        f"target holds (the most, {most_ram.name}, has {most_ram.ram_bytes:,} bytes of RAM)")
    constants = model_constant_bytes(graph)
    if constants > most_flash.flash_bytes:
        raise HorqError(f"the model's weights take {constants:,} bytes, more than any target holds "
                        f"(the most, {most_flash.name}, has {most_flash.flash_bytes:,} bytes)")
