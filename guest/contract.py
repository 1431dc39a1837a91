"""What the guest prints and the host reads: one module both sides import.

Standard library only (it runs in the guest too). It holds:
  - the MUSE server's stdout contract: one "muse: registered mtdN ..." line per
    MTD, then "muse: ready" (guest/muse/lifecycle.py prints them from here);
  - start_server(): spawn `python3 -m guest.muse serve ARGS` through any
    spawner (the host's TestGuest.spawn, the bench's VM.spawn) and wait
    until it is ready, with the MTDs the kernel registered;
  - /proc/mtd parsed, and an MTD's sysfs geometry;
  - the in-kernel controls: the modprobe lines of nandsim and mtdram and the
    names their MTDs get.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

SERVE = "python3 -m guest.muse serve"
READY_LINE = "muse: ready"
READY_PATTERN = r"^muse: ready"
_REGISTERED = re.compile(r"^muse: registered mtd(\d+) name=(\S+) size=(\d+) dev=(\S+)", re.M)
_PROC_MTD = re.compile(r'^mtd(\d+): ([0-9a-f]+) ([0-9a-f]+) "(.*)"$', re.M)

# 64 MiB, 2 KiB pages, 128 KiB eraseblocks, 64 B OOB: a geometry nandsim and MUSE share.
NANDSIM_64MIB = ("modprobe nandsim first_id_byte=0x20 second_id_byte=0xa2 "
                 "third_id_byte=0x00 fourth_id_byte=0x15")
# The same chip as an MLC (2 bits per cell, third ID byte) with 4 KiB pages, 128 B OOB and
# 256 KiB eraseblocks (fourth ID byte 0x26); the NAND core allows no subpages on MLC.
NANDSIM_64MIB_MLC = ("modprobe nandsim first_id_byte=0x20 second_id_byte=0xa2 "
                     "third_id_byte=0x14 fourth_id_byte=0x26")
NANDSIM_NAME = "NAND simulator partition 0"
MTDRAM_NAME = "mtdram test device"
SYSFS_GEOMETRY = ("size", "erasesize", "writesize", "oobsize", "subpagesize")


def mtdram_modprobe(total_kib: int, erase_kib: int) -> str:
    return f"modprobe mtdram total_size={total_kib} erase_size={erase_kib}"


@dataclass(frozen=True)
class RegisteredMtd:
    """One MTD a server announced: index, name, size in bytes, device node."""

    index: int
    name: str
    size: int
    dev: str

    def line(self) -> str:
        return f"muse: registered mtd{self.index} name={self.name} size={self.size} dev={self.dev}"


def registered(text: str) -> list[RegisteredMtd]:
    """The MTDs a server's stdout announced, in order."""
    return [RegisteredMtd(int(m[0]), m[1], int(m[2]), m[3]) for m in _REGISTERED.findall(text)]


def is_ready(text: str) -> bool:
    return re.search(READY_PATTERN, text, re.M) is not None


def serve_command(args: str, python: str = "python3") -> str:
    """The shell command that runs a server as the spawned process itself (exec)."""
    return f"exec {python} -m guest.muse serve {args}"


class ServerProcess(Protocol):
    def expect(self, pattern: str, timeout: float) -> object: ...
    def text(self) -> str: ...


P = TypeVar("P", bound=ServerProcess)


class NotRegistered(AssertionError):
    """A server said it was ready without announcing an MTD."""


def start_server(spawn: Callable[[str], P], args: str, timeout: float = 180,
                 python: str = "python3") -> tuple[P, list[RegisteredMtd]]:
    """Spawn a server with args; once it printed its ready line, it and its MTDs.
    The spawner's expect() raises when the server exits or the timeout passes first."""
    proc = spawn(serve_command(args, python))
    proc.expect(READY_PATTERN, timeout)
    mtds = registered(proc.text())
    if not mtds:
        raise NotRegistered(f"server ready without registered MTDs:\n{proc.text()}")
    return proc, mtds


@dataclass(frozen=True)
class ProcMtd:
    """One line of /proc/mtd."""

    index: int
    size: int
    erasesize: int
    name: str


def proc_mtd(text: str) -> list[ProcMtd]:
    """The MTDs of a /proc/mtd read, in order."""
    return [ProcMtd(int(m[0]), int(m[1], 16), int(m[2], 16), m[3])
            for m in _PROC_MTD.findall(text)]


def mtd_index(text: str, name: str) -> int | None:
    """The index of the MTD called name in a /proc/mtd read (None: not there)."""
    return next((m.index for m in proc_mtd(text) if m.name == name), None)


def geometry_command(index: int) -> str:
    """A shell command printing mtdN's SYSFS_GEOMETRY values, one per line."""
    return f"cd /sys/class/mtd/mtd{index} && cat {' '.join(SYSFS_GEOMETRY)}"


def parse_geometry(output: str) -> dict[str, int]:
    return dict(zip(SYSFS_GEOMETRY, map(int, output.split()), strict=True))
