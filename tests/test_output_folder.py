"""The output folder: the user's files are kept, failures leave the previous output, nothing is left behind."""
from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from horq_codegen import emit, project
from horq_codegen.cli import main


@pytest.fixture(scope="module")
def model(tiny_model) -> Path:
    return tiny_model


def generate(model: Path, out: Path, *extra: str) -> int:
    return main([str(model), "-o", str(out), "--activations", "float", *extra])  # the folder, not the numbers


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(*folders: Path) -> list[str]:
    return [p.name for f in folders for p in f.iterdir() if "staging" in p.name or ".partial-" in p.name]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("horq-codegen: error:"), err
    return err[0]


def test_the_stamp_lists_every_file_written(model, tmp_path):
    out = tmp_path / "out"
    assert generate(model, out) == 0
    assert project.recorded_files(out) == set(snapshot(out))


def test_regenerating_keeps_a_file_the_user_added(model, tmp_path, capsys):
    out = tmp_path / "out"
    assert generate(model, out) == 0
    (out / "src" / "mywork.c").write_text("int mine;\n")
    before = snapshot(out)
    assert generate(model, out) == 2
    assert "src/mywork.c" in one_error_line(capsys)
    assert snapshot(out) == before and not leftovers(tmp_path, out)


def test_refusal_names_at_most_five_files(model, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    for i in range(7):
        (out / f"note{i}.txt").write_text("x")
    assert generate(model, out) == 2
    message = one_error_line(capsys)
    assert "7 file(s)" in message and "note4.txt" in message and "note5.txt" not in message and "2 more" in message


def test_regenerating_replaces_only_the_recorded_files(model, tmp_path):
    out = tmp_path / "out"
    assert generate(model, out) == 0
    (out / "src" / "old_layer.c").write_text("stale")  # as if an earlier version had written it
    with open(out / project.STAMP, "a") as stamp:
        stamp.write("src/old_layer.c\n")
    assert generate(model, out, "--samples", "3") == 0
    assert not (out / "src" / "old_layer.c").exists()
    assert project.recorded_files(out) == set(snapshot(out))


def test_force_says_what_it_removes_keeps_git_and_follows_no_link(model, tmp_path, capsys):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.txt").write_text("keep me")
    out.mkdir()
    (out / ".git").mkdir()
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (out / "notes.txt").write_text("mine")
    (out / "lib").symlink_to(elsewhere)  # where the kernels would go: a link out of the folder
    assert generate(model, out, "--force") == 0
    err = capsys.readouterr().err
    assert "--force: removed 2 file(s)" in err and "notes.txt" in err and "lib" in err and ".git kept" in err
    assert (out / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert not (out / "lib").is_symlink() and (out / "lib" / "horq" / "horq_kernels.h").is_file()
    assert sorted(p.name for p in elsewhere.iterdir()) == ["precious.txt"]


def test_staging_of_a_killed_run_is_cleaned_by_the_next(model, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    out = tmp_path / "out"
    assert generate(model, out) == 0
    stale = [tmp_path / f".out.horq-staging-{dead.pid}-abc", out / f".horq-staging-{dead.pid}-def",
             tmp_path / ".out.partial-xyz"]
    for folder in stale:
        folder.mkdir()
        (folder / "half.c").write_text("")
    alive = tmp_path / f".out.horq-staging-{os.getpid()}-mine"  # a run in progress: not touched
    alive.mkdir()
    assert generate(model, out) == 0
    assert not any(f.exists() for f in stale) and alive.exists()


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_output_modes_follow_the_umask(model, tmp_path, umask):
    previous = os.umask(umask)
    try:
        assert generate(model, tmp_path / "out") == 0
    finally:
        os.umask(previous)
    out = tmp_path / "out"
    assert (out.stat().st_mode & 0o777) == 0o777 & ~umask
    assert (out / "src").stat().st_mode & 0o777 == 0o777 & ~umask
    assert (out / "src" / "model.c").stat().st_mode & 0o777 == 0o666 & ~umask


def test_full_disk_leaves_the_previous_output_intact(model, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert generate(model, out) == 0
    before = snapshot(out)
    real_copy = emit.shutil.copyfile
    copies = []

    def fill_up(src, dst, **kw):
        copies.append(dst)
        if len(copies) > 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_copy(src, dst, **kw)
    monkeypatch.setattr(emit.shutil, "copyfile", fill_up)
    assert generate(model, out, "--samples", "2") == 2
    assert "the disk is full" in one_error_line(capsys)
    assert snapshot(out) == before and not leftovers(tmp_path, out)


def test_failure_while_moving_into_place_rolls_back(model, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert generate(model, out) == 0
    before = snapshot(out)
    real_replace = os.replace
    moves = []

    def fail_midway(src, dst):
        moves.append(dst)
        if len(moves) == 12:
            raise OSError(errno.EIO, "Input/output error", str(dst))
        return real_replace(src, dst)
    monkeypatch.setattr(project.os, "replace", fail_midway)
    assert generate(model, out, "--samples", "2") == 2
    one_error_line(capsys)
    assert snapshot(out) == before and not leftovers(tmp_path, out)


def test_read_only_destination_is_one_line(model, tmp_path, capsys, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(project.tempfile, "mkdtemp", read_only)
    assert generate(model, tmp_path / "out") == 2
    assert "read-only" in one_error_line(capsys) and not (tmp_path / "out").exists()


def test_output_link_to_a_folder_elsewhere_is_written_there(model, tmp_path):
    """On another file system if the machine has one (/dev/shm): nothing is renamed across it."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path
    target = Path(os.path.realpath(base)) / f"horq-test-{os.getpid()}"
    target.mkdir()
    try:
        (tmp_path / "out").symlink_to(target)
        assert generate(model, tmp_path / "out") == 0
        assert (target / "src" / "model.c").is_file() and (tmp_path / "out").is_symlink()
        assert generate(model, tmp_path / "out") == 0  # regenerating through the link
        assert not leftovers(tmp_path, target)
    finally:
        subprocess.run(["rm", "-rf", str(target)], check=True)


def test_dangling_output_link_is_refused(model, tmp_path, capsys):
    (tmp_path / "out").symlink_to(tmp_path / "nowhere")
    assert generate(model, tmp_path / "out") == 2
    assert "dangling" in one_error_line(capsys)


def test_output_dot_regenerates_in_place(model, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    assert generate(model, out) == 0
    monkeypatch.chdir(out)
    assert generate(model, Path(".")) == 0
    assert project.recorded_files(out) == set(snapshot(out)) and not leftovers(tmp_path, out)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    monkeypatch.chdir(mine)
    assert generate(model, Path(".")) == 2
    assert "thesis.tex" in one_error_line(capsys) and (mine / "thesis.tex").read_text() == "precious"
