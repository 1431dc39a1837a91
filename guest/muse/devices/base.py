"""The device-model interface, shared checks, and the pass-through layer.

Every model op raises OpError to fail a request (the session answers -errno)
and returns a soft error for reads and writes: 0, or a negative errno such as
-EUCLEAN/-EBADMSG that the kernel turns into bit-flip/ECC reports while still
taking the data. Reads fill the caller's buffer (the reply buffer, so no copy
is made per request). DeviceLayer is the seam for later fault injection,
power-cut logging and hostile behaviour: wrap a model, override an op.
"""

from __future__ import annotations

import errno
from array import array
from collections.abc import Sequence
from typing import Protocol

from .. import mtdabi
from ..errors import OpError
from ..geometry import Geometry
from ..protocol import IO_INBAND, IO_KNOWN, IO_OOB_AUTO, IO_OOB_PLACE, IO_RAW
from ..stores import Store, ones

_AREAS = (IO_INBAND, IO_OOB_AUTO, IO_OOB_PLACE)


class FlashOps(Protocol):
    """What the session calls; models and layers both provide it."""

    geometry: Geometry
    # (strength, step size) of the model's ECC engine, for MUSE 7.35's INIT keys.
    ecc_geometry: tuple[int, int] | None

    @property
    def last_bitflips(self) -> tuple[int, int]:
        """(worst ECC step, total) bit-flips the last read corrected (7.35's reply)."""

    def read(self, addr: int, flags: int, out: memoryview) -> int: ...
    def read_disturbed(self, addr: int, flags: int, out: memoryview,
                       flips: Sequence[int]) -> int: ...
    def write(self, addr: int, flags: int, data: memoryview) -> int: ...
    def erase(self, addr: int, length: int) -> None: ...
    def is_bad(self, addr: int) -> bool: ...
    def mark_bad(self, addr: int) -> None: ...
    def sync(self) -> None: ...
    def close(self) -> None: ...
    def stats(self) -> dict[str, object]: ...


def decode_mode(flags: int) -> tuple[int, bool]:
    """(area, raw) of an IO request; exactly one area bit must be set."""
    area = flags & (IO_INBAND | IO_OOB_AUTO | IO_OOB_PLACE)
    if flags & ~IO_KNOWN or area not in _AREAS:
        raise OpError(
            errno.EINVAL, f"IO flags {flags:#x}: need exactly one of INBAND, OOB_AUTO, OOB_PLACE"
        )
    return area, bool(flags & IO_RAW)


def flip_bits(out: memoryview, addr: int, flips: Sequence[int]) -> None:
    """Invert the device bits (bit 8*a+b is bit b of byte a) that fall into out, which
    holds the bytes read from addr."""
    for bit in flips:
        at = bit // 8 - addr
        if 0 <= at < len(out):
            out[at] ^= 1 << (bit % 8)


def is_erased(view: memoryview) -> bool:
    # bytes() then == is a memcmp; comparing a memoryview directly is 60x slower.
    return bytes(view) == ones(len(view))


def program_and(dst: memoryview, src: memoryview) -> None:
    """Flash programming can only clear bits: dst &= src."""
    if is_erased(dst):
        dst[:] = src
        return
    size = len(dst)
    merged = int.from_bytes(dst, "little") & int.from_bytes(src, "little")
    dst[:] = merged.to_bytes(size, "little")


