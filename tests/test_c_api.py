"""The model's C API in a user's firmware: named models side by side with one kernel library, the
caller's arena, the uint8 channels-last input, the static arena's placement, --name checks."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from horq_codegen import cli, importer, reference
from horq_codegen.capi import InputQuantization, float_table, parse_input_quantization
from horq_codegen.emit import ModelInfo, generate
from horq_codegen.integer import Lowering
from horq_codegen.memory import input_entry
from horq_codegen.nn import HORQConv2d
from horq_codegen.pipeline import lower_model
from horq_codegen.programs import build_program, run_program
from horq_codegen.targets import load_target

from conftest import EXAMPLE_MODEL, assert_bit_exact, export_model, settle_batchnorm

HOST = load_target("host")
BASE_FLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"]


def _net(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), HORQConv2d(4, 8, 3, padding=1),
                         nn.Flatten(), nn.Linear(8 * 4 * 4, 3))


#: name -> (input channels, activations, --input-quantization): every way a uint8 input enters.
MODELS = {
    "alpha": (1, "float", "1/255,0"),        # float conv reads the input in place: a staged copy
    "beta": (3, "int8", "1/255,0"),          # HWC copy, then quantized: the lookup writes int8
    "gamma": (3, "float", "0.5,128"),        # the HWC copy takes the looked-up floats
    "delta": (1, "int8", "0.0078125,128"),   # the input quantized in place: the lookup writes int8
}
ENTRIES = {"alpha": ("f32", None), "beta": ("i8", "to_hwc_q"), "gamma": ("f32", "to_hwc"), "delta": ("i8", "input_q")}
SAMPLES = 3


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (graph, quantization, project folder) for the four models of MODELS."""
    root = tmp_path_factory.mktemp("capi")
    result = {}
    for i, (name, (channels, activations, quantization)) in enumerate(MODELS.items()):
        torch.manual_seed(i)
        shape = (channels, 6, 6)
        path = export_model(settle_batchnorm(_net(channels), shape, seed=i), shape, root / f"{name}.pt2")
        model = importer.load(path)
        calibration = np.random.default_rng(i).random((16, *shape)).astype(np.float32)
        graph = lower_model(model, Lowering(activations, calibration, "test"))
        q = parse_input_quantization(quantization)
        project = root / name
        project.mkdir()
        generate(graph, HOST, project, ModelInfo(f"{name}.pt2", model.file.sha256), calibration[:1], prefix=name,
                 input_quantization=q)
        result[name] = (graph, q, project)
    return result


def _c_words(values: np.ndarray) -> str:
    return ", ".join(f"0x{int(w):08x}u" for w in np.asarray(values, np.float32).reshape(-1).view(np.uint32))


def _compile(source: Path, obj: Path, includes: list[Path], flags: list[str], compiler: str = "cc") -> Path:
    std = ["-std=c99"] if compiler == "cc" else ["-x", "c++", "-std=c++11"]
    subprocess.run([compiler, *std, *flags, *(f"-I{i}" for i in includes), "-c", str(source), "-o", str(obj)],
                   check=True, capture_output=True, text=True)
    return obj


def _defined_globals(obj: Path) -> list[str]:
    lines = subprocess.run(["nm", "-g", "--defined-only", str(obj)], check=True, capture_output=True,
                           text=True).stdout.splitlines()
    return [line.split()[-1] for line in lines if line.strip()]


