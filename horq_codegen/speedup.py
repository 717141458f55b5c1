"""The analytic speedup of an order-K HORQ layer over float (XNOR-Net's count, extended to K planes).

A float convolution with ``c`` input channels and a ``kh x kw`` filter costs
``c * N_W`` multiply-adds per output value (``N_W = kh * kw``). The HORQ layer
replaces them with K binary products of ``c * N_W`` bits, each taking
``c * N_W / W`` XOR+popcount word operations on a W-bit machine, plus K
non-binary operations per output (the ``beta_k * dot_k`` scaling), so

    S(K) = c * N_W / (K * (c * N_W / W + 1)) = W * c * N_W / (K * (c * N_W + W))

independent of the input's width and height. With W = 64 and c * N_W = 2304
(c = 256, 3x3) this gives 62x, 31x, 21x and 16x for K = 1..4: the paper's
"about 58x, 30x, 20x, 15x". It counts word operations only: the quantization of
the inputs (K passes over each patch) and the float sums are extra, which is
why measured ratios fall below it. The generated kernels work on 32-bit words
(``uint32_t``, the one bit convention), hence the default ``word_bits=32``.

>>> round(analytic_speedup(256, 9, 1, 64), 1), round(analytic_speedup(256, 9, 2, 64), 1)
(62.3, 31.1)
"""


def analytic_speedup(channels: int, filter_size: int, order: int, word_bits: int = 32) -> float:
    """S(K) for ``channels`` input channels (a linear layer: its input features), a filter of
    ``filter_size`` taps (kh * kw; 1 for a linear layer), order K and ``word_bits``-bit words."""
    n = channels * filter_size
    return word_bits * n / (order * (n + word_bits))
