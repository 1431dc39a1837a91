"""Throughput arithmetic shared by the tools."""

from __future__ import annotations

MIB = 1 << 20


def mib_per_s(nbytes: int, seconds: float) -> float:
    return round(nbytes / MIB / seconds, 3) if seconds > 0 else 0.0
