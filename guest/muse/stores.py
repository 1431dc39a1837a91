"""Backing stores: where page data and OOB bytes live.

A store knows nothing about flash semantics; it hands out writable
memoryviews over its bytes and fills erased ranges with 0xFF.

Layouts:
  memory   data and OOB in bytearrays (lost at exit).
  raw      IMAGE holds the data only (SIZE bytes, mmap'ed). If OOBSIZE > 0 the
           OOB bytes go to the sidecar IMAGE.oob (npages * OOBSIZE bytes, page
           order), so bad block markers persist with the image.
  raw+oob  IMAGE holds each page followed by its OOB bytes
           (npages * (WRITESIZE + OOBSIZE)): the layout `nanddump --oob`
           writes and `nandwrite --oob` reads.
A missing file is created erased (all 0xFF); an existing one of the wrong size
is refused. mmap keeps large devices out of RAM; flush() is msync.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from abc import ABC, abstractmethod
from collections.abc import Iterator

from .errors import ConfigError
from .geometry import Geometry

FORMATS = ("raw", "raw+oob")
_FILL_CHUNK = 1 << 20

Buffer = bytearray | mmap.mmap
_ONES: dict[int, bytes] = {}


def ones(length: int) -> bytes:
    """length 0xFF bytes; requests repeat a few lengths, so each is made once."""
    cached = _ONES.get(length)
    if cached is None:
        if len(_ONES) > 64:
            _ONES.clear()
        cached = _ONES[length] = b"\xff" * length
    return cached


class Store(ABC):
    def __init__(self, geometry: Geometry, kind: str, paths: list[str]) -> None:
        self.size = geometry.size
        self.writesize = geometry.writesize
        self.oobsize = geometry.oobsize
        self.npages = geometry.npages
        self.kind = kind
        self.paths = paths
        self.flushes = 0
        self._maps: list[mmap.mmap] = []

    @abstractmethod
    def data(self, addr: int, length: int) -> Iterator[memoryview]:
        """Writable views covering [addr, addr+length) of in-band data, in order."""

    def view(self, addr: int, length: int) -> memoryview | None:
        """One writable view of [addr, addr+length) of in-band data, if it is contiguous."""
        return None

    @abstractmethod
    def oob(self, page: int) -> memoryview:
        """Writable view of the OOB area of one page."""

    @abstractmethod
    def erase(self, page: int, count: int) -> None:
        """Fill data and OOB of count pages from page on with 0xFF."""

    def flush(self) -> None:
        for mapping in self._maps:
            mapping.flush()
        self.flushes += 1

    def close(self) -> None:
        self.flush()
        for mapping in self._maps:
            # A view still alive somewhere blocks close; the data is flushed, GC unmaps.
            with contextlib.suppress(BufferError):
                mapping.close()
        self._maps = []

    def info(self) -> dict[str, object]:
        return {"kind": self.kind, "paths": self.paths, "flushes": self.flushes}


class FlatStore(Store):
    """Data contiguous in one buffer, OOB (if any) contiguous in another."""

    def __init__(
        self, geometry: Geometry, kind: str, paths: list[str], data: Buffer, oob: Buffer | None
    ) -> None:
        super().__init__(geometry, kind, paths)
        self._maps = [buf for buf in (data, oob) if isinstance(buf, mmap.mmap)]
        self._data = memoryview(data)
        self._oob = memoryview(oob) if oob is not None else memoryview(bytearray())

    def data(self, addr: int, length: int) -> Iterator[memoryview]:
        yield self._data[addr : addr + length]

    def view(self, addr: int, length: int) -> memoryview | None:
        return self._data[addr : addr + length]

    def oob(self, page: int) -> memoryview:
        start = page * self.oobsize
        return self._oob[start : start + self.oobsize]

    def erase(self, page: int, count: int) -> None:
        start = page * self.writesize
        length = count * self.writesize
        self._data[start : start + length] = ones(length)
        if self.oobsize:
            start = page * self.oobsize
            length = count * self.oobsize
            self._oob[start : start + length] = ones(length)

    def close(self) -> None:
        self._data.release()
        self._oob.release()
        super().close()


class InterleavedStore(Store):
    """Each page's data followed by its OOB bytes (raw+oob)."""

    def __init__(self, geometry: Geometry, kind: str, paths: list[str], buf: Buffer) -> None:
        super().__init__(geometry, kind, paths)
        self._maps = [buf] if isinstance(buf, mmap.mmap) else []
        self._buf = memoryview(buf)
        self._stride = self.writesize + self.oobsize

    def data(self, addr: int, length: int) -> Iterator[memoryview]:
        page, offset = divmod(addr, self.writesize)
        while length > 0:
            take = min(length, self.writesize - offset)
            start = page * self._stride + offset
            yield self._buf[start : start + take]
            length -= take
            page += 1
            offset = 0

    def view(self, addr: int, length: int) -> memoryview | None:
        page, offset = divmod(addr, self.writesize)
        if offset + length > self.writesize:
            return None  # crosses into the OOB bytes of the page
        start = page * self._stride + offset
        return self._buf[start : start + length]

    def oob(self, page: int) -> memoryview:
        start = page * self._stride + self.writesize
        return self._buf[start : start + self.oobsize]

    def erase(self, page: int, count: int) -> None:
        # Pages are contiguous including their OOB, so one fill covers both.
        start = page * self._stride
        length = count * self._stride
        self._buf[start : start + length] = ones(length)

    def close(self) -> None:
        self._buf.release()
        super().close()


