"""Our own pickle opcode scanner: it proves that a pickle builds only data, before anything loads it.

A pickle is a program: its opcodes can import any name and call it. ``pickle.load`` runs that
program; this module only reads it. :func:`scan` walks the opcodes (``pickletools.genops``
parses them without executing anything) on a symbolic stack, where an imported name is a
:class:`_Global` and a call is a :class:`_Call` that is never made. A pickle passes only if
every name it imports is one the :class:`Policy` allows, and used in the one way allowed:

- ``classes``: created bare (``NEWOBJ`` with no arguments, which is ``cls.__new__(cls)``: no
  constructor runs) and then given their state by ``BUILD`` (how ``torch.save`` writes a module);
- ``reducers``: called by ``REDUCE`` with arguments that their checker accepts (tensor rebuilds,
  whose views must fit inside their storage; an empty ``OrderedDict``; a ``set`` of plain values);
- storage types: only inside a persistent id ``('storage', type, key, 'cpu', numel)``.

Anything else (another opcode, a name used as data, a call of a class with arguments, which
would run its constructor: ``nn.Conv2d(1, 10**8, 3)`` allocates 3.6 GB) is refused. The storages'
element counts come out of the scan, so the parameter limit is checked before any loader runs.
Only after that does ``torch.load(weights_only=True)`` read the pickle: two independent checks.
"""
from __future__ import annotations

import pickletools
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..errors import HorqError
from . import limits


class PickleRefused(HorqError):
    """The pickle does something other than build data, or is broken; the message says which."""


@dataclass(frozen=True)
class _Global:
    name: str  # module.qualname


@dataclass(frozen=True)
class Storage:
    type_name: str
    key: str
    numel: int
    element_size: int

    @property
    def nbytes(self) -> int:
        return self.numel * self.element_size


@dataclass(eq=False)
class _Call:
    func: str
    args: tuple


@dataclass(eq=False)
class _Instance:
    cls: str
    state: Any = None


class _OrderedDict(dict):
    """What ``collections.OrderedDict()`` builds: a dict, to which SETITEMS may add items."""


_MARK = object()

STORAGE_ELEMENT_SIZES: Mapping[str, int] = {
    "torch.FloatStorage": 4, "torch.DoubleStorage": 8, "torch.HalfStorage": 2, "torch.BFloat16Storage": 2,
    "torch.LongStorage": 8, "torch.IntStorage": 4, "torch.ShortStorage": 2, "torch.CharStorage": 1,
    "torch.ByteStorage": 1, "torch.BoolStorage": 1,
}


def _ints(value: Any) -> bool:
    return isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def _empty_ordered_dict(value: Any) -> bool:
    return isinstance(value, _OrderedDict) and not value


def _check_rebuild_tensor(args: tuple) -> str | None:
    """``_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])``."""
    if len(args) not in (6, 7) or not isinstance(args[0], Storage):
        return "a tensor rebuilt from something other than a storage"
    storage, offset, size, stride = args[:4]
    if not (isinstance(offset, int) and offset >= 0 and _ints(size) and _ints(stride) and len(size) == len(stride)):
        return "a tensor with a malformed size, stride or offset"
    if not isinstance(args[4], bool) or not _empty_ordered_dict(args[5]):
        return "a tensor with backward hooks"
    if len(args) == 7 and not (isinstance(args[6], dict) and not args[6]):
        return "a tensor with Python metadata"
    if 0 not in size and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage.numel:
        return f"a tensor of size {size} that reaches past its storage of {storage.numel} elements"
    return None


def _check_rebuild_parameter(args: tuple) -> str | None:
    """``_rebuild_parameter(tensor, requires_grad, hooks)``."""
    if (len(args) != 3 or not isinstance(args[0], _Call) or args[0].func != "torch._utils._rebuild_tensor_v2"
            or not isinstance(args[1], bool) or not _empty_ordered_dict(args[2])):
        return "a parameter that is not a plain tensor"
    return None


def _check_ordered_dict(args: tuple) -> str | None:
    return None if args == () else "an OrderedDict built by a call with arguments"


def _check_set(args: tuple) -> str | None:
    plain = (str, int, float, bool, type(None))
    if args == () or (len(args) == 1 and isinstance(args[0], list) and all(isinstance(v, plain) for v in args[0])):
        return None
    return "a set of something other than plain values"


TENSOR_REDUCERS: Mapping[str, Callable[[tuple], str | None]] = {
    "torch._utils._rebuild_tensor_v2": _check_rebuild_tensor,
    "torch._utils._rebuild_parameter": _check_rebuild_parameter,
    "collections.OrderedDict": _check_ordered_dict,
}


