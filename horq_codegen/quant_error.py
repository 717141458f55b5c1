"""Quantization error by order: how far each HORQ layer's quantized input is from the real one.

For a group of input values x and order K (``/work/shared/HORQ.md``, "Inputs")::

    R_0 = x;  H_k = sgn(R_{k-1}) (sgn(0) = +1);  beta_k = mean |R_{k-1}|;  R_k = R_{k-1} - beta_k H_k
    x_hat = sum_k beta_k H_k = x - R_K

and the error reported is ``||x - x_hat|| / ||x||`` with both norms taken over every group at
once (Frobenius norms of the whole array, and over every sample in :func:`layer_input_errors`):
one figure per layer and order, in which an all-zero group weighs nothing instead of dividing by
zero. It is measured in float64 on the values each layer really reads, as the model's granularity
groups them (the groups are those of :mod:`horq_codegen.reference`):

* ``patch``: each receptive field of the zero-padded input (im2col), padding zeros included;
  a linear layer's one input vector;
* ``pixel``: each pixel's channel vector;
* ``tensor``: the whole zero-padded input of one sample (a linear layer: its input vector);
* ``static``: the same values as ``tensor``, but the betas fixed: the model's own stored betas at
  the model's order, and for the other orders the betas training would keep, mean |R_{k-1}| over
  every value of every sample given (:func:`data_betas`).

This module knows nothing of reports: ``horq-codegen report`` plots it and the paper's experiments
tabulate it.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from . import reference
from .errors import HorqError
from .ir import HORQ_OPS, Graph, Node, Op

ORDERS = (1, 2, 3, 4)


def residual_quantize(groups: np.ndarray, order: int, betas: Sequence[float] | None = None) -> np.ndarray:
    """x_hat of every row of ``groups`` (n_groups, group_size) at ``order``, in float64.

    ``betas`` (at least ``order`` of them): fixed betas shared by every group (``static``);
    None: each group's own, beta_k = mean |R_{k-1}| over the row.

    >>> residual_quantize(np.array([[3.0, -1.0, 0.0, 2.0]]), 1)
    array([[ 1.5, -1.5,  1.5,  1.5]])
    """
    if order < 1:
        raise ValueError(f"order must be at least 1, not {order}")
    residual = np.array(groups, dtype=np.float64, ndmin=2)
    x_hat = np.zeros_like(residual)
    if betas is not None and len(betas) < order:
        raise ValueError(f"{len(betas)} fixed betas for order {order}")
    for k in range(order):
        signs = np.where(residual >= 0, 1.0, -1.0)
        beta = float(betas[k]) if betas is not None else np.abs(residual).mean(axis=1, keepdims=True)
        x_hat += beta * signs
        residual -= beta * signs
    return x_hat


def squared_errors(groups: np.ndarray, order: int, betas: Sequence[float] | None = None) -> tuple[float, float]:
    """(||x - x_hat||^2, ||x||^2) over the whole array: sums that add up across samples."""
    x = np.array(groups, dtype=np.float64, ndmin=2)
    diff = x - residual_quantize(x, order, betas)
    return float(np.sum(diff * diff)), float(np.sum(x * x))


def relative_error(groups: np.ndarray, order: int, betas: Sequence[float] | None = None) -> float:
    """``||x - x_hat|| / ||x||`` over an (n_groups, group_size) array, each row one group
    (0 for an all-zero array: every beta is 0 and x_hat = x).

    beta_1 = 6 / 4, x - x_hat = (1.5, 0.5, -1.5, 0.5): the error is sqrt(5 / 14).

    >>> round(relative_error(np.array([[3.0, -1.0, 0.0, 2.0]]), 1), 4), round(float(np.sqrt(5 / 14)), 4)
    (0.5976, 0.5976)
    """
    error, norm = squared_errors(groups, order, betas)
    return float(np.sqrt(error / norm)) if norm else 0.0


def data_betas(values: np.ndarray, order: int) -> np.ndarray:
    """The betas of one group holding every value given (beta_k = mean |R_{k-1}| over all of them):
    what a ``static`` layer's running statistics settle on over that data."""
    flat = np.asarray(values, dtype=np.float64).reshape(1, -1)
    betas = np.zeros(order)
    residual = flat.copy()
    for k in range(order):
        betas[k] = np.abs(residual).mean()
        residual -= betas[k] * np.where(residual >= 0, 1.0, -1.0)
    return betas


def input_groups(node: Node, x: np.ndarray) -> np.ndarray:
    """(n_groups, group_size): the values a HORQ ``node`` quantizes together, from its input ``x`` as
    the reference holds it ([h][w][c] for a convolution, a vector for a linear layer)."""
    x = np.asarray(x)
    if node.op == Op.HORQ_LINEAR:
        return x.reshape(1, -1).astype(np.float64)
    c, h, w = node.attrs["in_shape"]
    x = x.reshape(h, w, c).astype(np.float64)
    granularity = node.attrs["granularity"]
    if granularity == "patch":
        patches = reference._patches(x.astype(np.float32), node)   # the reference's im2col, zero padded
        return patches.reshape(patches.shape[0], -1).astype(np.float64)
    if granularity == "pixel":
        return x.reshape(h * w, c)
    ph, pw = node.attrs["padding"]
    return np.pad(x, ((ph, ph), (pw, pw), (0, 0))).reshape(1, -1)  # tensor, static: the padded sample


def _check(node: Node, x: np.ndarray) -> None:
    if node.attrs.get("planes_input") or np.asarray(x).dtype not in (np.float32, np.float64):
        raise HorqError(f"{node.name} ({node.source}) reads {'bit-planes' if node.attrs.get('planes_input') else 'int8'}"
                        "; measure the quantization error on the float lowering (Lowering('float'))")


def layer_input_errors(graph: Graph, samples: Iterable[np.ndarray],
                       orders: Sequence[int] = ORDERS) -> dict[str, list[float]]:
    """Per HORQ layer (by node name, in graph order), ``||x - x_hat|| / ||x||`` at each of ``orders``
    over the inputs it reads when the float reference runs ``samples`` (each in PyTorch's order).

    ``graph``: a lowered float graph (``passes.lower(model.graph)`` or ``lower_model`` with float
    activations); integer-mode graphs quantize int8 or bit-plane inputs and are refused.
    """
    layers = [n for n in graph.nodes if n.op in HORQ_OPS]
    seen: dict[str, list[np.ndarray]] = {n.name: [] for n in layers}
    for sample in samples:
        values = reference.run_traced(graph, sample)
        for node in layers:
            x = values[node.inputs[0]]
            _check(node, x)
            seen[node.name].append(input_groups(node, x))
    result: dict[str, list[float]] = {}
    for node in layers:
        groups = seen[node.name]
        if not groups:
            raise HorqError("no samples to measure the quantization error on")
        static = node.attrs["granularity"] == "static"
        everything = np.concatenate([g.reshape(-1) for g in groups]) if static else None
        errors = []
        for order in orders:
            betas = None
            if static:
                stored = np.asarray(node.params["betas"], np.float64).reshape(-1)
                betas = stored if order == node.attrs["order"] else data_betas(everything, order)
            error = norm = 0.0
            for g in groups:
                e, n = squared_errors(g, order, betas)
                error, norm = error + e, norm + n
            errors.append(float(np.sqrt(error / norm)) if norm else 0.0)
        result[node.name] = errors
    return result
