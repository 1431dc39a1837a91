"""The operation log: every program, erase and markbad that reaches the media.

Binary, append-only, little-endian. A file is a sequence of records:

  offset size  field
       0    1  kind: 'H' session header, 'P' program, 'E' erase, 'B' markbad
       1    1  mark: 1 on the op a live power cut tore (the session's last op)
       2    2  MUSE IO flags of a program (INBAND/OOB_AUTO/OOB_PLACE/RAW)
       4    4  payload length
       8    8  op number (1, 2, ... within a session; 0 for a header)
      16    8  address (programs: as sent, OOB included; erase/markbad: byte)
      24    8  length (program: data bytes; erase: bytes; markbad: 0)
      32    n  payload: a program's data, a header's JSON
    32+n    4  CRC-32 (zlib) of bytes 0 .. 32+n

Each server run appends a session: a header (JSON: geometry, model options,
seed, torn-write mode, CRC-32 of the image it started from) followed by its
ops, written before they are applied so the op a power cut interrupts is in
the log. A record cut short by a crash ends the readable log; the next run
truncates it away before appending. Ops that the model then refused (say a
misaligned program) are logged too: replaying them fails the same way.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .errors import ConfigError
from .protocol import IO_INBAND

HEADER, PROGRAM, ERASE, MARKBAD = b"H", b"P", b"E", b"B"
_KINDS = {HEADER: "header", PROGRAM: "program", ERASE: "erase", MARKBAD: "markbad"}
_HEAD = struct.Struct("<cBHIQQQ")
_CRC = struct.Struct("<I")
FORMAT = "muse-oplog"
VERSION = 1


@dataclass(frozen=True)
class Op:
    kind: bytes  # PROGRAM, ERASE or MARKBAD
    number: int
    addr: int
    length: int = 0
    flags: int = 0
    data: bytes | memoryview = b""
    torn: bool = False  # a live power cut happened during this op

    @property
    def name(self) -> str:
        if self.kind == PROGRAM and not self.flags & IO_INBAND:
            return "program-oob"
        return _KINDS[self.kind]

    def describe(self) -> str:
        return f"{self.name} {self.addr:#x}"


@dataclass
class Session:
    number: int
    header: dict[str, object]
    ops: int = 0
    cut: int | None = None  # the op a live power cut tore


def _record(kind: bytes, number: int, addr: int, length: int, flags: int, mark: int,
            payload: bytes | memoryview) -> list[bytes | memoryview]:  # fmt: skip
    head = _HEAD.pack(kind, mark, flags, len(payload), number, addr, length)
    crc = zlib.crc32(payload, zlib.crc32(head))
    return [head, payload, _CRC.pack(crc)]


class OpLogWriter:
    """Appends one session to the log at path."""

    def __init__(self, path: str, header: dict[str, object]) -> None:
        self.path = path
        sessions, end = scan(path) if os.path.exists(path) else ([], 0)
        self.session = len(sessions) + 1
        self.header = {"format": FORMAT, "version": VERSION, "session": self.session, **header}
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise ConfigError(f"cannot open oplog {path}: {err.strerror}") from err
        os.ftruncate(self._fd, end)  # drop a record cut short by a crash
        os.lseek(self._fd, end, os.SEEK_SET)
        self.records = 0
        self._write(_record(HEADER, 0, 0, 0, 0, 0, json.dumps(self.header).encode()))

    def append(self, op: Op) -> None:
        mark = int(op.torn)
        self._write(_record(op.kind, op.number, op.addr, op.length, op.flags, mark, op.data))

    def _write(self, parts: list[bytes | memoryview]) -> None:
        total = sum(len(part) for part in parts)
        written = os.writev(self._fd, parts)
        if written != total:  # rare: finish what a signal interrupted
            rest = b"".join(bytes(part) for part in parts)[written:]
            while rest:
                rest = rest[os.write(self._fd, rest) :]
        self.records += 1

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


class OpLogReader:
    """Iterates the readable records of a log; `truncated` tells if a bad tail was left."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.truncated = False
        self.end = 0  # offset after the last good record

    def __iter__(self) -> Iterator[Session | Op]:
        """Sessions (at their header, counts not yet filled in) and their ops, in order."""
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 (closed by the with below)
        except OSError as err:
            raise ConfigError(f"cannot read oplog {self.path}: {err.strerror}") from err
        with handle:
            sessions = 0
            while True:
                head = handle.read(_HEAD.size)
                if not head:
                    return
                record = self._complete(handle, head)
                if record is None and not self.end:
                    raise ConfigError(f"{self.path} is not a MUSE oplog (no session header)")
                if record is None:
                    self.truncated = True
                    return
                kind, mark, flags, number, addr, length, payload = record
                if kind == HEADER:
                    sessions += 1
                    yield Session(sessions, self._header(payload))
                elif not sessions or kind not in _KINDS:
                    raise ConfigError(f"{self.path} is not a MUSE oplog (record at {self.end})")
                else:
                    yield Op(kind, number, addr, length, flags, payload, bool(mark))
                self.end = handle.tell()

    def _complete(
        self, handle: BinaryIO, head: bytes
    ) -> tuple[bytes, int, int, int, int, int, bytes] | None:
        if len(head) < _HEAD.size:
            return None
        kind, mark, flags, size, number, addr, length = _HEAD.unpack(head)
        payload = handle.read(size)
        tail = handle.read(_CRC.size)
        if len(payload) != size or len(tail) != _CRC.size:
            return None
        if _CRC.unpack(tail)[0] != zlib.crc32(payload, zlib.crc32(head)):
            return None
        return kind, mark, flags, number, addr, length, payload

    def _header(self, payload: bytes) -> dict[str, object]:
        try:
            header = json.loads(payload)
        except ValueError:
            header = None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise ConfigError(f"{self.path} is not a MUSE oplog (bad session header)")
        if header.get("version") != VERSION:
            version = header.get("version")
            raise ConfigError(f"{self.path}: oplog version {version} is not {VERSION}")
        return header


def scan(path: str) -> tuple[list[Session], int]:
    """The sessions of a log with their op counts and cuts, and where the good part ends."""
    reader = OpLogReader(path)
    sessions: list[Session] = []
    for record in reader:
        if isinstance(record, Session):
            sessions.append(record)
            continue
        current = sessions[-1]
        current.ops = max(current.ops, record.number)
        if record.torn:
            current.cut = record.number
    return sessions, reader.end