@dataclass(frozen=True)
class Policy:
    """What a pickle may import, and how it may use it."""
    classes: frozenset[str] = frozenset()
    reducers: Mapping[str, Callable[[tuple], str | None]] = field(default_factory=lambda: dict(TENSOR_REDUCERS))
    storages: Mapping[str, int] = field(default_factory=lambda: dict(STORAGE_ELEMENT_SIZES))

    def allows(self, name: str) -> bool:
        return name in self.classes or name in self.reducers or name in self.storages


TENSORS = Policy()


def module_policy(classes: list[type]) -> Policy:
    """Tensors, plus these classes created bare and their state sets (``torch.save`` of a module)."""
    return Policy(frozenset(f"{c.__module__}.{c.__qualname__}" for c in classes),
                  {**TENSOR_REDUCERS, "builtins.set": _check_set})


@dataclass(frozen=True)
class ScanResult:
    storages: dict[str, Storage]
    imported: frozenset[str]

    @property
    def numel(self) -> int:
        return sum(s.numel for s in self.storages.values())


_OPCODES_POPPING_TO_MARK = {"TUPLE", "LIST", "DICT", "APPENDS", "SETITEMS", "ADDITEMS", "FROZENSET", "POP_MARK"}
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False, "EMPTY_TUPLE": ()}
_PLAIN_ARGS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
               "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
               "BYTEARRAY8", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
_IGNORED = {"PROTO", "FRAME"}