def image_size(geometry: Geometry, fmt: str) -> int:
    if fmt == "raw+oob":
        return geometry.npages * (geometry.writesize + geometry.oobsize)
    return geometry.size


def _map_file(path: str, size: int, layout: str) -> mmap.mmap:
    """mmap an existing file of exactly size bytes, or create it erased."""
    if not os.path.exists(path):
        try:
            with open(path, "xb") as new:
                chunk = b"\xff" * min(size, _FILL_CHUNK)
                left = size
                while left:
                    left -= new.write(chunk[: min(left, len(chunk))])
        except OSError as err:
            raise ConfigError(f"cannot create image {path}: {err.strerror}") from err
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as err:
        raise ConfigError(f"cannot open image {path}: {err.strerror}") from err
    try:
        actual = os.fstat(fd).st_size
        if actual != size:
            raise ConfigError(
                f"image {path} has {actual} bytes but the geometry needs {size} ({layout}); "
                "fix --size/--writesize/--oobsize/--image-format or remove the file"
            )
        return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)


def memory_store(geometry: Geometry) -> Store:
    oob = bytearray(b"\xff" * (geometry.npages * geometry.oobsize)) if geometry.oobsize else None
    return FlatStore(geometry, "memory", [], bytearray(b"\xff" * geometry.size), oob)


def open_store(geometry: Geometry, image: str | None = None, fmt: str = "raw") -> Store:
    """The store for a geometry: memory when image is None, else an mmap'ed file."""
    if image is None:
        return memory_store(geometry)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown image format {fmt!r}: expected one of {', '.join(FORMATS)}")
    ws, oobs, npages = geometry.writesize, geometry.oobsize, geometry.npages
    if fmt == "raw+oob":
        layout = f"raw+oob: {npages} pages of {ws}+{oobs} bytes"
        buf = _map_file(image, image_size(geometry, fmt), layout)
        return InterleavedStore(geometry, fmt, [image], buf)
    data = _map_file(image, geometry.size, f"raw: {npages} pages of {ws} bytes")
    if not oobs:
        return FlatStore(geometry, fmt, [image], data, None)
    sidecar = image + ".oob"
    try:
        oob = _map_file(sidecar, npages * oobs, f"OOB sidecar: {npages} pages of {oobs} bytes")
    except ConfigError:
        data.close()
        raise
    return FlatStore(geometry, fmt, [image, sidecar], data, oob)
