"""Raw MTD throughput through the mtdchar device, like mtd-utils' flash_speed.

Phases over the first REGION bytes of /dev/mtdN, in this order:
  erase   MEMERASE ioctl, one eraseblock per call
  write   pwrite of CHUNK bytes (one eraseblock by default), a fixed random pattern
  read    preadv into one reused buffer; every chunk is compared to the pattern
          (a fast but wrong device must not score)
  random  page-sized preads at seeded random page-aligned offsets for a fixed time
Each phase is timed with perf_counter around the system calls only, and the
erase, write and read phases repeat over the region until they took at least
MIN_SECONDS (a write pass after the first is preceded by an untimed erase): the
guest clock may tick in jiffies (4 ms) when the kernel found no better source.
"""

from __future__ import annotations

import fcntl
import os
import random
import struct
import time
from pathlib import Path

from .timing import mib_per_s

# _IOW('M', 2, struct erase_info_user { __u32 start; __u32 length; })
MEMERASE = 0x40084D02
_ERASE_INFO = struct.Struct("=II")


def sysfs_geometry(device: str) -> dict[str, int]:
    name = Path(device).name
    base = Path("/sys/class/mtd") / name
    return {key: int((base / key).read_text()) for key in ("size", "erasesize", "writesize")}


def _erase(fd: int, region: int, erasesize: int) -> None:
    for addr in range(0, region, erasesize):
        fcntl.ioctl(fd, MEMERASE, _ERASE_INFO.pack(addr, erasesize))


def _write(fd: int, region: int, pattern: bytes) -> None:
    chunk = len(pattern)
    for addr in range(0, region, chunk):
        if os.pwrite(fd, pattern, addr) != chunk:
            raise OSError(f"short write at {addr:#x}")


def _read(fd: int, region: int, buf: bytearray, pattern: bytes) -> int:
    """Read the region back; returns how many chunks differ from the pattern."""
    chunk = len(buf)
    bad = 0
    for addr in range(0, region, chunk):
        os.lseek(fd, addr, os.SEEK_SET)
        if os.readv(fd, [buf]) != chunk:
            raise OSError(f"short read at {addr:#x}")
        bad += buf != pattern
    return bad


def mtd_speed(
    device: str,
    *,
    region: int,
    chunk: int = 0,
    random_io: int = 2048,
    random_seconds: float = 2.0,
    min_seconds: float = 0.5,
    seed: int = 1,
) -> dict[str, object]:
    geo = sysfs_geometry(device)
    erasesize, writesize = geo["erasesize"], geo["writesize"]
    region = min(region, geo["size"])
    chunk = chunk or erasesize
    if region % erasesize or region % chunk or chunk % writesize:
        raise ValueError(
            f"region {region} and chunk {chunk} must be multiples of the eraseblock "
            f"({erasesize}) and page ({writesize}) sizes"
        )
    io = max(random_io, writesize)
    pattern = random.Random(seed).randbytes(chunk)
    buf = bytearray(chunk)
    fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    passes = {"erase": 0, "write": 0, "read": 0}
    try:
        erase_s = 0.0
        while erase_s < min_seconds or not passes["erase"]:
            start = time.perf_counter()
            _erase(fd, region, erasesize)
            erase_s += time.perf_counter() - start
            passes["erase"] += 1

        write_s = 0.0
        while write_s < min_seconds or not passes["write"]:
            if passes["write"]:
                _erase(fd, region, erasesize)  # NAND: no program over programmed pages
            start = time.perf_counter()
            _write(fd, region, pattern)
            write_s += time.perf_counter() - start
            passes["write"] += 1

        read_s = 0.0
        while read_s < min_seconds or not passes["read"]:
            start = time.perf_counter()
            bad = _read(fd, region, buf, pattern)
            read_s += time.perf_counter() - start
            passes["read"] += 1
            if bad:
                raise ValueError(f"{bad} chunks read back differ from what was written")

        rng = random.Random(seed + 1)
        slots = region // io
        small = bytearray(io)
        ops = 0
        start = time.perf_counter()
        deadline = start + random_seconds
        now = start
        while now < deadline:
            os.lseek(fd, rng.randrange(slots) * io, os.SEEK_SET)
            os.readv(fd, [small])
            ops += 1
            now = time.perf_counter()
        random_s = now - start
    finally:
        os.close(fd)
    return {
        "kind": "mtd",
        "device": device,
        "geometry": geo,
        "region": region,
        "chunk": chunk,
        "random_io": io,
        "seconds": {"erase": erase_s, "write": write_s, "read": read_s, "random": random_s},
        "passes": passes,
        "random_ops": ops,
        "erase_MiBps": mib_per_s(region * passes["erase"], erase_s),
        "write_MiBps": mib_per_s(region * passes["write"], write_s),
        "read_MiBps": mib_per_s(region * passes["read"], read_s),
        "random_read_ops": round(ops / random_s, 1) if random_s > 0 else 0.0,
    }
