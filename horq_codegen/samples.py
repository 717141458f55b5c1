"""The inputs a generated model is run on: the user's own (``--inputs``), a dataset's test split, or random.

A user's ``.npy`` files are read as data only (``allow_pickle=False``) and checked before any
model is loaded: numeric, finite, and labels (``--labels``) one integer per input. The shape is
checked against the model once it is loaded. Every :class:`Samples` says where it came from.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data
from .errors import HorqError
from .model_file import read_regular_file

RANDOM_SEED = 0
MAX_ARRAY_BYTES = 1 << 30
_NPY_MAGIC = b"\x93NUMPY"


@dataclass(frozen=True)
class Samples:
    inputs: np.ndarray
    labels: np.ndarray | None
    description: str


@dataclass(frozen=True)
class UserData:
    inputs: np.ndarray
    labels: np.ndarray | None
    inputs_path: Path
    labels_path: Path | None


def read_array(path: Path, what: str) -> np.ndarray:
    """A ``.npy`` file's array, read without unpickling anything."""
    raw = read_regular_file(path, f"{what} file (.npy)", MAX_ARRAY_BYTES)
    if not raw.startswith(_NPY_MAGIC):
        raise HorqError(f"{path}: not a .npy file (save {what} with numpy.save)")
    try:
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except ValueError as exc:  # object arrays need pickle; a broken header or a short body
        raise HorqError(f"{path}: cannot read {what} ({str(exc).splitlines()[0][:120]})") from None


def read_user_data(inputs_path: Path | None, labels_path: Path | None) -> UserData | None:
    """The user's inputs and labels, checked for what can be checked without the model."""
    if inputs_path is None:
        if labels_path is not None:
            raise HorqError("--labels needs --inputs (labels of which inputs?)")
        return None
    inputs = read_array(inputs_path, "inputs")
    if inputs.dtype.kind not in "fiub" or inputs.size == 0:
        raise HorqError(f"{inputs_path}: holds {inputs.size} values of dtype {inputs.dtype}; "
                        "inputs must be a non-empty numeric array")
    inputs = inputs.astype(np.float32)
    bad = ~np.isfinite(inputs)
    if bad.any():
        samples = int(bad.reshape(len(inputs), -1).any(axis=1).sum()) if inputs.ndim > 1 else 1
        raise HorqError(f"{inputs_path}: holds {int(np.isnan(inputs).sum())} NaN and "
                        f"{int(np.isinf(inputs).sum())} infinite values (in {samples} sample(s)); inputs must be finite")
    labels = None
    if labels_path is not None:
        labels = read_array(labels_path, "labels")
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise HorqError(f"{labels_path}: labels must be a 1-D integer array, not {labels.dtype} of shape {labels.shape}")
        if len(labels) != len(inputs):
            raise HorqError(f"{labels_path} holds {len(labels)} labels for {len(inputs)} inputs in {inputs_path}")
        labels = labels.astype(np.int64)
    return UserData(inputs, labels, inputs_path, labels_path)


def _user_samples(user: UserData, shape: tuple[int, ...], outputs: int, count: int | None) -> Samples:
    inputs = user.inputs
    if tuple(inputs.shape) == tuple(shape):
        inputs = inputs[None]  # one sample without its batch axis
    if tuple(inputs.shape[1:]) != tuple(shape):
        raise HorqError(f"{user.inputs_path}: inputs of shape {tuple(user.inputs.shape)}, but the model takes "
                        f"(N, {', '.join(map(str, shape))})")
    labels = user.labels
    if labels is not None and (labels.min() < 0 or labels.max() >= outputs):
        raise HorqError(f"{user.labels_path}: labels run from {labels.min()} to {labels.max()}, "
                        f"the model has {outputs} outputs")
    if count is not None:
        if count > len(inputs):
            raise HorqError(f"--samples {count}, but {user.inputs_path} holds {len(inputs)} inputs")
        inputs, labels = inputs[:count], None if labels is None else labels[:count]
    described = f"{len(inputs)} inputs from {user.inputs_path}"
    if labels is not None:
        described += f" (labels from {user.labels_path})"
    return Samples(np.ascontiguousarray(inputs), labels, described)


def pick_samples(model, count: int | None, user: UserData | None = None, default_count: int = 100) -> Samples:
    """The user's inputs if given, else the test split of the model's dataset, else seeded random inputs."""
    shape = tuple(model.graph.input_shape)
    if user is not None:
        return _user_samples(user, shape, int(np.prod(model.graph.shape_of(model.graph.output))), count)
    count = default_count if count is None else count
    if count < 1:
        raise HorqError("--samples must be at least 1")
    name = model.file.meta.get("dataset")
    if name:
        x, y = data.load(name, "test")
        if tuple(x.shape[1:]) != shape:
            raise HorqError(f"dataset {name} has inputs {x.shape[1:]}, the model takes {shape}")
        return Samples(x[:count].astype(np.float32), y[:count], f"{min(count, len(x))} samples of the {name} test split")
    rng = np.random.default_rng(RANDOM_SEED)
    return Samples(rng.standard_normal((count, *shape)).astype(np.float32), None,
                   f"{count} seeded random inputs (normal, seed {RANDOM_SEED})")
