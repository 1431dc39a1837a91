"""One cut point of a recorded run, checked end to end in the guest.

  python3 -m guest.workloads cutcheck --oplog LOG --record REC --cut N
      [--session K] [--seed S] [--torn MODE] [--lose K] [--image IMG] [--ubi D]

rebuilds the image session K of LOG (default: the last) leaves when the power
fails during its op N (guest.muse replay: ops before N whole, op N torn with
seed S and MODE, by default the run's own), serves it with a MUSE server of
the logged geometry, attaches UBI, mounts the UBIFS volume, checks the tree
against the workload record REC (fsmodel.py) and the kernel log of the
attach and mount (kernlog.py), then unmounts, detaches and stops the server.
Prints one JSON object; exits 0 when nothing is wrong, 1 otherwise. This is
the command a failing cut prints to reproduce it.

--lose K emulates a device that acknowledged its last K ops before the cut
and then lost them (a volatile write cache): the image is replayed to op
N-K, the record judged as of op N. A fsync that returned within those ops
must then show up as lost data: the check's own negative test.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time
from typing import Any

from ..muse.oplog import scan
from ..muse.replay import replay
from . import kernlog
from .verify import verify

_REGISTERED = re.compile(r"^muse: registered mtd(\d+) ", re.M)


def serve_args(oplog: str) -> list[str]:
    """`serve` options for the geometry the oplog's first session ran with."""
    sessions, _ = scan(oplog)
    g = sessions[0].header["geometry"]
    assert isinstance(g, dict)
    return ["--type", "nand", "--size", str(g["size"]), "--erasesize", str(g["erasesize"]),
            "--writesize", str(g["writesize"]), "--oobsize", str(g["oobsize"]),
            "--oobavail", str(g["oobavail"]), "--subpage-shift", str(g["subpage_shift"]),
            "--flags", str(g["flags"])]


def _run(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def _start_server(argv: list[str], timeout: float) -> tuple[subprocess.Popen[bytes], int]:
    """Start a server; return it and its MTD number once it printed 'muse: ready'."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()  # raw reads: select() cannot see a buffered reader's lines
    deadline, out = time.monotonic() + timeout, b""
    while time.monotonic() < deadline and b"muse: ready" not in out:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            out += chunk
    text = out.decode(errors="replace")
    match = _REGISTERED.search(text)
    if "muse: ready" in text and match:
        return proc, int(match.group(1))
    proc.kill()
    proc.wait()
    raise RuntimeError("server not ready:\n" + text)


def cutcheck(oplog: str, record: str, cut: int, *, session: int | None = None,
             seed: int | None = None, torn: str | None = None, lose: int = 0,
             image: str = "/tmp/cut.img",
             ubi: int = 9, mnt: str = "/mnt/cutcheck", volume: str = "pc",
             timeout: float = 300) -> dict[str, Any]:
    started = time.monotonic()
    result: dict[str, Any] = {"cut": cut, "session": session, "seed": seed, "torn": torn,
                              "lose": lose}
    done = replay(oplog, image, cut=cut - lose, session=session, seed=seed, torn=torn,
                  image_format="raw+oob")
    result["session"], result["replayed_ops"] = done.session, done.applied
    marker = kernlog.mark(f"cutcheck session {done.session} cut {cut} seed {seed}")
    server, mtd = _start_server(
        [sys.executable, "-m", "guest.muse", "serve", *serve_args(oplog), "--image", image,
         "--image-format", "raw+oob", "--name", "muse-cutcheck"], timeout)
    attached = mounted = False
    try:
        step = _run(["ubiattach", "-m", str(mtd), "-d", str(ubi)], timeout)
        attached = step.returncode == 0
        if attached:
            os.makedirs(mnt, exist_ok=True)
            step = _run(["mount", "-t", "ubifs", f"ubi{ubi}:{volume}", mnt], timeout)
            mounted = step.returncode == 0
        if mounted:
            result.update(verify(mnt, record, cut))
        else:
            result.update(ok=False, problems=[f"{' '.join(step.args)} failed: "
                                              f"{step.stderr.strip() or step.stdout.strip()}"],
                          lost=[])
        result["kernel"] = kernlog.classify(kernlog.since(marker))
    finally:
        if mounted:
            _run(["umount", mnt], timeout)
        if attached:
            _run(["ubidetach", "-d", str(ubi)], timeout)
        server.terminate()
        try:
            server.wait(timeout)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    if result["kernel"]["errors"]:
        result["ok"] = False
    result["seconds"] = round(time.monotonic() - started, 1)
    return result
