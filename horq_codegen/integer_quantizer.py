"""The HORQ quantizers on int8 inputs, in integers (README, "Integer quantizers").

An int8 value ``q`` (real value ``q * s``) enters as the residual ``R_0 = q * 2**RESIDUAL_BITS``,
an integer in units of ``s / 2**RESIDUAL_BITS``. Then, over each group of ``n`` values (padding
zeros included, as in shared/HORQ.md):

    beta_k = floor(sum |R_{k-1}| / n + 1/2)      # the mean, rounded half up to an integer
    H_k    = sgn(R_{k-1})                        # bit 1 where R_{k-1} < 0 (sgn(0) = +1)
    R_k    = R_{k-1} - beta_k * H_k

Every sum and every comparison is exact in integers (no float decides a bit), so the C kernels
(``horq_quantize_i8.c``) and this module agree by construction, whatever their summation order.
The only rounding is each beta's, to 1/256 of the input's step (an error below 0.2 % of beta for
any beta of one step or more). Residuals stay within ``|R| <= 128 * 2**8``: each beta is at most
the largest ``|R|`` before it. A ``static`` layer's betas are fixed: its trained real betas are
rounded once, at generation time, to the same units (:func:`static_betas_in_units`).

The betas leave the quantizer as float32 values of those integers (exact: they are below
``2**24``) for the layer's float output transform, whose scale carries ``s / 2**RESIDUAL_BITS``.
"""
from __future__ import annotations

import numpy as np

from .errors import HorqError
from .pack import pack_bits

RESIDUAL_BITS = 8  # fractional bits of the residuals: a beta is rounded to 1/256 of the input's step
UNIT = 1 << RESIDUAL_BITS
MAX_STATIC_BETA = 1 << 22  # in units: larger would overflow the C's int32 residual chain


def rounded_mean(total: np.ndarray, count: int) -> np.ndarray:
    """floor(total / count + 1/2) of non-negative integers: ``(total + count // 2) // count``.

    >>> rounded_mean(np.array([5, 6, 7]), 4).tolist(), rounded_mean(np.array([4]), 3).tolist()
    ([1, 2, 2], [1])
    """
    return (np.asarray(total, np.int64) + count // 2) // count


def binarize_int(values: np.ndarray, order: int, pad_count: int = 0,
                 fixed_betas: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Order-K integer residual binarization of int8 groups ``values[g]`` shaped (rows, cols).

    ``pad_count`` zeros that are not in ``values`` belong to every group (a tensor's padding).
    Returns ``betas`` (G, K) as float32 integers and packed ``planes`` (G, K, rows, words).
    """
    groups, rows, cols = values.shape
    residual = values.reshape(groups, rows * cols).astype(np.int64) * UNIT
    pad_residual = np.zeros(groups, np.int64)
    count = rows * cols + pad_count
    betas = np.zeros((groups, order), np.int64)
    planes = []
    for k in range(order):
        if fixed_betas is not None:
            betas[:, k] = int(fixed_betas[k])
        else:
            total = np.abs(residual).sum(axis=1) + pad_count * np.abs(pad_residual)
            betas[:, k] = rounded_mean(total, count)
        negative = residual < 0
        planes.append(pack_bits(negative.reshape(groups, rows, cols)))
        b = betas[:, k:k + 1]
        residual = np.where(negative, residual + b, residual - b)
        pad_residual = np.where(pad_residual < 0, pad_residual + b[:, 0], pad_residual - b[:, 0])
    return betas.astype(np.float32), np.stack(planes, axis=1)


def static_betas_in_units(betas: np.ndarray, input_scale: float) -> np.ndarray:
    """A static layer's real betas in the residual units of an int8 input of scale ``input_scale``,
    rounded half to even, as float32 integers."""
    units = np.round(betas.astype(np.float64) / input_scale * UNIT)
    largest = float(np.abs(units).max(initial=0))
    if not np.all(np.isfinite(units)) or largest > MAX_STATIC_BETA:
        raise HorqError(f"a static beta is {largest:.3g} input steps/256 (at most "
                        f"{MAX_STATIC_BETA} is supported in integer mode): use --activations float")
    return units.astype(np.float32)
