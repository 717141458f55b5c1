"""The patch quantizer's method (README, "Patch quantization"), in the reference every C kernel
matches bit for bit: plane 2 from |x| < beta_1, beta_2 = 2 (S - M) / n, sums in four lanes; and
the Cortex-M DSP weight layout."""
import numpy as np

from horq_codegen.pack import pack_bits, prefix_xor_triples, sign_bits
from horq_codegen.reference import binarize_patches, lane_sum, sequential_sum

f32 = np.float32


def test_lane_sum_adds_four_lanes_in_order_then_pairs():
    x = np.arange(1, 12, dtype=f32) / f32(7)
    lanes = [sequential_sum(x[j::4]) for j in range(4)]
    assert lane_sum(x) == (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
    assert np.isclose(lane_sum(x), x.sum(dtype=np.float64), rtol=1e-6)
    assert lane_sum(np.ones((2, 3, 5), f32)).shape == (2, 3)


def test_second_plane_is_the_sign_of_the_first_residual():
    rng = np.random.default_rng(3)
    patches = rng.standard_normal((50, 9, 32)).astype(f32)
    betas, planes = binarize_patches(patches, 2)
    beta1 = betas[:, :1, None]
    residual = np.where(patches >= 0, patches - beta1, patches + beta1)
    np.testing.assert_array_equal(planes[:, 1], pack_bits(residual < 0))
    # beta_2 = 2 (S - M) / n equals mean |R_1| up to rounding
    np.testing.assert_allclose(betas[:, 1], np.abs(residual).mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_array_equal(planes[:, 0], pack_bits(sign_bits(patches)))


def test_exact_ties_follow_the_identity():
    # Every |x| equals beta_1 = 2: R_1 is exactly 0 everywhere. The identity
    # sgn(R_1) = sgn(x) * sgn(|x| - beta_1) keeps each value's plane-1 sign there (a direct
    # sgn(R_1) would give +1); beta_2 = 0, so plane 2 carries no weight either way.
    patch = np.array([[2.0, -2.0, 2.0, -2.0]], f32)[None]
    betas, planes = binarize_patches(patch, 2)
    assert betas[0, 0] == 2.0 and betas[0, 1] == 0.0
    np.testing.assert_array_equal(planes[0, 1], planes[0, 0])


def test_each_plane_reduces_the_error():
    # HORQ.md: ||R_k||^2 = ||R_{k-1}||^2 - n beta_k^2, so the reconstruction error never grows.
    rng = np.random.default_rng(4)
    patches = rng.standard_normal((20, 9, 16)).astype(f32)
    betas, planes = binarize_patches(patches, 4)
    approx, errors = np.zeros(patches.shape), []
    for k in range(4):
        bits = np.unpackbits(planes[:, k].view(np.uint8), axis=-1, bitorder="little")[..., :16]
        approx += betas[:, k, None, None] * np.where(bits, -1.0, 1.0)
        errors.append(np.square(patches - approx).sum())
    assert all(b < a for a, b in zip(errors, errors[1:]))
    assert errors[-1] < 0.05 * np.square(patches).sum()


def test_prefix_xor_layout_round_trips_per_run():
    rng = np.random.default_rng(5)
    rows = rng.integers(0, 2**32, size=(7, 20), dtype=np.uint64).astype(np.uint32)
    for segment in (20, 10, 4, 1):
        stored = prefix_xor_triples(rows, segment).reshape(-1, segment)
        plain = stored.copy()
        for j in range(segment):
            if j % 3:
                plain[:, j] = stored[:, j] ^ stored[:, j - 1]
        np.testing.assert_array_equal(plain.reshape(rows.shape), rows)
