"""The Bi-Real-style example (examples/birealnet): its architecture, augmentation, a smoke run of
train.py and the committed model file."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from horq_codegen.nn import BiRealBlock, HORQConv2d

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "birealnet"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"birealnet_{name}", EXAMPLE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_module():
    return _load("model")


def test_architecture_shapes_and_size(model_module):
    model = model_module.build_model()
    blocks = [m for m in model if isinstance(m, BiRealBlock)]
    assert len(blocks) == 5
    horq = [m for m in model.modules() if isinstance(m, HORQConv2d)]
    assert all((m.order, m.granularity) == (2, "static") for m in horq)
    binary_bits = sum(m.weight.numel() for m in horq)
    assert binary_bits // 8 < 16_000  # about 8.9 kB of packed binary weights
    x = torch.zeros(2, 1, 28, 28)
    shapes = []
    for layer in model:
        x = layer(x)
        if isinstance(layer, BiRealBlock):
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(16, 28, 28), (32, 14, 14), (32, 14, 14), (64, 7, 7), (64, 7, 7)]
    assert x.shape == (2, 10)
    assert all(m.granularity == "patch" for m in model_module.build_model(1, "patch").modules()
               if isinstance(m, HORQConv2d))
    assert not any(isinstance(m, HORQConv2d) and m.order is not None
                   for m in model_module.build_model(None).modules())


def test_every_horq_conv_sees_a_signed_input(model_module):
    """The stem ends in PReLU, not ReLU, and so does every block (shared/HORQ.md, the pitfall)."""
    model = model_module.build_model()
    assert isinstance(model[2], nn.PReLU)
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())


def test_random_shift_moves_each_image_within_the_bounds():
    train = _load("train")
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(16, 1, 9, 9)
    images[:, :, 4, 4] = 1.0
    assert torch.equal(train.random_shift(images, 0, g), images)
    shifted = train.random_shift(images, 2, g)
    assert shifted.shape == images.shape and torch.equal(shifted.sum((1, 2, 3)), torch.ones(16))
    where = shifted[:, 0].flatten(1).argmax(1)
    rows, cols = where // 9, where % 9
    assert ((rows - 4).abs() <= 2).all() and ((cols - 4).abs() <= 2).all()
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 1


def test_train_smoke_exports_a_loadable_model(tmp_path):
    out = tmp_path / "smoke.pt2"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run(
        [sys.executable, str(EXAMPLE / "train.py"), "--smoke", "--no-progress", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test accuracy:" in result.stdout and "1 threads" in result.stdout
    program = torch.export.load(out)
    assert program.module()(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_committed_model_file():
    path = EXAMPLE / "model.pt2"
    assert path.stat().st_size < 600_000  # about 430 kB: the float32 master weights and the graph
    with zipfile.ZipFile(path) as archive:
        meta = [n for n in archive.namelist() if n.endswith("extra/horq.json")]
        assert len(meta) == 1
        assert json.loads(archive.read(meta[0]))["dataset"] == "mnist-subset"
    program = torch.export.load(path)
    names = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert {"aten.add.Tensor", "aten.prelu.default", "horq.conv2d.default",
            "aten.adaptive_avg_pool2d.default"} <= names
    assert program.module()(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
