"""Static memory plan: every activation and scratch buffer at a fixed arena offset.

Two arenas, because C may not read a ``float`` buffer through a ``uint32_t *``
(strict aliasing): one of floats for activations and float scratch, one of words for
packed bit-planes. int8 activations (integer mode) live in the float arena too: C lets a
character type (``int8_t``) access any object, so they share its space with the floats
by liveness. Each tensor is sized by its type, in bytes. Buffers whose lifetimes do not overlap share space
(greedy first fit, largest first). The model input and output are the caller's.

A uint8 input (``NAME_run_u8_hwc``) enters through a table lookup into the buffer
:func:`input_entry` names; only a float model whose first op reads the input in place needs a
buffer of its own for that (``staged_input``, alive while op 0 runs).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import HorqError
from .ir import INPUT, Graph, Node, Op
from .pack import words_for

ALIGN = 4  # elements: 16-byte alignment, which vector loads (Helium, NEON) like


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


@dataclass(frozen=True)
class Buffer:
    offset: int  # in elements of its type from the arena's start (bytes for an int8 tensor)
    size: int    # in elements of its type
    arena: str = "f32"  # "f32"; "i8" for an int8 tensor in the float arena; "words" for bit-planes in the word arena


@dataclass(frozen=True)
class MemoryPlan:
    float_arena: int                      # floats
    word_arena: int                       # uint32 words
    outputs: dict[str, Buffer | None]     # None: the caller's output buffer
    scratch_floats: dict[str, Buffer]
    scratch_words: dict[str, Buffer]
    input_is_scratch: frozenset[str] = frozenset()  # nodes that may overwrite their input (see scratch_sizes)
    staged_input: Buffer | None = None    # floats: the uint8 input looked up, where no op's output takes it

    @property
    def arena_bytes(self) -> int:
        return 4 * (self.float_arena + self.word_arena)

    def int8_bytes(self) -> int:
        """The bytes the int8 tensors take, shared or not (a part of the float arena)."""
        return sum(b.size for b in self.outputs.values() if b is not None and b.arena == "i8")

    def live_tensors(self, graph: Graph, index: int) -> list[str]:
        """The arena tensors alive while op ``index`` runs (its inputs, its output, any still to be read),
        one name per buffer: a tensor computed in place of another stands for both."""
        step = {n.name: i for i, n in enumerate(graph.nodes)}
        last = last_use_steps(graph)
        seen: dict[tuple[str, int], str] = {}
        for n in graph.nodes:
            buf = self.outputs.get(n.name)
            if buf is not None and step[n.name] <= index <= last[n.name]:
                seen[(buf.arena, buf.offset)] = n.name  # the later tensor of a shared buffer
        return list(seen.values())

    def live_bytes(self, graph: Graph) -> list[int]:
        """Per op: the bytes of every buffer alive while it runs (its inputs, its output, its scratch)."""
        sizes = []
        for i, node in enumerate(graph.nodes):
            total = sum(graph.node(name).tensor_bytes for name in self.live_tensors(graph, i))
            for scratch in (self.scratch_floats.get(node.name), self.scratch_words.get(node.name)):
                total += 4 * scratch.size if scratch else 0
            sizes.append(total)
        return sizes


def scratch_sizes(node: Node, input_is_scratch: bool = False, int8_input: bool = False) -> tuple[int, int]:
    """(floats, words) of scratch a kernel needs: the *_get_buffer_size functions in C, in Python.
    ``input_is_scratch``: nothing reads the node's input after it (a float patch layer of order 2
    then keeps every |x| in the input's place). ``int8_input``: the integer quantizers. A layer
    that reads bit-planes (``planes_input``) needs no planes of its own; a HORQ convolution with an
    integer output keeps one stored position's float accumulators after its own floats."""
    planes_input = bool(node.attrs.get("planes_input"))
    if node.op == Op.HORQ_CONV2D:
        c, h, w = node.attrs["in_shape"]
        kh, kw = node.attrs["kernel"]
        order, cw, taps = node.attrs["order"], words_for(c), kh * kw
        granularity = node.attrs["granularity"]
        accumulators = node.shape[0] if node.dtype != "f32" else 0
        if granularity == "patch" and int8_input:  # pixel sums and sign words, or one int8 patch
            if order >= 3:
                return order + -(-taps * c // 4) + accumulators, order * taps * cw
            return order + accumulators, h * w * (1 + cw) + order * taps * cw
        if granularity == "patch":
            magnitudes = h * w * c if order >= 2 and not (order == 2 and input_is_scratch) else 0
            gathered = taps * c if order >= 3 else 0
            return h * w + magnitudes + gathered + order + accumulators, h * w * cw + order * taps * cw
        if granularity == "pixel":
            return h * w * order + accumulators, h * w * order * cw
        return order + accumulators, ((0 if planes_input else h * w) + 1 + taps) * order * cw
    if node.op == Op.HORQ_LINEAR:
        order, n = node.attrs["order"], node.attrs["in_features"]
        magnitudes = n if node.attrs["granularity"] != "static" and order >= 2 and not int8_input else 0
        return order + magnitudes, 0 if planes_input else order * words_for(n)
    return 0, 0


def _first_fit(items: list[tuple[str, int, int, int]]) -> tuple[dict[str, Buffer], int]:
    """items: (key, size, first_step, last_step). Returns offsets and the arena size."""
    placed: list[tuple[int, int, int, int]] = []  # offset, size, first, last
    result: dict[str, Buffer] = {}
    for key, size, first, last in sorted(items, key=lambda t: (-t[1], t[2], t[0])):
        if size == 0:
            continue
        offset = 0
        for o, s, f, l in sorted(p for p in placed if not (p[3] < first or last < p[2])):
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, first, last))
        result[key] = Buffer(offset, size)
    return result, max((o + s for o, s, _, _ in placed), default=0)


