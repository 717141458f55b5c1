"""The comparison point for estimated cycles: an int8 inner loop, costed by the same llvm-mca method.

    .venv/bin/python bench/int8_reference.py [--targets cortex-m7 cortex-m55 ...] [--show]

``bench/int8_reference.c`` holds a small int8 matrix-multiply inner loop written in the style
CMSIS-NN uses on each instruction set (our own code; see its header): MVE on the Cortex-M55
(VLDRB.S8 + VMLADAVA.S8, 4 output channels per loaded input vector, 64 MACs an iteration), DSP
on the Cortex-M4/M7/M33 (SXTB16 weights, int16 activations, SMLAD, 2 channels x 2 columns x
4 depths, 16 MACs), a gemmlowp-style NEON loop on the Cortex-A (CMSIS-NN has no A-profile code;
SMULL/SMLAL2/SADALP, 64 MACs) and CMSIS-NN's portable C on the Cortex-M3 (4 MACs).

:func:`reference` compiles it with the target's compiler and flags, cuts the innermost loop
(the shortest backward branch of the function that holds the loop's multiply-accumulate
instructions) from the object's disassembly, and prices that one block exactly as
``horq_codegen.cycles`` prices a model's blocks: llvm-mca-19, the target's CPU model, the same
copy work-arounds, steady-state cycles per iteration. Cycles per MAC = that / MACs an iteration.

What it is: the inner loop alone, with every load hitting. It leaves out what a whole int8
layer also spends (im2col or the int16 widening of activations for the DSP path, the
requantisation of each output, loop set-up, edges and tails), so "int8 est. cycles" in
bench/run.py (MACs x cycles per MAC) is a lower bound for a CMSIS-NN-like int8 layer, and a
HORQ layer's estimate against it is a conservative ratio.
"""
from __future__ import annotations

import argparse
import functools
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from horq_codegen import cycles  # noqa: E402
from horq_codegen.errors import HorqError  # noqa: E402
from horq_codegen.targets import load_target  # noqa: E402

SOURCE = Path(__file__).with_suffix(".c")
FUNCTION = "int8_reference"

# Which variant a loop is, told by its multiply-accumulate instruction: (name, mnemonics, how many
# of them an iteration holds, MACs an iteration).
VARIANTS = (
    ("MVE (VLDRB.S8 + VMLADAVA.S8, 4 channels x 16 depths)", ("vmladava.s8", "vmlava.s8"), 4, 64),
    ("DSP (SXTB16 + SMLAD, 2 channels x 2 columns x 4 depths)", ("smlad",), 8, 16),
    ("NEON (SMULL/SMLAL2 + SADALP, 4 channels x 16 depths)", ("sadalp",), 4, 64),
    ("portable C (LDRSB + MLA, 2 channels x 2 columns)", ("mla",), 4, 4),
)


@dataclass(frozen=True)
class Int8Reference:
    target: str
    model: str                 # the llvm-mca model, as cycles.McaModel.describe()
    variant: str
    macs_per_iteration: int
    cycles_per_iteration: float
    loop: str                  # the loop body as fed to llvm-mca

    @property
    def cycles_per_mac(self) -> float:
        return self.cycles_per_iteration / self.macs_per_iteration


MAC_MNEMONICS = frozenset(m for _, ops, _, _ in VARIANTS for m in ops)


def innermost_loop(code: dict[int, cycles.Instruction], function: str, thumb: bool) -> list[cycles.Instruction]:
    """The body of the shortest backward branch in ``function`` (branch included) that holds a
    multiply-accumulate (a backward jump into the function's epilogue is no loop of interest)."""
    body = sorted((i for i in code.values() if i.function == function), key=lambda i: i.address)
    loops = sorted((ins.address - target, target, ins.address) for ins in body if cycles.is_branch(ins, thumb)
                   for target in [cycles.branch_target(ins)] if target is not None and target <= ins.address)
    for _, start, end in loops:
        loop = [i for i in body if start <= i.address <= end]
        if any(i.mnemonic in MAC_MNEMONICS for i in loop):
            return loop
    raise HorqError(f"no loop with a multiply-accumulate in {function}")


@functools.lru_cache(maxsize=None)
def reference(target_name: str) -> Int8Reference:
    target = load_target(target_name)
    model = cycles.mca_model(target)
    if model is None:
        raise HorqError(f"{target_name}: no llvm-mca model")
    with tempfile.TemporaryDirectory(prefix="horq-int8-") as tmp:
        obj = Path(tmp) / "int8_reference.o"
        proc = subprocess.run([target.cc, *target.cflags, "-c", str(SOURCE), "-o", str(obj)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise HorqError(f"{target_name}: compiling {SOURCE.name} failed:\n{proc.stderr.strip()}")
        code = cycles.disassemble(obj, model.objdump, model.objdump_flags)
    loop = innermost_loop(code, FUNCTION, model.thumb)
    mnemonics = [i.mnemonic for i in loop]
    for name, macs_ops, per_iteration, macs in VARIANTS:
        found = sum(m in macs_ops for m in mnemonics)
        if found:
            if found != per_iteration:
                raise HorqError(f"{target_name}: the {name} loop has {found} {macs_ops[0]}, expected {per_iteration} "
                                "(did the compiler unroll it?)")
            break
    else:
        raise HorqError(f"{target_name}: no multiply-accumulate in the innermost loop: {mnemonics}")
    text = cycles.block_text(cycles.Block(tuple(loop), 1), model.thumb)
    cost = cycles.Estimator(model).costs([text])[text]
    return Int8Reference(target_name, model.describe(), name, macs, cost.cycles, text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", nargs="+",
                        default=["cortex-m4", "cortex-m7", "cortex-m55", "cortex-m33", "cortex-m3", "cortex-a72"])
    parser.add_argument("--show", action="store_true", help="print each loop body as fed to llvm-mca")
    args = parser.parse_args()
    print(f"{'target':<12}{'cycles/iter':>12}{'MACs/iter':>10}{'cycles/MAC':>11}  variant; model")
    for name in args.targets:
        ref = reference(name)
        print(f"{name:<12}{ref.cycles_per_iteration:>12.2f}{ref.macs_per_iteration:>10}{ref.cycles_per_mac:>11.3f}  "
              f"{ref.variant}; {ref.model}")
        if args.show:
            print("    " + ref.loop.replace("\n", "\n    "))
    print("int8 inner loop only (no im2col, requantisation or edges), every load hitting: llvm-mca's estimate")
    return 0


if __name__ == "__main__":
    sys.exit(main())
