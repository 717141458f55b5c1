"""Estimated cycles: llvm-mca's scheduling model applied to the basic blocks a run executed.

QEMU counts instructions exactly but knows nothing of time. This module turns a run's
per-address execution counts into a cycle estimate, the way one would by hand with llvm-mca:

1. The counting plugin's ``segments=`` profile gives, for each stretch between two layer
   marks, how often each instruction address executed (``emulator.read_segments``).
2. The firmware is disassembled with the target's objdump and the executed addresses are cut
   into basic blocks: a block is a run of consecutive instructions of one function with the same
   execution count, cut after every branch-class instruction (anything that may write the PC)
   and before every direct branch target. An IT block is never cut (its instructions belong to
   its ``it``).
3. Each distinct block text is fed to ``llvm-mca-19`` for the target's CPU model, many blocks
   per invocation (``# LLVM-MCA-BEGIN``/``END`` regions), and its steady-state cost is read as
   Total Cycles / Iterations over ``ITERATIONS`` back-to-back iterations of the block. Results
   are cached on disk per model and block text.
4. A stretch's estimate is the sum over its blocks of cycles per iteration x executions.

What the figure is: a model's estimate, not a board's measurement. llvm-mca models the
pipeline (issue width, latencies, functional units) of an in-order or out-of-order core as
LLVM's scheduling model describes it; it models no memory system (every load hits its
fastest level: TCM on a Cortex-M, L1 on a Cortex-A), no branch cost (no misprediction, no
taken-branch refill), no dependencies between different blocks (each is simulated as a loop
of itself, which is exact for a single-block hot loop and optimistic for straight-line code),
and no interrupts. It is meant for relative figures: one build against another, HORQ against
an int8 loop on the same model.

Copies fed to llvm-mca differ from the binary in a few documented places, all for llvm-mca 19
limits (see ``mca_line``): single-register ``ldr``/``str`` with writeback lose the writeback
(llvm-mca crashes on the 32-bit encodings in the M-profile models); calls (``bl``, ``blx``,
``blr``) become plain branches (llvm-mca assumes 100 cycles for a call); the Armv8.1-M
low-overhead-loop instructions have no Cortex-M55 scheduling data: ``le`` and ``letp`` are
left out (after its first iteration a low-overhead loop branches back at no cost, which is
what the instructions are for) and ``dls``, ``dlstp``, ``wls``, ``wlstp`` become a ``mov`` to
``lr``. GNU objdump's ``.w`` suffix is dropped (LLVM refuses it on some instructions). An
instruction llvm-mca still cannot schedule (e.g. ``it`` on the Cortex-M7 model) is dropped
from the block and counted in :attr:`Estimate.dropped_instructions`; executed code outside
the disassembly, or a block llvm-mca fails on, is estimated at one cycle an instruction and
counted in :attr:`Estimate.fallback_instructions`.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import HorqError

MCA = "llvm-mca-19"
ITERATIONS = 100
BATCH = 400          # blocks per llvm-mca invocation
LABEL = "horq_target"  # every branch or literal target in the copy fed to llvm-mca
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "horq-codegen"


@dataclass(frozen=True)
class McaModel:
    """How to run llvm-mca for a target (a target file's ``[cycles]`` table)."""
    triple: str
    cpu: str
    objdump: str
    attrs: str = ""
    note: str = ""       # which model this really is, when it is a proxy
    objdump_flags: tuple[str, ...] = ()   # e.g. -m armv8.1-m.main, without which GNU objdump shows MVE as ldc/stc

    @property
    def thumb(self) -> bool:
        return self.triple.startswith("thumb")

    def describe(self) -> str:
        return f"llvm-mca {mca_version()}, -mcpu={self.cpu}" + (f" ({self.note})" if self.note else "")


@functools.lru_cache(maxsize=None)
def mca_version() -> str:
    """e.g. "19.1.7": the scheduling models are part of the figures, so reports name the version."""
    if shutil.which(MCA) is None:
        raise HorqError(f"{MCA} is not installed (run the project's set-up: make setup; Debian's llvm-19)")
    out = subprocess.run([MCA, "--version"], capture_output=True, text=True, check=False).stdout
    match = re.search(r"LLVM version (\S+)", out)
    return match.group(1) if match else "19"


def mca_model(target: Any) -> McaModel | None:
    """The target's llvm-mca model, or ``None`` if it names none."""
    data = getattr(target, "cycles", None) or {}
    if not data:
        return None
    return McaModel(triple=data["mca_triple"], cpu=data["mca_cpu"], objdump=data["objdump"],
                    attrs=data.get("mca_attrs", ""), note=data.get("note", ""),
                    objdump_flags=tuple(data.get("objdump_flags", ())))


# ------------------------------------------------------------------ disassembly

@dataclass(frozen=True)
class Instruction:
    address: int
    function: str
    mnemonic: str
    operands: str
    next_address: int | None = None   # the following instruction's address in the listing


_FUNCTION = re.compile(r"^([0-9a-f]+) <(.+)>:$")
_INSTRUCTION = re.compile(r"^\s*([0-9a-f]+):\t(\S+)(?:\s+(.*))?$")


def parse_disassembly(text: str) -> dict[int, Instruction]:
    """Instructions by address from ``objdump -d --no-show-raw-insn`` output (GNU syntax)."""
    code: dict[int, Instruction] = {}
    function, previous = "?", None
    for line in text.splitlines():
        header = _FUNCTION.match(line)
        if header:
            function, previous = header.group(2), None
            continue
        match = _INSTRUCTION.match(line)
        if not match or match.group(2).startswith((".word", ".short", ".byte", "...")):
            previous = None
            continue
        address = int(match.group(1), 16)
        ins = Instruction(address, function, match.group(2), (match.group(3) or "").strip())
        if previous is not None:
            code[previous.address] = Instruction(previous.address, previous.function, previous.mnemonic,
                                                 previous.operands, address)
        code[address] = ins
        previous = ins
    return code


def disassemble(binary: Path, objdump: str, flags: tuple[str, ...] = ()) -> dict[int, Instruction]:
    if shutil.which(objdump) is None:
        raise HorqError(f"{objdump} is not installed (run the project's set-up: make setup)")
    proc = subprocess.run([objdump, "-d", "--no-show-raw-insn", *flags, str(binary)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        raise HorqError(f"{objdump} failed on {binary}: {proc.stderr.strip()}")
    return parse_disassembly(proc.stdout)


_CONDITIONS = "eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al"
_THUMB_BRANCH = re.compile(rf"^(?:(?:b|bl|blx|bx)(?:{_CONDITIONS})?(?:\.n|\.w)?|cbn?z|tb[bh](?:\.w)?|"
                           r"le|letp|wls|wlstp\.\d+|dls|dlstp\.\d+)$")
_A64_BRANCH = re.compile(r"^(?:b|bl|br|blr|ret|cbn?z|tbn?z|eret|b\.\w+|braa\w*|blraa\w*|reta\w*)$")
_TARGET = re.compile(r"\b(?:0x)?([0-9a-f]+) <[^>]*>")   # GNU objdump: 1a2c <f+0x8>, LLVM: 0x1a2c <f+0x8>


def is_branch(ins: Instruction, thumb: bool) -> bool:
    """Whether the instruction may change the flow: a branch, call, return or any write of the PC."""
    if not thumb:
        return bool(_A64_BRANCH.match(ins.mnemonic))
    if _THUMB_BRANCH.match(ins.mnemonic):
        return True
    registers = ins.operands.replace(" ", "")
    return registers.startswith("pc,") or ("{" in registers and re.search(r"[{,]pc}", registers) is not None)


def branch_target(ins: Instruction) -> int | None:
    match = _TARGET.search(ins.operands)
    return int(match.group(1), 16) if match else None


def it_shadow(ins: Instruction, thumb: bool) -> int:
    """How many following instructions an IT instruction governs (0 for any other)."""
    return len(ins.mnemonic) - 1 if thumb and re.fullmatch(r"it[te]{0,3}", ins.mnemonic) else 0


# ------------------------------------------------------------------ basic blocks

@dataclass(frozen=True)
class Block:
    instructions: tuple[Instruction, ...]
    executions: int

    @property
    def start(self) -> int:
        return self.instructions[0].address


def split_blocks(counts: dict[int, int], code: dict[int, Instruction],
                 thumb: bool) -> tuple[list[Block], int]:
    """(the basic blocks of the executed addresses, executed instructions not in ``code``).

    Consecutive executed instructions stay in one block while they have the same count, lie
    in the same function, the earlier is no branch and the later no direct branch target."""
    targets = {t for ins in code.values() if is_branch(ins, thumb) for t in [branch_target(ins)] if t is not None}
    blocks: list[Block] = []
    outside = 0
    run: list[Instruction] = []
    shadow = 0

    def flush() -> None:
        if run:
            blocks.append(Block(tuple(run), counts[run[0].address]))
            run.clear()

    for address in sorted(counts):
        ins = code.get(address)
        if ins is None:
            outside += counts[address]
            flush()
            shadow = 0
            continue
        if run:
            last = run[-1]
            joined = (last.next_address == address and last.function == ins.function
                      and counts[last.address] == counts[address])
            if not joined or (shadow == 0 and (is_branch(last, thumb) or address in targets)):
                flush()
                shadow = 0
        run.append(ins)
        shadow = it_shadow(ins, thumb) or max(shadow - 1, 0)
    flush()
    return blocks, outside


# ------------------------------------------------------------------ the copy fed to llvm-mca

_WRITEBACK_POST = re.compile(r"^(\w+), \[(\w+)\], #-?\w+$")
_WRITEBACK_PRE = re.compile(r"^(\w+), \[(\w+), (#-?\w+)\]!$")


def mca_line(ins: Instruction | str, thumb: bool) -> str:
    """The instruction as fed to llvm-mca: comments gone, addresses a label, and the llvm-mca 19
    work-arounds of the module docstring applied; "" for one left out. ``ins`` is an
    :class:`Instruction` or an objdump text "mnemonic operands" (GNU or LLVM objdump)."""
    if isinstance(ins, str):
        mnemonic, operands = (ins.split(None, 1) + [""])[:2]
    else:
        mnemonic, operands = ins.mnemonic, ins.operands
    operands = re.split(r"\s*(?:@|//)", operands, maxsplit=1)[0].strip()
    operands = _TARGET.sub(LABEL, operands)
    if thumb:
        # GNU objdump marks 32-bit encodings .w where LLVM's assembler refuses it (mul.w, adc.w, ldr.w with a
        # negative offset); the scheduling classes do not depend on it.
        mnemonic = mnemonic.removesuffix(".w")
        if re.fullmatch(rf"bl(?:{_CONDITIONS})?", mnemonic):
            mnemonic, operands = "b", LABEL
        elif re.fullmatch(rf"blx(?:{_CONDITIONS})?", mnemonic):
            mnemonic = "bx"
        elif mnemonic in ("le", "letp"):
            return ""   # the low-overhead loop's end: free after the first iteration, and unknown to llvm-mca
        elif mnemonic in ("dls", "wls") or re.fullmatch(r"(?:dlstp|wlstp)\.\d+", mnemonic):
            mnemonic, operands = "mov", ", ".join(operands.split(", ")[:2])
        elif mnemonic.startswith(("ldr", "str")):
            # llvm-mca 19 crashes on the 32-bit single-register forms with writeback: drop it.
            operands = _WRITEBACK_POST.sub(r"\1, [\2]", operands)
            operands = _WRITEBACK_PRE.sub(r"\1, [\2, \3]", operands)
    else:
        if mnemonic == "bl":
            mnemonic = "b"
        elif mnemonic == "blr":
            mnemonic = "br"
    return f"{mnemonic}\t{operands}" if operands else mnemonic


def mca_text(instructions: Iterable[Instruction | str], thumb: bool) -> str:
    """The instructions as fed to llvm-mca, one a line (:func:`mca_line`; those left out gone)."""
    return "\n".join(line for line in (mca_line(ins, thumb) for ins in instructions) if line)


def block_text(block: Block, thumb: bool) -> str:
    return mca_text(block.instructions, thumb)


def mca_source(texts: list[str], thumb: bool) -> str:
    """One llvm-mca input holding each block as a region named b0, b1, ..."""
    lines = [".syntax unified", ".thumb"] if thumb else []
    lines.append(f"{LABEL}:")
    for i, text in enumerate(texts):
        lines += [f"# LLVM-MCA-BEGIN b{i}", text, "# LLVM-MCA-END"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BlockCost:
    cycles: float        # steady-state cycles per execution of the block
    dropped: int         # instructions llvm-mca skipped (no scheduling data, not parsed)
    fallback: bool = False   # llvm-mca failed on it: one cycle an instruction


def parse_mca_json(output: str, texts: list[str]) -> list[BlockCost]:
    """Per region b0, b1, ... of ``mca_source(texts)``: cycles per iteration and skipped instructions."""
    regions = {r["Name"]: r for r in json.loads(output)["CodeRegions"]}
    costs = []
    for i, text in enumerate(texts):
        region = regions[f"b{i}"]
        summary = region["SummaryView"]
        fed = len(text.splitlines())
        costs.append(BlockCost(summary["TotalCycles"] / summary["Iterations"], fed - len(region["Instructions"])))
    return costs


# ------------------------------------------------------------------ running llvm-mca

def mca_args(model: McaModel, iterations: int) -> list[str]:
    """llvm-mca's arguments for the model: JSON output, unschedulable instructions skipped (and counted)."""
    args = [f"-mtriple={model.triple}", f"-mcpu={model.cpu}", f"-iterations={iterations}", "-json",
            "-skip-unsupported-instructions=any", "-resource-pressure=false", "-instruction-info=false"]
    return args + ([f"-mattr={model.attrs}"] if model.attrs else [])


def run_mca(texts: list[str], model: McaModel, iterations: int) -> subprocess.CompletedProcess[str]:
    """llvm-mca on ``mca_source(texts)``, each text a region, ``iterations`` times back to back."""
    with tempfile.TemporaryDirectory(prefix="horq-mca-") as tmp:
        source = Path(tmp) / "blocks.s"
        source.write_text(mca_source(texts, model.thumb))
        return subprocess.run([MCA, *mca_args(model, iterations), str(source)], capture_output=True, text=True,
                              check=False, timeout=600)


def loop_cycles(instructions: list[str], model: McaModel, iterations: int = 200) -> tuple[float, float]:
    """(cycles per iteration, IPC) of objdump instruction texts ("mnemonic operands") run as a loop.

    For the benchmarks that cost a loop cut from a build: the texts get :func:`mca_line`'s clean-up,
    llvm-mca runs them ``iterations`` times back to back (``iterations=1``: once, e.g. a whole
    executed trace), and cycles per iteration is Total Cycles / Iterations. Unlike the estimator,
    which counts them, an instruction llvm-mca skips (no scheduling data, not parsed) is an error
    here: a loop's figure would silently leave it out."""
    text = mca_text(instructions, model.thumb)
    if not text:
        raise HorqError("loop_cycles: no instruction left for llvm-mca")
    proc = run_mca([text], model, iterations)
    if proc.returncode != 0:
        raise HorqError(f"{MCA} failed: {proc.stderr.strip()}")
    region = json.loads(proc.stdout)["CodeRegions"][0]
    skipped = len(text.splitlines()) - len(region["Instructions"])
    if skipped:
        raise HorqError(f"{MCA} skipped {skipped} of the loop's instructions (-mcpu={model.cpu}):\n{text}")
    summary = region["SummaryView"]
    return summary["TotalCycles"] / summary["Iterations"], summary["IPC"]


# ------------------------------------------------------------------ the estimator, cached

class Estimator:
    """Cycles per block text for one llvm-mca model, batched and cached (memory and disk)."""

    def __init__(self, model: McaModel, cache_dir: Path | None = None):
        self.model = model
        key = hashlib.sha256(json.dumps([mca_version(), self._args()]).encode()).hexdigest()[:16]
        self.cache_file = (cache_dir or DEFAULT_CACHE_DIR) / f"mca-{model.cpu}-{key}.json"
        self.cache: dict[str, list] = {}
        if self.cache_file.exists():
            try:
                self.cache = json.loads(self.cache_file.read_text())
            except ValueError:
                self.cache = {}

    def _args(self) -> list[str]:
        return mca_args(self.model, ITERATIONS)

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def costs(self, texts: list[str]) -> dict[str, BlockCost]:
        missing = sorted({t for t in texts if t and self._key(t) not in self.cache})
        for start in range(0, len(missing), BATCH):
            batch = missing[start:start + BATCH]
            for text, cost in zip(batch, self._run(batch)):
                self.cache[self._key(text)] = [cost.cycles, cost.dropped, cost.fallback]
        if missing:
            self._save()
        # An empty text (a block of nothing but le/letp) costs nothing.
        return {t: BlockCost(*self.cache[self._key(t)]) if t else BlockCost(0.0, 0) for t in texts}

    def _run(self, texts: list[str]) -> list[BlockCost]:
        """llvm-mca on the blocks; a failing batch is halved until the failing block is found."""
        proc = run_mca(texts, self.model, ITERATIONS)
        if proc.returncode == 0:
            try:
                return parse_mca_json(proc.stdout, texts)
            except (ValueError, KeyError):
                pass
        if len(texts) == 1:
            return [BlockCost(float(len(texts[0].splitlines())), 0, True)]
        half = len(texts) // 2
        return self._run(texts[:half]) + self._run(texts[half:])

    def _save(self) -> None:
        # Merge with what another process may have written meanwhile; replace atomically.
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        merged: dict[str, list] = {}
        if self.cache_file.exists():
            try:
                merged = json.loads(self.cache_file.read_text())
            except ValueError:
                merged = {}
        merged.update(self.cache)
        fd, tmp = tempfile.mkstemp(dir=self.cache_file.parent, prefix=".mca-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(merged, f)
        os.replace(tmp, self.cache_file)


@dataclass(frozen=True)
class Estimate:
    cycles: list[float]            # per stretch between marks
    dropped_instructions: int      # executed instructions llvm-mca skipped (cost 0)
    fallback_instructions: int     # executed instructions estimated at 1 cycle each (no block model)
    executed_instructions: int


def estimate(binary: Path, stretches: list[dict[int, int]], model: McaModel,
             cache_dir: Path | None = None) -> Estimate:
    """Estimated cycles of each stretch of a run (``emulator.read_segments``) of ``binary``."""
    code = disassemble(binary, model.objdump, model.objdump_flags)
    per_stretch = []
    all_blocks: list[list[Block]] = []
    outside_total = 0
    for counts in stretches:
        blocks, outside = split_blocks(counts, code, model.thumb)
        all_blocks.append(blocks)
        per_stretch.append(float(outside))
        outside_total += outside
    texts = {id(b): block_text(b, model.thumb) for blocks in all_blocks for b in blocks}
    costs = Estimator(model, cache_dir).costs(list(texts.values()))
    dropped = fallback = 0
    for i, blocks in enumerate(all_blocks):
        for block in blocks:
            cost = costs[texts[id(block)]]
            per_stretch[i] += cost.cycles * block.executions
            dropped += cost.dropped * block.executions
            fallback += len(block.instructions) * block.executions if cost.fallback else 0
    executed = sum(sum(c.values()) for c in stretches)
    return Estimate(per_stretch, dropped, fallback + outside_total, executed)
