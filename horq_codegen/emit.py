"""Emit: render a lowered graph into a C project through Jinja templates.

Templates hold only glue (arrays, the call sequence, sizes); every value they
print is computed here by a small helper, and the kernels are fixed C files
copied from ``templates/kernels``. Output is deterministic: no timestamps, no
absolute paths, iteration in graph order only.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import jinja2
import numpy as np

from . import __version__
from .errors import HorqError
from .ir import INPUT, Activation, Graph, Node, Op
from .capi import InputQuantization, check_name, float_of, float_table
from .integer import requantize
from .memory import Buffer, MemoryPlan, input_entry, plan_memory
from .pack import prefix_xor_triples, words_for
from .resources import templates_dir
from .targets import Board, Target

VALUES_PER_LINE = 8


def c_float(value: float) -> str:
    """A C literal that parses back to exactly this float32.

    >>> c_float(0.1), c_float(-2.0), c_float(1e-40)
    ('0.1f', '-2.0f', '1e-40f')
    """
    v = np.float32(value)
    if not np.isfinite(v):
        raise HorqError(f"a weight is {v}: the model holds non-finite parameters")
    text = np.format_float_positional(v, unique=True, trim="0") if 1e-4 <= abs(v) < 1e7 or v == 0 \
        else np.format_float_scientific(v, unique=True, trim="-")
    return text + "f"


def c_array_body(values: np.ndarray) -> str:
    flat = values.reshape(-1)
    if flat.dtype == np.uint32:
        items = [f"0x{int(v):08x}u" for v in flat]
    elif flat.dtype == np.int8:
        items = [str(int(v)) for v in flat]
    else:
        items = [c_float(v) for v in flat]
    lines = [", ".join(items[i:i + VALUES_PER_LINE]) for i in range(0, len(items), VALUES_PER_LINE)]
    return ",\n    ".join(lines)


@dataclass(frozen=True)
class CArray:
    name: str
    ctype: str
    size: int
    body: str


@dataclass
class LayerCode:
    name: str
    op: str
    source: str
    output: str
    output_count: int
    trace_macro: str = "HORQ_TRACE_LAYER"  # _I8 for an int8 output, _WORDS for bit-planes
    arrays: list[CArray] = field(default_factory=list)
    params: str = ""      # a static const struct definition, if the kernel takes one
    call: str = ""


def arena_pointer(buf: Buffer, arena: str | None = None) -> str:
    """A buffer's address: an offset from the run's arena base pointers (the static arena's or the caller's).

    >>> arena_pointer(Buffer(8, 4)), arena_pointer(Buffer(32, 16, "i8")), arena_pointer(Buffer(4, 4), "words")
    ('&float_arena[8]', '(int8_t *)float_arena + 32', '&word_arena[4]')
    """
    kind = arena or buf.arena
    if kind == "i8":
        return f"(int8_t *)float_arena + {buf.offset}"
    return f"&word_arena[{buf.offset}]" if kind == "words" else f"&float_arena[{buf.offset}]"


class _Context:
    def __init__(self, graph: Graph, plan: MemoryPlan, weight_layout: str = "plain"):
        self.graph, self.plan, self.weight_layout = graph, plan, weight_layout

    def input_of(self, node: Node, index: int = 0) -> str:
        src = node.inputs[index]
        return "input" if src == INPUT else self.output_of(self.graph.node(src))

    def output_of(self, node: Node) -> str:
        buf = self.plan.outputs[node.name]
        if buf is None:
            return "output"
        return arena_pointer(buf)

    def outputs_of(self, node: Node) -> str:
        """The float and the int8 output pointer of a kernel that writes either: one is NULL."""
        return f"NULL, {self.output_of(node)}" if node.dtype == "i8" else f"{self.output_of(node)}, NULL"

    def i8_output_of(self, node: Node) -> str:
        """A ``horq_i8_output`` initializer: int8 values, or bit-planes."""
        if node.dtype == "i8":
            return f"{{{self.output_of(node)}, NULL}}"
        return f"{{NULL, {self.output_of(node)}}}"

    def inputs_of(self, node: Node) -> str:
        """The float, int8 and bit-plane input pointers of a HORQ kernel: all NULL but one."""
        src = node.inputs[0]
        dtype = "f32" if src == INPUT else self.graph.node(src).dtype
        pointers = {d: self.input_of(node) if d == dtype else "NULL" for d in ("f32", "i8", "bits")}
        return ", ".join(pointers.values())

    def input_is_int8(self, node: Node) -> bool:
        src = node.inputs[0]
        return src != INPUT and self.graph.node(src).dtype != "f32"

    def scratch(self, node: Node) -> tuple[str, str]:
        f, w = self.plan.scratch_floats.get(node.name), self.plan.scratch_words.get(node.name)
        return arena_pointer(f) if f else "NULL", arena_pointer(w, "words") if w else "NULL"


def _array(layer: LayerCode, suffix: str, values: np.ndarray) -> str:
    name = f"{layer.name}_{suffix}"
    ctype = {np.dtype(np.uint32): "uint32_t", np.dtype(np.int8): "int8_t"}.get(values.dtype, "float")
    layer.arrays.append(CArray(name, ctype, int(values.size), c_array_body(values)))
    return name


def _dims(shape: tuple[int, ...]) -> str:
    c, h, w = shape
    return f"{{{h}, {w}, {c}}}"


def _window(node: Node, in_shape: tuple[int, ...]) -> str:
    """The window over the op's own output grid (before a fused pooling, whose size is in the params)."""
    (kh, kw), (sh, sw), (ph, pw) = node.attrs["kernel"], node.attrs["stride"], node.attrs["padding"]
    out_shape = node.attrs.get("conv_out", node.shape)
    return f"{{{_dims(in_shape)}, {_dims(out_shape)}, {kh}, {kw}, {sh}, {sw}, {ph}, {pw}}}"


