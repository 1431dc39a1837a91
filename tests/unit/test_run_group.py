"""run_group: a child process group that never outlives its deadline."""

from __future__ import annotations

import os
import time
from pathlib import Path

from harness.proc import run_group


def test_exit_status_comes_back(tmp_path: Path) -> None:
    assert run_group(["sh", "-c", "exit 3"], 30, tmp_path, "exit") == 3


def test_timeout_kills_the_whole_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"
    start = time.monotonic()
    rc = run_group(["sh", "-c", f"sleep 60 & echo $! > {pidfile}; wait"], 1, tmp_path, "sleep")
    assert rc == 124 and time.monotonic() - start < 20
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"grandchild {grandchild} survived the group kill")
