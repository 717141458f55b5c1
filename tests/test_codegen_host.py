"""Generated C on the host: warning-free, sanitizer-clean, bit-exact with the reference, deterministic."""
import filecmp
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

from horq_codegen import __version__, reference
from horq_codegen.emit import ModelInfo, generate
from horq_codegen.nn import HORQConv2d, HORQLinear
from horq_codegen.targets import load_target

from conftest import Pipeline, assert_bit_exact, assert_matches_model, export_model, settle_batchnorm


def every_op_model() -> nn.Sequential:
    """Every supported op at least once, with channel counts that are not multiples of 32."""
    return nn.Sequential(
        nn.Conv2d(3, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(),
        nn.MaxPool2d(2, padding=1),
        nn.BatchNorm2d(12), HORQConv2d(12, 40, 3, padding=1, order=2, granularity="patch"), nn.Hardtanh(-0.8, 0.9),
        nn.BatchNorm2d(40), HORQConv2d(40, 33, 3, stride=2, padding=1, order=3, granularity="pixel"), nn.BatchNorm2d(33),
        nn.ReLU(),
        nn.AvgPool2d(2, stride=1),
        nn.BatchNorm2d(33), HORQConv2d(33, 20, 1, order=1, granularity="tensor"),
        nn.BatchNorm2d(20), HORQConv2d(20, 18, 2, padding=1, order=4, granularity="static"),
        nn.Flatten(), nn.BatchNorm1d(18 * 3 * 3), HORQLinear(162, 30, order=2), nn.BatchNorm1d(30), nn.Hardtanh(),
        HORQLinear(30, 16, order=3, granularity="static"), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 7))


@pytest.fixture(scope="module")
def every_op(tmp_path_factory):
    torch.manual_seed(1)
    model = settle_batchnorm(every_op_model(), (3, 9, 9))
    return Pipeline(export_model(model, (3, 9, 9), tmp_path_factory.mktemp("m") / "every_op.pt2"))


@pytest.fixture(scope="module")
def inputs():
    return np.random.default_rng(7).standard_normal((12, 3, 9, 9)).astype(np.float32)


def test_every_op_is_bit_exact_with_reference_and_close_to_torch(every_op, inputs, tmp_path):
    result = every_op.c(inputs, tmp_path, trace=True)
    assert_bit_exact(result.outputs, every_op.reference(inputs))
    assert_matches_model(every_op, inputs, result.outputs)
    # Layer by layer: every intermediate tensor, hence every XOR-popcount sum, is identical.
    for sample, traces in zip(inputs, result.traces):
        expected = reference.run_traced(every_op.graph, sample)
        assert set(traces) == {n.name for n in every_op.graph.nodes}
        for name, values in traces.items():
            assert_bit_exact(values, expected[name].reshape(-1))


def test_every_op_is_clean_under_address_and_undefined_behaviour_sanitizers(every_op, inputs, tmp_path):
    result = every_op.c(inputs[:3], tmp_path, sanitize=True)
    assert_bit_exact(result.outputs, every_op.reference(inputs[:3]))


def test_swar_popcount_path_is_bit_exact_on_the_host(every_op, inputs, tmp_path):
    """The Cortex-M DSP inner loop's SWAR arithmetic, forced on the host (with sanitizers)."""
    result = every_op.c(inputs[:4], tmp_path, sanitize=True, flags="-DHORQ_FORCE_SWAR")
    assert_bit_exact(result.outputs, every_op.reference(inputs[:4]))


def _generate(pipeline, out, samples):
    out.mkdir()
    return generate(pipeline.graph, load_target("host"), out, ModelInfo("every_op.pt2", pipeline.model.file.sha256),
                    samples)


def test_output_is_deterministic_and_stamped(every_op, inputs, tmp_path):
    _generate(every_op, tmp_path / "a", inputs[:2])
    _generate(every_op, tmp_path / "b", inputs[:2])
    compare = filecmp.dircmp(tmp_path / "a", tmp_path / "b")
    assert not compare.diff_files and not compare.left_only and not compare.right_only
    for sub in ("src", "include", "lib/horq"):
        sub_compare = filecmp.dircmp(tmp_path / "a" / sub, tmp_path / "b" / sub)
        assert not sub_compare.diff_files and sub_compare.same_files
    model_c = (tmp_path / "a" / "src" / "model.c").read_text()
    head = model_c.splitlines()[0]
    assert f"horq-codegen {__version__}" in head and every_op.model.file.sha256[:16] in head
    assert str(tmp_path) not in model_c


