"""Import: a ``torch.export`` program to an IR :class:`~horq_codegen.ir.Graph`.

Table-driven: each supported ATen/horq op has a small handler that turns one FX
node into one IR node (or an alias, for no-ops such as dropout in eval mode).
Anything else is refused, naming the layer and its place in the model.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import shapes
from .errors import HorqError
from .ir import INPUT, Activation, Graph, Node, Op
from .model_file import ModelFile, read_model_file


@dataclass(frozen=True)
class ImportedModel:
    file: ModelFile
    graph: Graph

    def run_torch(self, inputs: np.ndarray, precision: type = np.float32) -> np.ndarray:
        """The PyTorch model's outputs for a batch of inputs (one sample at a time, as exported);
        ``precision=np.float64`` runs the same model with its parameters and inputs in float64."""
        dtype = {np.float32: torch.float32, np.float64: torch.float64}[precision]
        module = self.file.program.module().to(dtype)
        # One sample at a time is far too small for threads: with a busy second core,
        # torch's spinning workers make it 50x slower.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.no_grad():
                outs = [module(torch.from_numpy(np.ascontiguousarray(x[None], dtype=precision)))
                        for x in inputs]
        finally:
            torch.set_num_threads(threads)
        return np.stack([o.reshape(-1).numpy() for o in outs])


def _bind(fx_node) -> dict[str, Any]:
    """The op's arguments by schema name, defaults filled in."""
    schema = fx_node.target._schema
    bound = {}
    for i, arg in enumerate(schema.arguments):
        if i < len(fx_node.args):
            bound[arg.name] = fx_node.args[i]
        elif arg.name in fx_node.kwargs:
            bound[arg.name] = fx_node.kwargs[arg.name]
        elif arg.has_default_value():
            bound[arg.name] = arg.default_value
    return bound


def source_of(fx_node) -> str:
    """``features.3 (GELU)`` style location of the layer that produced ``fx_node``."""
    stack = fx_node.meta.get("nn_module_stack") or {}
    if not stack:
        return f"{fx_node.name} (top level)"
    path, cls = list(stack.values())[-1]
    cls_name = cls.rsplit(".", 1)[-1] if isinstance(cls, str) else getattr(cls, "__name__", str(cls))
    return f"{path or '<root>'} ({cls_name})"


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1])) if v else (1, 1)
    return (int(v), int(v))


_UNSUPPORTED = "<unsupported>"


