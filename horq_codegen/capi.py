"""The generated model's C API: its name (the prefix of every global symbol and macro) and the
quantization of its uint8 input (``NAME_run_u8_hwc``).

A uint8 input value q stands for the real value ``scale * (q - zero_point)``, rounded once to
float32 (exact rational arithmetic, so ``1/255`` gives exactly ``q / 255.0f``, what
``horq_codegen.data`` feeds the bundled MNIST model). The C code reads a 256-entry table of
those floats, or, where the model's first step quantizes its input to int8, a table of the int8
values that quantization gives: the uint8 input then never passes through float.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .errors import HorqError

# C11 and C++17 keywords (and C's alternative spellings that C++ makes keywords).
_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if inline int long
register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
_Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local
alignas alignof and and_eq asm bitand bitor bool catch char16_t char32_t class compl constexpr const_cast
decltype delete dynamic_cast explicit export false friend mutable namespace new noexcept not not_eq nullptr
operator or or_eq private protected public reinterpret_cast static_assert static_cast template this
thread_local throw true try typeid typename using virtual wchar_t xor xor_eq
""".split())

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def check_name(name: str) -> str:
    """``name`` if it can prefix the model's C symbols (``NAME_run``) and macros (``NAME_INPUT_SIZE``).

    >>> check_name("kws_v2")
    'kws_v2'
    >>> check_name("horq_net")
    Traceback (most recent call last):
    ...
    horq_codegen.errors.HorqError: --name 'horq_net': names starting with horq_ belong to the kernel library
    """
    if not _IDENTIFIER.match(name):
        why = "must not start with an underscore (C reserves such names)" if name.startswith("_") else \
            "is not a C identifier (a letter, then letters, digits and underscores)"
        raise HorqError(f"--name {name!r} {why}")
    if name in _KEYWORDS:
        raise HorqError(f"--name {name!r} is a C or C++ keyword")
    if name.lower() == "horq" or name.lower().startswith("horq_"):
        raise HorqError(f"--name {name!r}: names starting with horq_ belong to the kernel library")
    return name


@dataclass(frozen=True)
class InputQuantization:
    """uint8 q means ``scale * (q - zero_point)``; ``scale`` exact, as the user wrote it."""
    scale: Fraction = Fraction(1, 255)
    zero_point: int = 0

    @property
    def text(self) -> str:
        return f"{self.scale},{self.zero_point}"


def parse_input_quantization(text: str) -> InputQuantization:
    """``SCALE,ZERO_POINT``: SCALE a positive decimal or fraction, ZERO_POINT an integer 0..255.

    >>> parse_input_quantization("1/255,0")
    InputQuantization(scale=Fraction(1, 255), zero_point=0)
    >>> parse_input_quantization("0.0078125,128").scale
    Fraction(1, 128)
    """
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        scale, zero_point = Fraction(parts[0].strip()), int(parts[1].strip())
    except (ValueError, ZeroDivisionError):
        raise HorqError(f"--input-quantization {text!r}: expected SCALE,ZERO_POINT, e.g. 1/255,0") from None
    if scale <= 0 or not np.isfinite(float(scale)) or float_of(scale) == 0:
        raise HorqError(f"--input-quantization {text!r}: the scale must be a positive float32")
    if not 0 <= zero_point <= 255:
        raise HorqError(f"--input-quantization {text!r}: the zero point of a uint8 input lies in 0..255")
    return InputQuantization(scale, zero_point)


def float_of(value: Fraction) -> np.float32:
    """``value`` rounded once to float32, to nearest, ties to even (no double rounding through float64).

    >>> all(float_of(Fraction(q, 255)) == np.float32(q) / np.float32(255) for q in range(256))
    True
    """
    guess = np.float32(float(value))
    if not np.isfinite(guess):
        return guess
    candidates = [np.nextafter(guess, np.float32(-np.inf)), guess, np.nextafter(guess, np.float32(np.inf))]
    distance = lambda c: abs(Fraction(float(c)) - value)
    best = min(distance(c) for c in candidates)
    nearest = [c for c in candidates if distance(c) == best]
    return min(nearest, key=lambda c: int(np.array(c, np.float32).view(np.uint32)) & 1)  # a tie: the even one


def float_table(quantization: InputQuantization) -> np.ndarray:
    """The 256 float32 values a uint8 input stands for."""
    return np.array([float_of(quantization.scale * (q - quantization.zero_point)) for q in range(256)], np.float32)
