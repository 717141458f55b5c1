"""Estimated cycles of a kernel's loop on an in-order core: llvm-mca on code cut from a build.

    .venv/bin/python bench/mca_loop.py [--shape 32,9,2] [--call]   # the Cortex-M55 popcount core
    .venv/bin/python bench/mca_loop.py --function mve_whole_pairs --word-planes 24 --trips 2 --group-word-planes 72 --call
    .venv/bin/python bench/mca_loop.py --function mve2_groups --word-planes 8 --trips 5 --group-word-planes 72

Executed instructions mislead on the in-order Cortex-M55: a gather's result comes six cycles
late and its offsets are read early, so a loop that feeds each gather straight into the next
instruction stalls. This script builds bench/popcount_rows.py's program for the target (one call
of horq_xor_popcount_rows per shape), disassembles it with llvm-objdump, cuts FUNCTION and feeds
llvm-mca-19 with the target's scheduling model (docs: TOOLCHAIN.md, "Estimated cycles"):

- loop: the body of the function's (first) low-overhead loop, from the target of its `le` to the
  `le`; cycles per iteration / --word-planes (32-bit words times planes one iteration counts);
- group (with --trips): the straight-line path through the function's outer loop once, its
  low-overhead loop unrolled --trips times (what one group of outputs executes), repeated;
  cycles per group / --group-word-planes. This one counts the loop's prologue and epilogue.
- call (--call): the instructions the whole call of horq_xor_popcount_rows executed, in the
  order QEMU executed them (its -d in_asm,exec,nochain log of translation blocks), as one
  block: what a layer pays per call (staging, set-up, every group), divided by
  rows * words * order.

The copy fed to llvm-mca gets the clean-up the cycle estimator gives every block
(horq_codegen.cycles.mca_line, run by cycles.loop_cycles with the target's model, cycles.mca_model):
`le` and `letp` have no M55 data and are left out, `dls`, `dlstp`, `wls`, `wlstp` become a `mov`
to lr, branches go to one label and calls become branches; single-register ldr/str lose their
writeback (llvm-mca 19 crashes on them in the M-profile models). It models no memory system:
every load hits. The figures are estimates for comparing code, not a measurement.
"""
from __future__ import annotations

import argparse
import bisect
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from horq_codegen.cycles import loop_cycles, mca_model, mca_text  # noqa: E402
from horq_codegen.programs import build_program  # noqa: E402
from horq_codegen.targets import load_target  # noqa: E402
from popcount_rows import PROGRAM  # noqa: E402

TARGETS = ("cortex-m55", "cortex-m7")   # the cores the program builds for, each with an llvm-mca model


def disassemble(binary: Path, function: str) -> list[tuple[int, str]]:
    """(address, instruction text) of `function` in `binary`."""
    text = subprocess.run(["llvm-objdump-19", "-d", "--no-show-raw-insn", "--mcpu=cortex-m55", str(binary)],
                          capture_output=True, text=True, check=True).stdout
    lines, inside = [], False
    for line in text.splitlines():
        if re.match(rf"^[0-9a-f]+ <{re.escape(function)}>:$", line):
            inside = True
            continue
        if inside:
            m = re.match(r"^\s*([0-9a-f]+):\s+(.*)$", line)
            if not m:
                break
            lines.append((int(m.group(1), 16), m.group(2).split("@")[0].strip()))
    if not lines:
        raise SystemExit(f"no function {function} in {binary}")
    return lines


def disassemble_all(binary: Path) -> list[tuple[int, str]]:
    """(address, instruction text) of every instruction in `binary`."""
    text = subprocess.run(["llvm-objdump-19", "-d", "--no-show-raw-insn", "--mcpu=cortex-m55", str(binary)],
                          capture_output=True, text=True, check=True).stdout
    out = []
    for line in text.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\s+(.*)$", line)
        if m and not m.group(2).startswith("."):
            out.append((int(m.group(1), 16), m.group(2).split("@")[0].strip()))
    return out


def _le_target(ins: str) -> int | None:
    m = re.match(r"^le(?:tp)?\s+(?:lr,\s*)?0x([0-9a-f]+)", ins)
    return int(m.group(1), 16) if m else None


def cut_loop(lines: list[tuple[int, str]]) -> list[str]:
    """The body of the first low-overhead loop (target of `le` .. the `le`)."""
    for address, ins in lines:
        start = _le_target(ins)
        if start is not None:
            return [i for a, i in lines if start <= a < address]
    raise SystemExit("no le loop in the function")


def cut_group(lines: list[tuple[int, str]], trips: int, which: int = -1) -> list[str]:
    """One pass through an outer loop (from the target of a backward conditional branch to the
    branch; `which`: the index among them in address order, by default the last), the `le` loop
    inside it unrolled `trips` times."""
    outers = []
    for address, ins in lines:
        m = re.match(r"^b(?:ne|eq|cs|cc|hi|ls|ge|lt|gt|le)(?:\.w|\.n)?\s+0x([0-9a-f]+)", ins)
        if m and int(m.group(1), 16) < address:
            outers.append((int(m.group(1), 16), address))
    if not outers:
        raise SystemExit("no outer loop in the function")
    outer = outers[which]
    body = [(a, i) for a, i in lines if outer[0] <= a < outer[1]]
    out: list[str] = []
    for address, ins in body:
        start = _le_target(ins)
        if start is not None:
            loop = [i for a, i in body if start <= a < address]
            out.extend(loop * (trips - 1))  # the body went out once already
        else:
            out.append(ins)
    return out


