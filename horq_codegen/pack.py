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


def unpack_signs(words: np.ndarray, n: int) -> np.ndarray:
    """The +-1 values of packed rows (the inverse of :func:`pack_signs`), ``n`` per row.

    >>> unpack_signs(pack_signs(np.array([1.0, -2.0, 0.0, -0.5])), 4).tolist()
    [1.0, -1.0, 1.0, -1.0]
    """
    as_bytes = np.ascontiguousarray(words, "<u4").view(np.uint8)
    bits = np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :n]
    return np.where(bits, -1.0, 1.0)


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


def prefix_xor_triples(words: np.ndarray, segment: int) -> np.ndarray:
    """The Cortex-M DSP kernels' weight layout (``weight_layout = "prefix-xor-triples"``).

    Within each run of ``segment`` words (a weight row, or one tap of a row for
    ``pixel`` layers: what one inner-loop call covers), each triple w0, w1, w2
    is stored as w0, w0^w1, w0^w1^w2, and a partial last triple likewise; the
    kernel's carry-save adder then needs two XORs fewer per triple.

    >>> prefix_xor_triples(np.array([1, 2, 4, 8, 16], np.uint32), 5).tolist()
    [1, 3, 7, 8, 24]
    >>> prefix_xor_triples(np.array([1, 2, 4, 8], np.uint32), 2).tolist()
    [1, 3, 4, 12]
    """
    flat = np.asarray(words, np.uint32)
    runs = flat.reshape(-1, segment).copy()
    for j in range(segment):
        if j % 3:
            runs[:, j] ^= runs[:, j - 1]
    return runs.reshape(flat.shape)
