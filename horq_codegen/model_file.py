"""Read a model file without ever running code from it.

Two formats, told apart by their content, not their name:
- a ``torch.export`` archive (``.pt2``, what :func:`horq_codegen.export` writes);
- a ``torch.save`` of an ``nn.Sequential`` of supported layers, loaded with
  ``weights_only=True`` and an allow-list of layer classes (nothing else can be
  unpickled), then exported here with ``input_shape``.

``torch.export.load`` falls back to ``torch.load(weights_only=False)`` and
``pickle.loads`` for some archive members, which would execute a hostile pickle.
So the archive is read into memory once, every member that torch would unpickle
is checked with ``weights_only=True`` (or refused outright), and only then is the
in-memory copy handed to torch: the file cannot change between check and load.
"""
from __future__ import annotations

import hashlib
import io
import json
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import collections
import re

import torch
from torch import nn

from . import nn as horq_nn  # also registers the horq ops before graphs that use them are deserialized
from .errors import HorqError
from .export import META_MEMBER

# Members that torch reads as JSON or plain text, never through pickle.
_TEXT_SUFFIXES = (".json", "archive_format", "archive_version", "version", "byteorder", "serialization_id")


# The only classes a torch.save'd model may contain: the layers the generator supports.
SAVED_MODULE_ALLOWLIST = (
    nn.Sequential, nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.Hardtanh,
    nn.MaxPool2d, nn.AvgPool2d, nn.Flatten, nn.Dropout, nn.Identity,
    horq_nn.HORQConv2d, horq_nn.HORQLinear, collections.OrderedDict, set,
)


@dataclass(frozen=True)
class ModelFile:
    path: Path
    program: torch.export.ExportedProgram
    meta: dict
    sha256: str
    format: str  # "torch.export" or "torch.save"


def _raw_payloads(archive: zipfile.ZipFile, names: list[str]) -> set[str]:
    """Members that torch maps as raw tensor bytes; refuses configs that would unpickle code."""
    raw: set[str] = set()
    for name in names:
        if not name.endswith(("weights_config.json", "constants_config.json")):
            continue
        folder = name.rsplit("/", 1)[0]
        config = json.loads(archive.read(name)).get("config", {})
        for fqn, entry in config.items():
            member = f"{folder}/{entry['path_name']}"
            if entry["path_name"].startswith(("custom_obj", "opaque_obj")):
                raise HorqError(f"holds a pickled Python object ({fqn}) whose loading would run code; refused")
            if not entry.get("use_pickle", False):
                raw.add(member)
    return raw


def _check_pickle_safe(name: str, data: bytes) -> None:
    try:
        torch.load(io.BytesIO(data), weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, ... for hostile or broken data
        raise HorqError(f"archive member {name} is a pickle that weights_only loading refuses "
                        f"(it could run code): {str(exc).splitlines()[0][:160]}") from None


def _checked_archive(data: bytes) -> dict:
    """Validates the archive; returns the horq metadata (empty for a plain torch.export file)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        bad = archive.testzip()
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise HorqError(f"is corrupt or truncated ({exc})") from None
    if bad is not None:
        raise HorqError(f"is corrupt: member {bad} fails its checksum")
    names = archive.namelist()
    if not any("/models/" in n and n.endswith(".json") for n in names):
        raise HorqError("is a zip archive but not a torch.export program (no models/*.json inside)")
    raw = _raw_payloads(archive, names)
    meta: dict = {}
    for name in names:
        if name.endswith("/extra/" + META_MEMBER):
            meta = json.loads(archive.read(name))
        if name in raw or name.endswith(_TEXT_SUFFIXES) or "/extra/" in name or name.endswith("/"):
            continue
        _check_pickle_safe(name, archive.read(name))
    return meta


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _load_saved_module(data: bytes) -> nn.Module:
    try:
        with torch.serialization.safe_globals(list(SAVED_MODULE_ALLOWLIST)):
            module = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as exc:  # the weights-only unpickler names the global it refused
        refused = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) ([\w.]+)", str(exc))
        if refused:
            name = refused.group(1)
            if name.startswith("torch.nn."):
                raise HorqError(f"holds a {name.rsplit('.', 1)[-1]} layer ({name}), which is not supported") from None
            raise HorqError(f"holds a pickled {name}, which could run code; only layers are loaded") from None
        raise HorqError("is a pickle that weights-only loading refuses (it could run code); "
                        "only torch.save'd layers are loaded") from None
    if not isinstance(module, nn.Sequential):
        raise HorqError(f"holds a {type(module).__name__}, not an nn.Sequential model")
    return module


def _export_module(module: nn.Module, input_shape: tuple[int, ...] | None) -> torch.export.ExportedProgram:
    if input_shape is None:
        raise HorqError("is a torch.save'd model: give its input shape with --input-shape (e.g. 1,28,28)")
    module.eval()
    try:
        return torch.export.export(module, (torch.zeros((1, *input_shape)),))
    except Exception as exc:
        raise HorqError(f"rejects input shape {tuple(input_shape)}: {_first_line(exc)}") from None


def read_model_file(path: str | Path, input_shape: tuple[int, ...] | None = None) -> ModelFile:
    """Loads a model file; every failure is a :class:`HorqError` naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise HorqError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise HorqError(f"{path}: is a directory, not a model file") from None
    except OSError as exc:
        raise HorqError(f"{path}: cannot read ({exc.strerror})") from None
    if not data:
        raise HorqError(f"{path}: empty file, not a model")
    digest = hashlib.sha256(data).hexdigest()
    try:
        if _is_saved_module(data):
            program = _export_module(_load_saved_module(data), input_shape)
            return ModelFile(path, program, {}, digest, "torch.save")
        if not data.startswith(b"PK\x03\x04"):
            raise HorqError("not a model file (expected a torch.export .pt2 archive or a torch.save'd nn.Sequential)")
        meta = _checked_archive(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(io.BytesIO(data))
    except HorqError as exc:
        raise HorqError(f"{path}: {exc}") from None
    except Exception as exc:  # a malformed archive can fail anywhere inside torch's deserializer
        raise HorqError(f"{path}: cannot load the exported program ({_first_line(exc)})") from None
    if input_shape is not None:
        exported = tuple(program.example_inputs[0][0].shape[1:]) if program.example_inputs else None
        if exported is not None and exported != tuple(input_shape):
            raise HorqError(f"{path}: the exported program takes inputs of shape {exported}, not {tuple(input_shape)}")
    return ModelFile(path, program, meta, digest, "torch.export")


def _is_saved_module(data: bytes) -> bool:
    """torch.save writes a zip with ``<name>/data.pkl`` (or, in its legacy format, a bare pickle)."""
    if data.startswith(b"\x80"):
        return True
    if not data.startswith(b"PK\x03\x04"):
        return False
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, EOFError, ValueError):
        return False
    return any(n.endswith("/data.pkl") for n in names) and not any(n.endswith("/archive_format") for n in names)