def _activation(node: Node) -> str:
    return _activation_of(node.activation)


def _activation_of(act: Activation) -> str:
    kind = {"none": "HORQ_ACT_NONE", "relu": "HORQ_ACT_RELU", "hardtanh": "HORQ_ACT_HARDTANH"}[act.kind]
    return f"{{{kind}, {c_float(act.low)}, {c_float(act.high)}}}"


_GRANULARITY = {"patch": "HORQ_GRAN_PATCH", "pixel": "HORQ_GRAN_PIXEL", "tensor": "HORQ_GRAN_TENSOR",
                "static": "HORQ_GRAN_STATIC"}


def _transform_arrays(layer: LayerCode, node: Node) -> tuple[str, str]:
    return _array(layer, "scale", node.params["scale"]), _array(layer, "offset", node.params["offset"])


SMALL_PATCH = 32  # HORQ_I8_SMALL_PATCH in horq_kernels.h


def small_row(channels: int, patch: int) -> int:
    """HORQ_I8_SMALL_ROW in horq_kernels.h: the padded weight row of a patch of ``patch`` bytes."""
    return 16 if channels == 1 and patch <= 16 else SMALL_PATCH


def _int8_conv_weights(node: Node) -> np.ndarray:
    """The int8 kernel's weight layout: rows ([kh][kw][in], a patch's channels-last order) padded
    with zeros to 16 bytes (one channel, at most 16 taps) or 32 for the small-patch kernel (a first
    layer whose in * kh * kw is at most 32), else as they are; always as they are for a grouped
    convolution (``horq_conv2d_i8_grouped_hwc`` reads plain rows of [kh][kw][in / groups])."""
    weight = node.params["weight"]
    rows = weight.reshape(weight.shape[0], -1)
    if rows.shape[1] > SMALL_PATCH or node.attrs.get("groups", 1) > 1:
        return weight
    return np.pad(rows, ((0, 0), (0, small_row(weight.shape[-1], rows.shape[1]) - rows.shape[1])))


def _i8_store(layer: LayerCode, node: Node) -> str:
    """The ``horq_i8_store`` initializer of an integer-mode convolution: its fused pooling, the affine
    fused after it, the bit-planes it writes."""
    post, plane_betas = "NULL, NULL, 1, {HORQ_ACT_NONE, 0.0f, 0.0f}", "NULL"
    if "post_scale" in node.params:
        post_scale, post_offset = _array(layer, "post_scale", node.params["post_scale"]), \
            _array(layer, "post_offset", node.params["post_offset"])
        post = (f"{post_scale}, {post_offset}, {node.params['post_scale'].size}, "
                f"{_activation_of(node.attrs['post_activation'])}")
    if node.dtype == "bits":
        plane_betas = _array(layer, "plane_betas", node.params["plane_betas"])
    pool = 0 if node.dtype == "f32" else node.attrs.get("pool", 1)  # 0: a float output, stored without it
    return f"{{{pool}, {post}, {node.attrs.get('plane_order', 0)}, {plane_betas}}}"


