"""Estimated Cortex-M7 cycles per binary MAC of the DSP XOR-popcount loops, against an int8 SMLAD loop.

    PYTHONPATH=. .venv/bin/python bench/mca_loop_m7.py [--cpu cortex-m7] [--show NAME]

Compiles templates/kernels/horq_popcount.c with the target's flags, cuts the row loop of the
shape-specialised kernels for a 3x3 convolution of 32 channels (nine words a row: order 1,
dsp1_3_row_pairs, two rows an iteration, and dsp1_3, which counts the last row of an odd count;
order 2, dsp2_3, two planes) out of ``arm-none-eabi-objdump -d``, and feeds it to
``llvm-mca-19`` with the target's model (horq_codegen.cycles.loop_cycles; its Cortex-M7 model: dual
issue, in order; no memory system, no branch cost: an estimate for relative figures).

The reference is the project's int8 one, bench/int8_reference.py's cycles per MAC for the target
(bench/int8_reference.c compiled with the target's flags and priced by the cycle estimator; our own
code, not CMSIS): on the DSP cores two output channels by two im2col columns, four int8 weights a
load widened with SXTB16 and SXTB16 ROR 8 and put back in depth order with PKHBT/PKHTB (CMSIS-NN's
read_and_pad, as arm_nn_mat_mult_kernel_s8_s16 uses it), 16-bit activations two a load, eight
SMLADs for 16 MACs. Its loop is GCC's, as int8_reference.py prints it with --show.

Printed: cycles per loop iteration, MACs per iteration, cycles per MAC, IPC, and the ratio to the
reference's cycles per MAC. The copy fed to llvm-mca gets the estimator's clean-up
(horq_codegen.cycles.mca_line): llvm-mca 19 crashes on single-register ldr/str with writeback in
the M-profile models, so the writeback is dropped (the cycle count barely changes).
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from horq_codegen.cycles import loop_cycles, mca_model, mca_text  # noqa: E402
from horq_codegen.targets import load_target  # noqa: E402
from int8_reference import reference  # noqa: E402

KERNELS = ROOT / "templates" / "kernels"

# (label, function, binary MACs per row-loop iteration: rows x 9 words x 32 bits x planes, order)
LOOPS = (("HORQ order 1 (dsp1_3_row_pairs)", "dsp1_3_row_pairs", 2 * 9 * 32, 1),
         ("HORQ order 1 (dsp1_3, odd row)", "dsp1_3", 9 * 32, 1),
         ("HORQ order 2 (dsp2_3)", "dsp2_3", 9 * 32 * 2, 2))


def _function(objdump: str, name: str) -> list[tuple[int, str]]:
    """(address, instruction text) of one function in ``objdump -d --no-show-raw-insn`` output."""
    lines, inside = [], False
    for line in objdump.splitlines():
        if re.match(rf"^[0-9a-f]+ <{re.escape(name)}>:$", line):
            inside = True
            continue
        if inside:
            m = re.match(r"^\s+([0-9a-f]+):\s+(.*)$", line)
            if not m:
                if lines:
                    break
                continue
            lines.append((int(m.group(1), 16), m.group(2).split("@")[0].strip()))
    if not lines:
        raise SystemExit(f"{name} not found")
    return lines


def _innermost_loop(code: list[tuple[int, str]], outermost: bool = False) -> list[str]:
    """The instructions from a backward branch's target to the branch: the shortest such range
    (the innermost loop), or the longest."""
    loops = []
    for i, (addr, text) in enumerate(code):
        m = re.match(r"^b(ne|eq|lt|gt|le|ge|cc|cs|hi|ls|mi|pl)?(\.[nw])?\s+([0-9a-f]+)\b", text)
        if m and int(m.group(3), 16) <= addr:
            start = next(j for j, (a, _) in enumerate(code) if a == int(m.group(3), 16))
            loops.append(code[start:i + 1])
    if not loops:
        raise SystemExit("no loop found")
    loop = (max if outermost else min)(loops, key=len)
    return [text for _, text in loop]


def build(target_name: str, work: Path) -> str:
    target = load_target(target_name)
    flags = [f for f in target.cflags if not f.startswith("-DHORQ_SEMIHOSTING")]
    obj = work / "horq_popcount.o"
    subprocess.run([target.cc, *flags, f"-I{KERNELS}", "-c", str(KERNELS / "horq_popcount.c"), "-o", str(obj)],
                   check=True)
    return subprocess.run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", str(obj)],
                          capture_output=True, text=True, check=True).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="cortex-m7", help="whose flags build the kernels (default cortex-m7)")
    parser.add_argument("--cpu", help="llvm-mca's -mcpu (default: the target's model, cortex-m7's for cortex-m7)")
    parser.add_argument("--show", metavar="FUNCTION", help="print the loop fed to llvm-mca for this function")
    args = parser.parse_args()
    model = mca_model(load_target(args.target))
    if args.cpu:
        model = dataclasses.replace(model, cpu=args.cpu)
    with tempfile.TemporaryDirectory(prefix="horq-mca-") as tmp:
        objdump = build(args.target, Path(tmp))
    if args.show:
        loop = _innermost_loop(_function(objdump, args.show), outermost=args.show.startswith("dsp"))
        print(mca_text(loop, model.thumb))
        return 0
    ref = reference(args.target)
    ref_lines = ref.loop.splitlines()
    if model.cpu == mca_model(load_target(args.target)).cpu:
        ref_cycles = ref.cycles_per_iteration
        ref_ipc = len(ref_lines) / ref_cycles   # llvm-mca's IPC: instructions / cycles
    else:   # --cpu: the reference's loop on the same model as the HORQ loops
        ref_cycles, ref_ipc = loop_cycles(ref_lines, model)
    ref_per_mac = ref_cycles / ref.macs_per_iteration
    rows = [("int8 reference (int8_reference.c)", len(ref_lines), ref_cycles, ref.macs_per_iteration, ref_per_mac,
             ref_ipc, None)]
    for label, name, macs, order in LOOPS:
        if f"<{name}>:" not in objdump:
            continue
        loop = _innermost_loop(_function(objdump, name), outermost=True)
        cycles, ipc = loop_cycles(loop, model)
        rows.append((label, len(loop), cycles, macs, cycles / macs, ipc, order))
    print(f"{'loop':<34} {'instr':>5} {'cycles/iter':>11} {'MACs/iter':>9} {'cycles/MAC':>10} {'IPC':>5}  "
          "int8 reference / HORQ per layer MAC (order x binary MACs)")
    for label, count, cycles, macs, per_mac, ipc, order in rows:
        ratio = "" if order is None else f"{ref_per_mac / (order * per_mac):.1f}x"
        print(f"{label:<34} {count:>5} {cycles:>11.2f} {macs:>9} {per_mac:>10.4f} {ipc:>5.2f}  {ratio}")
    print(f"(ratio against: bench/int8_reference.py, {ref.variant}; {model.describe()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
