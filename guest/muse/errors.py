"""Exceptions shared by the server layers."""

from __future__ import annotations

import errno
import os


class ConfigError(Exception):
    """A user-facing configuration problem: the CLI prints it and exits 1."""


class DeviceUnavailable(Exception):
    """/dev/muse (or the given device) could not be opened: the CLI exits 2."""


class OpError(Exception):
    """A request fails: the session answers it with -errno and no payload."""

    def __init__(self, err: int, message: str = "") -> None:
        self.errno = err
        self.message = message
        super().__init__(f"{errno.errorcode.get(err, str(err))}: {message or os.strerror(err)}")


class PowerCut(Exception):
    """Emulated power loss during op `op`: the session stops without replying."""

    def __init__(self, op: int, what: str) -> None:
        self.op = op
        self.what = what
        super().__init__(f"power cut at op {op} ({what})")