def executed_call(binary: Path, machine: str, lines: dict[int, str], function: str,
                  nm: str) -> list[str]:
    """The instructions executed from the first entry into `function` to the next call of
    horq_bench_mark, from QEMU's log of the translation blocks it ran."""
    symbols = {}
    for line in subprocess.run([nm, str(binary)], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3:
            symbols[parts[2]] = int(parts[0], 16) & ~1
    with tempfile.TemporaryDirectory(prefix="horq-trace-") as tmp:
        log = Path(tmp) / "qemu.log"
        subprocess.run(["qemu-system-arm", "-M", machine, "-nographic", "-semihosting-config",
                        "enable=on,target=native", "-kernel", str(binary), "-d", "in_asm,exec,nochain",
                        "-D", str(log)], capture_output=True, timeout=120, check=True)
        text = log.read_text(errors="replace")
    blocks: dict[int, list[int]] = {}
    current: list[int] | None = None
    order: list[int] = []
    for line in text.splitlines():
        if line.startswith("IN:"):
            current = []
        elif current is not None and re.match(r"^0x[0-9a-f]+:", line):
            current.append(int(line.split(":")[0], 16))
        elif line.startswith("Trace"):
            if current:
                blocks.setdefault(current[0], current)
            current = None
            order.append(int(line.split("[")[1].split("/")[1], 16))
    # QEMU's own disassembler splits MVE instructions into halfwords; a block is taken as
    # the instructions of our disassembly from its first address to its last one listed
    addresses = sorted(lines)
    start, mark = symbols[function], symbols["horq_bench_mark"]
    trace, inside = [], False
    for pc in order:
        if pc == start:
            inside = True
        elif inside and pc == mark:
            break
        if inside and pc in blocks:
            first, last = bisect.bisect_left(addresses, pc), bisect.bisect_right(addresses, max(blocks[pc]))
            trace.extend(lines[a] for a in addresses[first:last])
    return trace


def build(target_name: str, shape: tuple[int, int, int], tmp: Path) -> Path:
    target = load_target(target_name)
    rows, words, order = shape
    main = tmp / "main.c"
    main.write_text(PROGRAM)
    sizes = [f"-DSHAPES={{{rows},{words},{order}}}", f"-DMAX_WEIGHTS={rows * words}",
             f"-DMAX_PLANES={words * order}", f"-DMAX_OUT={rows * order}"]
    return build_program(target, main, ["horq_popcount.c"], tmp / f"mca-{target_name}", sizes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="cortex-m55", choices=TARGETS)
    parser.add_argument("--shape", default="32,9,2", metavar="ROWS,WORDS,ORDER",
                        help="the call the program makes (default: conv_a's, 32,9,2)")
    parser.add_argument("--function", help="the function to cut (default: the M55 core of the shape's "
                        "order, mve2_groups or mve1_groups, as loop and as group)")
    parser.add_argument("--word-planes", type=float, help="word-planes one loop iteration counts")
    parser.add_argument("--trips", type=int, help="also the whole group: the loop unrolled this many times")
    parser.add_argument("--group-word-planes", type=float, help="word-planes one group counts")
    parser.add_argument("--outer", type=int, default=-1,
                        help="which outer loop is the group, in address order (default -1: the last; the "
                        "M55 core's last is the one that stores, the first the one that adds to stored counts)")
    parser.add_argument("--call", action="store_true",
                        help="also the whole call of horq_xor_popcount_rows, as executed (QEMU's trace)")
    parser.add_argument("--show", action="store_true", help="print the code given to llvm-mca")
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    if args.function is None:  # the default: the M55 core of the shape's order (1 or 2)
        rows, words, order = shape
        args.function, args.word_planes = ("mve2_groups", 8) if order == 2 else ("mve1_groups", 8)
        args.trips, args.group_word_planes = (words - 4 if order == 2 else words - 3), 8 * words
    target = load_target(args.target)
    model = mca_model(target)
    with tempfile.TemporaryDirectory(prefix="horq-mca-") as tmp:
        binary = build(args.target, shape, Path(tmp))
        lines = disassemble(binary, args.function)
        if args.call:
            everything = {a: i for a, i in disassemble_all(binary)}
            call = executed_call(binary, target.emulator["machine"], everything,
                                 "horq_xor_popcount_rows", target.emulator["nm"])
    loop = cut_loop(lines)
    if args.show:
        print(mca_text(loop, model.thumb) + "\n")
    cycles, _ = loop_cycles(loop, model, 200)
    print(f"{args.function} loop: {cycles:.2f} cycles per iteration"
          + (f", {cycles / args.word_planes:.3f} per word-plane" if args.word_planes else ""))
    if args.trips:
        group = cut_group(lines, args.trips, args.outer)
        if args.show:
            print(mca_text(group, model.thumb) + "\n")
        cycles, _ = loop_cycles(group, model, 50)
        print(f"{args.function} group (loop x {args.trips}): {cycles:.1f} cycles"
              + (f", {cycles / args.group_word_planes:.3f} per word-plane" if args.group_word_planes else ""))
    if args.call:
        if args.show:
            print(mca_text(call, model.thumb) + "\n")
        cycles, _ = loop_cycles(call, model, 1)
        rows, words, order = shape
        print(f"whole call ({len(call)} instructions executed): {cycles:.0f} cycles, "
              f"{cycles / (rows * words * order):.3f} per word-plane")
    return 0


if __name__ == "__main__":
    sys.exit(main())