def _clamps(layer: LayerCode, node: Node) -> str:
    """The ``horq_clamps`` initializer: per-channel clamps of a folded affine, or none."""
    if "clamp_low" not in node.params:
        return "{NULL, NULL}"
    low = _array(layer, "clamp_low", node.params["clamp_low"])
    return f"{{{low}, {_array(layer, 'clamp_high', node.params['clamp_high'])}}}"


def _i8_output_call(ctx: _Context, node: Node, call: str) -> str:
    """``call`` (which names the output ``&out``) in a block that declares the output."""
    return f"{{\n        const horq_i8_output out = {ctx.i8_output_of(node)};\n        {call}\n    }}"


def _conv2d(layer: LayerCode, node: Node, ctx: _Context) -> None:
    int8 = ctx.input_is_int8(node)
    weights = _array(layer, "weights", _int8_conv_weights(node) if int8 else node.params["weight"])
    scale, offset = _transform_arrays(layer, node)
    in_shape = ctx.graph.shape_of(node.inputs[0])
    kind = "i8" if int8 else "f32"
    store = f", {_clamps(layer, node)},\n    {_i8_store(layer, node)}" if int8 else ""
    groups = node.attrs.get("groups", 1)
    layer.params = (f"static const horq_conv2d_{kind}_params {layer.name}_params = {{\n"
                    f"    {_window(node, in_shape)},\n    {weights}, {scale}, {offset},\n"
                    f"    {_activation(node)}{store}, {groups}\n}};")
    kernel = f"horq_conv2d_{kind}_grouped_hwc" if groups > 1 else f"horq_conv2d_{kind}_hwc"
    if not int8:
        layer.call = f"{kernel}(&{layer.name}_params, {ctx.input_of(node)}, {ctx.output_of(node)});"
    elif node.dtype == "f32":
        layer.call = f"{kernel}(&{layer.name}_params, {ctx.input_of(node)}, {ctx.output_of(node)}, NULL);"
    else:
        layer.call = _i8_output_call(ctx, node, f"{kernel}(&{layer.name}_params, {ctx.input_of(node)}, NULL, &out);")


def _linear(layer: LayerCode, node: Node, ctx: _Context) -> None:
    weights = _array(layer, "weights", node.params["weight"])
    scale, offset = _transform_arrays(layer, node)
    kind = "i8" if ctx.input_is_int8(node) else "f32"
    outputs = ctx.outputs_of(node) if kind == "i8" else ctx.output_of(node)
    layer.params = (f"static const horq_fc_{kind}_params {layer.name}_params = {{\n"
                    f"    {node.attrs['in_features']}, {node.shape[0]},\n    {weights}, {scale}, {offset},\n"
                    f"    {_activation(node)}\n}};")
    layer.call = f"horq_fc_{kind}(&{layer.name}_params, {ctx.input_of(node)}, {outputs});"


def _weight_words(node: Node, layout: str) -> np.ndarray:
    """The layer's packed weights in the target's layout: prefix-XOR runs are what one inner-loop
    call covers, a whole row, or one tap of it for ``pixel`` layers. A ``pixel`` layer's weights
    are stored tap by tap, ``[tap][output][words]`` (horq_bconv2d.c: one inner-loop call counts
    every output of a tap); the others row by row, ``[output][taps * words]``."""
    bits = node.params["weight_bits"]
    pixel = node.op == Op.HORQ_CONV2D and node.attrs["granularity"] == "pixel"
    segment = words_for(node.attrs["in_shape"][0]) if pixel else bits.shape[-1]
    if pixel:
        bits = np.ascontiguousarray(bits.reshape(bits.shape[0], -1, segment).transpose(1, 0, 2)).reshape(bits.shape)
    if layout == "plain":
        return bits
    return prefix_xor_triples(bits, segment)


