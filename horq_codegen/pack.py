"""The bit convention of ``shared/HORQ.md``, defined once in Python.

A bit 1 means -1, a bit 0 means +1 (``sgn(v) = +1`` for ``v >= 0``); bits are packed
least significant first into ``uint32`` words; a row's padding bits are 0 in both
operands. ``templates/kernels/horq_types.h`` is the C side of the same contract.
"""
from __future__ import annotations

import numpy as np

WORD_BITS = 32


def words_for(n: int) -> int:
    """Words needed for ``n`` bits.

    >>> words_for(1), words_for(32), words_for(33)
    (1, 1, 2)
    """
    return -(-n // WORD_BITS)


def sign_bits(values: np.ndarray) -> np.ndarray:
    """True where ``sgn(v) = -1``; NaN counts as negative, as ``!(v >= 0)`` does in C."""
    return ~(values >= 0)


def pack_signs(values: np.ndarray) -> np.ndarray:
    """Packs the signs of the last axis into ``uint32`` words (padding bits 0).

    >>> pack_signs(np.array([1.0, -2.0, 0.0, -0.5])).tolist()
    [10]
    >>> pack_signs(-np.ones(33)).tolist()
    [4294967295, 1]
    """
    return pack_bits(sign_bits(np.asarray(values)))


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Packs booleans along the last axis, least significant bit first, into ``uint32`` words."""
    n = bits.shape[-1]
    padded = np.zeros(bits.shape[:-1] + (words_for(n) * WORD_BITS,), dtype=bool)
    padded[..., :n] = bits
    as_bytes = np.packbits(padded, axis=-1, bitorder="little")
    return np.ascontiguousarray(as_bytes).view("<u4").astype(np.uint32)


def xor_popcount(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mismatching bits of two packed rows, summed over the last axis.

    >>> int(xor_popcount(np.array([0b1010], np.uint32), np.array([0b0110], np.uint32)))
    2
    """
    return np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=-1, dtype=np.int64)


def binary_dot(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Dot product of two packed +-1 vectors of ``n`` real entries: ``n - 2 * popcount(a ^ b)``.

    >>> x = np.array([1.0, -1.0, -1.0, 1.0, 1.0]); y = np.array([1.0, 1.0, -1.0, -1.0, 1.0])
    >>> int(binary_dot(pack_signs(x), pack_signs(y), 5)) == int(x @ y)
    True
    """
    return n - 2 * xor_popcount(a, b)
