"""RAM, ROM and DataFlash: a write simply replaces the bytes."""

from __future__ import annotations

from .base import Device


class RamDevice(Device):
    """Any write overwrites (mtdram semantics); erase fills 0xFF.

    ROM is the same model announced without MTD_WRITEABLE, so writes and
    erases fail with -EROFS. DataFlash chips erase internally before a page
    write, which from the host's view is also an overwrite.
    """

    def _program(self, addr: int, data: memoryview, raw: bool) -> int:
        for dst, src in self._pairs(addr, data):
            dst[:] = src
        return 0
