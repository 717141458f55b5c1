"""Model files: accepted formats (detected by content) and refusals of hostile or unsupported ones."""
import os
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from horq_codegen.cli import main
from horq_codegen.nn import HORQConv2d, HORQLinear

from conftest import Pipeline, assert_bit_exact


def _sequential() -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.BatchNorm2d(4), HORQConv2d(4, 8, 3, padding=1), nn.Flatten(),
                          HORQLinear(8 * 4 * 4, 3, order=3), nn.Dropout())
    model.train()
    model(torch.randn(8, 1, 10, 10))
    return model.eval()


def _error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("horq-codegen: error:") and len(err.splitlines()) == 1, err
    return err


def test_torch_saved_sequential_is_accepted_with_an_input_shape(tmp_path, capsys):
    path = tmp_path / "weights.bin"  # the name says nothing: the content decides
    torch.save(_sequential(), path)
    assert main(["verify", str(path), "--input-shape", "1,10,10", "--samples", "4"]) == 0
    assert "PASS" in capsys.readouterr().out


def test_plain_torch_export_program_is_accepted(tmp_path):
    model = _sequential()
    program = torch.export.export(model, (torch.zeros(1, 1, 10, 10),))
    torch.export.save(program, tmp_path / "plain.pt2")
    pipeline = Pipeline(tmp_path / "plain.pt2")
    x = np.random.default_rng(0).standard_normal((3, 1, 10, 10)).astype(np.float32)
    assert_bit_exact(pipeline.c(x, tmp_path).outputs, pipeline.reference(x))


def test_torch_saved_model_needs_its_input_shape(tmp_path, capsys):
    torch.save(_sequential(), tmp_path / "m.pt")
    assert "--input-shape" in _error(["inspect", str(tmp_path / "m.pt")], capsys)


def test_input_shape_the_model_rejects_is_refused(tmp_path, capsys):
    torch.save(_sequential(), tmp_path / "m.pt")
    err = _error(["inspect", str(tmp_path / "m.pt"), "--input-shape", "3,10,10"], capsys)
    assert "rejects input shape (3, 10, 10)" in err


def test_exported_program_with_another_input_shape_is_refused(tmp_path, capsys):
    program = torch.export.export(_sequential(), (torch.zeros(1, 1, 10, 10),))
    torch.export.save(program, tmp_path / "p.pt2")
    assert "takes inputs of shape (1, 10, 10)" in _error(["inspect", str(tmp_path / "p.pt2"), "--input-shape", "1,12,12"], capsys)


def test_torch_saved_unsupported_layer_is_named(tmp_path, capsys):
    torch.save(nn.Sequential(nn.Linear(4, 4), nn.GELU()), tmp_path / "gelu.pt")
    assert "GELU" in _error(["inspect", str(tmp_path / "gelu.pt"), "--input-shape", "4"], capsys)


def test_torch_saved_non_sequential_is_refused(tmp_path, capsys):
    torch.save(_sequential().state_dict(), tmp_path / "state.pt")
    assert "not an nn.Sequential" in _error(["inspect", str(tmp_path / "state.pt"), "--input-shape", "1,10,10"], capsys)


class _CreatesFile:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("as_zip", [True, False])
def test_code_running_pickle_is_refused_and_runs_nothing(tmp_path, capsys, as_zip):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    if as_zip:
        torch.save(_CreatesFile(marker), path)           # torch.save's zip format
    else:
        path.write_bytes(pickle.dumps(_CreatesFile(marker)))  # a bare pickle
    err = _error(["inspect", str(path), "--input-shape", "4"], capsys)
    assert "could run code" in err or "not supported" in err
    assert not marker.exists()
