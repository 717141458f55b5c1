"""The exported program's JSON (``models/model.json``), checked before torch's deserializer sees it.

Torch's deserializer turns parts of this JSON into code. Each way it does so is closed here:

- ``guards_code`` is Python source that ``ExportedProgram.module()`` executes: refused unless empty.
- Symbolic shapes (``range_constraints``, ``sym_*_values``, any ``expr_str``) are parsed by
  ``sympy.sympify``, which evaluates its text: refused; the project compiles static shapes only.
- Node names, argument names and ``forward_arg_names`` are written into the Python source that
  ``torch.fx`` generates and executes for every graph module, unsanitized: each must be a plain
  identifier. Parameter, buffer and module paths become ``getattr(self, "...")`` in that source:
  each part must be letters, digits and underscores.
- A node's ``target`` is resolved by walking attributes from ``torch``, ``operator`` or ``math``
  (``torch.os.system`` is reachable that way): only ATen and horq operators and ``getitem`` pass.
- Free text (``stack_trace``, which torch copies into generated source as comments) is dropped,
  and no remaining string may hold a control character (a ``\\r`` ends a comment line in Python).
- Custom objects, subgraphs (higher-order ops) and named tuples in the input spec are refused.

What passes is plain data: tensor metadata, constants (written into the source by ``repr``),
allow-listed operator names. :func:`checked_program` returns the JSON with free text removed.
"""
from __future__ import annotations

import json
import keyword
import re
from typing import Any

from ..errors import HorqError
from . import limits

_TARGET = re.compile(r"torch\.ops\.(aten|horq)\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*|_operator\.getitem")
_PATH_PART = re.compile(r"[A-Za-z0-9_]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]")
_FREE_TEXT = ("stack_trace",)
_NAME_KEYS = ("name", "as_name", "user_input_name")
_PATH_KEYS = ("parameter_name", "buffer_name", "tensor_constant_name", "fqn")
_REFUSED_KEYS = {
    "expr_str": "symbolic shape expressions (which torch would evaluate)",
    "as_expr": "symbolic shape expressions (which torch would evaluate)",
    "as_custom_obj": "custom (torchbind) objects",
    "as_graph": "subgraphs (higher-order operators)",
    "as_operator": "operators passed as arguments",
    "custom_obj_name": "custom (torchbind) objects",
}
_EMPTY_FIELDS = {
    "guards_code": "guard code (guards_code), which torch would execute when the program runs",
    "range_constraints": "dynamic shapes (range_constraints); export with static shapes",
    "sym_int_values": "symbolic integers (dynamic shapes)",
    "sym_float_values": "symbolic floats",
    "sym_bool_values": "symbolic booleans",
    "custom_obj_values": "custom (torchbind) objects",
    "treespec_namedtuple_fields": "named tuples in its inputs or outputs",
}
_SPEC_TYPES = {None, "builtins.tuple", "builtins.list", "builtins.dict"}


def _refuse(why: str) -> HorqError:
    return HorqError(f"the exported program holds {why}; refused")


def _identifier(value: Any, where: str) -> None:
    if not (isinstance(value, str) and value.isidentifier() and not keyword.iskeyword(value) and value.isascii()):
        raise _refuse(f"a {where} that is not a plain identifier ({str(value)[:60]!r})")


def _path(value: Any, where: str) -> None:
    if not isinstance(value, str) or (value and not all(_PATH_PART.fullmatch(p) for p in value.split("."))):
        raise _refuse(f"a {where} that is not a dotted path of plain names ({str(value)[:60]!r})")


def _walk(value: Any, key: str | None, depth: int) -> Any:
    """Checks one JSON value under ``key``; returns it with free text removed."""
    if depth > limits.MAX_JSON_DEPTH:
        raise _refuse(f"JSON nested more than {limits.MAX_JSON_DEPTH} deep")
    if isinstance(value, dict):
        cleaned = {}
        for k, v in value.items():
            if k in _REFUSED_KEYS:
                raise _refuse(_REFUSED_KEYS[k])
            if k in _EMPTY_FIELDS and v not in ({}, [], None):
                raise _refuse(_EMPTY_FIELDS[k])
            if k in _FREE_TEXT:
                continue
            if k == "tensor_values":
                for name in v:
                    _identifier(name, "tensor name")
            cleaned[k] = _walk(v, k, depth + 1)
        return cleaned
    if isinstance(value, list):
        return [_walk(v, key, depth + 1) for v in value]
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise _refuse(f"a string with a control character in field {key!r}")
        if key in _NAME_KEYS:
            _identifier(value, f"{key}")
        elif key in _PATH_KEYS:
            _path(value, key)
        elif key == "forward_arg_names":
            _identifier(value, "forward argument name")
        elif key == "target" and not _TARGET.fullmatch(value):
            raise _refuse(f"a node calling {value[:80]!r} (only ATen and horq operators are read)")
        elif key in ("in_spec", "out_spec"):
            _check_tree_spec(value)
    return value


def _check_tree_spec(text: str) -> None:
    """The pytree spec of the inputs or outputs: plain tuples, lists and dicts of tensors."""
    try:
        spec = json.loads(text)
    except (ValueError, RecursionError):
        raise _refuse("an unreadable input or output spec") from None
    pending = [spec[1] if isinstance(spec, list) and len(spec) == 2 else spec]
    while pending:
        node = pending.pop()
        if not isinstance(node, dict) or node.get("type") not in _SPEC_TYPES:
            kind = node.get("type") if isinstance(node, dict) else type(node).__name__
            raise _refuse(f"inputs or outputs of type {str(kind)[:60]!r}")
        pending.extend(node.get("children_spec") or [])


def _check_nodes(program: dict) -> None:
    try:
        graph = program["graph_module"]["graph"]
        nodes = graph["nodes"]
    except (KeyError, TypeError):
        raise HorqError("the exported program's JSON lacks its graph; not a torch.export program") from None
    if not isinstance(nodes, list) or len(nodes) > limits.MAX_NODES:
        raise HorqError(f"the exported program's graph holds more than {limits.MAX_NODES:,} operations, the limit")
    for node in nodes:
        if not isinstance(node, dict) or "target" not in node:
            raise HorqError("the exported program's JSON has a node without a target")
    signature = program["graph_module"].get("signature") or {}
    allowed_inputs = {"user_input", "parameter", "buffer", "tensor_constant"}
    for spec in signature.get("input_specs", []):
        kind = next(iter(spec), None) if isinstance(spec, dict) else None
        if kind not in allowed_inputs:
            raise _refuse(f"an input of kind {kind!r} (only user inputs, parameters, buffers and constants)")
    for spec in signature.get("output_specs", []):
        kind = next(iter(spec), None) if isinstance(spec, dict) else None
        if kind != "user_output":
            raise _refuse(f"an output of kind {kind!r} (a program that mutates its inputs or buffers)")


def checked_program(data: bytes) -> dict:
    """The program JSON, parsed and checked; :class:`HorqError` naming the first problem."""
    try:
        program = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise HorqError(f"the exported program's JSON is corrupt ({str(exc)[:100]})") from None
    if not isinstance(program, dict):
        raise HorqError("the exported program's JSON is not an object")
    cleaned = _walk(program, None, 0)
    _check_nodes(cleaned)
    return cleaned
