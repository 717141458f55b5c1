"""``--format library``: the model as a PlatformIO library, a CMake library and a Zephyr module.

The CMake library is built as a user would: a small firmware project that calls
``add_subdirectory()`` on it, cross-compiled for Cortex-M with a toolchain file for the
Debian arm-none-eabi-gcc, and built for the host, where it runs and matches the numpy
reference bit for bit. PlatformIO's own manifest parser reads ``library.json``, and the
Zephyr branch of the CMakeLists runs under stand-ins for Zephyr's CMake functions. Nothing is
skipped: a missing cmake or compiler is a failure (scripts/setup.sh installs them).
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from elftools.elf.elffile import ELFFile

from conftest import assert_bit_exact, export_model, settle_batchnorm
from horq_codegen import reference
from horq_codegen.cli import main
from horq_codegen.integer import Lowering
from horq_codegen.library import cpu_flags, generate_library
from horq_codegen.nn import HORQConv2d
from horq_codegen.pipeline import load_and_lower
from horq_codegen.project import STAMP
from horq_codegen.targets import load_target

INPUT_SHAPE = (1, 8, 8)
EF_ARM_ABI_FLOAT_HARD = 0x400
KERNELS = sorted(p.name for p in (Path(__file__).resolve().parents[1] / "templates" / "kernels").iterdir())
LIBRARY_FILES = sorted(["CMakeLists.txt", "README.md", "library.json", "include/model.h", "src/model.c",
                        "zephyr/Kconfig", "zephyr/module.yml", STAMP, *(f"src/{k}" for k in KERNELS)])

USER_MAIN = r"""
#include <stdio.h>
#include "model.h"

static float input[MODEL_INPUT_SIZE];
static float output[MODEL_OUTPUT_SIZE];

/* argv[1]: float32 inputs, MODEL_INPUT_SIZE a sample; argv[2]: where the outputs go. */
int main(int argc, char **argv)
{
    if (argc < 3) {
        model_run(input, output);
        return output[0] == output[0] ? 0 : 1;
    }
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (!in || !out) {
        return 2;
    }
    while (fread(input, sizeof input, 1, in) == 1) {
        model_run(input, output);
        fwrite(output, sizeof output, 1, out);
    }
    return fclose(out) != 0;
}
"""

USER_CMAKE = """cmake_minimum_required(VERSION 3.13)
project(user_firmware C)
add_subdirectory({library} horq_library)
add_executable(firmware main.c)
target_link_libraries(firmware PRIVATE horq::model)
"""


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), HORQConv2d(4, 8, 3),
                                torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 3))
    return export_model(settle_batchnorm(model, INPUT_SHAPE), INPUT_SHAPE,
                        tmp_path_factory.mktemp("library") / "m.pt2")


def _library(model_file: Path, out: Path, target: str, *extra: str) -> Path:
    assert main([str(model_file), "--target", target, "--format", "library", "-o", str(out), *extra]) == 0
    return out


def _user_project(folder: Path, library: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "main.c").write_text(USER_MAIN)
    (folder / "CMakeLists.txt").write_text(USER_CMAKE.format(library=library.as_posix()))
    return folder


def _cmake(*args: str, cwd: Path | None = None) -> str:
    cmake = shutil.which("cmake")
    assert cmake, "cmake is not on PATH (scripts/setup.sh installs it)"
    run = subprocess.run([cmake, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    return run.stdout + run.stderr


def _compile_commands(build: Path) -> dict[str, str]:
    """Source file name -> its compile command, from CMake's compile_commands.json."""
    entries = json.loads((build / "compile_commands.json").read_text())
    return {Path(e["file"]).name: e["command"] for e in entries}


def test_library_holds_the_model_and_kernels_only(model_file, tmp_path):
    out = _library(model_file, tmp_path / "lib", "cortex-m4")
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == LIBRARY_FILES
    stamped = (out / STAMP).read_text().splitlines()[2:]
    assert sorted(stamped + [STAMP]) == LIBRARY_FILES


