"""Builders of hostile model files for the tests: every file is made here, from a benign export.

A payload never runs if loading is safe; if it ran, it would create the canary file, which the
tests check for.
"""
from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import torch


class CreatesFile:
    """Unpickling this runs ``touch <path>`` (pickle calls ``os.system``)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def payload(canary: Path) -> bytes:
    return pickle.dumps(CreatesFile(canary), protocol=2)


def torch_saved_payload(canary: Path) -> bytes:
    buffer = io.BytesIO()
    torch.save(CreatesFile(canary), buffer)
    return buffer.getvalue()


def members(path: Path) -> tuple[str, list[tuple[str, bytes]]]:
    """The archive's root folder and its (name under the root, bytes) in order."""
    with zipfile.ZipFile(path) as archive:
        root = archive.namelist()[0].split("/", 1)[0]
        return root, [(i.filename[len(root) + 1:], archive.read(i)) for i in archive.infolist()]


def write_archive(path: Path, root: str, entries: list[tuple[str, bytes]], compression=zipfile.ZIP_STORED) -> Path:
    """Entries written in order, duplicates and all (zipfile warns and writes them)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(path, "w", compression) as archive:
            for name, data in entries:
                archive.writestr(f"{root}/{name}" if root else name, data)
    return path


def rewrite(src: Path, dst: Path, *, replace: dict[str, Callable[[bytes], bytes]] | None = None,
            add: list[tuple[str, bytes]] = (), before: list[tuple[str, bytes]] = ()) -> Path:
    root, entries = members(src)
    replace = replace or {}
    entries = [(n, replace[n](d) if n in replace else d) for n, d in entries]
    return write_archive(dst, root, list(before) + entries + list(add))


def edit_program(src: Path, dst: Path, edit: Callable[[dict], None]) -> Path:
    """The archive with ``edit`` applied to its program JSON (models/model.json)."""
    def change(data: bytes) -> bytes:
        program = json.loads(data)
        edit(program)
        return json.dumps(program).encode()
    return rewrite(src, dst, replace={"models/model.json": change})


def edit_json_member(src: Path, dst: Path, name: str, edit: Callable[[dict], None]) -> Path:
    def change(data: bytes) -> bytes:
        value = json.loads(data)
        edit(value)
        return json.dumps(value).encode()
    return rewrite(src, dst, replace={name: change})


def graph(program: dict) -> dict:
    return program["graph_module"]["graph"]


def node(program: dict, name: str) -> dict:
    return next(n for n in graph(program)["nodes"] if n["name"] == name)


def set_sizes(program: dict, tensor: str, sizes: list[int]) -> None:
    meta = graph(program)["tensor_values"][tensor]
    meta["sizes"] = [{"as_int": s} for s in sizes]
    strides, step = [], 1
    for s in reversed(sizes):
        strides.insert(0, step)
        step *= s
    meta["strides"] = [{"as_int": s} for s in strides]


def rename_value(program: dict, old: str, new: str) -> None:
    """Renames one graph value everywhere the JSON mentions it (a forged, consistent file)."""
    text = json.dumps(program).replace(json.dumps(old), json.dumps(new))
    program.clear()
    program.update(json.loads(text))


def zip_bomb_member(megabytes: int) -> tuple[bytes, int, int]:
    """``megabytes`` MiB of zeros as a raw deflate stream (about 1,000:1), its size and its CRC-32."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    parts, crc = [], 0
    for _ in range(megabytes):
        parts.append(deflate.compress(chunk))
        crc = zlib.crc32(chunk, crc)
    return b"".join(parts) + deflate.flush(), megabytes << 20, crc


def write_deflated_raw(path: Path, root: str, entries: list[tuple[str, bytes]],
                       raw: tuple[str, bytes, int, int]) -> Path:
    """An archive of ``entries`` plus one member given as an already deflated stream
    (name, stream, uncompressed size, crc), written with its true sizes in the directory."""
    write_archive(path, root, entries)
    name, stream, size, crc = raw
    data = bytearray(path.read_bytes())
    eocd = data.rfind(b"PK\x05\x06")
    count, cd_size, cd_offset = struct.unpack_from("<HII", data, eocd + 10)
    directory = bytes(data[cd_offset:cd_offset + cd_size])
    full = f"{root}/{name}".encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(stream), size, len(full), 0) + full
    offset = cd_offset
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0, crc, len(stream), size,
                          len(full), 0, 0, 0, 0, 0, offset) + full
    body = bytes(data[:cd_offset]) + local + stream
    new_directory = directory + central
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count + 1, count + 1, len(new_directory), len(body), 0)
    path.write_bytes(body + new_directory + end)
    return path
