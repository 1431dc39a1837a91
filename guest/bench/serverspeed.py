"""The MUSE server's own cost per request, without a kernel.

A forked child serves a memory-backed device on one end of a SOCK_SEQPACKET
pair (what the unit tests use in place of /dev/muse); the parent plays the
kernel and times whole request/reply round trips. --profile runs the child
under cProfile and prints its top entries, so the parent's own work does not
show in them.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import random
import time

from ..muse import mtdabi
from ..muse import protocol as p
from ..muse.devices import make_device
from ..muse.fakekernel import FakeKernel, socket_pair
from ..muse.geometry import DEFAULTS, Geometry, default_oobavail, default_oobsize
from ..muse.session import Session
from ..muse.stores import open_store

KIB = 1024


def geometry(kind: str, size: int) -> Geometry:
    mtd_type = mtdabi.TYPE_BY_NAME[kind]
    base = DEFAULTS[mtd_type]
    oobsize = default_oobsize(mtd_type, base.writesize)
    return Geometry(
        name=f"speed-{kind}",
        mtd_type=mtd_type,
        flags=mtdabi.DEFAULT_FLAGS[mtd_type],
        size=size,
        writesize=base.writesize,
        erasesize=128 * KIB,
        writebufsize=base.writebufsize,
        oobsize=oobsize,
        oobavail=default_oobavail(mtd_type, oobsize),
    )


def _serve(fd: int, geo: Geometry, profile_to: str | None) -> None:
    session = Session(fd, make_device(geo, open_store(geo)))
    if profile_to is None:
        session.serve()
        return
    prof = cProfile.Profile()
    prof.runcall(session.serve)
    prof.dump_stats(profile_to)


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def server_speed(
    kind: str = "nand", *, size: int = 16 << 20, rounds: int = 2, profile_to: str | None = None
) -> dict[str, object]:
    geo = geometry(kind, size)
    kernel_sock, server_sock = socket_pair()
    pid = os.fork()
    if pid == 0:  # the server
        kernel_sock.close()
        try:
            _serve(server_sock.fileno(), geo, profile_to)
        finally:
            os._exit(0)
    server_sock.close()
    kernel = FakeKernel(kernel_sock, timeout=60)
    try:
        kernel.init()
        block = geo.erasesize
        data = random.Random(1).randbytes(block)
        timings = {"erase": 0.0, "write": 0.0, "read": 0.0, "random": 0.0}
        counts = dict.fromkeys(timings, 0)
        rng = random.Random(2)
        page = max(geo.writesize, 2048)
        for _ in range(rounds):
            start = time.perf_counter()
            for addr in range(0, size, block):
                kernel.erase(addr, block)
            timings["erase"] += time.perf_counter() - start
            start = time.perf_counter()
            for addr in range(0, size, block):
                kernel.write(addr, data)
            timings["write"] += time.perf_counter() - start
            start = time.perf_counter()
            for addr in range(0, size, block):
                if kernel.read(addr, block)[0] != data:
                    raise ValueError(f"read back at {addr:#x} differs")
            timings["read"] += time.perf_counter() - start
            start = time.perf_counter()
            for _ in range(size // block * 8):
                kernel.read(rng.randrange(size // page) * page, page, p.IO_INBAND)
            timings["random"] += time.perf_counter() - start
            for key in ("erase", "write", "read"):
                counts[key] += size // block
            counts["random"] += size // block * 8
    finally:
        kernel_sock.close()  # the server sees EOF and returns
        _, status = os.waitpid(pid, 0)
    result: dict[str, object] = {
        "kind": "server",
        "device": kind,
        "size": size,
        "rounds": rounds,
        "exit_status": status,
        "seconds": timings,
    }
    for key, seconds in timings.items():
        result[f"{key}_per_s"] = _rate(counts[key], seconds)
    if profile_to is not None:
        out = io.StringIO()
        stats = pstats.Stats(profile_to, stream=out)
        stats.sort_stats("tottime").print_stats(25)
        result["profile"] = out.getvalue()
    return result

