"""Run generated firmware under QEMU and count executed instructions.

Two targets are supported:

* bare-metal Cortex-M firmware under ``qemu-system-arm`` (semihosting carries
  printf output and the exit status back to the host), see :func:`run_system`;
* static Linux programs under QEMU user mode (e.g. ``qemu-aarch64``), see
  :func:`run_user`.

With ``count=True`` a small TCG plugin (``qemu_plugin/insn_count.c``, built on
first use by :func:`build_plugin`) counts every executed guest instruction and
records the running count each time the firmware calls its marker function
``horq_bench_mark(int id)``. The counts are exact and identical run to run,
which makes them usable as a benchmark where QEMU's timing is not.

The marker must survive optimisation: declare it ``noinline`` and give it a
body the compiler cannot drop, e.g.
``__asm__ volatile("" :: "r"(id) : "memory");`` (an empty noinline function
is found side-effect free and its calls are deleted).
"""

from __future__ import annotations

import bisect
import hashlib
import os
import resource
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PLUGIN_SOURCE = Path(__file__).parent / "qemu_plugin" / "insn_count.c"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "horq-codegen"
_PLUGIN_CFLAGS = ("-shared", "-fPIC", "-O2", "-Wall")

# Signals that mean the guest program itself crashed under QEMU user mode
# (QEMU re-raises the guest's fatal signal on itself).
_USER_FAULT_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGILL, signal.SIGBUS})


class EmulatorError(Exception):
    """The emulator could not be run as asked (missing tool, symbol or file).

    A firmware that crashes or hangs is not an error of this kind: it is
    reported through :attr:`RunResult.status`.
    """


@dataclass(frozen=True)
class RunResult:
    """Outcome of one emulator run.

    Attributes:
        status: ``"ok"`` (exit status 0), ``"fault"`` (the guest crashed: a
            Cortex-M lock-up, or SIGSEGV/SIGILL/SIGBUS in user mode),
            ``"hang"`` (killed at the timeout) or ``"error"`` (any other
            non-zero exit).
        exit_code: QEMU's exit status; a death by signal N is given as
            128 + N, as a shell reports it (a lock-up aborts QEMU: 134).
            ``None`` after a timeout.
        stdout: the guest's output (semihosting or Linux stdout).
        stderr: QEMU's diagnostics (and a user-mode guest's stderr).
        marks: with counting, the number of instructions executed before
            each call of the marker function, in call order; else ``None``.
        total_instructions: with counting, all instructions executed;
            else ``None``.
        timeout_s: the timeout that applied, so a hang can be explained.
    """

    status: str
    exit_code: int | None
    stdout: str
    stderr: str
    marks: tuple[int, ...] | None
    total_instructions: int | None
    timeout_s: float | None = None

    def describe(self) -> str:
        """Return a one-line human-readable account of the run."""
        if self.status == "ok":
            if self.total_instructions is None:
                return "firmware exited normally"
            return f"firmware exited normally after {self.total_instructions:,} instructions"
        if self.status == "hang":
            return f"timed out after {self.timeout_s:g} s: the firmware hangs"
        if self.status == "fault":
            if "Lockup" in self.stderr:
                return f"firmware hard-faulted (QEMU lock-up, exit {self.exit_code})"
            return f"program crashed with {_signal_name(self.exit_code)} (exit {self.exit_code})"
        if self.stderr.strip():
            return f"QEMU exited with status {self.exit_code}: {_last_line(self.stderr)}"
        return f"firmware exited with status {self.exit_code}"


def build_plugin(cache_dir: Path | None = None) -> Path:
    """Compile the instruction-counting QEMU plugin and return the .so path.

    The library is cached in ``cache_dir`` (default ``~/.cache/horq-codegen``)
    under a name holding a hash of the source and flags, so it is rebuilt
    only when either changes.

    Raises:
        EmulatorError: gcc is missing or the compilation fails.
    """
    cache = cache_dir if cache_dir is not None else DEFAULT_CACHE_DIR
    digest = hashlib.sha256(PLUGIN_SOURCE.read_bytes())
    digest.update(" ".join(_PLUGIN_CFLAGS).encode())
    target = cache / f"insn_count-{digest.hexdigest()[:16]}.so"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    # Build under a temporary name and rename: a concurrent run never sees a
    # half-written library, and a failed build leaves nothing behind.
    fd, tmp_name = tempfile.mkstemp(dir=cache, prefix=".insn_count-", suffix=".so")
    os.close(fd)
    try:
        _compile_plugin(Path(tmp_name))
        os.replace(tmp_name, target)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return target


