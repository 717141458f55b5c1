"""Estimated Cortex-M7 cycles per binary MAC of the DSP XOR-popcount loops, against an int8 SMLAD loop.

    PYTHONPATH=. .venv/bin/python bench/mca_loop_m7.py [--cpu cortex-m7] [--show NAME]

Compiles templates/kernels/horq_popcount.c with the target's flags, cuts the row loop of the
shape-specialised kernels for a 3x3 convolution of 32 channels (nine words a row: order 1,
dsp1_3_row_pairs, two rows an iteration, and dsp1_3, which counts the last row of an odd count;
order 2, dsp2_3, two planes) out of ``arm-none-eabi-objdump -d``, and feeds it to
``llvm-mca-19`` (its Cortex-M7 model: dual issue, in order; no memory system, no branch cost: an
estimate for relative figures). The reference is our own CMSIS-NN-style int8 inner loop (REFERENCE
below, not CMSIS code): two output channels by two im2col columns, four int8 weights a load widened
with SXTB16 (the "reordered" read, no PKHBT/PKHTB: the cheapest variant), 16-bit activations two a
load, eight SMLADs for 16 MACs.

Printed: cycles per loop iteration, MACs per iteration, cycles per MAC, IPC, and the ratio to the
reference's cycles per MAC. llvm-mca 19 crashes on single-register ldr/str with writeback in the
M-profile models: the copy fed to it drops the writeback (the cycle count barely changes).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from horq_codegen.targets import load_target  # noqa: E402

KERNELS = ROOT / "templates" / "kernels"

# Two output channels x two columns, 4 input channels an iteration: 16 MACs. WIDEN_REORDERED is
# the cheapest read of four weights (the im2col columns reordered to match: even and odd bytes);
# WIDEN_PKH is CMSIS-NN's read_and_pad (natural order: two more PKHTB/PKHBT a load).
REFERENCE = r"""
#include <stdint.h>

#define WIDEN_REORDERED(W, T, A_EVEN, A_ODD)                                                    \
    "sxtb16 " A_EVEN ", " W "\n\t"                                                              \
    "sxtb16 " A_ODD ", " W ", ror #8\n\t"
#define WIDEN_PKH(W, T, A_EVEN, A_ODD)                                                          \
    "sxtb16 " T ", " W ", ror #8\n\t"                                                           \
    "sxtb16 " W ", " W "\n\t"                                                                   \
    "pkhtb " A_ODD ", " T ", " W ", asr #16\n\t"                                                \
    "pkhbt " A_EVEN ", " W ", " T ", lsl #16\n\t"

/* In assembly, as armclang compiles CMSIS-NN's loop (GCC 12 neither folds the ror into
 * sxtb16 nor keeps the counter in a register). The second weight row and the second
 * column are reached by offset (CMSIS-NN keeps four pointers: the same instructions). */
