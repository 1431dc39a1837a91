"""NOR flash: programming clears bits, erase sets whole blocks to 0xFF."""

from __future__ import annotations

from .base import Device, program_and


class NorDevice(Device):
    """new = old & data, programmed one write buffer at a time.

    CFI chips program at most WRITEBUFSIZE bytes per command and never across
    a write-buffer boundary; the model walks those windows in order so that
    later power-cut emulation can stop between two of them.
    """

    def _program(self, addr: int, data: memoryview, raw: bool) -> int:
        window = self.geometry.effective_writebufsize
        pos = 0
        while pos < len(data):
            take = min(len(data) - pos, window - (addr + pos) % window)
            self._program_window(addr + pos, data[pos : pos + take])
            pos += take
        return 0

    def _program_window(self, addr: int, data: memoryview) -> None:
        for dst, src in self._pairs(addr, data):
            program_and(dst, src)
