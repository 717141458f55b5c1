"""A ``torch.export`` archive (``.pt2``) turned into an ``ExportedProgram`` without torch's archive loader.

``torch.export.load`` reads members by name, unpickles weights and sample inputs with
``weights_only=False`` (or falls back to it), ``pickle.loads`` opaque objects, loads
AOTInductor shared libraries and, on a ``RuntimeError``, retries with an older format. So it is
not called. Every member of the archive is accounted for here instead, in the layout that
``torch.export.save`` writes under the archive's root folder:

==============================================  ==============================================
``archive_format``, ``archive_version``,        short text, checked
``byteorder``, ``.data/version``,
``.data/serialization_id``
``models/model.json``                           the program: :mod:`.program_json`
``data/weights/model_weights_config.json``      which member holds which weight, with its
``data/constants/model_constants_config.json``  dtype, size, stride and offset
``data/weights/<name>``, ``data/constants/...`` raw little-endian bytes, or a ``torch.save`` of
                                                one tensor (:mod:`.torch_save`)
``data/sample_inputs/model.pt``                 a ``torch.save`` of tensors
``extra/<name>``                                UTF-8 text (``extra/horq.json``: our metadata)
==============================================  ==============================================

Anything else (another program, AOTInductor code, custom or opaque objects, a weight no config
names) is refused by name. The checked pieces then go to torch's ``ExportedProgramDeserializer``
as ready objects, so it never unpickles anything itself.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import torch

from ..errors import HorqError
from . import limits
from .archive import Archive, Member
from .pickles import TENSORS
from .program_json import checked_program
from .torch_save import load_torch_save

PROGRAM = "models/model.json"
SAMPLE_INPUTS = "data/sample_inputs/model.pt"
_VERSION_MEMBERS = {"archive_format": b"pt2", "byteorder": b"little"}
_TEXT_MEMBERS = ("archive_version", ".data/version", ".data/serialization_id")
_TEXT_LIMIT = 256
_PAYLOAD_NAME = re.compile(r"[A-Za-z0-9_.]+")

# Serialized dtype numbers (torch/_export/serde/schema.py ScalarType) the loader accepts.
_DTYPES = {1: torch.uint8, 2: torch.int8, 3: torch.int16, 4: torch.int32, 5: torch.int64, 6: torch.float16,
           7: torch.float32, 8: torch.float64, 12: torch.bool, 13: torch.bfloat16}
_STRIDED = 7  # schema.Layout.Strided


@dataclass(frozen=True)
class LoadedArchive:
    program: torch.export.ExportedProgram
    extra: dict[str, str]  # extra/<name> -> text


class _Members:
    """The archive's files by name under its root, each taken at most once."""

    def __init__(self, archive: Archive):
        self.archive = archive
        self.files = archive.files()
        self.taken: set[str] = set()

    def take(self, name: str) -> bytes:
        member = self.files.get(name)
        if member is None:
            raise HorqError(f"the archive lacks {name}")
        self.taken.add(name)
        return self.archive.read(member)

    def member(self, name: str) -> Member | None:
        return self.files.get(name)

    def untaken(self) -> list[str]:
        return sorted(set(self.files) - self.taken)


def _check_text_members(members: _Members) -> None:
    for name, expected in _VERSION_MEMBERS.items():
        if name in members.files and members.take(name) != expected:
            raise HorqError(f"member {name} does not say {expected.decode()}; not an archive this torch reads")
    for name in _TEXT_MEMBERS:
        member = members.member(name)
        if member is not None:
            if member.size > _TEXT_LIMIT:
                raise HorqError(f"member {name} is {member.size:,} bytes, not a version string")
            members.take(name)


def _int(value, what: str) -> int:
    if not (isinstance(value, dict) and set(value) == {"as_int"} and isinstance(value["as_int"], int)
            and not isinstance(value["as_int"], bool) and value["as_int"] >= 0):
        raise HorqError(f"{what} is not a non-negative integer ({str(value)[:60]})")
    return value["as_int"]


def _raw_tensor(data: bytes, meta: dict, what: str) -> torch.Tensor:
    """A tensor view of raw bytes, as ``tensor_meta`` declares it, after checking that it fits."""
    dtype = _DTYPES.get(meta.get("dtype"))
    if dtype is None:
        raise HorqError(f"{what} has dtype number {meta.get('dtype')!r}, which is not read")
    if (meta.get("device") or {}).get("type") != "cpu" or meta.get("layout", _STRIDED) != _STRIDED:
        raise HorqError(f"{what} is not a dense CPU tensor")
    sizes = [_int(s, f"{what}: a size") for s in meta.get("sizes", [])]
    strides = [_int(s, f"{what}: a stride") for s in meta.get("strides", [])]
    offset = _int(meta.get("storage_offset", {"as_int": 0}), f"{what}: the storage offset")
    element = torch.empty((), dtype=dtype).element_size()
    if len(sizes) != len(strides) or len(data) % element:
        raise HorqError(f"{what}: its size, stride and {len(data):,} bytes do not agree")
    numel = len(data) // element
    if 0 not in sizes and offset + sum((n - 1) * s for n, s in zip(sizes, strides)) >= numel:
        raise HorqError(f"{what}: a tensor of size {tuple(sizes)} reaches past its {len(data):,} bytes")
    storage = torch.frombuffer(bytearray(data), dtype=dtype) if numel else torch.empty(0, dtype=dtype)
    return storage.as_strided(sizes, strides, offset)