@pytest.mark.parametrize("target_name", ["cortex-m4", "cortex-m7"])
def test_cmake_library_cross_compiles_into_a_firmware(model_file, tmp_path, target_name):
    target = load_target(target_name)
    library = _library(model_file, tmp_path / "lib", target_name)
    user = _user_project(tmp_path / "user", library)
    assert shutil.which("arm-none-eabi-gcc"), "arm-none-eabi-gcc is not on PATH"
    toolchain = tmp_path / "arm-none-eabi.cmake"
    toolchain.write_text(
        "set(CMAKE_SYSTEM_NAME Generic)\nset(CMAKE_SYSTEM_PROCESSOR arm)\n"
        "set(CMAKE_C_COMPILER arm-none-eabi-gcc)\n"
        "set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)\n"
        f"set(CMAKE_C_FLAGS_INIT \"{' '.join(cpu_flags(target))} -Wall -Wextra -Werror\")\n"
        "set(CMAKE_EXE_LINKER_FLAGS_INIT \"--specs=nosys.specs\")\n")
    build = tmp_path / "build"
    _cmake("-S", str(user), "-B", str(build), f"-DCMAKE_TOOLCHAIN_FILE={toolchain}",
           "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON")
    _cmake("--build", str(build), "-j2")

    # The target's library flags on the model's and the kernels' sources, C99, the CPU flags of
    # the toolchain file; the caller's main() sees the public include folder and nothing else.
    commands = _compile_commands(build)
    assert sorted(commands) == sorted(["main.c", "model.c", *(k for k in KERNELS if k.endswith(".c"))])
    for name, command in commands.items():
        flags = command.split()
        assert all(f in flags for f in cpu_flags(target)), command
        if name == "main.c":
            assert f"-I{library / 'include'}" in flags, command
            assert not any(f.startswith("-DHORQ") or f == "-ffp-contract=off" for f in flags), command
        else:
            assert all(f in flags for f in target.library_flags), command
            assert "-std=c99" in flags, command

    archive = build / "horq_library" / "libhorq_model.a"
    assert archive.is_file()
    with (build / "firmware").open("rb") as fp:
        elf = ELFFile(fp)
        assert elf["e_machine"] == "EM_ARM"
        assert elf["e_flags"] & EF_ARM_ABI_FLOAT_HARD, hex(elf["e_flags"])
        symbols = elf.get_section_by_name(".symtab")
        for name in ("main", "model_run", "horq_bconv2d_hwc", "horq_fc_i8"):
            found = symbols.get_symbol_by_name(name)
            assert found and found[0]["st_info"]["type"] == "STT_FUNC", name