#define REFERENCE_LOOP(NAME, WIDEN)                                                             \
void NAME(const int8_t *w0, const int16_t *c0, int32_t n, int32_t *out)                        \
{                                                                                               \
    int32_t s00 = 0, s01 = 0, s10 = 0, s11 = 0;                                                 \
    __asm__ volatile(                                                                           \
        "1:\n\t"                                                                                \
        "ldr r5, [%[w0], #288]\n\t"                                                             \
        "ldr r4, [%[w0]], #4\n\t"                                                               \
        "ldr r7, [%[c0], #576]\n\t"                                                             \
        "ldr r6, [%[c0]], #4\n\t"                                                               \
        WIDEN("r4", "r8", "r4", "lr")                                                           \
        WIDEN("r5", "r8", "r5", "r9")                                                           \
        "smlad %[s00], r4, r6, %[s00]\n\t"                                                      \
        "smlad %[s01], r4, r7, %[s01]\n\t"                                                      \
        "smlad %[s10], r5, r6, %[s10]\n\t"                                                      \
        "smlad %[s11], r5, r7, %[s11]\n\t"                                                      \
        "ldr r7, [%[c0], #576]\n\t"                                                             \
        "ldr r6, [%[c0]], #4\n\t"                                                               \
        "smlad %[s00], lr, r6, %[s00]\n\t"                                                      \
        "smlad %[s01], lr, r7, %[s01]\n\t"                                                      \
        "smlad %[s10], r9, r6, %[s10]\n\t"                                                      \
        "smlad %[s11], r9, r7, %[s11]\n\t"                                                      \
        "subs %[n], %[n], #1\n\t"                                                               \
        "bne 1b\n\t"                                                                            \
        : [w0] "+r"(w0), [c0] "+r"(c0), [n] "+r"(n),                                            \
          [s00] "+r"(s00), [s01] "+r"(s01), [s10] "+r"(s10), [s11] "+r"(s11)                    \
        :                                                                                       \
        : "r4", "r5", "r6", "r7", "r8", "r9", "lr", "cc", "memory");                            \
    out[0] = s00, out[1] = s01, out[2] = s10, out[3] = s11;                                     \
}
REFERENCE_LOOP(int8_ref_reordered, WIDEN_REORDERED)
REFERENCE_LOOP(int8_ref_pkh, WIDEN_PKH)
"""
REFERENCES = (("int8 SMLAD, read_and_pad (PKH)", "int8_ref_pkh"),
              ("int8 SMLAD, reordered", "int8_ref_reordered"))
REFERENCE_MACS = 16

# (label, function, binary MACs per row-loop iteration: rows x 9 words x 32 bits x planes, order)
LOOPS = (("HORQ order 1 (dsp1_3_row_pairs)", "dsp1_3_row_pairs", 2 * 9 * 32, 1),
         ("HORQ order 1 (dsp1_3, odd row)", "dsp1_3", 9 * 32, 1),
         ("HORQ order 2 (dsp2_3)", "dsp2_3", 9 * 32 * 2, 2))

_WRITEBACK_POST = re.compile(r"^(ldr|str)(\w*)(\.w)?\s+(\w+),\s*\[(\w+)\],\s*#-?\d+$")
_WRITEBACK_PRE = re.compile(r"^(ldr|str)(\w*)(\.w)?\s+(\w+),\s*\[(\w+)(,\s*#-?\d+)?\]!$")


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
    return [_for_mca(text) for _, text in loop]


def _for_mca(text: str) -> str:
    text = re.sub(r"^(b\w*?)(\.[nw])?\s+[0-9a-f]+\s*<.*>$", r"\1 .Lloop", text)
    for pattern in (_WRITEBACK_POST, _WRITEBACK_PRE):
        m = pattern.match(text)
        if m:
            op, cond, wide, reg, base = m.group(1), m.group(2), m.group(3) or "", m.group(4), m.group(5)
            offset = m.group(6) if pattern is _WRITEBACK_PRE and m.group(6) else ""
            return f"{op}{cond}{wide} {reg}, [{base}{offset}]"
    return text


def mca(instructions: list[str], cpu: str) -> tuple[float, float]:
    """(cycles per iteration, IPC) from llvm-mca over 200 iterations."""
    source = "\t.syntax unified\n\t.thumb\n.Lloop:\n" + "".join(f"\t{t}\n" for t in instructions)
    out = subprocess.run(["llvm-mca-19", "-mtriple=thumbv7em-none-eabihf", f"-mcpu={cpu}", "-iterations=200"],
                         input=source, capture_output=True, text=True, check=True).stdout
    cycles = int(re.search(r"Total Cycles:\s+(\d+)", out).group(1))
    ipc = float(re.search(r"IPC:\s+([\d.]+)", out).group(1))
    return cycles / 200, ipc


def build(target_name: str, work: Path) -> str:
    target = load_target(target_name)
    flags = [f for f in target.cflags if not f.startswith("-DHORQ_SEMIHOSTING")]
    ref = work / "int8_ref.c"
    ref.write_text(REFERENCE)
    text = ""
    for source in (KERNELS / "horq_popcount.c", ref):
        obj = work / (source.stem + ".o")
        subprocess.run([target.cc, *flags, f"-I{KERNELS}", "-c", str(source), "-o", str(obj)], check=True)
        text += subprocess.run(["arm-none-eabi-objdump", "-d", "--no-show-raw-insn", str(obj)],
                               capture_output=True, text=True, check=True).stdout
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="cortex-m7", help="whose flags build the kernels (default cortex-m7)")
    parser.add_argument("--cpu", default="cortex-m7", help="llvm-mca's -mcpu (default cortex-m7)")
    parser.add_argument("--show", metavar="FUNCTION", help="print the loop fed to llvm-mca for this function")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="horq-mca-") as tmp:
        objdump = build(args.target, Path(tmp))
    if args.show:
        print("\n".join(_innermost_loop(_function(objdump, args.show), outermost=args.show.startswith("dsp"))))
        return 0
    rows, refs = [], []
    for label, name in REFERENCES:
        loop = _innermost_loop(_function(objdump, name))
        cycles, ipc = mca(loop, args.cpu)
        refs.append(cycles / REFERENCE_MACS)
        rows.append((label, len(loop), cycles, REFERENCE_MACS, cycles / REFERENCE_MACS, ipc, None))
    for label, name, macs, order in LOOPS:
        if f"<{name}>:" not in objdump:
            continue
        loop = _innermost_loop(_function(objdump, name), outermost=True)
        cycles, ipc = mca(loop, args.cpu)
        rows.append((label, len(loop), cycles, macs, cycles / macs, ipc, order))
    print(f"{'loop':<34} {'instr':>5} {'cycles/iter':>11} {'MACs/iter':>9} {'cycles/MAC':>10} {'IPC':>5}  "
          "int8 reference / HORQ per layer MAC (order x binary MACs)")
    for label, count, cycles, macs, per_mac, ipc, order in rows:
        ratios = "" if order is None else "  ".join(f"{r / (order * per_mac):.1f}x" for r in refs)
        print(f"{label:<34} {count:>5} {cycles:>11.2f} {macs:>9} {per_mac:>10.4f} {ipc:>5.2f}  {ratios}")
    print("(ratios against: " + ", ".join(label for label, _ in REFERENCES) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
