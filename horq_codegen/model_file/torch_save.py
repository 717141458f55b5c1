"""A ``torch.save`` archive, loaded only after every member of it is accounted for.

``torch.save`` writes a zip: ``<root>/data.pkl`` (the pickle), ``<root>/data/<key>`` (one raw
storage per key the pickle names) and a few small text members. Here the pickle is scanned
(:mod:`.pickles`), each storage member must be one the pickle names, of exactly the size it
declares, and nothing else may be in the archive. Torch's own reader then gets a fresh archive
rebuilt from those checked members alone (so it cannot see anything the checks did not), and
loads it with ``weights_only=True``.
"""
from __future__ import annotations

import io
import zipfile

import torch

from ..errors import HorqError
from .archive import Archive, is_zip
from .pickles import Policy, scan

_TEXT_MEMBERS = {".format_version", ".storage_alignment", "byteorder", "version", ".data/version",
                 ".data/serialization_id"}
_TEXT_LIMIT = 256  # bytes: these hold a version, "little", an id


def _checked_members(archive: Archive, policy: Policy, what: str) -> dict[str, bytes]:
    files = archive.files()
    if "data.pkl" not in files:
        raise HorqError(f"{what} is a zip archive without data.pkl: not a torch.save file")
    storages = scan(archive.read(files["data.pkl"]), policy, what).storages
    contents: dict[str, bytes] = {}
    for name, member in files.items():
        if name == "data.pkl":
            pass
        elif name.startswith("data/"):
            storage = storages.get(name[len("data/"):])
            if storage is None:
                raise HorqError(f"{what} holds member {name}, which its pickle never uses")
            if member.size != storage.nbytes:
                raise HorqError(f"{what}: storage {name} holds {member.size:,} bytes, its pickle says "
                                f"{storage.nbytes:,}")
        elif name in _TEXT_MEMBERS:
            if member.size > _TEXT_LIMIT:
                raise HorqError(f"{what}: member {name} is {member.size:,} bytes, not a version string")
        else:
            raise HorqError(f"{what} holds member {name}, which torch.save never writes; refused")
        contents[name] = archive.read(member)
    missing = sorted(set(storages) - {n[len("data/"):] for n in contents if n.startswith("data/")})
    if missing:
        raise HorqError(f"{what}: its pickle uses storage {missing[0]}, which the archive lacks")
    if contents.get("byteorder", b"little") != b"little":
        raise HorqError(f"{what} is written in big-endian byte order, which is not read")
    return contents


def _rebuilt(contents: dict[str, bytes]) -> bytes:
    """The checked members in a fresh archive (stored, one root), for torch's reader."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for name, data in contents.items():
            archive.writestr(f"archive/{name}", data)
    return out.getvalue()


def load_torch_save(data: bytes, policy: Policy, what: str, safe_globals: list | None = None):
    """The object a ``torch.save`` archive holds, after the checks above; :class:`HorqError` otherwise."""
    if not is_zip(data):
        if data.startswith(b"\x80"):
            scan(data, policy, what)  # a hostile pickle is named as such before the format is
        raise HorqError(f"{what} is not a zip archive: a bare pickle or torch.save's legacy format, "
                        "which is not supported (save with torch.save's default zip format)")
    contents = _checked_members(Archive(data, what), policy, what)
    try:
        with torch.serialization.safe_globals(list(safe_globals or [])):
            return torch.load(io.BytesIO(_rebuilt(contents)), weights_only=True)
    except Exception as exc:  # the weights-only unpickler is the second check; it should never refuse here
        raise HorqError(f"{what}: weights-only loading refuses it ({str(exc).splitlines()[0][:160]})") from None
