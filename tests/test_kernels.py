"""The C quantizer and XOR-popcount against the numpy reference: integer and bit for bit."""
import subprocess

import numpy as np
import pytest
from torch import nn

from horq_codegen.pack import xor_popcount
from horq_codegen.reference import binarize_rows
from horq_codegen.resources import templates_dir

from conftest import REPO, assert_bit_exact, assert_matches_model

CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
          "-fsanitize=address,undefined", "-fno-sanitize-recover=all"]


@pytest.fixture(scope="module")
def checker(tmp_path_factory):
    exe = tmp_path_factory.mktemp("kernels") / "binarize_check"
    kernels = templates_dir() / "kernels"
    subprocess.run(["cc", *CFLAGS, f"-I{kernels}", str(REPO / "tests/c/binarize_check.c"),
                    str(kernels / "horq_quantize.c"), "-o", str(exe), "-lm"], check=True)
    return exe


def _hex(a: np.ndarray) -> str:
    return " ".join(f"{v:x}" for v in np.asarray(a).view(np.uint32).reshape(-1))


def _binarization_input(rows: int, cols: int, order: int, pad_count: int) -> tuple[np.ndarray, np.ndarray, str]:
    rng = np.random.default_rng(rows * cols + order)
    groups = rng.standard_normal((5, rows, cols)).astype(np.float32)
    groups[0, 0] = 0.0                                  # sgn(0) = +1
    groups[0, -1, :2] = -0.0                            # -0.0 >= 0: +1 too
    groups[1] = 0.25                                    # constant group: R_1 is rounding noise
    groups[2, 0, ::3] = np.abs(groups[2]).mean()        # some values equal to beta_1 (ties in plane 2)
    groups[2, 0, 1::3] = -np.abs(groups[2]).mean()
    pairs = rng.integers(0, 2**32, size=(50, 2), dtype=np.uint64).astype(np.uint32)
    text = f"{len(groups)} {rows} {cols} {order} {pad_count}\n" + "\n".join(_hex(g) for g in groups)
    text += f"\n{len(pairs)}\n" + "\n".join(f"{a:x} {b:x}" for a, b in pairs) + "\n"
    return groups, pairs, text


@pytest.mark.parametrize("rows,cols,order,pad_count", [(1, 37, 1, 0), (9, 32, 2, 0), (9, 5, 4, 0), (4, 64, 3, 20),
                                                       (1, 100, 8, 0)])
def test_binarization_and_popcount_are_bit_exact(checker, rows, cols, order, pad_count):
    groups, pairs, text = _binarization_input(rows, cols, order, pad_count)
    out = subprocess.run([str(checker)], input=text, capture_output=True, text=True, check=True).stdout.splitlines()
    _assert_binarization(groups, pairs, order, pad_count, out)


@pytest.mark.parametrize("rows,cols,order", [(3, 64, 1), (5, 32, 2), (2, 96, 2), (3, 40, 2)])
def test_binarization_is_bit_exact_on_cortex_a72(tmp_path, rows, cols, order):
    """NEON's binarization of whole words (orders 1 and 2), against the reference."""
    from horq_codegen.programs import build_program
    from horq_codegen.targets import load_target
    target = load_target("cortex-a72")
    exe = build_program(target, REPO / "tests/c/binarize_check.c", ["horq_quantize.c", "horq_popcount.c"],
                        tmp_path / "binarize_check")
    groups, pairs, text = _binarization_input(rows, cols, order, 0)
    out = subprocess.run([target.emulator["command"], str(exe)], input=text, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    _assert_binarization(groups, pairs, order, 0, out)


def _assert_binarization(groups, pairs, order, pad_count, out):
    for g, line in zip(groups, out[:len(groups)]):
        words = np.array([int(w, 16) for w in line.split()[1:]], np.uint32)
        betas, planes = binarize_rows(g[None], order, pad_count)
        np.testing.assert_array_equal(words[:order].view(np.float32), betas[0])
        np.testing.assert_array_equal(words[order:], planes[0].reshape(-1))
    popcounts = [int(line.split()[1]) for line in out[len(groups):]]
    assert popcounts == xor_popcount(pairs[:, :1], pairs[:, 1:]).tolist()


@pytest.mark.parametrize("pool", [nn.AvgPool2d, nn.MaxPool2d])
def test_pooling_windows_of_every_size_are_bit_exact(pipeline_for, tmp_path, pool):
    """3x3 and 5x5 windows, strides 1 to 3, padding up to half the window: a divisor of 9 or 25 is
    not a power of two, so dividing and multiplying by its inverse round differently. A NaN and an
    infinity in the inputs: both must travel exactly as the reference (and PyTorch) has them."""
    model = nn.Sequential(pool(3, 1, 1), nn.Conv2d(3, 4, 1), pool(5, 1, 2), pool(3, 2, 0), pool(5, 3, 2),
                          pool(2, 1, 1)).eval()
    pipeline = pipeline_for(model, (3, 13, 13))
    x = np.random.default_rng(7).standard_normal((6, 3, 13, 13)).astype(np.float32) * 3
    x[4, 1, 6, 6] = np.nan  # max pooling propagates NaN, as PyTorch's does; a window beside it stays finite
    x[5, 0, 2, 9] = -np.inf
    result = pipeline.c(x, tmp_path, sanitize=True)
    assert_bit_exact(result.outputs, pipeline.reference(x))
    assert_matches_model(pipeline, x, result.outputs)
