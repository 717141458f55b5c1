"""Where the non-Python files live: ``templates/`` and ``targets/``.

In a checkout they sit at the top of the repository; a wheel carries them inside
the package as ``horq_codegen/_templates`` and ``horq_codegen/_targets`` (see
``pyproject.toml``). Looking in both places keeps one layout for developers and
users alike.
"""
from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """``templates`` or ``targets``: the installed copy if present, else the checkout's."""
    for candidate in (_PACKAGE / f"_{name}", _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"horq-codegen is missing its {name}/ folder (looked in {_PACKAGE})")


def templates_dir() -> Path:
    return resource_dir("templates")


def targets_dir() -> Path:
    return resource_dir("targets")