class _Machine:
    def __init__(self, policy: Policy, what: str):
        self.policy, self.what = policy, what
        self.stack: list[Any] = []
        self.memo: dict[int, Any] = {}
        self.storages: dict[str, Storage] = {}
        self.imported: set[str] = set()

    def refuse(self, why: str) -> PickleRefused:
        return PickleRefused(f"{self.what} is a pickle that could run code or allocate without bound ({why}); refused")

    def pop(self) -> Any:
        if not self.stack or self.stack[-1] is _MARK:
            raise PickleRefused(f"{self.what} is a corrupt pickle (its stack runs empty)")
        return self.stack.pop()

    def pop_to_mark(self) -> list[Any]:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i] is _MARK:
                items = self.stack[i + 1:]
                del self.stack[i:]
                return items
        raise PickleRefused(f"{self.what} is a corrupt pickle (a mark is missing)")

    def import_name(self, module: str, name: str) -> _Global:
        qualified = f"{'builtins' if module == '__builtin__' else module}.{name}"
        self.imported.add(qualified)
        if not self.policy.allows(qualified):
            raise self.refuse(f"it imports {qualified}")
        return _Global(qualified)

    def step(self, name: str, arg: Any) -> None:
        stack = self.stack
        if name in _IGNORED:
            return
        if name in _CONSTANTS:
            stack.append(_CONSTANTS[name])
        elif name in _PLAIN_ARGS:
            stack.append(arg)
        elif name == "MARK":
            stack.append(_MARK)
        elif name in _OPCODES_POPPING_TO_MARK:
            self.collect(name, self.pop_to_mark())
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            count = int(name[-1])
            items = [self.pop() for _ in range(count)][::-1]
            stack.append(tuple(items))
        elif name in ("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET"):
            stack.append({"EMPTY_LIST": list, "EMPTY_DICT": dict, "EMPTY_SET": set}[name]())
        elif name == "APPEND":
            value = self.pop()
            self.container(list).append(self.data(value))
        elif name == "SETITEM":
            value, key = self.pop(), self.pop()
            self.set_items(self.container(dict), [key, value])
        elif name == "POP":
            self.pop()
        elif name == "DUP":
            stack.append(stack[-1] if stack else self.pop())
        elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            if not stack or stack[-1] is _MARK:
                raise PickleRefused(f"{self.what} is a corrupt pickle (it memoizes nothing)")
            self.memo[len(self.memo) if name == "MEMOIZE" else arg] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if arg not in self.memo:
                raise PickleRefused(f"{self.what} is a corrupt pickle (it reads memo {arg}, never written)")
            stack.append(self.memo[arg])
        elif name == "GLOBAL":
            module, _, qualname = str(arg).partition(" ")
            stack.append(self.import_name(module, qualname))
        elif name == "STACK_GLOBAL":
            qualname, module = self.pop(), self.pop()
            if not (isinstance(module, str) and isinstance(qualname, str)):
                raise self.refuse("it imports a computed name")
            stack.append(self.import_name(module, qualname))
        elif name == "BINPERSID":
            stack.append(self.storage(self.pop()))
        elif name == "REDUCE":
            self.reduce()
        elif name == "NEWOBJ":
            args, cls = self.pop(), self.pop()
            if not isinstance(cls, _Global) or cls.name not in self.policy.classes or args != ():
                shown = cls.name if isinstance(cls, _Global) else type(cls).__name__
                raise self.refuse(f"it creates {shown} with arguments {_short(args)}")
            stack.append(_Instance(cls.name))
        elif name == "BUILD":
            state = self.data(self.pop())
            target = stack[-1] if stack else self.pop()
            if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
                raise self.refuse("it sets a state that is not a dict of attributes")
            if isinstance(target, _OrderedDict):  # a state dict's _metadata attribute
                target.attributes = state
            elif isinstance(target, _Instance) and target.state is None:
                target.state = state
            else:
                raise self.refuse("it sets the state of something that is not a bare layer")
        else:
            raise self.refuse(f"it uses the {name} opcode")

    def collect(self, name: str, items: list[Any]) -> None:
        if name == "TUPLE":
            self.stack.append(tuple(items))
        elif name == "LIST":
            self.stack.append([self.data(v) for v in items])
        elif name == "DICT":
            self.stack.append(self.set_items({}, items))
        elif name == "APPENDS":
            self.container(list).extend(self.data(v) for v in items)
        elif name == "SETITEMS":
            self.set_items(self.container(dict), items)
        elif name == "ADDITEMS":
            target = self.container(set)
            target.update(self.hashable(v) for v in items)
        elif name == "FROZENSET":
            self.stack.append(frozenset(self.hashable(v) for v in items))
        # POP_MARK: the items are dropped

    def container(self, kind: type) -> Any:
        if not self.stack or not isinstance(self.stack[-1], kind):
            raise PickleRefused(f"{self.what} is a corrupt pickle (it adds items to a non-{kind.__name__})")
        return self.stack[-1]

    def set_items(self, target: dict, items: list[Any]) -> dict:
        if len(items) % 2:
            raise PickleRefused(f"{self.what} is a corrupt pickle (a dict item without its value)")
        for key, value in zip(items[::2], items[1::2]):
            target[self.hashable(key)] = self.data(value)
        return target

    def data(self, value: Any) -> Any:
        """A value stored in a container or state: never an imported name (that would hand a callable to code)."""
        if isinstance(value, _Global):
            raise self.refuse(f"it stores {value.name} as data")
        if isinstance(value, tuple):
            for item in value:
                self.data(item)
        return value

    def hashable(self, value: Any) -> Any:
        self.data(value)
        if not isinstance(value, (str, int, float, bool, bytes, type(None), tuple, frozenset)):
            raise self.refuse(f"it uses a {type(value).__name__} as a key")
        return value

    def storage(self, pid: Any) -> Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _Global)
                and isinstance(pid[2], str) and pid[3] == "cpu" and isinstance(pid[4], int) and pid[4] >= 0):
            raise self.refuse(f"it refers to an object outside the pickle: {_short(pid)}")
        type_name, key, numel = pid[1].name, pid[2], pid[4]
        if type_name not in self.policy.storages:
            raise self.refuse(f"it uses {type_name} as a storage type")
        storage = Storage(type_name, key, numel, self.policy.storages[type_name])
        if self.storages.setdefault(key, storage) != storage:
            raise self.refuse(f"storage {key} is declared twice with different sizes")
        if sum(s.numel for s in self.storages.values()) > limits.MAX_PARAMETERS:
            raise self.refuse(f"its tensors hold more than {limits.MAX_PARAMETERS:,} elements, the limit")
        return storage

    def reduce(self) -> None:
        args, func = self.pop(), self.pop()
        if not isinstance(func, _Global):
            raise self.refuse(f"it calls a {type(func).__name__}")
        checker = self.policy.reducers.get(func.name)
        if checker is None:
            raise self.refuse(f"it calls {func.name}{_short(args)}, which would run its constructor")
        if not isinstance(args, tuple):
            raise self.refuse(f"it calls {func.name} without an argument tuple")
        problem = checker(self.data(args))
        if problem:
            raise self.refuse(f"{func.name}: {problem}")
        self.stack.append(_OrderedDict() if func.name == "collections.OrderedDict" else _Call(func.name, args))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def scan(data: bytes, policy: Policy, what: str) -> ScanResult:
    """Proves that ``data`` only builds what ``policy`` allows; raises :class:`PickleRefused` otherwise."""
    machine = _Machine(policy, what)
    stopped = False
    try:
        for opcode, arg, position in pickletools.genops(data):
            if opcode.name == "STOP":  # genops ends here, whatever follows
                machine.data(machine.pop())
                stopped = position + 1 == len(data)
                if not stopped:
                    raise PickleRefused(f"{what} has bytes after its pickle ends")
                break
            machine.step(opcode.name, arg)
    except PickleRefused:
        raise
    except (ValueError, IndexError, KeyError, TypeError, RecursionError, OverflowError, UnicodeDecodeError) as exc:
        raise PickleRefused(f"{what} is a corrupt or truncated pickle ({str(exc)[:100] or type(exc).__name__})") from None
    if not stopped:
        raise PickleRefused(f"{what} is a truncated pickle (it never stops)")
    return ScanResult(machine.storages, frozenset(machine.imported))