def test_each_model_defines_only_its_own_globals_and_the_kernels_only_horq_ones(models, tmp_path):
    first = models["alpha"][2]
    for name, (_, _, project) in models.items():
        assert (project / "include" / f"{name}.h").exists() and (project / "src" / f"{name}.c").exists()
        header = (project / "include" / f"{name}.h").read_text()
        assert f"#ifndef {name.upper()}_H" in header
        macros = re.findall(r"#define (\w+)", header)
        assert macros and all(m.startswith(f"{name.upper()}_") for m in macros), macros
        for compiler in ("cc", "c++"):  # warning-free in both, as a C++ firmware may build it
            obj = _compile(project / "src" / f"{name}.c", tmp_path / f"{name}.{compiler}.o",
                           [project / "include", first / "lib/horq"], BASE_FLAGS, compiler)
            symbols = _defined_globals(obj)
            if compiler == "cc":
                assert sorted(symbols) == sorted(f"{name}_{f}" for f in (
                    "run", "run_with_arena", "run_u8_hwc", "run_u8_hwc_with_arena")), symbols
        guarded = _compile(project / "src" / f"{name}.c", tmp_path / f"{name}.guard.o",
                           [project / "include", first / "lib/horq"], [*BASE_FLAGS, "-DHORQ_ARENA_GUARD=4"])
        assert all(s.startswith(f"{name}_") for s in _defined_globals(guarded))
    for kernel in sorted((first / "lib/horq").glob("*.c")):
        obj = _compile(kernel, tmp_path / f"{kernel.stem}.o", [first / "lib/horq"], BASE_FLAGS)
        assert all(s.startswith("horq_") for s in _defined_globals(obj)), (kernel.name, _defined_globals(obj))


def test_entry_points_cover_every_way_the_input_enters(models):
    for name, (graph, _, _) in models.items():
        entry = input_entry(graph)
        assert (entry.dtype, entry.node) == ENTRIES[name]


def _inputs(name: str, quantization: InputQuantization, shape: tuple[int, ...]):
    """uint8 values in the model's channels-last order, and the floats they stand for in PyTorch's."""
    c, h, w = shape
    q_hwc = np.random.default_rng(len(name)).integers(0, 256, (SAMPLES, h, w, c), dtype=np.uint8)
    q_hwc[0].reshape(-1)[:4] = [0, 255, quantization.zero_point, 1]
    x = float_table(quantization)[q_hwc].transpose(0, 3, 1, 2)
    return q_hwc, np.ascontiguousarray(x, np.float32)


def _main_source(models, arrays: dict) -> str:
    """One program that runs every model through each entry point and prints
    ``<name> <entry> <sample> <status> <output hex>...``, checking the caller's arena's borders."""
    includes = "".join(f'#include "{name}.h"\n' for name in models)
    data, calls = [], []
    for name in models:
        P = name.upper()
        q_hwc, x = arrays[name]
        data.append(f"static const uint32_t {name}_x[{x.size}] = {{{_c_words(x)}}};\n"
                    f"static const uint8_t {name}_q[{q_hwc.size}] = {{{', '.join(str(v) for v in q_hwc.reshape(-1))}}};\n")
        calls.append(f"""
    for (int i = 0; i < {SAMPLES}; ++i) {{
        float input[{P}_INPUT_SIZE];
        const uint8_t *q = &{name}_q[(size_t)i * {P}_INPUT_SIZE];
        memcpy(input, &{name}_x[(size_t)i * {P}_INPUT_SIZE], sizeof input);
        float out[{P}_OUTPUT_SIZE];
        {name}_run(input, out); show("{name}", "run", i, 0, out, {P}_OUTPUT_SIZE);
        {name}_run_u8_hwc(q, out); show("{name}", "u8", i, 0, out, {P}_OUTPUT_SIZE);
        unsigned char *arena = fill_border(pool, {P}_ARENA_BYTES);
        int status = {name}_run_with_arena(arena, {P}_ARENA_BYTES, input, out);
        show("{name}", "arena", i, status + 10 * borders_intact(pool, {P}_ARENA_BYTES), out, {P}_OUTPUT_SIZE);
        arena = fill_border(pool, {P}_ARENA_BYTES);
        status = {name}_run_u8_hwc_with_arena(arena, {P}_ARENA_BYTES, q, out);
        show("{name}", "arena_u8", i, status + 10 * borders_intact(pool, {P}_ARENA_BYTES), out, {P}_OUTPUT_SIZE);
        for (int k = 0; k < {P}_OUTPUT_SIZE; ++k) out[k] = -7.0f;
        status = {name}_run_with_arena(arena, {P}_ARENA_BYTES - 1, input, out);
        show("{name}", "small", i, status, out, {P}_OUTPUT_SIZE);
        status = {name}_run_u8_hwc_with_arena(arena + 4, {P}_ARENA_BYTES, q, out);
        show("{name}", "misaligned", i, status, out, {P}_OUTPUT_SIZE);
        status = {name}_run_with_arena(NULL, {P}_ARENA_BYTES, input, out);
        show("{name}", "null", i, status, out, {P}_OUTPUT_SIZE);
    }}""")
    return f"""#include <stdint.h>
#include <stdio.h>
#include <string.h>

{includes}
#define BORDER 64
/* The largest arena, between borders of a known pattern; 16-byte aligned. */
static uint32_t pool_words[(BORDER + 4096 + BORDER) / 4] __attribute__((aligned(16)));
static unsigned char *const pool = (unsigned char *)pool_words;

static unsigned char *fill_border(unsigned char *p, size_t bytes)
{{
    memset(p, 0xA5, BORDER);
    memset(p + BORDER + bytes, 0x5A, BORDER);
    return p + BORDER;
}}

static int borders_intact(const unsigned char *p, size_t bytes)
{{
    for (size_t i = 0; i < BORDER; ++i) {{
        if (p[i] != 0xA5 || p[BORDER + bytes + i] != 0x5A) return 0;
    }}
    return 1;
}}

static void show(const char *name, const char *entry, int sample, int status, const float *out, int count)
{{
    printf("%s %s %d %d", name, entry, sample, status);
    for (int i = 0; i < count; ++i) {{
        uint32_t bits;
        memcpy(&bits, &out[i], sizeof bits);
        printf(" %08lx", (unsigned long)bits);
    }}
    printf("\\n");
}}

{"".join(data)}
#ifdef HORQ_SEMIHOSTING
extern void initialise_monitor_handles(void);
#endif

int main(void)
{{
#ifdef HORQ_SEMIHOSTING
    initialise_monitor_handles();
#endif{"".join(calls)}
    printf("done\\n");
    return 0;
}}
"""


