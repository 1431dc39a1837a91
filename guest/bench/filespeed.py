"""File throughput on a mounted file system: write + fsync, drop caches, read back.

Between write and read the file system is unmounted and mounted again with
the options /proc/mounts shows (when --mountpoint is given) and the page
cache is dropped, so the read comes from the flash and not from memory.
"""

from __future__ import annotations

import os
import random
import subprocess
import time

from .timing import mib_per_s


def _mount_entry(mountpoint: str) -> tuple[str, str]:
    with open("/proc/mounts") as mounts:
        for line in mounts:
            source, target, fstype = line.split()[:3]
            if target == mountpoint:
                return source, fstype
    raise ValueError(f"{mountpoint} is not a mount point")


def remount(mountpoint: str, options: str) -> None:
    """Unmount and mount again; /proc/mounts options are not all valid mount options
    (UBIFS shows ubi=N,vol=M), so the caller names the ones to mount with."""
    source, fstype = _mount_entry(mountpoint)
    subprocess.run(["umount", mountpoint], check=True)
    subprocess.run(["mount", "-t", fstype, "-o", options, source, mountpoint], check=True)


def drop_caches() -> None:
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as knob:
        knob.write("3\n")


def file_speed(
    directory: str,
    *,
    size: int,
    chunk: int,
    mountpoint: str | None = None,
    mount_options: str = "defaults",
) -> dict[str, object]:
    if size % chunk:
        raise ValueError(f"size {size} must be a multiple of the chunk {chunk}")
    path = os.path.join(directory, "bench.dat")
    pattern = random.Random(size).randbytes(chunk)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        start = time.perf_counter()
        for _ in range(size // chunk):
            os.write(fd, pattern)
        os.fsync(fd)
        write_s = time.perf_counter() - start
    finally:
        os.close(fd)
    if mountpoint:
        remount(mountpoint, mount_options)
    drop_caches()
    buf = bytearray(chunk)
    bad = 0
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        start = time.perf_counter()
        for _ in range(size // chunk):
            if os.readv(fd, [buf]) != chunk:
                raise OSError(f"short read of {path}")
            bad += buf != pattern
        read_s = time.perf_counter() - start
    finally:
        os.close(fd)
    os.unlink(path)
    if bad:
        raise ValueError(f"{bad} chunks of {path} read back differ from what was written")
    return {
        "kind": "file",
        "directory": directory,
        "size": size,
        "chunk": chunk,
        "seconds": {"write": write_s, "read": read_s},
        "write_MiBps": mib_per_s(size, write_s),
        "read_MiBps": mib_per_s(size, read_s),
    }