class _Importer:
    def __init__(self, program: torch.export.ExportedProgram):
        self.program = program
        sig = program.graph_signature
        self.tensors: dict[str, torch.Tensor] = {}
        for ph, fqn in {**sig.inputs_to_parameters, **sig.inputs_to_buffers}.items():
            self.tensors[ph] = program.state_dict[fqn]
        for ph, fqn in sig.inputs_to_lifted_tensor_constants.items():
            self.tensors[ph] = program.constants[fqn]
        self.user_inputs = [s.arg.name for s in sig.input_specs if s.kind.name == "USER_INPUT"]
        self.alias: dict[str, str] = {}   # fx node name -> IR node name (or INPUT)
        self.nodes: list[Node] = []
        self.unsupported: list[str] = []

    # -- helpers used by handlers -------------------------------------------------
    def array(self, value) -> np.ndarray | None:
        if value is None:
            return None
        name = value.name if hasattr(value, "name") else None
        if name not in self.tensors:
            raise HorqError(f"a weight of the model is computed at run time ({name}); only constants are supported")
        return self.tensors[name].detach().cpu().numpy().astype(np.float32)

    def ref(self, value) -> str:
        if not hasattr(value, "name") or value.name not in self.alias:
            raise HorqError(f"input {value} of an op is not produced by a supported layer")
        return self.alias[value.name]

    def is_constant(self, value) -> bool:
        """A parameter, buffer or constant of the model (not a tensor computed from the input)."""
        return hasattr(value, "name") and value.name in self.tensors

    def emit(self, fx_node, op: Op, inputs, attrs=None, params=None, activation=None,
             shape: tuple[int, ...] | None = None) -> str:
        """Appends one IR node for ``fx_node`` (its shape from the export's metadata unless given, per sample)."""
        if shape is None:
            val = fx_node.meta["val"]
            if isinstance(val, (list, tuple)):  # multi-output ops (batch norm, pool with indices): getitem 0 reads the value
                val = val[0]
            shape = tuple(int(d) for d in val.shape)[1:]
        name = f"l{len(self.nodes)}_{op.value}"
        self.nodes.append(Node(name, op, tuple(inputs), tuple(shape), attrs or {}, params or {},
                               activation or Activation(), source_of(fx_node)))
        self.alias[fx_node.name] = name
        return name

    # -- the walk -----------------------------------------------------------------
    def run(self) -> Graph:
        if len(self.user_inputs) != 1:
            raise HorqError(f"the model takes {len(self.user_inputs)} inputs; exactly one tensor input is supported")
        output_name = None
        input_shape = None
        for fx_node in self.program.graph.nodes:
            if fx_node.op == "placeholder":
                if fx_node.name == self.user_inputs[0]:
                    shape = tuple(int(d) for d in fx_node.meta["val"].shape)
                    if len(shape) not in (2, 4) or shape[0] != 1:
                        raise HorqError(f"input shape {shape} is not supported: expected (1, N) or (1, C, H, W)")
                    input_shape = shape[1:]
                    self.alias[fx_node.name] = INPUT
            elif fx_node.op == "call_function":
                self.visit(fx_node)
            elif fx_node.op == "output":
                outs = fx_node.args[0]
                if len(outs) != 1:
                    raise HorqError(f"the model returns {len(outs)} outputs; exactly one tensor is supported")
                if not self.unsupported:
                    output_name = self.ref(outs[0])
        if self.unsupported:
            raise HorqError("unsupported layers: " + "; ".join(self.unsupported))
        if not self.nodes or output_name == INPUT:
            raise HorqError("the model computes nothing: its output is its input")
        return Graph(input_shape, tuple(self.nodes), output_name)

    def visit(self, fx_node) -> None:
        if any(self.alias.get(arg.name) == _UNSUPPORTED for arg in fx_node.all_input_nodes):
            self.alias[fx_node.name] = _UNSUPPORTED  # downstream of a refused layer: report only the cause
            return
        target = str(fx_node.target)
        key = target[len("aten."):] if target.startswith("aten.") else target
        handler = _HANDLERS.get(key)
        if handler is None:
            self.unsupported.append(f"{source_of(fx_node)}: op {target}")
            self.alias[fx_node.name] = _UNSUPPORTED
            return
        try:
            handler(self, fx_node, _bind(fx_node) if hasattr(fx_node.target, "_schema") else {})
        except _Unsupported as exc:
            self.unsupported.append(f"{source_of(fx_node)}: {exc}")
            self.alias[fx_node.name] = _UNSUPPORTED


class _Unsupported(Exception):
    """A supported op used with arguments the kernels do not handle."""


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise _Unsupported(message)


def _conv_attrs(a: dict, weight: np.ndarray, source) -> dict:
    _require(_pair(a.get("dilation", 1)) == (1, 1), f"dilation {a.get('dilation')} is not supported")
    _require(not isinstance(a.get("padding"), str), f"padding={a.get('padding')!r} is not supported")
    return {"kernel": tuple(int(k) for k in weight.shape[2:]), "stride": _pair(a["stride"]),
            "padding": _pair(a["padding"]), "in_shape": tuple(int(d) for d in source.meta["val"].shape[1:])}


def _output_transform(bias: np.ndarray | None, channels: int) -> dict[str, np.ndarray]:
    """Every conv/linear starts with ``y = acc * 1 + bias``; passes fold BatchNorm into it."""
    offset = bias if bias is not None else np.zeros(channels, np.float32)
    return {"scale": np.ones(channels, np.float32), "offset": offset.astype(np.float32),
            "exact_scale": np.ones(channels), "exact_offset": offset.astype(np.float64),
            "offset_terms": np.abs(offset).astype(np.float64)}


