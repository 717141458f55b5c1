"""``horq-codegen report``: the page's content, its rendering in a real headless Chromium, the
quantization error it plots, and its refusals.

One report of the small model on Cortex-M7 (QEMU) is built for the whole file: building it is
most of the file's time."""
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from horq_codegen import quant_error
from horq_codegen.cli import main
from horq_codegen.integer import Lowering
from horq_codegen.pipeline import load_and_lower
from horq_codegen.report import layer_rows
from horq_codegen.samples import read_user_data
from horq_codegen.verify import verify

TARGET = "cortex-m7"
SAMPLES = 12
CLASSES = 4  # the small model's outputs
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def labelled_inputs(tmp_path_factory, small_model):
    folder = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(1)
    np.save(folder / "x.npy", rng.standard_normal((SAMPLES, 1, 10, 10)).astype(np.float32))
    np.save(folder / "y.npy", rng.integers(0, CLASSES, SAMPLES))
    return folder / "x.npy", folder / "y.npy"


@pytest.fixture(scope="module")
def page(tmp_path_factory, small_model, labelled_inputs):
    """The report of the small model, built through the command line: (path, HTML, stderr lines)."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    x, y = labelled_inputs
    capture = pytest.MonkeyPatch()
    err = io.StringIO()
    capture.setattr(sys, "stderr", err)
    try:
        status = main(["report", str(small_model), "--target", TARGET, "-o", str(out), "--inputs", str(x),
                       "--labels", str(y)])
    finally:
        capture.undo()
    assert status == 0, err.getvalue()
    return out, out.read_text(encoding="utf-8"), err.getvalue()


def test_the_page_holds_every_section_with_inline_charts(page, small_model):
    path, html, progress = page
    for section in ("model", "speed", "memory", "quantization", "agreement"):
        assert f'<section id="{section}">' in html
    for chart in ("instructions-chart", "weights-chart", "arena-chart", "quant-error-chart", "confusion-chart"):
        figure = re.search(rf'<figure id="{chart}">\s*<svg\b.*?</svg>', html, re.S)
        assert figure, chart
    assert html.count("<svg") == 5
    # Self-contained: nothing fetched (the SVGs' xmlns are names, not fetches), no script, no stylesheet link.
    assert not re.search(r'''(?:src|href)\s*=\s*["']?\s*(?:https?:)?//''', html, re.I)
    assert not re.search(r"<script|<link|@import|url\(\s*['\"]?https?:", html, re.I)
    assert "report [1/5]" in progress and "report [5/5]" in progress  # stage messages on stderr
    assert not list(path.parent.glob(".*.tmp"))  # the temporary file was renamed, not left behind


def test_the_layer_table_is_inspects(page, small_model, labelled_inputs):
    _, html, _ = page
    table = re.search(r'<table id="layer-table">(.*?)</table>', html, re.S).group(1)
    x, _ = labelled_inputs
    _, graph = load_and_lower(small_model, lowering=Lowering(calibration=np.load(x), calibration_source=str(x)))
    rows = layer_rows(graph)
    for row in rows:
        assert f"<td>{row.name}</td>" in table and f"{row.macs:,}" in table
    assert table.count("<tr>") == len(rows) + 1  # the header, then one row per op (the total is class="total")
    # Section 2 and the speedup table name the HORQ layers with their instruction counts.
    speed = re.search(r'<table id="instructions-table">(.*?)</table>', html, re.S).group(1)
    assert all(f"<td>{r.name}</td>" in speed for r in rows)
    speedup = re.search(r'<table id="speedup-table">(.*?)</table>', html, re.S).group(1)
    assert speedup.count("<tr>") == 1 + sum(1 for r in rows if r.order)
    assert re.search(r'<td class="n">\d+\.\dx</td></tr>', speedup)  # a measured ratio beside the analytic one


def _cell(html: str, key: str) -> str:
    return re.search(rf'id="agree-{key}"[^>]*>([^<]*)<', html).group(1)


def test_the_agreement_table_is_what_verify_computes(page, small_model, labelled_inputs):
    _, html, _ = page
    x, y = labelled_inputs
    user = read_user_data(x, y)
    # The host build: C equals the reference bit for bit on every target, so the figures are the same.
    c = verify(small_model, "host", user=user, lowering=Lowering(calibration=user.inputs,
                                                                 calibration_source=str(x))).comparison
    assert _cell(html, "samples") == str(SAMPLES)
    assert _cell(html, "bit-exact") == ("bit-exact" if c.bit_exact else "DIFFERENT")
    assert float(_cell(html, "max-diff-reference")) == pytest.approx(c.max_diff_reference, rel=1e-5, abs=0)
    assert float(_cell(html, "max-diff-torch")) == pytest.approx(c.max_diff_torch, rel=1e-5)
    assert _cell(html, "argmax").startswith(f"{c.argmax_agree} / {SAMPLES}")
    assert _cell(html, "accuracy-c") == f"{100 * c.accuracy_c:.2f} %"
    assert _cell(html, "accuracy-torch") == f"{100 * c.accuracy_torch:.2f} %"
    assert _cell(html, "verdict") == ("PASS" if c.passed else "FAIL")


def _chromium(url: str, work: Path, height: int = 2000) -> tuple[Path, list[str]]:
    """A screenshot of ``url`` and the console messages Chromium logged while loading it."""
    png = work / "shot.png"
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={home / 'profile'}",
                          "--enable-logging=stderr", "--v=0", f"--screenshot={png}", f"--window-size=1200,{height}",
                          url], capture_output=True, text=True, timeout=60, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    assert png.exists(), run.stderr[-2000:]
    # Every console message (an uncaught error, console.error, a refused resource) is a ":CONSOLE" log line;
    # the page has no script, so it should log none.
    return png, [line for line in run.stderr.splitlines() if re.search(r":CONSOLE(?::\d+)?\]", line)]


def _looks_drawn(png: Path) -> bool:
    """Not a blank page: at least 5 % of the pixels not white, and many colours."""
    image = matplotlib.image.imread(png)[..., :3]
    not_white = (image < 0.95).any(axis=-1).mean()
    levels = (image * 15).round().astype(np.int32)  # 16 levels a channel
    colours = len(np.unique(levels[..., 0] * 256 + levels[..., 1] * 16 + levels[..., 2]))
    return not_white > 0.05 and colours >= 12


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/setup.sh installs it)")
def test_chromium_renders_the_page_without_console_errors(page, tmp_path):
    path, _, _ = page
    png, console = _chromium(path.resolve().as_uri(), tmp_path / "page")
    assert console == []
    assert _looks_drawn(png)
    # The checks can fail: a page with a broken script logs its error, and a nearly empty page is no drawing.
    broken = tmp_path / "broken.html"
    broken.write_text("<!DOCTYPE html><html><body><p>hi</p><script>notDefinedAnywhere();</script></body></html>")
    png, console = _chromium(broken.as_uri(), tmp_path / "broken", height=600)
    assert any("notDefinedAnywhere" in line for line in console)
    assert not _looks_drawn(png)


def test_relative_error_by_hand_and_falling_with_order():
    x = np.array([[3.0, -1.0, 0.0, 2.0], [0.5, 0.5, -0.5, -1.5]])
    # Order 1 by hand: each row's beta_1 = mean |x| (1.5 and 0.75), x_hat = beta_1 sgn(x) with sgn(0) = +1.
    x_hat = np.array([[1.5, -1.5, 1.5, 1.5], [0.75, 0.75, -0.75, -0.75]])
    want = np.sqrt(((x - x_hat) ** 2).sum() / (x ** 2).sum())
    assert quant_error.relative_error(x, 1) == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(quant_error.residual_quantize(x, 1), x_hat)
    rng = np.random.default_rng(0)
    groups = rng.standard_normal((50, 72))
    errors = [quant_error.relative_error(groups, k) for k in (1, 2, 3, 4)]
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert 0.5 < errors[0] < 0.7  # a Gaussian's order-1 error: sqrt(1 - 2 / pi) = 0.60
    # Fixed (static) betas: the model's own, not the group's.
    assert quant_error.relative_error(np.array([[1.0, -1.0]]), 1, betas=[1.0]) == 0.0
    assert quant_error.relative_error(np.array([[2.0, -2.0]]), 1, betas=[1.0]) == pytest.approx(0.5)


def test_layer_input_errors_measure_what_each_layer_reads(small_model):
    from horq_codegen import passes
    from horq_codegen.importer import load
    model = load(small_model)
    graph = passes.lower(model.graph)
    inputs = np.random.default_rng(2).standard_normal((3, 1, 10, 10)).astype(np.float32)
    errors = quant_error.layer_input_errors(graph, inputs)
    assert list(errors) == [n.name for n in graph.nodes if n.op.value.startswith("horq")]
    for values in errors.values():
        assert len(values) == 4 and all(a > b > 0 for a, b in zip(values, values[1:]))


def test_report_refuses_a_missing_model_and_an_unwritable_output(tmp_path, capsys, small_model):
    out = tmp_path / "r.html"
    assert main(["report", str(tmp_path / "nope.pt2"), "--target", TARGET, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("horq-codegen: error:") and "no such file" in err and len(err.splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []  # no page, no temporary file
    assert main(["report", str(small_model), "--target", TARGET, "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("")
    assert main(["report", str(small_model), "--target", TARGET, "-o", str(tmp_path / "a-file" / "r.html")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert main(["report", str(small_model), "--target", "cortex-m99", "-o", str(out)]) == 2
    assert "unknown target" in capsys.readouterr().err