def last_use_steps(graph: Graph) -> dict[str, int]:
    """The index in ``graph.nodes`` of the last op that reads each tensor (its own op if none does)."""
    step = {n.name: i for i, n in enumerate(graph.nodes)}
    last_use = {n.name: step[n.name] for n in graph.nodes}
    for n in graph.nodes:
        for i in n.inputs:
            if i != INPUT:
                last_use[i] = max(last_use[i], step[n.name])
    return last_use


@dataclass(frozen=True)
class InputEntry:
    """Where a uint8 input's table lookup writes, and the first op that then runs.

    ``node`` is an op whose output takes the looked-up values: a QUANTIZE of the input (or of its
    HWC copy), written as int8 (``dtype`` "i8"), or the HWC copy itself, written as floats; None:
    the ``staged_input`` buffer, which op 0 reads in place of the caller's float input."""
    dtype: str
    node: str | None
    first: int


def input_entry(graph: Graph) -> InputEntry:
    nodes = graph.nodes
    readers = lambda name: [n for n in nodes if name in n.inputs]
    if [n.name for n in readers(INPUT)] != [nodes[0].name] or nodes[0].name == graph.output:
        return InputEntry("f32", None, 0)
    if nodes[0].op == Op.QUANTIZE:
        return InputEntry("i8", nodes[0].name, 1)
    if nodes[0].op != Op.TO_HWC:
        return InputEntry("f32", None, 0)
    after = readers(nodes[0].name)
    if len(after) == 1 and after[0] is nodes[1] and nodes[1].op == Op.QUANTIZE and nodes[1].name != graph.output:
        return InputEntry("i8", nodes[1].name, 2)
    return InputEntry("f32", nodes[0].name, 1)


#: Elementwise ops whose kernels may write over their (first suitable) input.
IN_PLACE_OPS = frozenset({Op.ADD, Op.PRELU})


