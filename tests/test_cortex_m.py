"""Cortex-M firmware: verified in QEMU, counted, sized, and refused when it cannot fit."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from torch import nn

from horq_codegen.bench import bench
from horq_codegen.cli import main
from horq_codegen.errors import HorqError
from horq_codegen.nn import HORQConv2d, HORQLinear
from horq_codegen.pipeline import Lowering, generate_project, lower_model
from horq_codegen.runners import run_project
from horq_codegen.targets import load_target
from horq_codegen.verify import verify

from conftest import EXAMPLE_MODEL, Pipeline, assert_bit_exact, assert_matches_model, export_model, settle_batchnorm

CORTEX_M = ["cortex-m7", "cortex-m4", "cortex-m55", "cortex-m33", "cortex-m3"]


@pytest.mark.parametrize("target", CORTEX_M)
@pytest.mark.parametrize("activations", ["int8", "float"])
def test_bundled_model_verifies_in_qemu(target, activations):
    report = verify(EXAMPLE_MODEL, target, samples=100, lowering=Lowering(activations))
    assert report.comparison.passed and report.comparison.bit_exact, report.summary()
    if activations == "float":
        assert report.comparison.argmax_agree == 100


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(6),
                          HORQConv2d(6, 35, 3, stride=2, order=3, granularity="pixel"), nn.MaxPool2d(2),
                          nn.Flatten(), nn.BatchNorm1d(140), HORQLinear(140, 9, order=2, granularity="static"),
                          nn.Linear(9, 3))
    path = tmp_path_factory.mktemp("small") / "small.pt2"
    return Pipeline(export_model(settle_batchnorm(model, (2, 9, 9)), (2, 9, 9), path))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_small_models_verify_on_cortex_m7(tmp_path, seed):
    from test_random_models import build
    rng = np.random.default_rng(seed)
    channels, size = int(rng.integers(1, 4)), int(rng.integers(6, 10))
    granularity = ["patch", "pixel", "tensor", "static"][seed % 4]
    layers = [{"kind": "conv", "in": channels, "out": int(rng.integers(3, 40)), "k": 3, "pad": 1, "stride": 1 + seed % 2,
               "order": 1 + seed, "granularity": granularity, "bn": True, "act": "relu"},
              {"kind": "max", "k": 2, "stride": 2, "pad": 0}]
    h = (size + 2 - 3) // (1 + seed % 2) + 1
    features = layers[0]["out"] * (h // 2) * (h // 2)
    layers.append({"kind": "linear", "in": features, "out": 7, "order": 2, "granularity": "patch", "bn": False})
    torch.manual_seed(seed)
    model = settle_batchnorm(build(layers), (channels, size, size), seed)
    pipeline = Pipeline(export_model(model, (channels, size, size), tmp_path / "m.pt2"))
    x = rng.standard_normal((3, channels, size, size)).astype(np.float32)
    target = load_target("cortex-m7")
    generated = generate_project(pipeline.model, pipeline.graph, target, tmp_path / "fw", x)
    result = run_project(generated.out_dir, target, 3, 7)
    assert_bit_exact(result.outputs, pipeline.reference(x))
    assert_matches_model(pipeline, x, result.outputs)


def test_bench_counts_are_identical_run_to_run(small, tmp_path):
    first = bench(small.model.file.path, "cortex-m7")
    second = bench(small.model.file.path, "cortex-m7")
    assert first.to_json() == second.to_json()
    integer_graph = lower_model(small.model, Lowering(warn=lambda line: None))
    assert first.horq.total_instructions > 0 and len(first.horq.layers) == len(integer_graph.nodes)
    assert sum(layer.instructions for layer in first.horq.layers) == first.horq.total_instructions
    assert first.horq.parameter_bytes < first.float32.parameter_bytes
    assert 0 < first.horq.flash_bytes and first.horq.arena_bytes <= first.horq.ram_bytes
    assert first.horq.estimated_cycles is None and first.cycles_model == ""   # only with cycles=True


def test_bench_cli_writes_json(small, tmp_path, capsys):
    assert main(["bench", str(small.model.file.path), "--target", "cortex-m4", "--json", str(tmp_path / "b.json")]) == 0
    figures = json.loads((tmp_path / "b.json").read_text())
    assert figures["target"] == "cortex-m4" and figures["horq"]["total_instructions"] > 0
    assert "float32 instr" in capsys.readouterr().out


def _sabotaged(small, tmp_path, code: str):
    target = load_target("cortex-m7")
    x = np.zeros((1, 2, 9, 9), np.float32)
    generated = generate_project(small.model, small.graph, target, tmp_path / "fw", x)
    model_c = generated.out_dir / "src" / "model.c"
    model_c.write_text(model_c.read_text().replace("    HORQ_MARK(0);", f"    {code}\n    HORQ_MARK(0);", 1))
    return generated.out_dir, target


@pytest.mark.parametrize("code,message", [
    ("*(volatile uint32_t *)0xF0000000u = 1u;", "hard-faulted"),              # a bus fault
    ("for (;;) { __asm__ volatile(\"\"); }", "hangs"),                       # a hang, under a 3 s limit
    ("horq_float_arena[0] = 1.0f; /* a guard element */", "outside its planned arena"),
    ("this is not C;", "build failed"),
], ids=["fault", "hang", "arena-guard", "build-error"])
def test_broken_firmware_is_reported_as_what_it_is(small, tmp_path, code, message):
    project, target = _sabotaged(small, tmp_path, code)
    quick = dataclasses.replace(target, emulator={**target.emulator, "timeout_s": 3})
    with pytest.raises(HorqError, match=message):
        run_project(project, quick, 1, 3)


def test_garbled_output_is_reported(small, tmp_path):
    project, target = _sabotaged(small, tmp_path, "printf(\"y 0 zz\\n\");")
    model_c = project / "src" / "model.c"
    model_c.write_text("#include <stdio.h>\n" + model_c.read_text())
    with pytest.raises(HorqError, match="garbled|printed"):
        run_project(project, target, 1, 3)


@pytest.mark.parametrize("target", ["cortex-m7", "cortex-m4", "cortex-m33", "cortex-m3"])
def test_platformio_project_is_valid(small, tmp_path, target):
    from platformio.project.config import ProjectConfig
    t = load_target(target)
    generated = generate_project(small.model, small.graph, t, tmp_path / "fw", np.zeros((1, 2, 9, 9), np.float32))
    config = ProjectConfig(str(generated.out_dir / "platformio.ini"))
    config.validate()
    env = f"env:{t.default_board}"
    assert config.get(env, "board") == t.boards[t.default_board].pio_board
    assert (generated.out_dir / config.get(env, "board_build.ldscript")).is_file()
    assert "pio run -t upload" in (generated.out_dir / "README.md").read_text()


def test_unknown_board_lists_known_ones(small, capsys, tmp_path):
    assert main([str(small.model.file.path), "--target", "cortex-m4", "--board", "arduino_uno", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "unknown board 'arduino_uno'" in err and "nucleo_f446re" in err


def test_model_too_large_for_the_board_is_refused_with_both_figures(tmp_path, capsys):
    model = nn.Sequential(nn.Flatten(), nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, 10)).eval()  # ~1 MB of floats
    path = export_model(model, (1, 32, 32), tmp_path / "big.pt2")
    # float weights: ~1 MB (int8 ones would fit)
    assert main([str(path), "--target", "cortex-m4", "--activations", "float", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "does not fit ST NUCLEO-F446RE" in err and "has 524,288" in err and "needs about 1," in err
    assert not (tmp_path / "out").exists()
    # The bigger board of the same core takes it.
    assert main([str(path), "--target", "cortex-m7", "--activations", "float", "-o", str(tmp_path / "out7")]) == 0