def _conv2d(imp: _Importer, n, a) -> None:
    """A float convolution; grouped ones (depthwise included) keep ``groups``: weights (O, C / groups, kh, kw)."""
    weight = imp.array(a["weight"])
    attrs = {**_conv_attrs(a, weight, a["input"]), "groups": int(a.get("groups", 1))}
    imp.emit(n, Op.CONV2D, [imp.ref(a["input"])], attrs,
             {"weight": weight, **_output_transform(imp.array(a.get("bias")), weight.shape[0])})


def _convolution(imp: _Importer, n, a) -> None:
    _require(not a["transposed"], "transposed convolution is not supported")
    _require(len(a["stride"]) == 2, "only 2-D convolution is supported")
    _conv2d(imp, n, a)


def _horq_params(imp: _Importer, a, weight: np.ndarray) -> tuple[dict, dict]:
    order, granularity = int(a["order"]), str(a["granularity"])
    params = {"weight": weight, **_output_transform(imp.array(a.get("bias")), weight.shape[0])}
    if granularity == "static":
        params["betas"] = imp.array(a["betas"])
    return {"order": order, "granularity": granularity}, params


def _horq_conv2d(imp: _Importer, n, a) -> None:
    weight = imp.array(a["weight"])
    channels = int(a["x"].meta["val"].shape[1])
    if weight.ndim == 4 and weight.shape[1] != channels:  # weights of a grouped convolution (O, C / groups, kh, kw)
        groups = channels // weight.shape[1] if weight.shape[1] and channels % weight.shape[1] == 0 else "?"
        raise _Unsupported(f"groups={groups} is not supported for HORQ convolutions "
                           f"(weights {tuple(weight.shape)} on {channels} input channels)")
    attrs, params = _horq_params(imp, a, weight)
    attrs = {**_conv_attrs({"stride": a["stride"], "padding": a["padding"]}, weight, a["x"]), **attrs}
    imp.emit(n, Op.HORQ_CONV2D, [imp.ref(a["x"])], attrs, params)


def _horq_linear(imp: _Importer, n, a) -> None:
    weight = imp.array(a["weight"])
    attrs, params = _horq_params(imp, a, weight)
    imp.emit(n, Op.HORQ_LINEAR, [imp.ref(a["x"])], {**attrs, "in_features": int(weight.shape[1])}, params)


def _linear(imp: _Importer, n, a) -> None:
    _require(len(n.meta["val"].shape) == 2, "linear on a tensor of rank > 2 is not supported")
    weight = imp.array(a["weight"])
    imp.emit(n, Op.LINEAR, [imp.ref(a["input"])], {"in_features": int(weight.shape[1])},
             {"weight": weight, **_output_transform(imp.array(a.get("bias")), weight.shape[0])})


def _batch_norm(imp: _Importer, n, a) -> None:
    _require(not a.get("training", False), "BatchNorm in training mode (export in eval mode)")
    channels = imp.array(a["running_mean"]).shape[0]
    weight, bias = imp.array(a.get("weight")), imp.array(a.get("bias"))
    params = {"mean": imp.array(a["running_mean"]), "var": imp.array(a["running_var"]),
              "weight": np.ones(channels, np.float32) if weight is None else weight,
              "bias": np.zeros(channels, np.float32) if bias is None else bias}
    imp.emit(n, Op.BATCHNORM, [imp.ref(a["input"])], {"eps": float(a["eps"])}, params)


def _relu(imp: _Importer, n, a) -> None:
    imp.emit(n, Op.RELU, [imp.ref(a["self"])])


def _hardtanh(imp: _Importer, n, a) -> None:
    low, high = float(a.get("min_val", -1.0)), float(a.get("max_val", 1.0))
    _require(low <= high, f"hardtanh with min {low} > max {high}")
    imp.emit(n, Op.HARDTANH, [imp.ref(a["self"])], {"low": low, "high": high})


def _pool_attrs(a: dict, n) -> dict:
    _require(not a.get("ceil_mode", False), "ceil_mode=True pooling is not supported")
    _require(_pair(a.get("dilation", 1)) == (1, 1), "dilated pooling is not supported")
    kernel = _pair(a["kernel_size"])
    stride = _pair(a["stride"]) if a.get("stride") else kernel
    padding = _pair(a.get("padding", 0))
    _require(padding[0] * 2 <= kernel[0] and padding[1] * 2 <= kernel[1], "pool padding larger than half the kernel")
    return {"kernel": kernel, "stride": stride, "padding": padding}


