"""Ctrl-C during a QEMU run: the tool stops, kills the emulator and leaves no temporary files."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import EXAMPLE_MODEL, REPO


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and "qemu" in cmdline:
            found.append(int(entry.name))
    return found


def test_ctrl_c_while_qemu_runs_cleans_up(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch), "PYTHONPATH": str(REPO)}
    # A session of its own, so that the SIGINT below reaches the tool's process group as a terminal's would.
    cli = subprocess.Popen([sys.executable, "-m", "horq_codegen.cli", "verify", str(EXAMPLE_MODEL),
                            "--target", "cortex-m7", "--samples", "300"],
                           env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not _processes_mentioning(str(scratch)):
            assert cli.poll() is None, cli.communicate()
            assert time.monotonic() < deadline, "QEMU never started"
            time.sleep(0.2)
        os.killpg(cli.pid, signal.SIGINT)
        _, err = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
    assert cli.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    time.sleep(0.5)
    assert not _processes_mentioning(str(scratch))
    # Only torch's own compile cache may remain; nothing of ours.
    assert [p.name for p in scratch.iterdir() if not p.name.startswith("torchinductor")] == []
