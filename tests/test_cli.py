"""The command line: generate, inspect, verify, clear refusals, and an installed (non-editable) copy."""
import os
import pickle
import subprocess
import sys

from torch import nn

from horq_codegen.cli import main

from conftest import REPO, export_model


def test_generate_writes_a_buildable_project(small_model, tmp_path, capsys):
    out = tmp_path / "gen"
    assert main([str(small_model), "--target", "host", "-o", str(out)]) == 0
    files = {str(p.relative_to(out)) for p in out.rglob("*")}
    assert {"src/model.c", "include/model.h", "src/harness.c", "src/test_inputs.c", "Makefile",
            "lib/horq/horq_kernels.h"} <= files
    subprocess.run(["make", "-s", "-C", str(out)], check=True)
    assert "arena" in capsys.readouterr().out


def test_inspect_prints_a_layer_table_with_totals(small_model, capsys):
    assert main(["inspect", str(small_model), "--passes"]) == 0
    text = capsys.readouterr().out
    assert "horq_conv2d" in text and "5 (HORQConv2d)" in text and "total" in text
    assert "== after fold_batchnorm" in text and "float32" in text


def test_inspect_warns_about_pixel_granularity_only(capsys, tmp_path):
    from horq_codegen.nn import HORQConv2d
    for granularity in ("pixel", "tensor"):
        model = nn.Sequential(HORQConv2d(3, 4, 3, order=2, granularity=granularity)).eval()
        path = export_model(model, (3, 6, 6), tmp_path / f"{granularity}.pt2")
        assert main(["inspect", str(path), "--activations", "float"]) == 0
        warned = "uses `pixel` granularity" in capsys.readouterr().err
        assert warned == (granularity == "pixel")


def test_verify_passes_and_reports(small_model, capsys):
    assert main(["verify", str(small_model), "--target", "host", "--samples", "5"]) == 0
    text = capsys.readouterr().out
    assert "bit-exact" in text and "argmax agree 5/5" in text and text.strip().endswith("PASS")


def _error(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("horq-codegen: error:") and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_missing_file_is_refused(capsys, tmp_path):
    assert "no such file" in _error(["inspect", str(tmp_path / "nope.pt2")], capsys)


def test_empty_and_text_files_are_refused(capsys, tmp_path):
    (tmp_path / "empty.pt2").write_bytes(b"")
    assert "empty file" in _error(["inspect", str(tmp_path / "empty.pt2")], capsys)
    (tmp_path / "notes.txt").write_text("hello\n")
    assert "not a model file" in _error(["inspect", str(tmp_path / "notes.txt")], capsys)


def test_truncated_file_is_refused(small_model, capsys, tmp_path):
    data = small_model.read_bytes()
    (tmp_path / "cut.pt2").write_bytes(data[: len(data) // 2])
    assert "corrupt" in _error(["inspect", str(tmp_path / "cut.pt2")], capsys)


def test_corrupt_file_is_refused(small_model, capsys, tmp_path):
    data = bytearray(small_model.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(64)  # damage stored bytes: a checksum no longer matches
    (tmp_path / "bad.pt2").write_bytes(bytes(data))
    assert "corrupt" in _error(["inspect", str(tmp_path / "bad.pt2")], capsys)


def test_zip_that_is_not_a_model_is_refused(capsys, tmp_path):
    import zipfile
    with zipfile.ZipFile(tmp_path / "photos.pt2", "w") as archive:
        archive.writestr("holiday/notes.txt", "not a model")
    assert "not a torch.export program" in _error(["inspect", str(tmp_path / "photos.pt2")], capsys)


def test_dilated_convolution_is_refused_and_a_grouped_one_inspected(capsys, tmp_path):
    dilated = export_model(nn.Sequential(nn.Conv2d(4, 4, 3, dilation=2)).eval(), (4, 6, 6), tmp_path / "dilated.pt2")
    assert "dilation" in _error(["inspect", str(dilated)], capsys)
    grouped = export_model(nn.Sequential(nn.Conv2d(4, 4, 3, groups=2)).eval(), (4, 6, 6), tmp_path / "groups.pt2")
    assert main(["inspect", str(grouped), "--passes"]) == 0 and "groups=2" in capsys.readouterr().out
    assert main(["inspect", str(grouped)]) == 0 and "1,152" in capsys.readouterr().out  # MACs: 4 x 2 x 9 x 16


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_that_would_run_code_is_refused_and_runs_nothing(small_model, capsys, tmp_path):
    """A .pt2 whose sample-inputs member is a code-running pickle: torch would fall back to executing it."""
    import zipfile
    marker = tmp_path / "pwned"
    hostile = tmp_path / "hostile.pt2"
    with zipfile.ZipFile(small_model) as src, zipfile.ZipFile(hostile, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if "sample_inputs" in item.filename:
                data = pickle.dumps(_Payload(str(marker)))
            dst.writestr(item, data)
    assert "could run code" in _error(["inspect", str(hostile)], capsys)
    assert not marker.exists()


def test_unsupported_layer_is_named_with_its_place(capsys, tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.GELU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 2)).eval()
    path = export_model(model, (1, 6, 6), tmp_path / "gelu.pt2")
    assert "1 (GELU)" in _error(["inspect", str(path)], capsys)


def test_dilation_is_refused_not_miscompiled(capsys, tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 4, 3, dilation=2)).eval()
    path = export_model(model, (1, 8, 8), tmp_path / "dilated.pt2")
    assert "dilation" in _error(["inspect", str(path)], capsys)


def test_unknown_target_lists_the_known_ones(small_model, capsys, tmp_path):
    err = _error([str(small_model), "--target", "cortex-z9", "-o", str(tmp_path / "x")], capsys)
    assert "unknown target 'cortex-z9'" in err and "host" in err
    assert not (tmp_path / "x").exists()


def test_foreign_output_folder_is_not_overwritten(small_model, capsys, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    assert "--force" in _error([str(small_model), "-o", str(out), "--activations", "float"], capsys)
    assert (out / "thesis.tex").read_text() == "precious"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mine")]  # no staging left behind


def test_installed_copy_finds_its_templates_and_targets(small_model, tmp_path):
    """A non-editable install (wheel layout) generates code without the checkout on its path."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(REPO)], check=True, cwd=tmp_path)
    assert (target / "horq_codegen" / "_templates" / "kernels" / "horq_types.h").is_file()
    assert (target / "horq_codegen" / "_templates" / "report" / "report.html.jinja").is_file()
    assert (target / "horq_codegen" / "html_report" / "page.py").is_file()
    env = {**os.environ, "PYTHONPATH": str(target)}
    script = target / "bin" / "horq-codegen"
    out = tmp_path / "generated"
    run = subprocess.run([sys.executable, str(script), str(small_model), "--target", "host", "-o", str(out)],
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    located = subprocess.run([sys.executable, "-c", "import horq_codegen; print(horq_codegen.__file__)"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert located.startswith(str(target))
    subprocess.run(["make", "-s", "-C", str(out)], check=True)