def in_place_inputs(graph: Graph) -> dict[str, str]:
    """Tensor -> the tensor whose buffer it takes: an ADD or PReLU computed over an input that
    nothing reads after it, of the same type and size (so the residual sum needs no third buffer)."""
    step = {n.name: i for i, n in enumerate(graph.nodes)}
    last_use = last_use_steps(graph)
    shared: dict[str, str] = {}
    for node in graph.nodes:
        if node.op not in IN_PLACE_OPS or node.name == graph.output:
            continue
        for name in node.inputs:
            if name == INPUT or last_use[name] != step[node.name]:
                continue
            source = graph.node(name)
            if source.dtype == node.dtype != "bits" and source.tensor_bytes == node.tensor_bytes:
                shared[node.name] = shared.get(name, name)  # the first tensor of the chain owns the buffer
                break
    return shared


def plan_memory(graph: Graph) -> MemoryPlan:
    step = {n.name: i for i, n in enumerate(graph.nodes)}
    if graph.nodes[-1].name != graph.output:
        raise HorqError("internal: the output must be computed by the last op")
    last_use = last_use_steps(graph)
    shared = in_place_inputs(graph)
    for name, owner in shared.items():  # the owner's buffer lives until the last reader of any tensor in it
        last_use[owner] = max(last_use[owner], last_use[name])
    byte_items, word_items = [], []  # the float arena in bytes; the word arena in words
    # A HORQ conv may overwrite an input that is an arena buffer read by nothing after it.
    int8_input = {n.name: n.inputs[0] != INPUT and graph.node(n.inputs[0]).dtype != "f32" for n in graph.nodes}
    input_is_scratch = frozenset(n.name for n in graph.nodes if n.op == Op.HORQ_CONV2D and n.inputs[0] != INPUT
                                 and last_use[n.inputs[0]] == step[n.name] and not int8_input[n.name])
    for n in graph.nodes:
        if n.name in shared:
            pass  # no buffer of its own
        elif n.name != graph.output and n.dtype == "bits":  # bit-planes: words, in the word arena
            word_items.append((n.name + "#output", _aligned(n.tensor_bytes // 4), step[n.name], last_use[n.name]))
        elif n.name != graph.output:
            byte_items.append((n.name, 4 * _aligned(-(-n.tensor_bytes // 4)), step[n.name], last_use[n.name]))
        floats, words = scratch_sizes(n, n.name in input_is_scratch, int8_input[n.name])
        byte_items.append((n.name + "#scratch", 4 * _aligned(floats), step[n.name], step[n.name]))
        word_items.append((n.name, _aligned(words), step[n.name], step[n.name]))
    if input_entry(graph).node is None:
        byte_items.append(("#input", 4 * _aligned(int(np.prod(graph.input_shape))), 0, 0))
    byte_buffers, arena_bytes = _first_fit(byte_items)
    word_buffers, word_arena = _first_fit(word_items)
    in_floats = lambda b: Buffer(b.offset // 4, b.size // 4)  # every offset is 16-byte aligned
    outputs: dict[str, Buffer | None] = {}
    for n in graph.nodes:
        if n.dtype == "bits" and n.name != graph.output:
            b = word_buffers.pop(n.name + "#output")
            outputs[n.name] = Buffer(b.offset, n.tensor_bytes // 4, "words")
            continue
        b = byte_buffers.get(shared.get(n.name, n.name))
        outputs[n.name] = None if b is None else Buffer(b.offset, int(np.prod(n.shape)), "i8") \
            if n.dtype == "i8" else in_floats(b)
    scratch_f = {k.removesuffix("#scratch"): in_floats(v) for k, v in byte_buffers.items() if k.endswith("#scratch")}
    staged = byte_buffers.get("#input")
    return MemoryPlan(arena_bytes // 4, word_arena, outputs, scratch_f, word_buffers, input_is_scratch,
                      in_floats(staged) if staged else None)