def run_system(
    elf: Path,
    machine: str,
    *,
    timeout_s: float = 60,
    count: bool = False,
    mark_symbol: str = "horq_bench_mark",
    nm: str = "arm-none-eabi-nm",
    profile: Path | None = None,
    segments: Path | None = None,
) -> RunResult:
    """Run bare-metal firmware under ``qemu-system-arm -M machine``.

    The firmware talks to the host through semihosting (link with
    ``--specs=rdimon.specs``): its printf output becomes ``stdout`` and its
    ``exit()`` status QEMU's exit status. A fault handler that executes
    ``bkpt #0`` makes QEMU report a lock-up, classified as ``"fault"``.

    Args:
        elf: the firmware image.
        machine: a QEMU machine, e.g. ``mps2-an500`` (Cortex-M7).
        timeout_s: wall-clock limit; the run is then killed and is a hang.
        count: count executed instructions (see :class:`RunResult`).
        mark_symbol: the marker function, looked up with ``nm``.
        nm: the nm that reads ``elf``.
        profile: with counting, also write per-instruction counts there,
            from the first to the last mark (see :func:`read_profile`).
        segments: with counting, also write per-instruction counts there for
            each stretch between consecutive marks (see :func:`read_segments`).

    Raises:
        EmulatorError: a tool or ``elf`` is missing, or counting was asked
            for and ``mark_symbol`` is not in the firmware.
    """
    qemu = _find_tool("qemu-system-arm")
    cmd = [qemu, "-M", machine, "-nographic",
           "-semihosting-config", "enable=on,target=native",
           "-kernel", str(_existing(elf))]
    with tempfile.TemporaryDirectory(prefix="horq-qemu-") as tmp:
        out_file = Path(tmp) / "counts.txt"
        if count:
            cmd += _plugin_args(elf, mark_symbol, nm, out_file, profile, segments)
        returncode, stdout, stderr = _execute(cmd, timeout_s)
        status = _classify_system(returncode, stderr)
        counts = _read_counts(out_file, count, status)
    return _result(status, returncode, stdout, stderr, counts, timeout_s)


def run_user(
    exe: Path,
    *,
    qemu: str = "qemu-aarch64",
    timeout_s: float = 60,
    count: bool = False,
    mark_symbol: str = "horq_bench_mark",
    nm: str = "aarch64-linux-gnu-nm",
    profile: Path | None = None,
    segments: Path | None = None,
) -> RunResult:
    """Run a static Linux program under QEMU user mode (``qemu``).

    The program runs as ``./prog`` in a scratch folder with an empty
    environment: glibc's start-up code walks the environment and the
    program's path, so this keeps instruction counts independent of the
    caller's environment and of where ``exe`` lies.

    Args and raises: as for :func:`run_system`; a guest killed by SIGSEGV,
    SIGILL or SIGBUS is a ``"fault"``.
    """
    qemu_path = _find_tool(qemu)
    with tempfile.TemporaryDirectory(prefix="horq-qemu-") as tmp:
        prog = Path(tmp) / "prog"
        shutil.copy2(_existing(exe), prog)
        out_file = Path(tmp) / "counts.txt"
        cmd = [qemu_path]
        if count:
            cmd += _plugin_args(exe, mark_symbol, nm, out_file, profile, segments)
        cmd.append("./prog")
        returncode, stdout, stderr = _execute(cmd, timeout_s, cwd=tmp, env={})
        status = _classify_user(returncode)
        counts = _read_counts(out_file, count, status)
    return _result(status, returncode, stdout, stderr, counts, timeout_s)


# ---------------------------------------------------------------- helpers


