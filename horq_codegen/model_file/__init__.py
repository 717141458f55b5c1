"""Read a model file without ever running code from it, and without trusting it.

Two formats, told apart by their content, not their name:
- a ``torch.export`` archive (``.pt2``, what :func:`horq_codegen.export` writes): :mod:`.pt2`;
- a ``torch.save`` of an ``nn.Sequential`` of supported layers (:data:`SAVED_MODULE_ALLOWLIST`):
  :mod:`.torch_save`, then exported here with ``input_shape``.

The file must be a regular file no larger than :data:`.limits.MAX_FILE_BYTES`; it is opened
without blocking (a FIFO or a device is refused at once) and read into memory once, so it cannot
change between the checks and the load. Both formats are zip archives, read entry by entry by
:mod:`.archive`; every pickle in them is proven free of code by :mod:`.pickles` before
``torch.load(weights_only=True)`` reads it; torch's own messages are kept off the terminal
(:mod:`horq_codegen.diagnostics`). Every failure is a :class:`HorqError` naming the file.
"""
from __future__ import annotations

import collections
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .. import diagnostics
from .. import nn as horq_nn  # also registers the horq ops before graphs that use them are deserialized
from ..errors import HorqError
from ..export import META_MEMBER
from . import limits
from .archive import Archive, is_zip
from .pickles import module_policy, scan
from .pt2 import load_pt2
from .torch_save import load_torch_save

# The only classes a torch.save'd model may contain: the layers the generator supports.
SAVED_MODULE_ALLOWLIST = (
    nn.Sequential, nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.ReLU, nn.Hardtanh,
    nn.MaxPool2d, nn.AvgPool2d, nn.Flatten, nn.Dropout, nn.Identity,
    nn.PReLU, nn.ReLU6, nn.AdaptiveAvgPool2d,
    horq_nn.HORQConv2d, horq_nn.HORQLinear, horq_nn.LearnableShift, horq_nn.DownsampleShortcut,
    horq_nn.BiRealBlock, collections.OrderedDict, set,
)
_MODULE_POLICY = module_policy([c for c in SAVED_MODULE_ALLOWLIST if issubclass(c, nn.Module)])
_FILE_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
               stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"}


@dataclass(frozen=True)
class ModelFile:
    path: Path
    program: torch.export.ExportedProgram
    meta: dict
    sha256: str
    format: str  # "torch.export" or "torch.save"


def read_regular_file(path: Path, what: str = "model file", limit: int | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (default: the model file limit);
    FIFOs, devices and folders are refused at once."""
    limit = limits.MAX_FILE_BYTES if limit is None else limit
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise HorqError(f"{path}: no such file") from None
    except OSError as exc:
        raise HorqError(f"{path}: cannot read ({exc.strerror})") from None
    with os.fdopen(fd, "rb", buffering=0) as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _FILE_KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise HorqError(f"{path}: is {kind}, not a {what}")
        if info.st_size > limit:
            raise HorqError(f"{path}: is {info.st_size:,} bytes, more than the limit of {limit:,} for a {what}")
        try:
            data = f.read(info.st_size + 1)
        except OSError as exc:
            raise HorqError(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) != info.st_size:
        raise HorqError(f"{path}: changed while it was read")
    return data


def _horq_meta(extra: dict[str, str]) -> dict:
    text = extra.get(META_MEMBER)
    if text is None:
        return {}
    try:
        meta = json.loads(text)
    except ValueError:
        raise HorqError(f"its {META_MEMBER} is not valid JSON") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("dataset"), (str, type(None))) \
            or not isinstance(meta.get("format", 1), int):
        raise HorqError(f"its {META_MEMBER} does not hold a format number and a dataset name")
    return meta


def _load_saved_module(data: bytes) -> nn.Module:
    module = load_torch_save(data, _MODULE_POLICY, "the torch.save'd model", list(SAVED_MODULE_ALLOWLIST))
    if not isinstance(module, nn.Sequential):
        raise HorqError(f"holds a {type(module).__name__}, not an nn.Sequential model")
    return module


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _export_module(module: nn.Module, input_shape: tuple[int, ...] | None) -> torch.export.ExportedProgram:
    if input_shape is None:
        raise HorqError("is a torch.save'd model: give its input shape with --input-shape (e.g. 1,28,28)")
    module.eval()
    try:
        return torch.export.export(module, (torch.zeros((1, *input_shape)),))
    except Exception as exc:
        raise HorqError(f"rejects input shape {tuple(input_shape)}: {_first_line(exc)}") from None


def _is_torch_save(archive: Archive) -> bool:
    """torch.save writes ``<root>/data.pkl``; torch.export.save writes ``archive_format`` and ``models/``."""
    files = archive.files()
    return "data.pkl" in files and "archive_format" not in files


def _program_input_shape(program: torch.export.ExportedProgram) -> tuple[int, ...] | None:
    users = [s.arg.name for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    for node in program.graph.nodes:
        if node.op == "placeholder" and users and node.name == users[0] and "val" in node.meta:
            return tuple(int(d) for d in node.meta["val"].shape[1:])
    return None


def read_model_file(path: str | Path, input_shape: tuple[int, ...] | None = None) -> ModelFile:
    """Loads a model file; every failure is a :class:`HorqError` naming the file."""
    path = Path(path)
    data = read_regular_file(path)
    if not data:
        raise HorqError(f"{path}: empty file, not a model")
    digest = hashlib.sha256(data).hexdigest()
    try:
        with diagnostics.quiet():
            if data.startswith(b"\x80"):
                scan(data, _MODULE_POLICY, "the file")  # a hostile pickle is named as such before the format is
                raise HorqError("is a bare pickle (or torch.save's legacy format), which is not supported: "
                                "save with torch.export, or torch.save's default zip format")
            if not is_zip(data):
                raise HorqError("not a model file (expected a torch.export .pt2 archive or a torch.save'd nn.Sequential)")
            if _is_torch_save(Archive(data, "the archive")):
                program = _export_module(_load_saved_module(data), input_shape)
                return ModelFile(path, program, {}, digest, "torch.save")
            loaded = load_pt2(data, "the archive")
            meta = _horq_meta(loaded.extra)
    except HorqError as exc:
        raise HorqError(f"{path}: {exc}") from None
    except Exception as exc:  # a malformed archive can fail anywhere inside torch
        raise HorqError(f"{path}: cannot load the exported program ({_first_line(exc)})") from None
    if input_shape is not None:
        exported = _program_input_shape(loaded.program)
        if exported is not None and exported != tuple(input_shape):
            raise HorqError(f"{path}: the exported program takes inputs of shape {exported}, not {tuple(input_shape)}")
    return ModelFile(path, loaded.program, meta, digest, "torch.export")
