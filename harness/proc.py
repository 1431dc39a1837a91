"""Running host commands with their output kept in a log file."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from harness.errors import HarnessError


def say(msg: str) -> None:
    """Progress for the user: always on stderr so stdout stays machine-readable."""
    print(f"muse-harness: {msg}", file=sys.stderr, flush=True)


def restore_sigint() -> None:
    """A shell without job control starts background commands with SIGINT ignored;
    Ctrl-C (or kill -INT) must still stop us, and our QEMU with us."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run_logged(
    cmd: Sequence[str | os.PathLike[str]],
    log: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    error: type[HarnessError] = HarnessError,
    what: str = "",
) -> None:
    """Run cmd with stdout and stderr appended to log; raise error with its tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"$ {' '.join(map(str, cmd))}\n".encode())
        out.flush()
        rc = subprocess.run(
            [str(c) for c in cmd], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, check=False,
        ).returncode
    if rc != 0:
        raise error(f"{what or cmd[0]} failed (exit {rc}); last lines of {log}:\n{tail(log)}")


def run_group(cmd: list[str], timeout: float, cwd: Path, what: str,
              env: dict[str, str] | None = None, log: Path | None = None) -> int:
    """Run cmd in a process group of its own and wait; 124 when it exceeds timeout.

    On every way out (timeout, Ctrl-C, an error) the whole group goes: TERM,
    then KILL after 15 s, so no pytest worker or QEMU outlives us. With log,
    its stdout and stderr go there instead of ours.
    """
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("wb")) if log else None
        return _wait_group(subprocess.Popen(cmd, cwd=cwd, start_new_session=True, env=env,
                                            stdout=out, stderr=subprocess.STDOUT if out else None),
                           timeout, what)


def _wait_group(proc: subprocess.Popen[bytes], timeout: float, what: str) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        say(f"{what} exceeded {timeout:.0f} s; stopping it")
        return 124
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def tail(path: Path, lines: int = 25) -> str:
    try:
        data = path.read_bytes()[-16384:].decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def sha256_files(paths: Sequence[Path], extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@contextmanager
def file_lock(path: Path, busy: str = "") -> Iterator[None]:
    """Exclusive lock held across processes, so parallel workers build once.
    busy: said when another process holds the lock, with the wait once it is ours."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fd:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if busy:
                say(busy)
            start = time.monotonic()
            fcntl.flock(fd, fcntl.LOCK_EX)
            if busy:
                say(f"got {path.name} after {time.monotonic() - start:.0f} s")
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
