"""The end-of-test settle command, run by the host's sh against a fake refcnt file."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from harness.verdict.leftovers import PINNED_STATUS, parse_pinned, settle_command


def settle(refcnt: Path, live: list[int] | None = None,
           seconds: int = 1) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", settle_command(live or [], seconds, str(refcnt))],
                          capture_output=True, text=True, timeout=30)


def test_builtin_muse_has_no_count_and_settles(tmp_path: Path) -> None:
    assert settle(tmp_path / "absent").returncode == 0


def test_a_count_of_zero_settles(tmp_path: Path) -> None:
    (tmp_path / "refcnt").write_text("0\n")
    assert settle(tmp_path / "refcnt").returncode == 0


def test_a_count_that_drops_settles(tmp_path: Path) -> None:
    refcnt = tmp_path / "refcnt"
    refcnt.write_text("1\n")
    timer = threading.Timer(0.5, refcnt.write_text, ("0\n",))
    timer.start()
    try:
        result = settle(refcnt, seconds=10)
    finally:
        timer.cancel()
    assert result.returncode == 0, result.stdout


def test_a_count_that_stays_is_pinned_with_details(tmp_path: Path) -> None:
    (tmp_path / "refcnt").write_text("2\n")
    result = settle(tmp_path / "refcnt")
    pinned = parse_pinned(result.returncode, result.stdout)
    assert pinned is not None and pinned.count == 2
    assert "PID" in pinned.details and "referenced (2)" in pinned.title


def test_a_clean_exit_is_not_pinned() -> None:
    assert parse_pinned(0, "") is None
    assert parse_pinned(1, "muse refcnt 1") is None
    assert PINNED_STATUS not in (0, 1)


def test_live_processes_die_with_their_process_group(tmp_path: Path) -> None:
    # As `unshare --fork` does: the spawned process waits for a child in its group.
    marker = tmp_path / "child"
    leader = subprocess.Popen(["setsid", "sh", "-c", f"sleep 300 & echo $! > {marker}; wait"])
    try:
        deadline = time.monotonic() + 10
        while not marker.exists() or not marker.read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        child = int(marker.read_text())
        assert settle(tmp_path / "absent", [leader.pid]).returncode == 0
        assert leader.wait(10) == -9
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child}").exists() and "Z" not in stat_of(child):
            assert time.monotonic() < deadline, "the child outlived its group's kill"
            time.sleep(0.05)
    finally:
        leader.kill()


def stat_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"
