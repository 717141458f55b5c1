"""The user's own inputs (--inputs, --labels), the help text, and arguments checked before any work."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from horq_codegen.cli import main
from horq_codegen.targets import known_targets, load_target


@pytest.fixture(scope="module")
def model(tiny_model) -> Path:
    return tiny_model


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("horq-codegen: error:"), captured.err
    return lines[0]


def test_verify_runs_the_users_inputs_and_labels(model, tmp_path, capsys):
    x = np.random.default_rng(1).standard_normal((7, 1, 6, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.arange(7) % 3)
    assert main(["verify", str(model), "--inputs", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy")]) == 0
    out = capsys.readouterr().out
    assert f"7 inputs from {tmp_path / 'x.npy'} (labels from {tmp_path / 'y.npy'})" in out
    assert "accuracy" in out and "argmax agree 7/7" in out


def test_one_sample_without_its_batch_axis_and_a_count(model, tmp_path, capsys):
    np.save(tmp_path / "one.npy", np.ones((1, 6, 6), np.float64))  # float64 is converted
    assert main(["verify", str(model), "--inputs", str(tmp_path / "one.npy")]) == 0
    assert "1 inputs from" in capsys.readouterr().out
    np.save(tmp_path / "x.npy", np.zeros((5, 1, 6, 6), np.float32))
    assert main(["verify", str(model), "--inputs", str(tmp_path / "x.npy"), "--samples", "9"]) == 2
    assert "holds 5 inputs" in one_error_line(capsys)


def test_generate_embeds_the_users_inputs(model, tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.random.default_rng(2).standard_normal((4, 1, 6, 6)).astype(np.float32))
    assert main([str(model), "-o", str(tmp_path / "out"), "--inputs", str(tmp_path / "x.npy")]) == 0
    assert "4 inputs from" in capsys.readouterr().out
    assert "4" in (tmp_path / "out" / "src" / "test_inputs.c").read_text()


@pytest.mark.parametrize("case,expected", [
    ("shape", "inputs of shape (3, 2, 6, 6), but the model takes (N, 1, 6, 6)"),
    ("nan", "holds 2 NaN and 1 infinite values (in 2 sample(s))"),
    ("object", "cannot read inputs"),
    ("strings", "inputs must be a non-empty numeric array"),
    ("not-npy", "not a .npy file"),
    ("labels-count", "holds 2 labels for 3 inputs"),
    ("labels-float", "labels must be a 1-D integer array"),
    ("labels-range", "labels run from 0 to 7, the model has 3 outputs"),
])
def test_bad_inputs_are_one_line(model, tmp_path, capsys, case, expected):
    x = np.zeros((3, 1, 6, 6), np.float32)
    labels = None
    if case == "shape":
        x = np.zeros((3, 2, 6, 6), np.float32)
    elif case == "nan":
        x[0, 0, 0, :2] = np.nan
        x[2, 0, 1, 1] = np.inf
    elif case == "object":
        x = np.array([{"a": 1}, None], dtype=object)
    elif case == "strings":
        x = np.array(["a", "b"])
    elif case == "labels-count":
        labels = np.array([0, 1])
    elif case == "labels-float":
        labels = np.array([0.0, 1.0, 2.0])
    elif case == "labels-range":
        labels = np.array([0, 7, 1])
    path = tmp_path / "x.npy"
    if case == "not-npy":
        path.write_text("1,2,3\n")
    else:
        np.save(path, x, allow_pickle=True)
    argv = ["verify", str(model), "--inputs", str(path)]
    if labels is not None:
        np.save(tmp_path / "y.npy", labels)
        argv += ["--labels", str(tmp_path / "y.npy")]
    assert main(argv) == 2
    assert expected in one_error_line(capsys)


def test_arguments_are_checked_before_any_work(tmp_path, capsys):
    """Bad inputs are named before the (missing) model is even read, and no progress line comes first."""
    (tmp_path / "x.npy").write_text("not numpy")
    assert main(["verify", str(tmp_path / "missing.pt2"), "--inputs", str(tmp_path / "x.npy")]) == 2
    assert "not a .npy file" in one_error_line(capsys)
    assert main(["verify", str(tmp_path / "missing.pt2"), "--labels", str(tmp_path / "x.npy")]) == 2
    assert "--labels needs --inputs" in one_error_line(capsys)
    assert main(["generate", str(tmp_path / "missing.pt2"), "--board", "nucleo_nope"]) == 2
    assert "unknown board 'nucleo_nope'" in one_error_line(capsys)
    assert main(["verify", str(tmp_path / "missing.pt2"), "--samples", "0"]) == 2
    assert "must be at least 1" in one_error_line(capsys)


def test_help_lists_every_target_and_board_with_the_defaults(capsys):
    assert main(["generate", "--help"]) == 0
    text = capsys.readouterr().out
    for name in known_targets():
        target = load_target(name)
        assert name in text and target.description in text
        for key in target.boards:
            assert key in text
        if target.default_board:
            assert f"* {target.default_board}" in text
    assert "(default: host)" in text