def _check_results(models, arrays: dict, printed: str) -> None:
    assert printed.rstrip().endswith("done"), printed[-500:]
    results = {}
    for line in printed.splitlines()[:-1]:
        name, entry, sample, status, *words = line.split()
        results[name, entry, int(sample)] = (int(status),
                                             np.array([int(w, 16) for w in words], np.uint32).view(np.float32))
    for name, (graph, _, _) in models.items():
        expected = reference.run(graph, arrays[name][1])
        sentinel = np.full(expected.shape[1], -7.0, np.float32)
        for i in range(SAMPLES):
            for entry in ("run", "u8", "arena", "arena_u8"):
                status, out = results[name, entry, i]
                assert status == (10 if "arena" in entry else 0), (name, entry)
                assert_bit_exact(out, expected[i])
            assert results[name, "small", i][0] == -1
            assert results[name, "misaligned", i][0] == -2
            assert results[name, "null", i][0] == -3
            for entry in ("small", "misaligned", "null"):
                assert_bit_exact(results[name, entry, i][1], sentinel)


def _program(models, tmp_path: Path) -> tuple[dict, Path, list[str]]:
    """The inputs, main.c, and the model sources with their include flags."""
    arrays = {name: _inputs(name, q, graph.input_shape) for name, (graph, q, _) in models.items()}
    for graph, _, project in models.values():
        plan_bytes = int(re.search(r"_ARENA_BYTES (\d+)", next((project / "include").glob("*.h")).read_text())[1])
        assert 0 < plan_bytes <= 4096
    main = tmp_path / "main.c"
    main.write_text(_main_source(models, arrays))
    models_and_includes = [*(str(p / "src" / f"{n}.c") for n, (_, _, p) in models.items()),
                           *(f"-I{p / 'include'}" for _, _, p in models.values())]
    return arrays, main, models_and_includes


def test_four_named_models_and_one_kernel_library_in_one_program(models, tmp_path):
    """Every entry point of every model, under ASan and UBSan: outputs bit-exact with the reference,
    the uint8 channels-last input's identical to the float input's it stands for, the caller's arena's
    errors distinct and harmless, nothing written outside it."""
    arrays, main, sources = _program(models, tmp_path)
    kernels = models["alpha"][2] / "lib/horq"
    exe = tmp_path / "firmware"
    subprocess.run([HOST.cc, "-std=c99", *BASE_FLAGS, *HOST.sanitize_flags, f"-I{kernels}", str(main),
                    *map(str, sorted(kernels.glob("*.c"))), *sources, "-o", str(exe), "-lm"], check=True)
    _check_results(models, arrays, subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout)


