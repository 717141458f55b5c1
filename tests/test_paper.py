"""The paper experiments (``examples/paper/run.py``, ``make paper``) on their tiny configuration: the
pipeline end to end, the cache that makes a second call resume instead of retrain, the outputs."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

PAPER = Path(__file__).resolve().parents[1] / "examples" / "paper"


@pytest.fixture(scope="module")
def paper():
    spec = importlib.util.spec_from_file_location("paper_run", PAPER / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["paper_run"] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    yield module
    del sys.modules["paper_run"]


def test_tiny_paper_run_trains_caches_and_reports(paper, tmp_path, capsys):
    assert paper.main(["--tiny", "--jobs", "1", "--no-progress", "--out", str(tmp_path)]) == 0
    first = capsys.readouterr().out
    assert "5 runs: 0 cached" in first
    runs = sorted((tmp_path / "runs").glob("*.json"))
    assert len(runs) == 5 and not list((tmp_path / "runs").glob("*.tmp"))

    results = json.loads((tmp_path / "results.json").read_text())
    methods = {(r["order"], r["granularity"]) for r in results["rows"]}
    assert methods == {(None, "-"), (1, "patch"), (1, "static"), (2, "patch"), (2, "static")}
    for row in results["rows"]:
        assert 0 <= row["accuracy"] <= 100 and row["seeds"] == 1
        assert len(row["input_errors"]) == 3  # two HORQ convolutions and the HORQ linear layer
        for errors in row["input_errors"].values():
            assert len(errors) == 4 and all(0 < e < 1 for e in errors)
            assert errors[3] < errors[0]  # the residual error falls with order
    table = (tmp_path / "results.md").read_text()
    assert "| narrow | HORQ-2 | patch |" in table and "| 1.25 |" in table  # ours beside the paper's
    page = (tmp_path / "report.html").read_text()
    assert page.count("<svg") == 2
    assert not any(f'{attr}="{scheme}' in page for attr in ("src", "href") for scheme in ("http", "//"))

    # A second call trains nothing and writes the same table.
    (tmp_path / "runs" / "stray.tmp").write_text("{")  # a write that was interrupted: not a result
    assert paper.main(["--tiny", "--jobs", "1", "--no-progress", "--out", str(tmp_path)]) == 0
    assert "5 runs: 5 cached" in capsys.readouterr().out
    assert (tmp_path / "results.md").read_text() == table


def test_plan_covers_the_paper_grid(paper):
    runs = paper.plan(["full", "narrow"], 3)
    assert len(runs) == 2 * 3 * (1 + 4 * 2)  # widths x seeds x (float + 4 orders x 2 granularities)
    assert len({r.key(paper.Recipe(8, 64, 3e-3, 2)) for r in runs}) == len(runs)
