"""Read a model file without ever running code from it.

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

import torch

from . import nn as _nn  # noqa: F401  (registers horq ops before deserializing graphs that use them)
from .errors import HorqError
from .export import META_MEMBER

# Members that torch reads as JSON or plain text, never through pickle.
_TEXT_SUFFIXES = (".json", "archive_format", "archive_version", "version", "byteorder", "serialization_id")


@dataclass(frozen=True)
class ModelFile:
    path: Path
    program: torch.export.ExportedProgram
    meta: dict
    sha256: str


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
    if not any(n.endswith("models/model.json") or n.endswith(".json") and "/models/" in n for n in names):
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


def read_model_file(path: str | Path) -> ModelFile:
    """Loads an exported program; every failure is a :class:`HorqError` naming the file."""
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
    if not data.startswith(b"PK\x03\x04"):
        raise HorqError(f"{path}: not a model file (expected a torch.export .pt2 archive)")
    try:
        meta = _checked_archive(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.export.load(io.BytesIO(data))
    except HorqError as exc:
        raise HorqError(f"{path}: {exc}") from None
    except Exception as exc:  # a malformed archive can fail anywhere inside torch's deserializer
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise HorqError(f"{path}: cannot load the exported program ({first})") from None
    return ModelFile(path, program, meta, hashlib.sha256(data).hexdigest())
