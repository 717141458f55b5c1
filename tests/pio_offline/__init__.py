"""Offline PlatformIO for the tests: a local platform and a tool-scons package from PyPI's scons.

PlatformIO's registry cannot be reached here, so ``pio run`` gets

* ``platform/``, a minimal development platform used through
  ``platform = file://...``: its ``builder/main.py`` compiles with the system's
  arm-none-eabi-gcc (no toolchain package) and the boards are in ``boards/``;
* ``tool-scons``, the SCons that PlatformIO runs its builders with, made by
  :func:`install_tool_scons` from the ``scons`` installed from PyPI next to
  PlatformIO, inside a throw-away core dir (``PLATFORMIO_CORE_DIR``);
* an environment (:func:`offline_env`) without telemetry, upgrade checks or
  progress bars, whose proxies point at a closed local port so that any
  attempt to reach the network fails at once instead of waiting on a timeout.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import warnings
from pathlib import Path

PLATFORM_DIR = Path(__file__).resolve().parent / "platform"
PLATFORM_URI = PLATFORM_DIR.as_uri()  # file:///.../tests/pio_offline/platform

# Nothing listens on the discard port of the loopback interface: a connection is refused at once.
_DEAD_PROXY = "http://127.0.0.1:9"


def pio_executable() -> Path:
    """The ``pio`` of the interpreter running the tests (the venv's, in CI too)."""
    return Path(sys.executable).parent / ("pio.exe" if os.name == "nt" else "pio")


def tool_scons_version(scons_version: str) -> str:
    """PlatformIO's version of a tool-scons package holding SCons ``scons_version``.

    The registry numbers it MAJOR.MAJOR-MINOR-PATCH, two digits each after the first:

    >>> tool_scons_version("4.11.1")
    '4.41101.0'
    >>> tool_scons_version("4.8.1")
    '4.40801.0'
    """
    parts = [int("".join(ch for ch in p if ch.isdigit()) or 0) for p in scons_version.split(".")[:3]]
    major, minor, patch = (parts + [0, 0])[:3]
    return f"{major}.{major}{minor:02d}{patch:02d}.0"


def install_tool_scons(core_dir: Path) -> Path:
    """Installs the PyPI ``SCons`` package as PlatformIO's ``tool-scons`` into ``core_dir``.

    PlatformIO runs ``<tool-scons>/scons.py`` with its own interpreter and finds
    the package through ``package.json`` (name, version) and ``.piopm`` (owner
    ``platformio``: the spec it asks for). The version is the one PlatformIO's
    requirement accepts when the installed SCons matches it; otherwise the
    package is labelled with the version PlatformIO asks for (SCons 4.x builds
    the same) and a warning says so, rather than letting PlatformIO try to
    download the one it wants.
    """
    import SCons  # scons from PyPI (a test dependency)
    import semantic_version
    from platformio.dependencies import get_core_dependencies

    requirement = get_core_dependencies()["tool-scons"]  # e.g. "~4.41101.0"
    version = tool_scons_version(SCons.__version__)
    spec = semantic_version.SimpleSpec(requirement)
    if semantic_version.Version(version) not in spec:
        wanted = re.search(r"\d+\.\d+\.\d+", requirement).group(0)
        warnings.warn(f"PlatformIO asks for tool-scons {requirement}, the installed SCons {SCons.__version__} "
                      f"is {version}: labelling it {wanted}", stacklevel=2)
        version = wanted

    pkg = Path(core_dir) / "packages" / "tool-scons"
    if pkg.exists():
        shutil.rmtree(pkg)
    shutil.copytree(Path(SCons.__file__).resolve().parent, pkg / "SCons",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (pkg / "scons.py").write_text(
        "# PlatformIO's entry point into SCons (tool-scons/scons.py), for the SCons copied beside it.\n"
        "import os\nimport sys\n\n"
        "sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\n\n"
        "from SCons.Script.Main import main  # noqa: E402\n\n"
        "if __name__ == '__main__':\n    sys.exit(main())\n")
    (pkg / "package.json").write_text(json.dumps({
        "name": "tool-scons",
        "version": version,
        "description": f"SCons {SCons.__version__} from PyPI, packaged offline for PlatformIO",
        "homepage": "https://scons.org",
        "license": "MIT",
    }, indent=2) + "\n")
    (pkg / ".piopm").write_text(json.dumps({
        "type": "tool",
        "name": "tool-scons",
        "version": version,
        "spec": {"owner": "platformio", "id": None, "name": "tool-scons", "requirements": None, "uri": None},
    }))
    return pkg


def offline_env(core_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for an offline ``pio`` with its core dir in ``core_dir``."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if not k.upper().startswith("PLATFORMIO_") and k.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env.update({
        "PLATFORMIO_CORE_DIR": str(core_dir),
        "PLATFORMIO_SETTING_ENABLE_TELEMETRY": "no",
        "PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL": "3650",
        "PLATFORMIO_SETTING_ENABLE_CACHE": "no",
        "PLATFORMIO_DISABLE_UPGRADE_CHECK": "true",
        "PLATFORMIO_DISABLE_PROGRESSBAR": "true",
        "PLATFORMIO_NO_ANSI": "true",
        "HTTP_PROXY": _DEAD_PROXY,
        "HTTPS_PROXY": _DEAD_PROXY,
        "ALL_PROXY": _DEAD_PROXY,
        "http_proxy": _DEAD_PROXY,
        "https_proxy": _DEAD_PROXY,
        "all_proxy": _DEAD_PROXY,
    })
    return env


def make_core_dir(core_dir: Path) -> dict[str, str]:
    """A fresh PlatformIO core dir holding tool-scons; returns the environment to run ``pio`` in."""
    core_dir = Path(core_dir)
    core_dir.mkdir(parents=True, exist_ok=True)
    install_tool_scons(core_dir)
    return offline_env(core_dir)