def _max_pool2d(imp: _Importer, n, a) -> None:
    imp.emit(n, Op.MAXPOOL2D, [imp.ref(a["self"])], _pool_attrs(a, n))


def _avg_pool2d(imp: _Importer, n, a) -> None:
    _require(a.get("divisor_override") is None, "avg_pool2d with divisor_override is not supported")
    attrs = _pool_attrs(a, n)
    _require(a.get("count_include_pad", True) or attrs["padding"] == (0, 0),
             "avg_pool2d with count_include_pad=False and padding is not supported")
    imp.emit(n, Op.AVGPOOL2D, [imp.ref(a["self"])], attrs)


def _reshape(imp: _Importer, n, a) -> None:
    source = a.get("self", a.get("input"))
    if imp.is_constant(source):  # a constant's new shape (a per-channel vector viewed as (1, C, 1, 1))
        tensor = imp.tensors[source.name]
        shape = tuple(int(d) for d in n.meta["val"].shape)
        _require(tensor.numel() == int(np.prod(shape)), f"a reshape of a constant {tuple(tensor.shape)} to {shape}")
        imp.tensors[n.name] = tensor.reshape(shape)
        return
    in_shape = tuple(int(d) for d in source.meta["val"].shape)
    out_shape = tuple(int(d) for d in n.meta["val"].shape)
    if in_shape == out_shape:
        imp.alias[n.name] = imp.ref(source)
        return
    _require(len(out_shape) == 2 and out_shape[0] == 1, f"reshape {in_shape} -> {out_shape} (only flattening is supported)")
    imp.emit(n, Op.FLATTEN, [imp.ref(source)])


def _identity(imp: _Importer, n, a) -> None:
    source = a.get("self", a.get("input"))
    if imp.is_constant(source):  # e.g. a detached constant: still the constant
        imp.tensors[n.name] = imp.tensors[source.name]
        return
    imp.alias[n.name] = imp.ref(source)


def _dropout(imp: _Importer, n, a) -> None:
    _require(not a.get("train", False), "dropout in training mode")
    _identity(imp, n, a)


def _constant_copy(imp: _Importer, n, a) -> None:
    """A copy of a constant (``torch.tensor(...)`` in a forward): the same constant."""
    source = a.get("self")
    _require(imp.is_constant(source), "a copy of a tensor computed at run time")
    imp.tensors[n.name] = imp.tensors[source.name]


def _getitem(imp: _Importer, n, a) -> None:
    source, index = n.args
    _require(index == 0 and source.name in imp.alias, f"uses output {index} of {source.target}")
    imp.alias[n.name] = imp.alias[source.name]


def _shape_of(value) -> tuple[int, ...]:
    return tuple(int(d) for d in value.meta["val"].shape)


def _per_channel_constant(imp: _Importer, value, like, what: str) -> np.ndarray:
    """A constant operand of an elementwise op against the tensor ``like`` as one value per channel
    (a feature map's channels, a vector's features): a scalar, or a tensor broadcast only along the
    batch and spatial axes (``(1, C, 1, 1)``, ``(C, 1, 1)``, ``(1, N)``, ``(N,)``)."""
    shape = _shape_of(like)
    channels = shape[1]
    if isinstance(value, (int, float)):
        return np.full(channels, value, np.float32)
    array = imp.array(value)
    dims = array.shape
    if array.size == 1:
        return np.full(channels, array.reshape(-1)[0], np.float32)
    # Align to the tensor's rank from the right, as broadcasting does; only the channel axis may be > 1.
    aligned = (1,) * (len(shape) - len(dims)) + tuple(dims)
    _require(len(aligned) == len(shape) and aligned[1] == channels and
             all(d == 1 for i, d in enumerate(aligned) if i != 1),
             f"{what} by a constant of shape {tuple(dims)} (only one value per channel, or a scalar, is supported)")
    return array.reshape(channels).astype(np.float32)