def _compile_plugin(output: Path) -> None:
    cmd = [_find_tool("gcc"), *_PLUGIN_CFLAGS, "-o", str(output), str(PLUGIN_SOURCE)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise EmulatorError(
            f"building the QEMU counting plugin failed (gcc exit {proc.returncode}):\n"
            f"{proc.stderr.strip()}"
        )


def _find_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise EmulatorError(f"{name} not found on PATH")
    return path


def _existing(path: Path) -> Path:
    if not Path(path).is_file():
        raise EmulatorError(f"no such file: {path}")
    return Path(path)


def _symbol_address(binary: Path, symbol: str, nm: str) -> int:
    """Address of ``symbol`` in ``binary``, Thumb bit cleared."""
    proc = subprocess.run([_find_tool(nm), "--defined-only", str(binary)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise EmulatorError(f"{nm} failed on {binary}: {proc.stderr.strip()}")
    for line in proc.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == symbol:
            # A Thumb function's symbol value has bit 0 set; QEMU reports
            # the instruction address without it.
            return int(fields[0], 16) & ~1
    raise EmulatorError(
        f"marker function {symbol!r} not found in {binary}: define it noinline "
        "with a body the compiler cannot remove"
    )


def _plugin_args(binary: Path, mark_symbol: str, nm: str, out_file: Path,
                 profile: Path | None = None, segments: Path | None = None) -> list[str]:
    mark = _symbol_address(binary, mark_symbol, nm)
    # QEMU's option parser splits on ',' and reads ',,' as a literal comma.
    plugin = str(build_plugin()).replace(",", ",,")
    out = str(out_file).replace(",", ",,")
    extra = f",profile={str(profile.resolve()).replace(',', ',,')}" if profile is not None else ""
    if segments is not None:
        extra += f",segments={str(segments.resolve()).replace(',', ',,')}"
    return ["-plugin", f"{plugin},mark={mark:#x},out={out}{extra}"]


def read_profile(profile: Path, binary: Path, nm: str) -> dict[str, int]:
    """Executed instructions per function, from a run with ``profile=``: each address is
    credited to the function symbol (``nm -S``) that holds it, or to ``"?"``."""
    proc = subprocess.run([_find_tool(nm), "-S", "--defined-only", str(binary)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise EmulatorError(f"{nm} failed on {binary}: {proc.stderr.strip()}")
    functions = sorted((int(f[0], 16) & ~1, int(f[1], 16), f[3]) for f in map(str.split, proc.stdout.splitlines())
                       if len(f) == 4 and f[2] in "tTwW")
    starts = [start for start, _, _ in functions]
    totals: dict[str, int] = {}
    for line in profile.read_text().splitlines():
        address, count = line.split()
        where = int(address, 16)
        i = bisect.bisect_right(starts, where) - 1
        name = functions[i][2] if i >= 0 and where < functions[i][0] + functions[i][1] else "?"
        totals[name] = totals.get(name, 0) + int(count)
    return totals


def read_segments(segments: Path) -> list[dict[int, int]]:
    """Executed instructions per address for each stretch between consecutive marks, from a run
    with ``segments=``: element K covers the stretch from mark K to mark K + 1."""
    stretches: list[dict[int, int]] = []
    for line in segments.read_text().splitlines():
        first, second = line.split()
        if first == "segment":
            if int(second) != len(stretches):
                raise EmulatorError(f"segment profile {segments} is out of order at {line!r}")
            stretches.append({})
        else:
            stretches[-1][int(first, 16)] = int(second)
    return stretches


def _disable_core_dumps() -> None:
    # A lock-up aborts QEMU, and user-mode QEMU dumps a guest core on a
    # crash: neither file is wanted.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _execute(cmd: list[str], timeout_s: float, cwd: str | None = None,
             env: dict[str, str] | None = None) -> tuple[int | None, str, str]:
    """Run ``cmd``; return (returncode or None on timeout, stdout, stderr).

    The process gets its own session so that the whole group can be killed
    on timeout or Ctrl-C, leaving no QEMU behind.
    """
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=cwd, env=env,
                            start_new_session=True, preexec_fn=_disable_core_dumps)
    try:
        out, err = proc.communicate(timeout=timeout_s)
        returncode: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        returncode = None
    except BaseException:
        _kill_group(proc)
        proc.wait()
        raise
    return returncode, _decode(out), _decode(err)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone


def _decode(data: bytes) -> str:
    # Firmware may print arbitrary bytes; never fail on them.
    return data.decode("utf-8", errors="replace")


def _classify_system(returncode: int | None, stderr: str) -> str:
    if returncode is None:
        return "hang"
    if returncode == 0:
        return "ok"
    # QEMU 7.2 aborts (SIGABRT, shell status 134) on an M-profile lock-up.
    if "Lockup" in stderr or returncode == -signal.SIGABRT:
        return "fault"
    return "error"


def _classify_user(returncode: int | None) -> str:
    if returncode is None:
        return "hang"
    if returncode == 0:
        return "ok"
    if returncode < 0 and -returncode in _USER_FAULT_SIGNALS:
        return "fault"
    return "error"


def _read_counts(out_file: Path, count: bool, status: str) -> tuple[tuple[int, ...], int] | None:
    """Parse the plugin's output: one count per mark, then ``total N``.

    The plugin writes at exit, so after a crash or a timeout there is none.
    """
    if not count:
        return None
    if not out_file.exists():
        if status == "ok":
            raise EmulatorError("QEMU exited normally but the counting plugin wrote nothing")
        return None
    *mark_lines, last = out_file.read_text().splitlines() or [""]
    if not last.startswith("total "):
        raise EmulatorError(f"counting plugin output is truncated: {out_file}")
    return tuple(int(line) for line in mark_lines), int(last.split()[1])


def _result(status: str, returncode: int | None, stdout: str, stderr: str,
            counts: tuple[tuple[int, ...], int] | None, timeout_s: float) -> RunResult:
    exit_code = returncode if returncode is None or returncode >= 0 else 128 - returncode
    marks, total = counts if counts is not None else (None, None)
    return RunResult(status=status, exit_code=exit_code, stdout=stdout, stderr=stderr,
                     marks=marks, total_instructions=total, timeout_s=timeout_s)


def _signal_name(exit_code: int | None) -> str:
    try:
        return signal.Signals(exit_code - 128).name  # type: ignore[operator]
    except (TypeError, ValueError):
        return "a signal"


def _last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1].strip()