class Device:
    """RAM-like defaults: in-band only, no bad blocks. Subclasses set _program."""

    ecc_geometry: tuple[int, int] | None = None
    last_bitflips = (0, 0)

    def __init__(self, geometry: Geometry, store: Store) -> None:
        self.geometry = geometry
        self.store = store
        self.erase_counts = array("L", [0]) * geometry.nblocks
        self._writeable = bool(geometry.flags & mtdabi.MTD_WRITEABLE)

    # -- checks shared by all models
    def _check_range(self, addr: int, length: int) -> None:
        if addr + length > self.geometry.size:
            raise OpError(
                errno.EINVAL,
                f"[{addr:#x}, {addr + length:#x}) is beyond the device end {self.geometry.size:#x}",
            )

    def _check_writeable(self) -> None:
        if not self._writeable:
            raise OpError(errno.EROFS, "device is not MTD_WRITEABLE")

    def _pairs(self, addr: int, data: memoryview) -> Sequence[tuple[memoryview, memoryview]]:
        """(store view, matching slice of data) over a range."""
        view = self.store.view(addr, len(data))
        if view is not None:
            return ((view, data),)
        pairs = []
        pos = 0
        for chunk in self.store.data(addr, len(data)):
            pairs.append((chunk, data[pos : pos + len(chunk)]))
            pos += len(chunk)
        return pairs

    @property
    def plain_reads(self) -> bool:
        """A plain in-band read returns the stored bytes as they are: read_view() may
        answer it (a model that checks or changes what it reads says no)."""
        return type(self).read is Device.read

    def read_view(self, addr: int, length: int) -> memoryview | None:
        """The stored bytes a plain in-band read returns, when they are contiguous
        (the session then writes them out without copying); None: use read()."""
        if addr + length > self.geometry.size:
            return None
        return self.store.view(addr, length)

    # -- ops
    def read(self, addr: int, flags: int, out: memoryview) -> int:
        if flags != IO_INBAND:
            area, raw = decode_mode(flags)
            if area != IO_INBAND:
                return self._read_oob(addr, area, raw, out)
        self._check_range(addr, len(out))
        view = self.store.view(addr, len(out))
        if view is not None:
            out[:] = view
            return 0
        pos = 0
        for chunk in self.store.data(addr, len(out)):
            out[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
        return 0

    def read_disturbed(self, addr: int, flags: int, out: memoryview,
                       flips: Sequence[int]) -> int:
        """read() with the device bits in flips sensed inverted (read disturb): a model
        with an ECC engine flips them before it corrects; here they reach the caller."""
        soft = Device.read(self, addr, flags, out)     # not a subclass's read: it may call here
        flip_bits(out, addr, flips)
        return soft

    def write(self, addr: int, flags: int, data: memoryview) -> int:
        raw = False
        if flags != IO_INBAND:
            area, raw = decode_mode(flags)
            self._check_writeable()
            if area != IO_INBAND:
                return self._write_oob(addr, area, raw, data)
        elif not self._writeable:
            self._check_writeable()
        self._check_range(addr, len(data))
        return self._program(addr, data, raw)

    def erase(self, addr: int, length: int) -> None:
        self._check_writeable()
        self._check_range(addr, length)
        size = self.geometry.erasesize
        if addr % size or length % size:
            raise OpError(
                errno.EINVAL,
                f"erase [{addr:#x}, +{length:#x}) is not aligned to the eraseblock size {size:#x}",
            )
        for block in range(addr // size, (addr + length) // size):
            self._erase_block(block)
            self.erase_counts[block] += 1

    def is_bad(self, addr: int) -> bool:
        self._check_range(addr, 1)
        return False

    def mark_bad(self, addr: int) -> None:
        raise OpError(errno.EOPNOTSUPP, "only NAND types have bad blocks")

    def sync(self) -> None:
        self.store.flush()

    def close(self) -> None:
        self.store.close()

    def stats(self) -> dict[str, object]:
        return {
            "type": mtdabi.NAME_BY_TYPE.get(self.geometry.mtd_type, str(self.geometry.mtd_type)),
            "erase_counts": self.erase_counts.tolist(),
            "bad_blocks": self.bad_blocks(),
        }

    def bad_blocks(self) -> list[int]:
        return []

    # -- what models override
    def _program(self, addr: int, data: memoryview, raw: bool) -> int:
        raise NotImplementedError

    def _erase_block(self, block: int) -> None:
        ppb = self.geometry.pages_per_block
        self.store.erase(block * ppb, ppb)

    def _read_oob(self, addr: int, area: int, raw: bool, out: memoryview) -> int:
        raise OpError(errno.EOPNOTSUPP, "this device type has no OOB area")

    def _write_oob(self, addr: int, area: int, raw: bool, data: memoryview) -> int:
        raise OpError(errno.EOPNOTSUPP, "this device type has no OOB area")


class DeviceLayer:
    """Forwards every op to an inner FlashOps; subclass and override to interpose."""

    def __init__(self, inner: FlashOps) -> None:
        self.inner = inner
        self.geometry = inner.geometry
        self.ecc_geometry = inner.ecc_geometry

    @property
    def last_bitflips(self) -> tuple[int, int]:
        return self.inner.last_bitflips

    def read(self, addr: int, flags: int, out: memoryview) -> int:
        return self.inner.read(addr, flags, out)

    def read_disturbed(self, addr: int, flags: int, out: memoryview,
                       flips: Sequence[int]) -> int:
        return self.inner.read_disturbed(addr, flags, out, flips)

    def write(self, addr: int, flags: int, data: memoryview) -> int:
        return self.inner.write(addr, flags, data)

    def erase(self, addr: int, length: int) -> None:
        self.inner.erase(addr, length)

    def is_bad(self, addr: int) -> bool:
        return self.inner.is_bad(addr)

    def mark_bad(self, addr: int) -> None:
        self.inner.mark_bad(addr)

    def sync(self) -> None:
        self.inner.sync()

    def close(self) -> None:
        self.inner.close()

    def stats(self) -> dict[str, object]:
        return self.inner.stats()
