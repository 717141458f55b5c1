"""CIFAR-10 from the user's files (horq_codegen.data.load_cifar10) and the CIFAR-10 example
(examples/cifar10), on a tiny folder written here in the official binary format."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from horq_codegen import data, importer
from horq_codegen.errors import HorqError
from horq_codegen.nn import HORQConv2d

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "cifar10"
RECORDS = 6  # per file; the official files hold 10,000
FILES = ("data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin",
         "test_batch.bin")
# One known pixel per colour plane of data_batch_1.bin's record 0: (plane, row, column) -> byte.
KNOWN = {(0, 2, 5): 200, (1, 7, 1): 17, (2, 31, 30): 255}


def _records(file_index: int) -> np.ndarray:
    """The (RECORDS, 3073) bytes of one file: labels counting on across the files, seeded pixels."""
    rng = np.random.default_rng(file_index)
    records = rng.integers(1, 255, (RECORDS, 3073), dtype=np.uint8)  # never 0 or 255 but where set below
    records[:, 0] = (file_index * RECORDS + np.arange(RECORDS)) % 10
    if file_index == 0:
        for (plane, row, col), value in KNOWN.items():
            records[0, 1 + plane * 1024 + row * 32 + col] = value
        records[1, 1:] = 0
    return records


@pytest.fixture
def cifar_root(tmp_path) -> Path:
    """``tmp_path`` holding ``cifar-10-batches-bin`` with the six files, as the archive extracts."""
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for i, name in enumerate(FILES):
        _records(i).tofile(folder / name)
    (folder / "batches.meta.txt").write_text("\n".join(data.CIFAR10_CLASSES) + "\n")
    return tmp_path


def test_train_split_is_the_five_batches_in_order(cifar_root):
    images, labels = data.load_cifar10(cifar_root / "cifar-10-batches-bin")
    assert images.shape == (5 * RECORDS, 3, 32, 32) and labels.shape == (5 * RECORDS,)
    assert images.dtype == np.float32 and labels.dtype == np.int64
    np.testing.assert_array_equal(labels, np.arange(5 * RECORDS) % 10)
    expected = np.concatenate([_records(i)[:, 1:] for i in range(5)]).reshape(-1, 3, 32, 32) / np.float32(255)
    np.testing.assert_array_equal(images, expected.astype(np.float32))
    assert images.flags.c_contiguous and images.flags.writeable


def test_pixel_order_and_scaling(cifar_root):
    images, _ = data.load_cifar10(cifar_root)  # the parent folder works as well
    for (plane, row, col), value in KNOWN.items():
        assert images[0, plane, row, col] == np.float32(value) / np.float32(255)
    assert images[0, 2, 31, 30] == 1.0 and (images[1] == 0.0).all()
    assert images.min() == 0.0 and images.max() == 1.0
    # Record 1 of file 3 (index 2 * RECORDS + 1): its first byte after the label is red (0, 0).
    assert images[2 * RECORDS + 1, 0, 0, 0] == np.float32(_records(2)[1, 1]) / np.float32(255)


def test_test_split(cifar_root):
    images, labels = data.load_cifar10(cifar_root, split="test")
    assert images.shape == (RECORDS, 3, 32, 32)
    np.testing.assert_array_equal(labels, (5 * RECORDS + np.arange(RECORDS)) % 10)
    np.testing.assert_array_equal(images[3].reshape(-1), _records(5)[3, 1:] / np.float32(255))


def test_classes_constant_and_not_a_bundled_dataset():
    assert data.CIFAR10_CLASSES[0] == "airplane" and data.CIFAR10_CLASSES[9] == "truck"
    assert len(set(data.CIFAR10_CLASSES)) == 10
    assert "cifar-10" not in data.DATASETS  # it needs the user's folder; DATASETS need none


def _error(folder, split="train") -> str:
    with pytest.raises(HorqError) as info:
        data.load_cifar10(folder, split)
    return str(info.value)


def test_missing_folder_and_a_file_for_a_folder(tmp_path):
    message = _error(tmp_path / "nowhere")
    assert "does not exist" in message and "nowhere" in message and "cifar-10-binary.tar.gz" in message
    (tmp_path / "file").write_bytes(b"x")
    assert "is not a folder" in _error(tmp_path / "file")
    assert "unknown split" in _error(tmp_path, "valid")


def test_missing_batch_file_is_named(cifar_root):
    (cifar_root / "cifar-10-batches-bin" / "data_batch_4.bin").unlink()
    message = _error(cifar_root)
    assert "data_batch_4.bin is missing" in message and "binary version" in message
    assert "cifar-10-binary.tar.gz" in message
    data.load_cifar10(cifar_root, "test")  # the test split does not need it
    (cifar_root / "cifar-10-batches-bin" / "test_batch.bin").unlink()
    assert "test_batch.bin is missing" in _error(cifar_root, "test")


def test_empty_folder_says_what_is_expected(tmp_path):
    message = _error(tmp_path)
    assert "data_batch_1.bin is missing" in message and "cifar-10-batches-bin" in message
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(b"\x1f\x8b")
    assert "unextracted" in _error(tmp_path) and "tar xzf" in _error(tmp_path)


@pytest.mark.parametrize("layout", ["py-folder", "py-files"])
def test_python_version_is_recognised_and_refused(tmp_path, layout):
    if layout == "py-folder":  # the parent of the python version's folder
        (tmp_path / "cifar-10-batches-py").mkdir()
        (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"\x80\x02 not read")
        folder = tmp_path
    else:  # the python version's folder itself
        folder = tmp_path / "cifar-10-batches-py"
        folder.mkdir()
        for name in ("data_batch_1", "test_batch", "batches.meta"):
            (folder / name).write_bytes(b"\x80\x02 not read")
    message = _error(folder)
    assert "pickled python version" in message and "does not read" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" in message


def test_size_that_is_not_whole_records(cifar_root):
    path = cifar_root / "cifar-10-batches-bin" / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-100])
    message = _error(cifar_root)
    assert "data_batch_2.bin" in message and f"{RECORDS * 3073 - 100:,} bytes" in message
    assert "3073-byte records" in message
    path.write_bytes(bytes(3074 * 3))  # CIFAR-100's record size
    assert "CIFAR-100" in _error(cifar_root)


def test_empty_file(cifar_root):
    (cifar_root / "cifar-10-batches-bin" / "test_batch.bin").write_bytes(b"")
    message = _error(cifar_root, "test")
    assert "test_batch.bin is empty" in message


def test_label_out_of_range_names_the_record(cifar_root):
    path = cifar_root / "cifar-10-batches-bin" / "data_batch_3.bin"
    records = _records(2)
    records[4, 0] = 10
    records[5, 0] = 255
    records.tofile(path)
    message = _error(cifar_root)
    assert "data_batch_3.bin" in message and "record 4" in message and "label 10" in message
    assert "expected 0..9" in message and "2 records in all" in message


def _load_example(name: str):
    """``examples/cifar10/<name>.py`` as a module, leaving ``sys.path`` and ``sys.modules`` as they were
    (the script puts its folder on the path and imports ``model``, a name the other examples use too)."""
    path, model = list(sys.path), sys.modules.pop("model", None)
    try:
        spec = importlib.util.spec_from_file_location(f"cifar10_{name}", EXAMPLE / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path
        sys.modules.pop("model", None)
        if model is not None:
            sys.modules["model"] = model
    return module


@pytest.fixture
def run_train(capsys):
    """Runs train.py's ``main`` in this process (no second torch start-up), then restores the torch
    settings it changes; returns ``(exit status, stdout, stderr)``."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    train = _load_example("train")

    def run(*args: str) -> tuple[int, str, str]:
        status = train.main(["--no-progress", "--threads", "1", *args])
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    yield run
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def test_example_architecture():
    model_module = _load_example("model")
    model = model_module.build_model(width=4)
    horq = [m for m in model.modules() if isinstance(m, HORQConv2d)]
    assert [(m.in_channels, m.out_channels) for m in horq] == [(4, 4), (4, 8), (8, 8), (8, 16), (16, 16)]
    assert all((m.order, m.granularity) == (2, "patch") for m in horq)
    layers = list(model)
    assert all(isinstance(layers[layers.index(m) - 1], torch.nn.BatchNorm2d) for m in horq)  # signed inputs
    assert model.eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert not any(isinstance(m, HORQConv2d) and m.order is not None
                   for m in model_module.build_model(None, width=4).modules())


