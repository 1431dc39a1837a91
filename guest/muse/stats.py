"""Request counters, dumped as JSON on SIGUSR1 and at exit."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

from .protocol import opcode_name

StatsSource = Callable[[], dict[str, object]]


class Stats:
    """Per-opcode request and error counts plus IO volume.

    Device-level numbers (erase counts, bad blocks) and store numbers
    (flushes) are pulled from their owners when a snapshot is taken.
    """

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.requests: dict[int, int] = {}
        self.errors: dict[int, int] = {}
        self.malformed = 0
        # READ/WRITE in-args whose padding is not 0: muse.c leaves it uninitialised
        # (stack bytes reach userspace), so nonzero counts expose that leak.
        self.dirty_padding = 0
        self.bytes = {"read": 0, "written": 0, "oob_read": 0, "oob_written": 0}
        self.soft_errors = {"read": 0, "write": 0}
        self.sources: dict[str, StatsSource] = {}

    def request(self, opcode: int) -> None:
        self.requests[opcode] = self.requests.get(opcode, 0) + 1

    def error(self, opcode: int) -> None:
        self.errors[opcode] = self.errors.get(opcode, 0) + 1

    def snapshot(self) -> dict[str, object]:
        ops = {
            opcode_name(op): {"requests": count, "errors": self.errors.get(op, 0)}
            for op, count in sorted(self.requests.items())
        }
        snap: dict[str, object] = {
            "pid": os.getpid(),
            "uptime_s": round(time.monotonic() - self.started, 3),
            "ops": ops,
            "malformed": self.malformed,
            "dirty_padding": self.dirty_padding,
            "bytes": dict(self.bytes),
            "soft_errors": dict(self.soft_errors),
        }
        for key, source in self.sources.items():
            snap[key] = source()
        return snap

    def write_json(self, path: str) -> None:
        """Atomic replace, so a reader never sees half a file."""
        tmp = f"{path}.tmp.{os.getpid()}"
        with open(tmp, "w") as out:
            json.dump(self.snapshot(), out, indent=1, sort_keys=True)
            out.write("\n")
        os.replace(tmp, path)
