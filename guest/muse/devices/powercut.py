"""Power-cut emulation: number and log every op that reaches the media.

The innermost layer, right on the model: programs (in-band and OOB), erases
and markbads are numbered 1, 2, ... in the order they are applied, appended
to the oplog (if any) before they are applied, and then applied. When the op
about to run is the armed cut point, it is applied torn (torn.py), the log
and the image are flushed, and PowerCut is raised: the session stops without
replying, the process closes /dev/muse and exits as after a power loss.
Faults refused by the fault layer (grown-bad blocks) never get here, so they
take no op number.

With `every` (LO, HI) the cuts recur and the server lives on, the way UBI's
own emulation (tst_emulate_power_cut) works for its callers: the op at the cut
point is applied torn and fails with EROFS, the next cut is armed LO..HI ops
later, and power is back at once. The kernel side stops writing on that
error (UBI turns read-only), so the media holds what a real cut would leave
until the MTD is attached again: what integck's power-cut mode needs.
"""

from __future__ import annotations

import dataclasses
import errno
import threading

from ..errors import ConfigError, OpError, PowerCut
from ..oplog import ERASE, MARKBAD, PROGRAM, Op, OpLogWriter
from ..seeding import rng
from .base import Device, DeviceLayer
from .torn import TORN_MODES, apply_op, apply_torn

_NONE = memoryview(b"")


class PowerCutLayer(DeviceLayer):
    def __init__(
        self,
        device: Device,
        *,
        seed: int = 0,
        torn: str = "prefix",
        oplog: OpLogWriter | None = None,
        cut_at: int | None = None,
        every: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(device)
        if torn not in TORN_MODES:
            raise ConfigError(f"unknown torn-write mode {torn!r}: expected one of {TORN_MODES}")
        if every is not None and not 1 <= every[0] <= every[1]:
            raise ConfigError(f"power cuts every {every[0]}..{every[1]} ops: need 1 <= LO <= HI")
        self.device = device
        self.seed = seed
        self.torn = torn
        self.oplog = oplog
        self.lock = threading.Lock()  # ops and cut_at, shared with the control thread
        self.ops = 0
        self.cut_at = cut_at
        self.cut: Op | None = None
        self.every = every
        self.cuts = 0
        self._draw = rng(seed, "powercut-every")
        if every is not None and cut_at is None:
            self.cut_at = self._draw.randint(*every)

    def arm(self, at: int | None) -> None:
        """Cut at op `at` (None disarms); it must still lie ahead."""
        with self.lock:
            if at is not None and at <= self.ops:
                raise ConfigError(f"op {at} is not ahead: {self.ops} ops are done")
            self.cut_at = at

    def powercut_stats(self) -> dict[str, object]:
        with self.lock:
            cut = self.cut
            return {
                "ops": self.ops,
                "armed_at": self.cut_at,
                "cuts": self.cuts,
                "every": None if self.every is None else list(self.every),
                "cut": None if cut is None else {"op": cut.number, "what": cut.describe()},
                "seed": self.seed,
                "torn": self.torn,
                "oplog": None if self.oplog is None else self.oplog.path,
                "session": None if self.oplog is None else self.oplog.session,
            }

    def write(self, addr: int, flags: int, data: memoryview) -> int:
        return self._run(PROGRAM, addr, len(data), flags, data)

    def erase(self, addr: int, length: int) -> None:
        self._run(ERASE, addr, length)

    def mark_bad(self, addr: int) -> None:
        self._run(MARKBAD, addr)

    def _run(
        self, kind: bytes, addr: int, length: int = 0, flags: int = 0, data: memoryview = _NONE
    ) -> int:
        with self.lock:
            self.ops += 1
            number = self.ops
            cut = number == self.cut_at
        op = Op(kind, number, addr, length, flags, data, cut)
        if self.oplog is not None:
            self.oplog.append(op)
        if not cut:
            return apply_op(self.device, op)
        apply_torn(self.device, op, self.seed, self.torn)
        if self.oplog is not None:
            self.oplog.sync()
        self.device.sync()
        with self.lock:
            self.cut = dataclasses.replace(op, data=b"")  # not the request buffer
            self.cuts += 1
            if self.every is not None:
                self.cut_at = number + self._draw.randint(*self.every)
        if self.every is not None:
            raise OpError(errno.EROFS, f"power cut at op {number} ({op.describe()})")
        raise PowerCut(number, op.describe())

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self.oplog is not None:
                self.oplog.close()