@pytest.mark.parametrize("activations", ["int8", "float"])
def test_cmake_library_on_the_host_matches_the_reference(model_file, tmp_path, activations):
    target = load_target("host")
    model, graph = load_and_lower(model_file, lowering=Lowering(activations))
    library = generate_library(model, graph, target, tmp_path / "lib").out_dir
    user = _user_project(tmp_path / "user", library)
    build = tmp_path / "build"
    _cmake("-S", str(user), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror")
    _cmake("--build", str(build), "-j2")

    x = np.random.default_rng(1).normal(size=(6, *INPUT_SHAPE)).astype(np.float32)
    (tmp_path / "in.bin").write_bytes(x.tobytes())
    run = subprocess.run([str(build / "firmware"), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    outputs = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.float32).reshape(len(x), -1)
    assert_bit_exact(outputs, reference.run(graph, x))


def test_library_json_is_a_platformio_library_with_the_targets_flags(model_file, tmp_path):
    from platformio.package.manifest.parser import ManifestParserFactory
    from platformio.package.manifest.schema import ManifestSchema

    target = load_target("cortex-m7")
    library = _library(model_file, tmp_path / "lib", "cortex-m7")
    raw = json.loads((library / "library.json").read_text())
    assert raw["build"]["flags"] == list(target.library_flags)
    assert {"-DHORQ_WEIGHTS_PREFIX_XOR", "-ffp-contract=off"} <= set(raw["build"]["flags"])
    assert not any(f.startswith("-m") for f in raw["build"]["flags"])  # the board's business

    parsed = ManifestParserFactory.new_from_dir(str(library)).as_dict()
    manifest = ManifestSchema().load_manifest(parsed)  # raises on a field PlatformIO rejects
    assert manifest["name"] == "horq_model"
    assert manifest["frameworks"] == ["*"] and manifest["platforms"] == ["*"]
    assert manifest["headers"] == ["model.h"]
    # The schema validates the registry's fields only; the builder (platformio/builder/tools/piolib.py)
    # reads "build" from the parsed manifest as it is.
    build = parsed["build"]
    assert build == {"srcDir": "src", "includeDir": "include", "flags": list(target.library_flags)}
    assert (library / build["srcDir"] / "model.c").is_file()
    assert (library / build["includeDir"] / "model.h").is_file()


ZEPHYR_STANDINS = """cmake_minimum_required(VERSION 3.13)
project(fake_zephyr_app NONE)
# Stand-ins for Zephyr's CMake extensions (cmake/modules/extensions.cmake): each writes one line.
set(ZEPHYR_BASE /opt/zephyr)
file(WRITE ${CMAKE_BINARY_DIR}/calls.txt "")
function(record name)
  string(REPLACE ";" " " args "${ARGN}")
  file(APPEND ${CMAKE_BINARY_DIR}/calls.txt "${name} ${args}\\n")
endfunction()
function(zephyr_library_named)
  record(zephyr_library_named ${ARGV})
endfunction()
function(zephyr_library_sources)
  record(zephyr_library_sources ${ARGV})
endfunction()
function(zephyr_include_directories)
  record(zephyr_include_directories ${ARGV})
endfunction()
function(zephyr_library_compile_definitions)
  record(zephyr_library_compile_definitions ${ARGV})
endfunction()
function(zephyr_library_compile_options)
  record(zephyr_library_compile_options ${ARGV})
endfunction()
add_subdirectory({library} horq_module)
"""


@pytest.mark.parametrize("enabled", [True, False])
def test_zephyr_module(model_file, tmp_path, enabled):
    target = load_target("cortex-m4")
    library = _library(model_file, tmp_path / "lib", "cortex-m4")
    module = yaml.safe_load((library / "zephyr" / "module.yml").read_text())
    # Zephyr's scripts/zephyr_module.py: name (str), build.cmake a folder holding CMakeLists.txt,
    # build.kconfig a file, both relative to the module's root (the library's folder).
    assert module == {"name": "horq_model", "build": {"cmake": ".", "kconfig": "zephyr/Kconfig"}}
    assert (library / module["build"]["cmake"] / "CMakeLists.txt").is_file()
    kconfig = (library / module["build"]["kconfig"]).read_text()
    assert "\nconfig HORQ_MODEL\n\tbool " in kconfig
    assert "CONFIG_HORQ_MODEL" in (library / "CMakeLists.txt").read_text()

    app = tmp_path / "app"
    app.mkdir()
    (app / "CMakeLists.txt").write_text(ZEPHYR_STANDINS.replace("{library}", library.as_posix()))
    _cmake("-S", str(app), "-B", str(tmp_path / "build"), *(["-DCONFIG_HORQ_MODEL=y"] if enabled else []))
    calls = dict(line.split(" ", 1) for line in (tmp_path / "build" / "calls.txt").read_text().splitlines())
    if not enabled:
        assert calls == {}
        return
    sources = [f"{library.as_posix()}/src/{k}" for k in ["model.c", *(k for k in KERNELS if k.endswith(".c"))]]
    assert calls == {
        "zephyr_library_named": "horq_model",
        "zephyr_library_sources": " ".join(sources),
        "zephyr_include_directories": f"{library.as_posix()}/include",
        "zephyr_library_compile_definitions": "HORQ_WEIGHTS_PREFIX_XOR",
        "zephyr_library_compile_options": "-ffp-contract=off",
    }
    assert target.library_flags == ("-ffp-contract=off", "-DHORQ_WEIGHTS_PREFIX_XOR")


def test_library_output_is_deterministic_and_replaces_a_project(model_file, tmp_path):
    first = _library(model_file, tmp_path / "a", "cortex-m4")
    second = _library(model_file, tmp_path / "b", "cortex-m4")

    def contents(folder: Path) -> dict[str, bytes]:
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    assert contents(first) == contents(second)

    # The stamp logic is the project format's: the library replaces a project generated in the
    # same folder (its harness, startup code and linker scripts go), and the project comes back.
    folder = tmp_path / "c"
    assert main([str(model_file), "--target", "cortex-m4", "-o", str(folder)]) == 0
    assert (folder / "src" / "harness.c").is_file()
    _library(model_file, folder, "cortex-m4")
    assert contents(folder) == contents(first)
    assert main([str(model_file), "--target", "cortex-m4", "-o", str(folder)]) == 0
    assert not (folder / "library.json").exists() and (folder / "src" / "harness.c").is_file()


def test_library_for_the_host_is_plain_c(model_file, tmp_path):
    library = _library(model_file, tmp_path / "lib", "host")
    cmake = (library / "CMakeLists.txt").read_text()
    assert "HORQ_WEIGHTS_PREFIX_XOR" not in cmake and "-mcpu" not in cmake
    assert json.loads((library / "library.json").read_text())["build"]["flags"] == ["-ffp-contract=off"]
    assert "#error \"the HORQ weights below are plain rows" in (library / "src" / "model.c").read_text()


def test_format_arguments_are_checked(model_file, tmp_path, capsys):
    assert main([str(model_file), "--format", "zip", "-o", str(tmp_path / "x")]) == 2
    assert "invalid choice: 'zip'" in capsys.readouterr().err
    assert main([str(model_file), "--format", "library", "--samples", "3", "-o", str(tmp_path / "y")]) == 2
    assert "--samples" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_every_target_declares_library_flags_it_compiles_with():
    from horq_codegen.targets import known_targets

    for name in known_targets():
        target = load_target(name)
        assert "-ffp-contract=off" in target.library_flags, name
        assert set(target.library_flags) <= set(target.cflags), name
        assert not any(f.startswith("-m") for f in target.library_flags), name


def test_platformio_builds_a_firmware_with_the_library_offline(model_file, tmp_path):
    """A firmware project (the standalone project's harness, startup code and linker script, its own
    model files removed) takes the model from the library through ``lib_deps``, with build_flags
    that hold none of the library's flags: library.json alone puts them on the library's sources."""
    import pio_offline

    target = load_target("cortex-m4")
    board = target.board(None)
    library = _library(model_file, tmp_path / "lib", "cortex-m4")
    project = tmp_path / "firmware"
    assert main([str(model_file), "--target", "cortex-m4", "-o", str(project)]) == 0
    for generated in ("lib", "include", "src/model.c"):
        path = project / generated
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    (project / STAMP).unlink()
    own_flags = [f for f in target.pio_build_flags if f not in target.library_flags]
    ini = project / "platformio.ini"
    lines = []
    for line in ini.read_text().splitlines():
        if line.startswith("platform ="):
            line = f"platform = {pio_offline.PLATFORM_URI}"
        elif line.startswith("build_flags ="):
            line = f"build_flags = {' '.join(own_flags)}"
        lines.append(line)
    ini.write_text("\n".join(lines + [f"lib_deps = symlink://{library.as_posix()}"]) + "\n")

    env = pio_offline.make_core_dir(tmp_path / "pio_core")
    run = subprocess.run([str(pio_offline.pio_executable()), "run", "--verbose", "-d", str(project), "-e", board.key],
                         env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240)
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "[SUCCESS]" in output, output[-6000:]

    compiles = [line.split() for line in output.splitlines()
                if line.startswith("arm-none-eabi-gcc ") and " -c " in line]
    library_sources = {f"{library.as_posix()}/src/{k}" for k in ["model.c", *KERNELS] if k.endswith(".c")}
    assert library_sources <= {flags[-1] for flags in compiles}
    for flags in compiles:
        if flags[-1] in library_sources:
            assert all(f in flags for f in target.library_flags), flags
        else:
            assert "-DHORQ_WEIGHTS_PREFIX_XOR" not in flags, flags
    with (project / ".pio" / "build" / board.key / "firmware.elf").open("rb") as fp:
        symbols = ELFFile(fp).get_section_by_name(".symtab")
        assert symbols.get_symbol_by_name("model_run") and symbols.get_symbol_by_name("Reset_Handler")