def test_augment_crops_and_flips_within_bounds():
    from horq_codegen.nn.training import random_flip
    train = _load_example("train")
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(32, 3, 32, 32)
    images[:, :, 10, 5] = 1.0
    out = train.augment(images, g)
    assert out.shape == images.shape and torch.equal(out.sum((1, 2, 3)), torch.full((32,), 3.0))
    where = out[:, 0].flatten(1).argmax(1)
    rows, cols = where // 32, where % 32
    assert ((rows - 10).abs() <= 4).all()
    flipped = (31 - cols - 5).abs() <= 4
    assert (((cols - 5).abs() <= 4) | flipped).all() and flipped.any() and not flipped.all()
    flips = random_flip(torch.arange(4.0).expand(100, 1, 1, 4), torch.Generator().manual_seed(1))
    assert {tuple(r) for r in flips[:, 0, 0].tolist()} == {(0.0, 1.0, 2.0, 3.0), (3.0, 2.0, 1.0, 0.0)}


def test_train_smoke_exports_a_loadable_model(cifar_root, tmp_path, run_train):
    out = tmp_path / "smoke.pt2"
    status, stdout, stderr = run_train("--data", str(cifar_root), "--smoke", "--width", "2", "--out", str(out))
    assert status == 0, stdout + stderr
    assert "30 samples" in stdout and "augment on" in stdout and "(6 test images)" in stdout
    model = importer.load(out)
    assert tuple(model.graph.input_shape) == (3, 32, 32)
    assert model.file.meta.get("dataset") is None
    x, _ = data.load_cifar10(cifar_root, "test")
    assert model.run_torch(x[:2]).shape == (2, 10)


def test_train_reports_a_data_error_in_one_line(tmp_path, run_train):
    status, stdout, stderr = run_train("--data", str(tmp_path / "nowhere"), "--smoke", "--out", str(tmp_path / "x.pt2"))
    assert status == 1
    assert stderr.startswith("error: CIFAR-10 folder") and stderr.count("\n") == 1
    assert not (tmp_path / "x.pt2").exists()


def test_train_script_runs_as_a_command(tmp_path):
    """As users run it: a file path, no install, ``--help`` naming the options of the brief."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, str(EXAMPLE / "train.py"), "--help"], capture_output=True, text=True,
                            env=env, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for option in ("--data", "--order", "--granularity", "--epochs", "--batch-size", "--lr", "--seed", "--threads",
                   "--out", "--smoke", "--width"):
        assert option in result.stdout
