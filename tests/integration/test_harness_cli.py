"""muse-harness run: exit status passthrough, and no QEMU left behind on Ctrl-C or a kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.paths import REPO

pytestmark = pytest.mark.vm


@pytest.fixture
def harness(pytestconfig: pytest.Config) -> Callable[..., list[str]]:
    """The CLI command line for the session's base and flavour."""
    def command(*args: str, reports: Path) -> list[str]:
        return [sys.executable, "-m", "harness.cli", *args[:1], f"--reports={reports}",
                f"--base={pytestconfig.getoption('--base')}",
                f"--flavour={pytestconfig.getoption('--flavour')}", *args[1:]]
    return command


def qemu_children(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(parent), "qemu-system"], capture_output=True,
                         text=True, check=False).stdout
    return [int(p) for p in out.split()]


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for its (new) parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_run_passes_exit_status_and_output(tmp_path: Path,
                                           harness: Callable[..., list[str]]) -> None:
    result = subprocess.run(harness("run", "--", "sh", "-c", "cat /proc/mtd; exit 3",
                                    reports=tmp_path),
                            capture_output=True, text=True, timeout=900, cwd=REPO)
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith("dev:    size   erasesize  name")


def _wait_for_qemu(proc: subprocess.Popen[str]) -> list[int]:
    """QEMU's PIDs once it runs under the CLI process."""
    deadline = time.monotonic() + 600
    while not (pids := qemu_children(proc.pid)):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "QEMU never started"
        time.sleep(0.2)
    time.sleep(2)
    return pids


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_no_qemu_left_after_interrupt_or_kill(tmp_path: Path, sig: signal.Signals,
                                              harness: Callable[..., list[str]]) -> None:
    proc = subprocess.Popen(harness("run", "--", "sleep", "600", reports=tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    pids: list[int] = []
    try:
        pids = _wait_for_qemu(proc)
        os.kill(proc.pid, sig)
        proc.wait(timeout=60)
        deadline = time.monotonic() + 20
        while any(map(alive, pids)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(map(alive, pids)), f"QEMU survived {sig.name} of the harness"
        if sig == signal.SIGINT:
            assert proc.returncode == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in filter(alive, pids):
            os.kill(pid, signal.SIGKILL)