def test_generated_model_uses_no_heap(every_op, inputs, tmp_path):
    _generate(every_op, tmp_path / "p", inputs[:1])
    project = tmp_path / "p"
    sources = ["src/model.c", *sorted(str(p.relative_to(project)) for p in (project / "lib/horq").glob("*.c"))]
    objects = []
    for src in sources:
        obj = project / (src.replace("/", "_") + ".o")
        subprocess.run(["cc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-I", str(project / "lib/horq"),
                        "-I", str(project / "include"), "-c", str(project / src), "-o", str(obj)], check=True)
        objects.append(str(obj))
    undefined = subprocess.run(["nm", "-u", *objects], capture_output=True, text=True, check=True).stdout
    for symbol in ("malloc", "calloc", "realloc", "free"):
        assert f" {symbol}\n" not in undefined


def test_arena_reuses_buffers_by_liveness(every_op):
    from horq_codegen.memory import plan_memory
    plan = plan_memory(every_op.graph)
    all_outputs = sum(b.size for b in plan.outputs.values() if b is not None)
    assert plan.float_arena < all_outputs  # some buffers share space


def _sabotage(every_op, inputs, tmp_path, code: str):
    from horq_codegen.pipeline import generate_project
    target = load_target("host")
    generated = generate_project(every_op.model, every_op.graph, target, tmp_path / "p", inputs[:2])
    model_c = generated.out_dir / "src" / "model.c"
    text = model_c.read_text()
    marker = "    HORQ_MARK(1);"
    model_c.write_text(text.replace(marker, f"    {code}\n{marker}", 1))
    return generated.out_dir, target


def test_write_past_the_arena_plan_is_caught_by_guards(every_op, inputs, tmp_path):
    from horq_codegen.errors import HorqError
    from horq_codegen.runners import run_project
    code = "horq_word_arena[sizeof horq_word_arena / sizeof horq_word_arena[0] - 1] = 0u;"
    project, target = _sabotage(every_op, inputs, tmp_path, code)
    with pytest.raises(HorqError, match="outside its planned arena"):
        run_project(project, target, 2, 7)


def test_read_past_the_arena_plan_poisons_the_output(every_op, inputs, tmp_path):
    """Reading a guard (or anything not written first) yields the NaN poison, which verification sees."""
    from horq_codegen.runners import run_project
    code = "output[0] = horq_float_arena[HORQ_ARENA_GUARD - 1];"
    project, target = _sabotage(every_op, inputs, tmp_path, code)
    model_c = project / "src" / "model.c"
    # Read the guard into the final output, after the last layer ran.
    text = model_c.read_text().replace(f"    {code}\n", "", 1)
    last = text.rindex("    HORQ_MARK(")
    model_c.write_text(text[:last] + f"    {code}\n" + text[last:])
    outputs = run_project(project, target, 2, 7).outputs
    assert np.isnan(outputs[:, 0]).all()
    assert not np.isnan(every_op.reference(inputs[:2])).any()


def test_a_cpp_firmware_links_the_c_model_and_kernels(every_op, tmp_path):
    """The headers carry extern "C": a C++ main() that includes the model's header links against the
    model and kernels compiled as C, and computes the reference's outputs."""
    x = np.random.default_rng(23).standard_normal((1, 3, 9, 9)).astype(np.float32)
    project = tmp_path / "p"
    project.mkdir()
    generate(every_op.graph, load_target("host"), project, ModelInfo("every_op.pt2", "0" * 64), x)
    objects = []
    for source in [*sorted((project / "lib/horq").glob("*.c")), project / "src/model.c"]:
        obj = tmp_path / f"{source.stem}.o"
        subprocess.run(["cc", "-std=c99", "-O2", "-ffp-contract=off", f"-I{project / 'lib/horq'}",
                        f"-I{project / 'include'}", "-c", str(source), "-o", str(obj)], check=True)
        objects.append(str(obj))
    words = ", ".join(f"0x{int(w):08x}u" for w in x.reshape(-1).view(np.uint32))
    caller = tmp_path / "firmware.cpp"
    caller.write_text(f"""#include <cstdio>
#include <cstring>
#include "model.h"

static const uint32_t input_bits[MODEL_INPUT_SIZE] = {{{words}}};

int main()
{{
    float input[MODEL_INPUT_SIZE], output[MODEL_OUTPUT_SIZE];
    std::memcpy(input, input_bits, sizeof input);
    model_run(input, output);
    for (int i = 0; i < MODEL_OUTPUT_SIZE; ++i) {{
        uint32_t bits;
        std::memcpy(&bits, &output[i], sizeof bits);
        std::printf("%08lx\\n", (unsigned long)bits);
    }}
    return 0;
}}
""")
    exe = tmp_path / "firmware"
    subprocess.run(["c++", "-std=c++11", "-O2", "-Wall", "-Wextra", "-Werror", f"-I{project / 'include'}",
                    f"-I{project / 'lib/horq'}", str(caller), *objects, "-o", str(exe), "-lm"], check=True)
    printed = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    outputs = np.array([int(w, 16) for w in printed], np.uint32).view(np.float32)[None]
    assert_bit_exact(outputs, every_op.reference(x))