def _affine_node(imp: _Importer, n, source, scale: np.ndarray, offset: np.ndarray) -> None:
    """``x * scale + offset`` per channel: a learnable shift (ReActNet), a per-channel scaling."""
    imp.emit(n, Op.AFFINE, [imp.ref(source)], {},
             {"scale": scale.astype(np.float32), "offset": offset.astype(np.float32),
              "exact_scale": scale.astype(np.float64), "exact_offset": offset.astype(np.float64),
              "offset_terms": np.abs(offset).astype(np.float64)})


def _add(imp: _Importer, n, a, sign: float = 1.0) -> None:
    """``x + alpha * y``: two tensors (a residual shortcut) or a tensor and a per-channel constant (a shift)."""
    x, y, alpha = a["self"], a["other"], float(a.get("alpha", 1))
    x_const, y_const = not hasattr(x, "meta") or imp.is_constant(x), not hasattr(y, "meta") or imp.is_constant(y)
    if x_const and y_const:
        raise _Unsupported("an addition of two constants")
    if not x_const and not y_const:
        _require(sign > 0, "a subtraction of two tensors is not supported (only their sum)")
        _require(alpha == 1.0, f"a sum of two tensors with alpha={alpha:g} is not supported")
        _require(_shape_of(x) == _shape_of(y) == _shape_of(n),
                 f"adding tensors of shapes {_shape_of(x)} and {_shape_of(y)} (only equal shapes are supported)")
        imp.emit(n, Op.ADD, [imp.ref(x), imp.ref(y)])
        return
    tensor, constant = (y, x) if x_const else (x, y)
    _require(_shape_of(tensor) == _shape_of(n), f"an addition that broadcasts the tensor {_shape_of(tensor)}")
    offset = _per_channel_constant(imp, constant, tensor, "an addition")
    if x_const:  # c + alpha * t, or c - alpha * t
        scale = np.full(offset.shape, alpha * sign, np.float32)
    else:
        scale, offset = np.ones(offset.shape, np.float32), offset * np.float32(alpha * sign)
    _affine_node(imp, n, tensor, scale, offset)


def _sub(imp: _Importer, n, a) -> None:
    _add(imp, n, a, sign=-1.0)


def _rsub(imp: _Importer, n, a) -> None:
    """``other - alpha * self``."""
    _add(imp, n, {"self": a["other"], "other": a["self"], "alpha": a.get("alpha", 1)}, sign=-1.0)


def _mul(imp: _Importer, n, a) -> None:
    x, y = a["self"], a["other"]
    x_const, y_const = not hasattr(x, "meta") or imp.is_constant(x), not hasattr(y, "meta") or imp.is_constant(y)
    _require(x_const != y_const, "a product of two tensors is not supported (only by a per-channel constant)")
    tensor, constant = (y, x) if x_const else (x, y)
    _require(_shape_of(tensor) == _shape_of(n), f"a product that broadcasts the tensor {_shape_of(tensor)}")
    scale = _per_channel_constant(imp, constant, tensor, "a product")
    _affine_node(imp, n, tensor, scale, np.zeros(scale.shape, np.float32))


def _cat(imp: _Importer, n, a) -> None:
    tensors = list(a["tensors"])
    rank = len(_shape_of(n))
    dim = int(a.get("dim", 0))
    dim = dim + rank if dim < 0 else dim
    _require(dim == 1, f"concatenation along dim {a.get('dim')} (only the channel axis, dim 1, is supported)")
    _require(all(hasattr(t, "meta") and not imp.is_constant(t) for t in tensors), "concatenation of a constant")
    if len(tensors) == 1:
        imp.alias[n.name] = imp.ref(tensors[0])
        return
    imp.emit(n, Op.CONCAT, [imp.ref(t) for t in tensors])


def _prelu(imp: _Importer, n, a) -> None:
    source = a["self"]
    channels = _shape_of(source)[1]
    slope = imp.array(a["weight"]).reshape(-1)
    _require(slope.size in (1, channels), f"PReLU with {slope.size} slopes for {channels} channels")
    imp.emit(n, Op.PRELU, [imp.ref(source)], {}, {"slope": np.broadcast_to(slope, (channels,)).astype(np.float32)})