def _horq_common(layer: LayerCode, node: Node, ctx: _Context) -> str:
    weights = _array(layer, "weights", _weight_words(node, ctx.weight_layout))
    scale, offset = _transform_arrays(layer, node)
    betas = _array(layer, "betas", node.params["betas"]) if node.attrs["granularity"] == "static" else "NULL"
    clamps = _clamps(layer, node) if node.op == Op.HORQ_CONV2D else ""
    return (f"{node.attrs['order']}, {_GRANULARITY[node.attrs['granularity']]},\n"
            f"    {weights}, {scale}, {offset}, {betas},\n    {_activation(node)}{', ' + clamps if clamps else ''}")


def _horq_conv2d(layer: LayerCode, node: Node, ctx: _Context) -> None:
    common = _horq_common(layer, node, ctx)
    may_overwrite = int(node.name in ctx.plan.input_is_scratch)
    layer.params = (f"static const horq_bconv2d_params {layer.name}_params = {{\n"
                    f"    {_window(node, node.attrs['in_shape'])},\n    {common},\n    {may_overwrite}, "
                    f"{int(ctx.input_is_int8(node))}, {int(bool(node.attrs.get('planes_input')))},\n"
                    f"    {_i8_store(layer, node)}\n}};")
    sf, sw = ctx.scratch(node)
    call = f"horq_bconv2d_hwc(&{layer.name}_params, {ctx.inputs_of(node)}, {{output}}, {sf}, {sw});"
    if node.dtype == "f32":
        layer.call = call.format(output=ctx.outputs_of(node))
    else:
        layer.call = _i8_output_call(ctx, node, call.format(output="NULL, &out"))


def _horq_linear(layer: LayerCode, node: Node, ctx: _Context) -> None:
    common = _horq_common(layer, node, ctx)
    layer.params = (f"static const horq_bfc_params {layer.name}_params = {{\n"
                    f"    {node.attrs['in_features']}, {node.shape[0]},\n    {common},\n    "
                    f"{int(ctx.input_is_int8(node))}, {int(bool(node.attrs.get('planes_input')))}\n}};")
    sf, sw = ctx.scratch(node)
    layer.call = f"horq_bfc(&{layer.name}_params, {ctx.inputs_of(node)}, {ctx.outputs_of(node)}, {sf}, {sw});"


_INT8_KERNELS = {"horq_maxpool2d_hwc": "horq_maxpool2d_i8_hwc", "horq_avgpool2d_hwc": "horq_avgpool2d_i8_hwc",
                 "horq_affine": "horq_affine_i8", "horq_hwc_to_chw": "horq_hwc_to_chw_i8"}


def _int8_variant(kernel: str, node: Node) -> str:
    """The kernel's int8 version for an int8 tensor (the op reads and writes the same type)."""
    return _INT8_KERNELS[kernel] if node.dtype == "i8" else kernel


def _pool(kernel: str) -> Callable[[LayerCode, Node, _Context], None]:
    def render(layer: LayerCode, node: Node, ctx: _Context) -> None:
        layer.params = (f"static const horq_window {layer.name}_window = "
                        f"{_window(node, ctx.graph.shape_of(node.inputs[0]))};")
        layer.call = f"{_int8_variant(kernel, node)}(&{layer.name}_window, {ctx.input_of(node)}, {ctx.output_of(node)});"
    return render


def _affine(layer: LayerCode, node: Node, ctx: _Context) -> None:
    scale, offset = _transform_arrays(layer, node)
    channels = node.shape[0]
    layer.params = f"static const horq_activation {layer.name}_act = {_activation(node)};"
    layer.call = (f"{_int8_variant('horq_affine', node)}({ctx.input_of(node)}, {ctx.output_of(node)}, "
                  f"{int(np.prod(node.shape))}, {channels}, {scale}, {offset}, &{layer.name}_act);")


def _quantize(layer: LayerCode, node: Node, ctx: _Context) -> None:
    if "pre_scale" in node.params:
        scale, offset = _array(layer, "shift_scale", node.params["pre_scale"]), \
            _array(layer, "shift_offset", node.params["pre_offset"])
        layer.call = (f"horq_shift_quantize_i8({ctx.input_of(node)}, {ctx.output_of(node)}, "
                      f"{int(np.prod(node.shape))}, {node.params['pre_scale'].size}, {scale}, {offset}, "
                      f"{c_float(node.params['inv_scale'][0])});")
        return
    kernel = "horq_quantize_signs_i8" if node.attrs.get("keep_signs") else "horq_quantize_i8"
    layer.call = (f"{kernel}({ctx.input_of(node)}, {ctx.output_of(node)}, {int(np.prod(node.shape))}, "
                  f"{c_float(node.params['inv_scale'][0])});")


