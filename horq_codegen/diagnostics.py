"""Torch's own log lines and warnings, kept off the terminal unless the user asks (``--verbose``).

A refusal is one ``horq-codegen: error:`` line; torch, reading a broken or hostile file, may
first print warnings (Python ``warnings``), log records, or C++ messages straight to file
descriptor 2. :func:`quiet` captures all three around a call into torch; with
:func:`set_verbose` they are replayed on stderr instead of dropped.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from typing import Iterator

_state = {"verbose": False, "depth": 0}


def set_verbose(verbose: bool) -> None:
    _state["verbose"] = verbose


def verbose() -> bool:
    return _state["verbose"]


@contextlib.contextmanager
def _captured_fd2() -> Iterator[None]:
    """Whatever is written to file descriptor 2 inside goes to a temporary file (replayed if verbose)."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep quiet
        yield
        return
    with tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if verbose():
                sink.seek(0)
                sys.stderr.write(sink.read().decode("utf-8", "replace"))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Torch's warnings, log records and C++ messages inside are dropped (replayed if verbose)."""
    if _state["depth"]:
        yield
        return
    _state["depth"] += 1
    previous_disable = logging.root.manager.disable
    try:
        with warnings.catch_warnings(record=True) as caught, _captured_fd2():
            warnings.simplefilter("always")
            if not verbose():
                logging.disable(logging.CRITICAL)
            try:
                yield
            finally:
                logging.disable(previous_disable)
        if verbose():
            for w in caught:
                sys.stderr.write(warnings.formatwarning(w.message, w.category, w.filename, w.lineno))
    finally:
        _state["depth"] -= 1
