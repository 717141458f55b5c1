"""Estimated cycles (bench --cycles): basic blocks, the copy fed to llvm-mca-19, its output, end to end."""
import json

from horq_codegen import cycles
from horq_codegen.bench import bench, format_report
from horq_codegen.cli import main
from horq_codegen.targets import load_target

# A loop of 5 iterations, an IT block, a call and a return, as arm-none-eabi-objdump -d --no-show-raw-insn prints.
LISTING = """
t.elf:     file format elf32-littlearm


Disassembly of section .text:

00000100 <f>:
 100:\tpush\t{r4, lr}
 102:\tmovs\tr2, #0
 104:\tldr.w\tr3, [r0], #4
 108:\tadds\tr2, r2, r3
 10a:\tsubs\tr1, #1
 10c:\tbne.n\t104 <f+0x4>
 10e:\tcmp\tr2, #0
 110:\tit\tne
 112:\tmovne\tr2, #1
 114:\tbl\t200 <g>
 118:\tpop\t{r4, pc}
 11a:\tnop
 11c:\t.word\t0x00001234

00000200 <g>:
 200:\tbx\tlr
"""
COUNTS = {0x100: 1, 0x102: 1, 0x104: 5, 0x108: 5, 0x10a: 5, 0x10c: 5, 0x10e: 1, 0x110: 1, 0x112: 1, 0x114: 1,
          0x118: 1, 0x200: 1, 0x300: 2}


def test_blocks_are_cut_at_branches_targets_and_count_changes():
    code = cycles.parse_disassembly(LISTING)
    assert 0x11c not in code and code[0x11a].next_address is None and code[0x104].next_address == 0x108
    blocks, outside = cycles.split_blocks(COUNTS, code, thumb=True)
    assert [([i.address for i in b.instructions], b.executions) for b in blocks] == [
        ([0x100, 0x102], 1), ([0x104, 0x108, 0x10a, 0x10c], 5), ([0x10e, 0x110, 0x112, 0x114], 1),
        ([0x118], 1), ([0x200], 1)]
    assert outside == 2   # 0x300 is not in the listing


def test_the_copy_for_llvm_mca_works_around_its_limits():
    code = cycles.parse_disassembly(LISTING)
    line = lambda mnemonic, operands, thumb=True: cycles.mca_line(cycles.Instruction(0, "f", mnemonic, operands), thumb)
    assert cycles.mca_line(code[0x104], True) == "ldr\tr3, [r0]"                 # writeback dropped (crash)
    assert line("str.w", "r3, [r1, #-4]!") == "str\tr3, [r1, #-4]"
    assert line("ldrd", "r2, r3, [r1], #8") == "ldrd\tr2, r3, [r1], #8"          # not single-register: kept
    assert cycles.mca_line(code[0x114], True) == f"b\t{cycles.LABEL}"            # a call is a branch
    assert cycles.mca_line(code[0x10c], True) == f"bne.n\t{cycles.LABEL}"
    assert line("le", "lr, 38 <k+0x38>") == "" and line("letp", "lr, 38 <k+0x38>") == ""
    assert line("dls", "lr, r3") == "mov\tlr, r3" and line("wlstp.8", "lr, r2, 80 <k+0x80>") == "mov\tlr, r2"
    assert line("ldr", "r3, [pc, #12]\t@ (134 <f+0x34>)") == "ldr\tr3, [pc, #12]"
    assert line("mul.w", "r5, r1, r5") == "mul\tr5, r1, r5"
    assert line("bl", "401000 <memcpy>", thumb=False) == f"b\t{cycles.LABEL}"
    assert line("blr", "x3", thumb=False) == "br\tx3"
    assert line("mov", "w3, #0x7f                  \t// #127", thumb=False) == "mov\tw3, #0x7f"
    blocks, _ = cycles.split_blocks(COUNTS, code, thumb=True)
    source = cycles.mca_source([cycles.block_text(b, True) for b in blocks], thumb=True)
    assert source.startswith(".syntax unified\n.thumb\nhorq_target:\n# LLVM-MCA-BEGIN b0\n")
    assert source.count("# LLVM-MCA-END") == 5


def test_mca_output_is_read_per_region():
    output = json.dumps({"CodeRegions": [
        {"Name": "b1", "Instructions": ["add\tr1, r2"], "SummaryView": {"Iterations": 100, "TotalCycles": 101}},
        {"Name": "b0", "Instructions": ["movne\tr0, #1", "add\tr1, r2"],
         "SummaryView": {"Iterations": 100, "TotalCycles": 250}}]})
    costs = cycles.parse_mca_json(output, ["it\tne\nmovne\tr0, #1\nadd\tr1, r2", "add\tr1, r2"])
    assert costs == [cycles.BlockCost(2.5, 1), cycles.BlockCost(1.01, 0)]


def test_llvm_mca_prices_blocks_and_survives_what_crashes_it(tmp_path):
    model = cycles.mca_model(load_target("cortex-m7"))
    estimator = cycles.Estimator(model, cache_dir=tmp_path)
    loop = "ldr\tr3, [r0]\nadds\tr2, r2, r3\nsubs\tr1, #1\nbne.n\thorq_target"
    crash = "ldr.w\tr3, [r1], #4"   # the writeback llvm-mca 19 crashes on, had it not been dropped
    costs = estimator.costs([loop, crash, ""])
    assert 1 <= costs[loop].cycles < 10 and not costs[loop].fallback
    assert costs[crash] == cycles.BlockCost(1.0, 0, True)   # found by halving the batch: one cycle an instruction
    assert costs[""].cycles == 0
    assert cycles.Estimator(model, cache_dir=tmp_path).cache   # kept on disk


def test_loop_cycles_takes_objdump_texts_gnu_or_llvm():
    # The same clean-up from a text "mnemonic operands"; LLVM's objdump writes targets with 0x.
    assert cycles.mca_line("ldr.w\tr3, [r0], #4", True) == "ldr\tr3, [r0]"
    assert cycles.mca_line("beq\t0x197c <f+0xb8>", True) == f"beq\t{cycles.LABEL}"
    assert cycles.mca_line("wlstp.8 lr, r2, 0x80 <k+0x80>", True) == "mov\tlr, r2"
    assert cycles.mca_line("le\tlr, 0x38 <k+0x38>", True) == "" and cycles.mca_line("nop", True) == "nop"
    model = cycles.mca_model(load_target("cortex-m7"))
    loop = ["ldr.w\tr3, [r0], #4", "adds\tr2, r2, r3", "subs\tr1, #1", "bne.n\t104 <f+0x4>"]
    per_iteration, ipc = cycles.loop_cycles(loop, model, iterations=100)
    assert 1 <= per_iteration < 10 and abs(ipc - 4 / per_iteration) < 0.02


def test_bench_estimates_cycles_per_layer(tiny_model, tmp_path, capsys):
    first = bench(tiny_model, "cortex-m7", cycles=True)
    # The same figures a second time (the blocks' costs now from the cache), through the command line.
    json_path = tmp_path / "b.json"
    assert main(["bench", str(tiny_model), "--target", "cortex-m7", "--cycles", "--json", str(json_path)]) == 0
    assert json_path.read_text() == first.to_json() + "\n"
    assert "HORQ est. cycles" in capsys.readouterr().out
    for figures in (first.horq, first.float32):
        assert all(layer.estimated_cycles > 0 for layer in figures.layers)
        assert sum(layer.estimated_cycles for layer in figures.layers) == figures.estimated_cycles
        assert figures.cycles_fallback_instructions == 0
    assert "-mcpu=cortex-m7" in first.cycles_model
    assert "not a board's measurement" in format_report(first)
