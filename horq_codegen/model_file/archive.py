"""A zip archive read from its central directory, entry by entry, trusting nothing in it.

Both formats the project reads are zip archives: ``torch.export.save`` writes one, and so does
``torch.save``. The reader here walks the central directory itself and accounts for every
entry, instead of looking names up (a lookup by name sees one of two entries with the same
name, and another reader may see the other one). Before any member is decompressed it checks:

- one end-of-central-directory record (zip64 included), one disk, the directory where it says;
- every entry's local header names the same file, and no entry's bytes overlap another's;
- names: relative, no ``..``, no backslash or control character, all under one root folder,
  no name twice;
- sizes from the directory: the total, and the compression ratio (:mod:`.limits`);
- only stored and deflated members, none encrypted.

Decompression is then bounded by the declared size, and each member's CRC-32 is checked.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from ..errors import HorqError
from . import limits

_EOCD = struct.Struct("<IHHHHIIH")               # end of central directory
_ZIP64_LOCATOR = struct.Struct("<IIQI")
_ZIP64_EOCD = struct.Struct("<IQHHIIQQQQ")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")   # central directory file header
_LOCAL = struct.Struct("<IHHHHHIIIHH")           # local file header
_EOCD_SIG, _ZIP64_LOCATOR_SIG, _ZIP64_EOCD_SIG = 0x06054B50, 0x07064B50, 0x06064B50
_CENTRAL_SIG, _LOCAL_SIG = 0x02014B50, 0x04034B50
_STORED, _DEFLATED = 0, 8
_FLAG_ENCRYPTED, _FLAG_UTF8 = 0x1, 0x800
_U16, _U32 = 0xFFFF, 0xFFFFFFFF


class ArchiveError(HorqError):
    """The archive is corrupt, truncated or refused; the message says which and why."""


@dataclass(frozen=True)
class Member:
    name: str
    method: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    data_offset: int = 0

    @property
    def is_folder(self) -> bool:
        return self.name.endswith("/")


def is_zip(data: bytes) -> bool:
    return data.startswith(b"PK\x03\x04")


class Archive:
    """The entries of a zip archive held in memory; ``what`` names it in messages."""

    def __init__(self, data: bytes, what: str = "the archive"):
        self.data, self.what = data, what
        entries, directory_offset = self._central_directory()
        self.members = tuple(self._with_data_offset(m, directory_offset) for m in entries)
        self._check_overlaps(directory_offset)
        self._check_sizes()
        self.root = self._common_root()
        self._by_name = {m.name: m for m in self.members}

    # -- the central directory --------------------------------------------------------
    def _corrupt(self, why: str) -> ArchiveError:
        return ArchiveError(f"{self.what} is corrupt or truncated ({why})")

    def _refused(self, why: str) -> ArchiveError:
        return ArchiveError(f"{self.what} is refused: {why}")

    def _unpack(self, layout: struct.Struct, offset: int, what: str) -> tuple:
        if offset < 0 or offset + layout.size > len(self.data):
            raise self._corrupt(f"{what} lies outside the file")
        return layout.unpack_from(self.data, offset)

    def _end_record(self) -> tuple[int, int, int]:
        """(entry count, directory size, directory offset); the directory must end where the end records begin."""
        data = self.data
        start = max(0, len(data) - _EOCD.size - _U16)
        eocd = data.rfind(struct.pack("<I", _EOCD_SIG), start)
        if eocd < 0:
            raise self._corrupt("no end-of-central-directory record")
        sig, disk, cd_disk, on_disk, count, cd_size, cd_offset, comment = self._unpack(_EOCD, eocd, "the end record")
        if eocd + _EOCD.size + comment != len(data):
            raise self._corrupt("bytes after the end-of-central-directory record")
        directory_end = eocd
        locator = eocd - _ZIP64_LOCATOR.size
        if locator >= 0 and struct.unpack_from("<I", data, locator)[0] == _ZIP64_LOCATOR_SIG:
            _, _, z64_offset, disks = self._unpack(_ZIP64_LOCATOR, locator, "the zip64 locator")
            (sig64, _, _, _, disk, cd_disk, on_disk, count, cd_size, cd_offset) = self._unpack(
                _ZIP64_EOCD, z64_offset, "the zip64 end record")
            if sig64 != _ZIP64_EOCD_SIG or disks > 1:
                raise self._corrupt("a bad zip64 end record")
            directory_end = z64_offset
        elif _U32 in (cd_size, cd_offset) or count == _U16:
            raise self._corrupt("a zip64 archive without its zip64 end record")
        if disk != 0 or cd_disk != 0 or on_disk != count:
            raise self._refused("it spans several disks")
        if count > limits.MAX_MEMBERS:
            raise self._refused(f"it holds {count:,} entries, more than the limit of {limits.MAX_MEMBERS:,}")
        if cd_offset + cd_size != directory_end:
            raise self._corrupt("the central directory is not where the end record says")
        return count, cd_size, cd_offset

    def _central_directory(self) -> tuple[list[Member], int]:
        count, cd_size, cd_offset = self._end_record()
        entries, seen, offset = [], set(), cd_offset
        for _ in range(count):
            (sig, _, _, flags, method, _, _, crc, csize, usize, name_len, extra_len, comment_len,
             disk, _, _, header_offset) = self._unpack(_CENTRAL, offset, "a central directory entry")
            if sig != _CENTRAL_SIG:
                raise self._corrupt("a central directory entry has a bad signature")
            name_at = offset + _CENTRAL.size
            raw_name = self.data[name_at:name_at + name_len]
            extra = self.data[name_at + name_len:name_at + name_len + extra_len]
            offset = name_at + name_len + extra_len + comment_len
            if offset > cd_offset + cd_size:
                raise self._corrupt("the central directory runs past its end")
            usize, csize, header_offset = _zip64_sizes(extra, usize, csize, header_offset, self._corrupt)
            name = self._checked_name(raw_name, flags)
            if name in seen:
                raise self._refused(f"the name {name!r} occurs twice (two readers may take different copies)")
            seen.add(name)
            if flags & _FLAG_ENCRYPTED:
                raise self._refused(f"member {name} is encrypted")
            if method not in (_STORED, _DEFLATED):
                raise self._refused(f"member {name} uses compression method {method} (only stored and deflate are read)")
            if method == _STORED and csize != usize:
                raise self._corrupt(f"stored member {name} has two sizes")
            if disk != 0:
                raise self._refused("it spans several disks")
            entries.append(Member(name, method, crc, csize, usize, header_offset))
        if offset != cd_offset + cd_size:
            raise self._corrupt("the central directory has bytes no entry accounts for")
        return entries, cd_offset

    def _checked_name(self, raw: bytes, flags: int) -> str:
        try:
            name = raw.decode("utf-8") if flags & _FLAG_UTF8 else raw.decode("cp437")
        except UnicodeDecodeError:
            raise self._corrupt("a member name is not valid UTF-8") from None
        parts = name.rstrip("/").split("/")
        if (not name or name.startswith("/") or "\\" in name or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name)
                or any(part in ("", ".", "..") for part in parts) or ":" in parts[0]):
            raise self._refused(f"member name {name!r} points outside the archive or is malformed")
        return name

    def _with_data_offset(self, member: Member, directory_offset: int) -> Member:
        (sig, _, _, _, _, _, _, _, _, name_len, extra_len) = self._unpack(
            _LOCAL, member.header_offset, f"the local header of {member.name}")
        if sig != _LOCAL_SIG:
            raise self._corrupt(f"the local header of {member.name} has a bad signature")
        name_at = member.header_offset + _LOCAL.size
        local_name = self.data[name_at:name_at + name_len]
        if local_name.decode("utf-8", "replace") != member.name and local_name.decode("cp437") != member.name:
            raise self._refused(f"member {member.name}'s local header names another file")
        data_offset = name_at + name_len + extra_len
        if data_offset + member.compressed_size > directory_offset:
            raise self._corrupt(f"member {member.name} runs into the central directory")
        return Member(member.name, member.method, member.crc, member.compressed_size, member.size,
                      member.header_offset, data_offset)

    def _check_overlaps(self, directory_offset: int) -> None:
        ordered = sorted(self.members, key=lambda m: m.header_offset)
        for current, following in zip(ordered, ordered[1:]):
            if current.data_offset + current.compressed_size > following.header_offset:
                raise self._refused(f"members {current.name} and {following.name} share bytes (a zip bomb's trick)")

    def _check_sizes(self) -> None:
        total = 0
        for m in self.members:
            total += m.size
            if m.is_folder and m.size:
                raise self._corrupt(f"folder entry {m.name} has contents")
            if m.size > limits.RATIO_FLOOR and m.size > limits.MAX_RATIO * max(m.compressed_size, 1):
                raise self._refused(f"member {m.name} would expand {m.compressed_size:,} bytes to {m.size:,} "
                                    f"(more than {limits.MAX_RATIO}:1, a zip bomb)")
        if total > limits.MAX_TOTAL_UNCOMPRESSED:
            raise self._refused(f"its members hold {total:,} bytes, more than the limit of "
                                f"{limits.MAX_TOTAL_UNCOMPRESSED:,}")

    def _common_root(self) -> str:
        roots = {m.name.split("/", 1)[0] for m in self.members}
        if len(roots) != 1 or any("/" not in m.name for m in self.members if not m.is_folder):
            shown = ", ".join(sorted(roots)[:3])
            raise self._refused(f"its members do not share one top folder ({shown})")
        return roots.pop()

    # -- contents -----------------------------------------------------------------------
    def files(self) -> dict[str, Member]:
        """Every file member by its name under the root folder (``data/weights/weight_0``)."""
        return {m.name[len(self.root) + 1:]: m for m in self.members if not m.is_folder}

    def read(self, member: Member) -> bytes:
        """The member's bytes: never more than its declared size, CRC-32 checked."""
        raw = self.data[member.data_offset:member.data_offset + member.compressed_size]
        if member.method == _STORED:
            contents = raw
        else:
            inflater = zlib.decompressobj(-15)
            try:
                contents = inflater.decompress(raw, member.size + 1)
            except zlib.error as exc:
                raise self._corrupt(f"member {member.name} does not inflate: {exc}") from None
            if len(contents) != member.size or not inflater.eof:
                raise self._corrupt(f"member {member.name} does not inflate to its declared size")
        if zlib.crc32(contents) != member.crc:
            raise self._corrupt(f"member {member.name} fails its checksum")
        return contents


def _zip64_sizes(extra: bytes, usize: int, csize: int, offset: int, corrupt) -> tuple[int, int, int]:
    """Sizes and offset from the zip64 extra field where the 32-bit fields say 0xFFFFFFFF."""
    needed = [usize == _U32, csize == _U32, offset == _U32]
    if not any(needed):
        return usize, csize, offset
    at = 0
    while at + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, at)
        if tag == 0x0001:
            values = iter(struct.unpack_from(f"<{length // 8}Q", extra, at + 4))
            try:
                usize = next(values) if needed[0] else usize
                csize = next(values) if needed[1] else csize
                offset = next(values) if needed[2] else offset
            except StopIteration:
                raise corrupt("a zip64 extra field is too short") from None
            return usize, csize, offset
        at += 4 + length
    raise corrupt("a zip64 entry without its zip64 extra field")