def _payloads(members: _Members, folder: str, config_name: str, kind: str) -> dict[str, torch.Tensor]:
    """Weights or constants by their names in the model, from ``folder`` and its config."""
    config_path = folder + config_name
    if members.member(config_path) is None:
        return {}
    try:
        config = json.loads(members.take(config_path)).get("config", {})
        entries = list(config.items())
    except (ValueError, AttributeError, RecursionError):
        raise HorqError(f"{config_path} is not a valid {kind} config") from None
    loaded: dict[str, torch.Tensor] = {}
    result: dict[str, torch.Tensor] = {}
    for fqn, entry in entries:
        path_name = entry.get("path_name") if isinstance(entry, dict) else None
        if not isinstance(path_name, str) or not _PAYLOAD_NAME.fullmatch(path_name) or path_name.startswith("."):
            raise HorqError(f"{config_path}: {kind} {str(fqn)[:60]!r} names no valid member")
        if not path_name.startswith(("weight_", "tensor_")) and kind == "constant":
            raise HorqError(f"the program holds a pickled Python object ({fqn}) whose loading would run code; refused")
        what = f"{kind} {fqn} ({folder}{path_name})"
        if path_name not in loaded:
            data = members.take(folder + path_name)
            if entry.get("use_pickle", False):
                tensor = load_torch_save(data, TENSORS, what)
                if not isinstance(tensor, torch.Tensor):
                    raise HorqError(f"{what} is a pickled {type(tensor).__name__}, not a tensor")
                loaded[path_name] = tensor.detach()
            else:
                loaded[path_name] = _raw_tensor(data, entry.get("tensor_meta") or {}, what)
        tensor = loaded[path_name]
        if entry.get("is_param", False):
            requires_grad = bool((entry.get("tensor_meta") or {}).get("requires_grad", True))
            tensor = torch.nn.Parameter(tensor, requires_grad=requires_grad and tensor.is_floating_point())
        result[fqn] = tensor
    return result


def _sample_inputs(members: _Members):
    if members.member(SAMPLE_INPUTS) is None:
        return None
    value = load_torch_save(members.take(SAMPLE_INPUTS), TENSORS, f"member {SAMPLE_INPUTS}")
    if not (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], tuple) and isinstance(value[1], dict)):
        raise HorqError(f"member {SAMPLE_INPUTS} does not hold (args, kwargs)")
    return value


def _extra_files(members: _Members) -> dict[str, str]:
    extra = {}
    for name in [n for n in members.files if n.startswith("extra/")]:
        try:
            extra[name[len("extra/"):]] = members.take(name).decode("utf-8")
        except UnicodeDecodeError:
            raise HorqError(f"member {name} is not UTF-8 text") from None
    return extra


def _deserialize(program_json: dict, weights: dict, constants: dict, sample_inputs) -> torch.export.ExportedProgram:
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _dict_to_dataclass

    try:
        serialized = _dict_to_dataclass(schema.ExportedProgram, program_json)
        return ExportedProgramDeserializer().deserialize(serialized, weights, constants, sample_inputs)
    except HorqError:
        raise
    except Exception as exc:  # a malformed program can fail anywhere inside torch's deserializer
        text = str(exc).strip().splitlines()
        raise HorqError(f"cannot deserialize the exported program ({(text[0] if text else type(exc).__name__)[:160]})") from None


def load_pt2(data: bytes, what: str) -> LoadedArchive:
    members = _Members(Archive(data, what))
    if members.member(PROGRAM) is None:
        others = [n for n in members.files if n.startswith("models/")]
        if others:
            raise HorqError(f"holds programs named {', '.join(others[:3])}; only the default name "
                            f"({PROGRAM}) is read")
        raise HorqError("is a zip archive but not a torch.export program (no models/*.json inside)")
    _check_text_members(members)
    program_json = checked_program(members.take(PROGRAM))
    weights = _payloads(members, "data/weights/", "model_weights_config.json", "weight")
    constants = _payloads(members, "data/constants/", "model_constants_config.json", "constant")
    elements = sum(math.prod(t.shape) for t in (*weights.values(), *constants.values()))
    if elements > limits.MAX_PARAMETERS:
        raise HorqError(f"its weights hold {elements:,} elements, more than the limit of {limits.MAX_PARAMETERS:,}")
    sample_inputs = _sample_inputs(members)
    extra = _extra_files(members)
    unaccounted = members.untaken()
    if unaccounted:
        shown = ", ".join(unaccounted[:3]) + (f" and {len(unaccounted) - 3} more" if len(unaccounted) > 3 else "")
        raise HorqError(f"holds members torch.export.save does not write, or no config names: {shown}; refused")
    return LoadedArchive(_deserialize(program_json, weights, constants, sample_inputs), extra)
