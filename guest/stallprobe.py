"""Guest side of test_stalled_server.py: what a task waiting on a stalled server does.

    python3 -m guest.stallprobe [--wait S] [--grace S] -- CMD [ARG...]

Starts CMD (no shell) in a session of its own and, once it has waited --wait
seconds without finishing, reads its state (/proc/PID/stat: S interruptible,
D uninterruptible) and wait channel, sends SIGINT and gives it --grace
seconds, then SIGKILL and --grace seconds more. Prints one JSON line:

  {"pid", "blocked", "state", "wchan", "interruptible", "killable",
   "state_after_kill", "status"}

A task neither signal ends is left where it is: the test then kills the
server and watches whether the task goes (gone_within()).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any


def state_of(pid: int) -> str:
    """The one-letter state of pid, '' once it is gone (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return ""
    return "" if state in ("Z", "X") else state


def wchan_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/wchan") as wchan:
            return wchan.read().strip()
    except OSError:
        return ""


def _ends(proc: subprocess.Popen[bytes], grace: float) -> bool:
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        return False
    return True


def probe(command: list[str], wait: float, grace: float) -> dict[str, Any]:
    proc = subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    found: dict[str, Any] = {"pid": proc.pid, "blocked": not _ends(proc, wait)}
    if not found["blocked"]:
        return {**found, "status": proc.returncode}
    found["state"], found["wchan"] = state_of(proc.pid), wchan_of(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)           # its session is its process group
    found["interruptible"] = _ends(proc, grace)
    if not found["interruptible"]:
        os.killpg(proc.pid, signal.SIGKILL)
        found["killable"] = _ends(proc, grace)
        found["state_after_kill"] = state_of(proc.pid)
    found["status"] = proc.returncode
    return found


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while state_of(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m guest.stallprobe")
    parser.add_argument("--wait", type=float, default=3.0,
                        help="seconds the command must have waited to count as blocked")
    parser.add_argument("--grace", type=float, default=3.0, help="seconds after each signal")
    parser.add_argument("--gone", type=int, metavar="PID",
                        help="instead: wait for PID to go; exit 0 if it did within --grace")
    parser.add_argument("command", nargs="*")
    args = parser.parse_args(argv)
    if args.gone is not None:
        gone = gone_within(args.gone, args.grace)
        print(json.dumps({"pid": args.gone, "gone": gone, "state": state_of(args.gone),
                          "wchan": wchan_of(args.gone)}))
        return 0 if gone else 1
    if not args.command:
        parser.error("a command to probe is needed (after --)")
    print(json.dumps(probe(args.command, args.wait, args.grace)))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