def test_the_same_program_on_cortex_m55(models, tmp_path):
    """The same calls as firmware in QEMU, the kernels on their Helium paths (the models' weights
    are plain rows, which Cortex-M55 takes)."""
    target = load_target("cortex-m55")
    assert target.weight_layout == "plain"
    arrays, main, sources = _program(models, tmp_path)
    kernels = sorted(p.name for p in (models["alpha"][2] / "lib/horq").glob("*.c"))
    elf = build_program(target, main, kernels, tmp_path / "firmware.elf", sources)
    result = run_program(target, elf)
    assert result.status == "ok", result.describe()
    _check_results(models, arrays, result.stdout)


def test_the_static_arena_goes_in_the_named_section_with_the_asked_alignment(models, tmp_path):
    project = models["beta"][2]
    flags = [*BASE_FLAGS, "-DBETA_ARENA_SECTION=.capi_arena", "-DBETA_ARENA_ALIGNMENT=64"]
    obj = _compile(project / "src/beta.c", tmp_path / "beta.o", [project / "include", project / "lib/horq"], flags)
    sections = subprocess.run(["objdump", "-h", str(obj)], check=True, capture_output=True, text=True).stdout
    line = next(l for l in sections.splitlines() if ".capi_arena" in l)
    assert line.split()[-1] == "2**6"  # the section's alignment
    table = subprocess.run(["objdump", "-t", str(obj)], check=True, capture_output=True, text=True).stdout
    for arena in ("horq_float_arena", "horq_word_arena"):
        assert any(".capi_arena" in l and l.endswith(arena) for l in table.splitlines()), arena
    plain = _compile(project / "src/beta.c", tmp_path / "plain.o", [project / "include", project / "lib/horq"],
                     BASE_FLAGS)
    table = subprocess.run(["objdump", "-t", str(plain)], check=True, capture_output=True, text=True).stdout
    assert any(".bss" in l and l.endswith("horq_float_arena") for l in table.splitlines())


def test_the_default_input_quantization_is_the_bundled_datasets_pixels():
    """horq_codegen.data feeds the MNIST model pixels / 255 in float32: a raw uint8 pixel gives the same float."""
    pixels = np.arange(256, dtype=np.uint8)
    assert_bit_exact(float_table(InputQuantization()), pixels.astype(np.float32) / np.float32(255.0))
    assert_bit_exact(float_table(parse_input_quantization("0.5, 128")), (pixels.astype(np.float32) - 128) * 0.5)


@pytest.mark.parametrize("argument", [
    "--name=1net", "--name=int", "--name=class", "--name=horq_net", "--name=HORQ", "--name=_net", "--name=my-net",
    "--name=", "--input-quantization=0,0", "--input-quantization=1/255", "--input-quantization=0.1,256",
    "--input-quantization=x,1", "--input-quantization=-1,0"])
def test_bad_names_and_quantizations_are_one_line_errors(argument, capsys, tmp_path):
    assert cli.main([str(tmp_path / "absent.pt2"), argument]) == 2
    err = capsys.readouterr().err
    assert err.startswith("horq-codegen: error: argument --") and err.count("\n") == 1, err


def test_raw_pixels_of_the_bundled_models_dataset_give_its_inputs_through_the_default_table():
    """The bundled MNIST model's dataset (horq_codegen.data) is 8-bit pixels: each, looked up in the
    default table, is exactly the float the model was trained and verified on."""
    from horq_codegen import data
    model = importer.load(EXAMPLE_MODEL)
    images, _ = data.load(model.file.meta["dataset"], "test")
    pixels = np.rint(images * 255)
    assert pixels.min() >= 0 and pixels.max() <= 255
    assert_bit_exact(float_table(InputQuantization())[pixels.astype(np.uint8)], images)