def _dequantize(layer: LayerCode, node: Node, ctx: _Context) -> None:
    layer.call = (f"horq_dequantize_i8({ctx.input_of(node)}, {ctx.output_of(node)}, {int(np.prod(node.shape))}, "
                  f"{c_float(node.params['scale'][0])});")


def _standalone_activation(layer: LayerCode, node: Node, ctx: _Context) -> None:
    if node.op == Op.RELU:
        act = "{HORQ_ACT_RELU, 0.0f, 0.0f}"
    else:
        act = f"{{HORQ_ACT_HARDTANH, {c_float(node.attrs['low'])}, {c_float(node.attrs['high'])}}}"
    layer.params = f"static const horq_activation {layer.name}_act = {act};"
    layer.call = (f"horq_activation_apply({ctx.input_of(node)}, {ctx.output_of(node)}, "
                  f"{int(np.prod(node.shape))}, &{layer.name}_act);")


def _add(layer: LayerCode, node: Node, ctx: _Context) -> None:
    count = int(np.prod(node.shape))
    layer.params = f"static const horq_activation {layer.name}_act = {_activation(node)};"
    a, b = ctx.input_of(node, 0), ctx.input_of(node, 1)
    slope, channels = "NULL", 1
    if "slope" in node.params:  # a fused PReLU
        slope, channels = _array(layer, "slope", node.params["slope"]), node.params["slope"].size
    if node.dtype == "i8":
        ra, rb = (c_float(r) for r in node.params["ratios"])
        layer.call = (f"horq_add_i8({a}, {b}, {ctx.output_of(node)}, {count}, {ra}, {rb}, {channels}, {slope}, "
                      f"&{layer.name}_act);")
    else:
        layer.call = f"horq_add({a}, {b}, {ctx.output_of(node)}, {count}, {channels}, {slope}, &{layer.name}_act);"


def _channels_and_pixels(shape: tuple[int, ...]) -> tuple[int, int]:
    """A tensor's channels and pixels in [h][w][c] memory (a vector: its features, one pixel)."""
    if len(shape) == 3 and shape[1] * shape[2] > 1:
        return shape[0], shape[1] * shape[2]
    return int(np.prod(shape)), 1


def _concat(layer: LayerCode, node: Node, ctx: _Context) -> None:
    """One strided copy per input into its channels of the output."""
    stride, pixels = _channels_and_pixels(node.shape)
    calls, first = [], 0
    for index, name in enumerate(node.inputs):
        channels, _ = _channels_and_pixels(ctx.graph.shape_of(name))
        args = f"{ctx.input_of(node, index)}, {ctx.output_of(node)}, {pixels}, {channels}, {stride}, {first}"
        if node.dtype == "i8":
            calls.append(f"horq_copy_channels_i8({args}, {c_float(node.params['ratios'][index])});")
        else:
            calls.append(f"horq_copy_channels({args});")
        first += channels
    layer.call = "\n    ".join(calls)


def _prelu(layer: LayerCode, node: Node, ctx: _Context) -> None:
    count = int(np.prod(node.shape))
    channels = int(node.params["negative" if node.dtype == "i8" else "slope"].size)
    if node.dtype == "i8":
        negative = _array(layer, "negative", node.params["negative"])
        layer.call = (f"horq_prelu_i8({ctx.input_of(node)}, {ctx.output_of(node)}, {count}, {channels}, "
                      f"{c_float(node.params['positive'][0])}, {negative});")
    else:
        slope = _array(layer, "slope", node.params["slope"])
        layer.call = f"horq_prelu({ctx.input_of(node)}, {ctx.output_of(node)}, {count}, {channels}, {slope});"


def _layout(kernel: str, dims_attr: str | None) -> Callable[[LayerCode, Node, _Context], None]:
    def render(layer: LayerCode, node: Node, ctx: _Context) -> None:
        c, h, w = node.attrs[dims_attr] if dims_attr else node.shape
        layer.call = (f"{_int8_variant(kernel, node)}({ctx.input_of(node)}, {ctx.output_of(node)}, "
                      f"(horq_dims){{{h}, {w}, {c}}});")
    return render


