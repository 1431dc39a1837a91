"""Applying logged ops to a model, whole or torn by a power cut.

Live cuts and replay both call apply_torn(), so a replay at op N with the
same seed reproduces a live cut at N byte for byte.

An op covers units the hardware handles one after the other: NAND programs
one page at a time (an OOB program: one page's OOB area), NOR one write
buffer, RAM the whole request; erases go block by block; markbad programs the
two marker bytes. A cut picks the unit in flight at random (seeded by seed
and op number): units before it complete, units after it untouched, and the
unit itself torn in one of two modes:
  prefix  programs: the first k bytes of the unit programmed, k in
          [0, unit length); erases: the first k pages (data and OOB) erased,
          k in [0, pages per block) (NOR/RAM: bytes)
  bits    every bit the op would change (1->0 for a program, 0->1 for an
          erase) changes with probability 1/2, independently
The unit never completes: the op that was in flight is not done. The model
computes the complete result first (apply, snapshot, then roll part of it
back), so torn results obey the same program/erase rules as whole ones.
"""

from __future__ import annotations

import contextlib
import random
import zlib
from collections.abc import Iterator

from .. import mtdabi
from ..errors import OpError
from ..geometry import BBM_BYTES
from ..oplog import ERASE, MARKBAD, PROGRAM, Op
from ..protocol import IO_INBAND
from ..seeding import rng
from ..stores import Store
from .base import Device, decode_mode
from .nand import NandDevice

TORN_MODES = ("prefix", "bits")

# Store views of one unit, and the granularity of its prefix in bytes.
Unit = tuple[list[memoryview], int]


def apply_op(device: Device, op: Op) -> int:
    """Apply an op whole; returns a program's soft error, raises OpError like the model."""
    if op.kind == PROGRAM:
        return device.write(op.addr, op.flags, memoryview(op.data))
    if op.kind == ERASE:
        device.erase(op.addr, op.length)
    else:
        device.mark_bad(op.addr)
    return 0


def apply_torn(device: Device, op: Op, seed: int, mode: str) -> None:
    """Apply op as a power cut leaves it (see the module docstring)."""
    units = list(_units(device, op))
    before = [_gather(views) for views, _ in units]
    with contextlib.suppress(OpError):  # a refused op changes nothing, or stops where it failed
        apply_op(device, op)
    if not units:
        return
    choice = rng(seed, "torn", op.number)
    torn = choice.randrange(len(units))
    for (views, _), old in zip(units[torn + 1 :], before[torn + 1 :], strict=True):
        _scatter(views, old)
    views, grain = units[torn]
    _scatter(views, tear(before[torn], _gather(views), grain, mode, choice))


def tear(old: bytes, new: bytes, grain: int, mode: str, choice: random.Random) -> bytes:
    """A state between old and new (never new itself, unless nothing changes)."""
    if mode == "prefix":
        cut = grain * choice.randrange(max(1, len(old) // grain))
        return new[:cut] + old[cut:]
    if mode != "bits":
        raise ValueError(f"unknown torn-write mode {mode!r}: expected one of {TORN_MODES}")
    was = int.from_bytes(old, "little")
    changed = (was ^ int.from_bytes(new, "little")) & choice.getrandbits(8 * len(old))
    return (was ^ changed).to_bytes(len(old), "little")


def _units(device: Device, op: Op) -> Iterator[Unit]:
    geo = device.geometry
    store = device.store
    if op.kind == PROGRAM:
        length = len(op.data)
        try:
            area, _ = decode_mode(op.flags)
        except OpError:
            return
        if area != IO_INBAND:
            if isinstance(device, NandDevice):
                with contextlib.suppress(OpError):
                    for page, start, end in device.oob_spans(op.addr, area, length):
                        yield [store.oob(page)[start:end]], 1
            return
        if not length or op.addr + length > geo.size:
            return
        if geo.is_nand:
            step = geo.writesize
        elif geo.mtd_type == mtdabi.MTD_NORFLASH:
            step = geo.effective_writebufsize
        else:
            step = length
        pos = op.addr
        while pos < op.addr + length:
            take = min(op.addr + length - pos, step - pos % step)
            yield list(store.data(pos, take)), 1
            pos += take
    elif op.kind == ERASE:
        size = geo.erasesize
        if not op.length or op.addr % size or op.length % size or op.addr + op.length > geo.size:
            return
        for block in range(op.addr // size, (op.addr + op.length) // size):
            yield _block_views(store, geo.is_nand, block * size, size, geo.writesize)
    elif op.kind == MARKBAD and geo.is_nand and op.addr < geo.size:
        page = op.addr // geo.erasesize * geo.pages_per_block
        yield [store.oob(page)[:BBM_BYTES]], 1


def _block_views(store: Store, nand: bool, addr: int, size: int, writesize: int) -> Unit:
    if not nand:
        return list(store.data(addr, size)), writesize
    views: list[memoryview] = []
    for page in range(addr // writesize, (addr + size) // writesize):
        views.extend(store.data(page * writesize, writesize))
        views.append(store.oob(page))
    # A prefix of whole pages, each page's data with its OOB.
    return views, writesize + store.oobsize


def _gather(views: list[memoryview]) -> bytes:
    return b"".join(bytes(view) for view in views)


def _scatter(views: list[memoryview], data: bytes) -> None:
    pos = 0
    for view in views:
        view[:] = data[pos : pos + len(view)]
        pos += len(view)


def state_crc32(store: Store) -> int:
    """CRC-32 of all data then all OOB bytes, independent of the image layout."""
    crc = 0
    for chunk in store.data(0, store.size):
        crc = zlib.crc32(chunk, crc)
    for page in range(store.npages if store.oobsize else 0):
        crc = zlib.crc32(store.oob(page), crc)
    return crc