def _global_average(imp: _Importer, n, source, keepdim: bool) -> None:
    """The mean over each channel's whole plane: an average pooling whose window is the plane."""
    shape = _shape_of(source)
    _require(len(shape) == 4, f"a spatial mean of a tensor of shape {shape}")
    c, h, w = shape[1:]
    attrs = {"kernel": (h, w), "stride": (h, w), "padding": (0, 0)}
    name = imp.emit(n, Op.AVGPOOL2D, [imp.ref(source)], attrs, shape=(c, 1, 1))
    if not keepdim:
        imp.emit(n, Op.FLATTEN, [name], shape=(c,))


def _adaptive_avg_pool2d(imp: _Importer, n, a) -> None:
    source = a["self"]
    _, _, h, w = _shape_of(source)
    out_h, out_w = _pair(a["output_size"])
    if (out_h, out_w) == (1, 1):
        _global_average(imp, n, source, keepdim=True)
        return
    _require(out_h > 0 and out_w > 0 and h % out_h == 0 and w % out_w == 0,
             f"adaptive average pooling of {h}x{w} to {out_h}x{out_w} (only sizes that divide the input are supported)")
    kernel = (h // out_h, w // out_w)
    imp.emit(n, Op.AVGPOOL2D, [imp.ref(source)], {"kernel": kernel, "stride": kernel, "padding": (0, 0)})


def _mean(imp: _Importer, n, a) -> None:
    source = a["self"]
    rank = len(_shape_of(source))
    dims = sorted(int(d) % rank for d in (a.get("dim") or []))
    _require(rank == 4 and dims == [2, 3], f"a mean over dims {a.get('dim')} (only over height and width is supported)")
    _require(a.get("dtype") is None, "a mean with a dtype")
    _global_average(imp, n, source, keepdim=bool(a.get("keepdim", False)))


_Handler = Callable[[_Importer, Any, dict], None]
_HANDLERS: dict[str, _Handler] = {
    "conv2d.default": _conv2d,
    "convolution.default": _convolution,
    "horq.conv2d.default": _horq_conv2d,
    "horq.linear.default": _horq_linear,
    "linear.default": _linear,
    "batch_norm.default": _batch_norm,
    "_native_batch_norm_legit_no_training.default": _batch_norm,
    "relu.default": _relu,
    "relu_.default": _relu,
    "hardtanh.default": _hardtanh,
    "hardtanh_.default": _hardtanh,
    "max_pool2d.default": _max_pool2d,
    "max_pool2d_with_indices.default": _max_pool2d,
    "avg_pool2d.default": _avg_pool2d,
    "flatten.using_ints": _reshape,
    "view.default": _reshape,
    "reshape.default": _reshape,
    "_unsafe_view.default": _reshape,
    "dropout.default": _dropout,
    "clone.default": _identity,
    "contiguous.default": _identity,
    "detach.default": _identity,
    "detach_.default": _identity,
    "alias.default": _identity,
    "<built-in function getitem>": _getitem,
    "add.Tensor": _add,
    "add_.Tensor": _add,
    "sub.Tensor": _sub,
    "mul.Tensor": _mul,
    "add.Scalar": _add,
    "sub.Scalar": _sub,
    "mul.Scalar": _mul,
    "rsub.Scalar": _rsub,
    "rsub.Tensor": _rsub,
    "cat.default": _cat,
    "prelu.default": _prelu,
    "_prelu_kernel.default": _prelu,
    "adaptive_avg_pool2d.default": _adaptive_avg_pool2d,
    "_adaptive_avg_pool2d.default": _adaptive_avg_pool2d,
    "mean.dim": _mean,
    "lift_fresh_copy.default": _constant_copy,
}


def import_program(program: torch.export.ExportedProgram) -> Graph:
    return _Importer(program).run()


def load(path: str | Path, input_shape: tuple[int, ...] | None = None) -> ImportedModel:
    """Read and import a model file (see :mod:`horq_codegen.model_file` for the safety checks)."""
    file = read_model_file(path, input_shape)
    try:
        graph = import_program(file.program)
        shapes.check_graph(graph)
    except HorqError as exc:
        raise HorqError(f"{file.path}: {exc}") from None
    return ImportedModel(file, graph)