_RENDERERS: dict[Op, Callable[[LayerCode, Node, _Context], None]] = {
    Op.CONV2D: _conv2d, Op.LINEAR: _linear, Op.HORQ_CONV2D: _horq_conv2d, Op.HORQ_LINEAR: _horq_linear,
    Op.MAXPOOL2D: _pool("horq_maxpool2d_hwc"), Op.AVGPOOL2D: _pool("horq_avgpool2d_hwc"),
    Op.AFFINE: _affine, Op.RELU: _standalone_activation, Op.HARDTANH: _standalone_activation,
    Op.TO_CHW: _layout("horq_hwc_to_chw", "dims"), Op.TO_HWC: _layout("horq_chw_to_hwc", None),
    Op.QUANTIZE: _quantize, Op.DEQUANTIZE: _dequantize,
    Op.ADD: _add, Op.CONCAT: _concat, Op.PRELU: _prelu,
}


@dataclass(frozen=True)
class ModelInfo:
    """What the stamp says about the model."""
    file_name: str
    sha256: str


_TRACE_MACROS = {"f32": "HORQ_TRACE_LAYER", "i8": "HORQ_TRACE_LAYER_I8", "bits": "HORQ_TRACE_LAYER_WORDS"}


def render_layers(graph: Graph, plan: MemoryPlan, weight_layout: str = "plain") -> list[LayerCode]:
    ctx = _Context(graph, plan, weight_layout)
    layers = []
    for node in graph.nodes:
        layer = LayerCode(node.name, node.op.value, node.source, ctx.output_of(node), int(np.prod(node.shape)),
                          _TRACE_MACROS[node.dtype])
        if node.dtype == "bits":
            layer.output_count = node.tensor_bytes // 4
        _RENDERERS[node.op](layer, node, ctx)
        layers.append(layer)
    return layers


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir())), keep_trailing_newline=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render_inputs(samples: np.ndarray) -> str:
    """``test_inputs.c``: the vectors the harness runs, as the bits of their floats (NaN and inf included)."""
    env = _environment()
    flat = np.ascontiguousarray(np.asarray(samples, np.float32).reshape(len(samples), -1)).view(np.uint32)
    return env.get_template("project/common/src/test_inputs.c.jinja").render(
        version=__version__, count=len(flat), size=flat.shape[1],
        samples=[c_array_body(s) for s in flat])


def _render_tree(env: jinja2.Environment, folder: str, out_dir: Path, prefix: str, context: dict) -> None:
    """Renders every template under ``folder`` to the same relative path; an empty result writes nothing."""
    root = templates_dir() / folder
    for template in sorted(root.rglob("*.jinja")):
        relative = template.relative_to(root)
        if relative.name == "test_inputs.c.jinja":
            continue
        text = env.get_template(f"{folder}/{relative.as_posix()}").render(**context)
        if not text.strip():
            continue  # e.g. platformio.ini for a board PlatformIO does not know
        dest = out_dir / relative.parent / relative.name.removesuffix(".jinja").replace("MODEL", prefix)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(text)


#: The target flags a user's own build needs (in targets/*.toml ``cflags``), and why: by prefix.
_USER_FLAGS = {
    "-std=": "C99 or any later C standard (the headers also carry `extern \"C\"` for C++ callers)",
    "-mcpu=": "the core: it sets the `__ARM_FEATURE_*` macros that pick the kernels' DSP, Helium or NEON paths; "
              "without it they take the portable C path (correct, slower)",
    "-mthumb": "Thumb code, as every Cortex-M runs",
    "-mfpu=": "the FPU the core has",
    "-mfloat-abi=": "must match the rest of your firmware (`softfp` gives the same results, with slower calls)",
    "-DHORQ_WEIGHTS_PREFIX_XOR": "the HORQ weights in the model file are in the DSP kernels' prefix-XOR layout; "
                                 "the model stops the build (`#error`) if the kernels are not told",
    "-ffp-contract=off": "keeps every `a * b + c` two roundings, as the reference and PyTorch compute it: GCC in "
                         "its GNU modes (`-std=gnu11`, most IDEs' default) and Clang fuse them into FMA "
                         "instructions where the core has them, and outputs then differ from the verified ones "
                         "in the last bits (an argmax can flip on a close call)",
}


