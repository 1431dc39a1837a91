"""A model for geometry the real models cannot serve (hostile --unchecked runs).

Reads return 0xFF (erased flash), writes, erases and markbads are accepted
and forgotten, nothing is bad. It keeps no store, so any announced size
works, up to 2^64 bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..geometry import Geometry


class TrivialDevice:
    ecc_geometry: tuple[int, int] | None = None
    last_bitflips = (0, 0)

    def __init__(self, geometry: Geometry, reason: str) -> None:
        self.geometry = geometry
        self.reason = reason
        self.counts = {"reads": 0, "writes": 0, "erases": 0, "markbads": 0}
        self._ones = b""

    def read(self, addr: int, flags: int, out: memoryview) -> int:
        self.counts["reads"] += 1
        if len(self._ones) != len(out):
            self._ones = b"\xff" * len(out)
        out[:] = self._ones
        return 0

    def read_disturbed(self, addr: int, flags: int, out: memoryview,
                       flips: Sequence[int]) -> int:
        return self.read(addr, flags, out)      # erased flash has no bits worth flipping

    def write(self, addr: int, flags: int, data: memoryview) -> int:
        self.counts["writes"] += 1
        return 0

    def erase(self, addr: int, length: int) -> None:
        self.counts["erases"] += 1

    def is_bad(self, addr: int) -> bool:
        return False

    def mark_bad(self, addr: int) -> None:
        self.counts["markbads"] += 1

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass

    def stats(self) -> dict[str, object]:
        return {"type": "trivial", "reason": self.reason, **self.counts}