def user_flags(target: Target) -> list[tuple[str, str]]:
    """The target's flags a firmware that builds the model itself must set, each with why.

    >>> from .targets import load_target
    >>> [f for f, _ in user_flags(load_target("cortex-m4"))]  # doctest: +NORMALIZE_WHITESPACE
    ['-std=c99', '-ffp-contract=off', '-mcpu=cortex-m4', '-mthumb', '-mfpu=fpv4-sp-d16', '-mfloat-abi=hard',
     '-DHORQ_WEIGHTS_PREFIX_XOR']
    """
    return [(flag, why) for flag in target.cflags for prefix, why in _USER_FLAGS.items() if flag.startswith(prefix)]


@dataclass(frozen=True)
class U8Input:
    """What ``NAME_run_u8_hwc`` does first: a table lookup into ``destination``, then the ops from ``first``
    on (``tail_input``: what they read as the float input, the staged copy or nothing)."""
    kernel: str
    ctype: str
    table: str
    destination: str
    first: int
    tail_input: str
    scale: str
    zero_point: int
    quantization: str


def u8_input(graph: Graph, plan: MemoryPlan, quantization: InputQuantization) -> U8Input:
    entry = input_entry(graph)
    floats = float_table(quantization)
    if entry.node is None:
        destination = tail_input = arena_pointer(plan.staged_input)
    else:
        destination, tail_input = arena_pointer(plan.outputs[entry.node]), "NULL"
    if entry.dtype == "i8":  # the model's own quantization of these floats: horq_quantize_i8, in the reference
        values = requantize(floats * graph.node(entry.node).params["inv_scale"][0]).astype(np.int8)
        kernel, ctype = "horq_lookup_u8_i8", "int8_t"
    else:
        values, kernel, ctype = floats, "horq_lookup_u8_f32", "float"
    return U8Input(kernel, ctype, c_array_body(values), destination, entry.first, tail_input,
                   c_float(float_of(quantization.scale)), quantization.zero_point, quantization.text)


def template_context(graph: Graph, target: Target, model: ModelInfo, prefix: str = "model",
                     board: Board | None = None, sample_count: int = 0,
                     input_quantization: InputQuantization = InputQuantization()) -> dict:
    """What every template sees: the project's and the library's (``library.py``)."""
    plan = plan_memory(graph)
    return {
        "version": __version__, "model": model, "prefix": prefix, "target": target,
        "board": board or target.board(None), "sample_count": sample_count,
        "layers": render_layers(graph, plan, target.weight_layout), "plan": plan,
        "u8": u8_input(graph, plan, input_quantization),
        "user_cflags": [f for f, _ in user_flags(target)], "flag_notes": user_flags(target),
        "input_size": int(np.prod(graph.input_shape)), "output_size": int(np.prod(graph.shape_of(graph.output))),
        "input_shape": graph.input_shape, "output_shape": graph.shape_of(graph.output),
        "kernel_sources": sorted(p.name for p in (templates_dir() / "kernels").glob("*.c")),
    }


def copy_kernels(dest: Path) -> list[str]:
    """Copies the fixed kernels (``templates/kernels``) into ``dest``; returns their names in order."""
    dest.mkdir(parents=True, exist_ok=True)
    names = []
    for source in sorted((templates_dir() / "kernels").iterdir()):
        shutil.copyfile(source, dest / source.name)
        names.append(source.name)
    return names


def generate(graph: Graph, target: Target, out_dir: Path, model: ModelInfo,
             samples: np.ndarray, prefix: str = "model", board: Board | None = None,
             input_quantization: InputQuantization = InputQuantization()) -> MemoryPlan:
    """Writes the whole project for ``target`` into ``out_dir`` (which must exist and be empty).

    Layout: ``src/`` (model, harness, test inputs), ``include/`` (the model's API),
    ``lib/horq/`` (the fixed kernels), and the target kind's build files. ``prefix`` names the
    model's every global symbol and macro (``prefix_run``, ``PREFIX_INPUT_SIZE``) and its files.
    """
    check_name(prefix)
    env = _environment()
    context = template_context(graph, target, model, prefix, board, len(samples), input_quantization)
    for folder in ("project/common", f"project/{target.kind}"):
        _render_tree(env, folder, out_dir, prefix, context)
    (out_dir / "src" / "test_inputs.c").write_text(render_inputs(samples))
    copy_kernels(out_dir / "lib" / "horq")
    return context["plan"]
