"""The kernel's half of the MUSE protocol, for tests without a kernel.

Speaks to a Session over an AF_UNIX SOCK_SEQPACKET socket, which keeps
message boundaries like /dev/muse does: one send() is one request, one recv()
one reply. The helpers pack requests the way fs/fuse/muse.c fills its args
and decode the replies; raw send()/recv() allow malformed traffic.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from dataclasses import dataclass

from . import protocol as p
from .session import Session, StopReason


class ReplyError(Exception):
    def __init__(self, err: int) -> None:
        self.errno = err
        super().__init__(f"-{errno.errorcode.get(err, str(err))}")


@dataclass(frozen=True)
class Reply:
    unique: int
    error: int
    payload: bytes


@dataclass(frozen=True)
class InitReply:
    major: int
    minor: int
    max_read: int
    max_write: int
    params: dict[str, str]
    info: bytes


def socket_pair() -> tuple[socket.socket, socket.socket]:
    """(kernel end, server end)."""
    kernel, server = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for sock in (kernel, server):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return kernel, server


class FakeKernel:
    def __init__(self, sock: socket.socket, timeout: float = 5.0) -> None:
        self.sock = sock
        self.sock.settimeout(timeout)
        self._unique = 0
        self.bitflips = (0, 0)      # (max_bitflips, corrected) of the last read reply

    def next_unique(self) -> int:
        # The kernel steps uniques by 2; the low bit marks interrupts.
        self._unique += 2
        return self._unique

    def send(
        self,
        opcode: int,
        payload: bytes = b"",
        *,
        unique: int | None = None,
        length: int | None = None,
    ) -> int:
        unique = self.next_unique() if unique is None else unique
        self.sock.send(p.pack_request(opcode, unique, payload, pid=os.getpid(), length=length))
        return unique

    def send_raw(self, data: bytes) -> None:
        self.sock.send(data)

    def recv(self, timeout: float | None = None) -> Reply:
        if timeout is not None:
            self.sock.settimeout(timeout)
        data = self.sock.recv(1 << 22)
        length, error, unique = p.OUT_HEADER.unpack_from(data)
        if length != len(data):
            raise AssertionError(f"reply header says {length} bytes, got {len(data)}")
        if error and length != p.OUT_HEADER.size:
            raise AssertionError("an error reply carries a payload")
        return Reply(unique, -error, data[p.OUT_HEADER.size :])

    def call(self, opcode: int, payload: bytes = b"") -> bytes:
        """Send a request and return the reply payload; raise ReplyError on -errno."""
        unique = self.send(opcode, payload)
        reply = self.recv()
        if reply.unique != unique:
            raise AssertionError(f"reply for {reply.unique}, expected {unique}")
        if reply.error:
            raise ReplyError(reply.error)
        return reply.payload

    def init(self, major: int = p.FUSE_KERNEL_VERSION, minor: int = p.MUSE_MINOR) -> InitReply:
        payload = self.call(p.Opcode.MUSE_INIT, p.INIT_IN.pack(major, minor))
        major, minor, max_read, max_write = p.INIT_OUT.unpack_from(payload)
        info = payload[p.INIT_OUT.size :]
        return InitReply(major, minor, max_read, max_write, p.decode_init_info(info), info)

    def read(self, addr: int, length: int, flags: int = p.IO_INBAND) -> tuple[bytes, int]:
        """(data, soft_error as a negative errno); bitflips keeps the reply's counts."""
        payload = self.call(p.Opcode.MUSE_READ, p.IO_IN.pack(addr, length, flags, 0))
        got, soft, worst, total = p.READ_OUT.unpack_from(payload)
        self.bitflips = (worst, total)
        data = payload[p.IO_OUT.size :]
        if got != length or len(data) != length:
            raise AssertionError(f"short read: len {got}, {len(data)} bytes for {length}")
        return data, p.u32_to_errno(soft)

    def write(self, addr: int, data: bytes, flags: int = p.IO_INBAND) -> int:
        payload = self.call(p.Opcode.MUSE_WRITE, p.IO_IN.pack(addr, len(data), flags, 0) + data)
        got, soft, _ = p.IO_OUT.unpack(payload)
        if got != len(data):
            raise AssertionError(f"short write: {got} of {len(data)}")
        return p.u32_to_errno(soft)

    def erase(self, addr: int, length: int) -> None:
        if self.call(p.Opcode.MUSE_ERASE, p.ERASE_IN.pack(addr, length)):
            raise AssertionError("ERASE reply has a payload")

    def isbad(self, addr: int) -> int:
        result, _ = p.ISBAD_OUT.unpack(self.call(p.Opcode.MUSE_ISBAD, p.ADDR_IN.pack(addr)))
        return int(result)

    def markbad(self, addr: int) -> None:
        if self.call(p.Opcode.MUSE_MARKBAD, p.ADDR_IN.pack(addr)):
            raise AssertionError("MARKBAD reply has a payload")

    def sync(self) -> None:
        if self.call(p.Opcode.MUSE_SYNC):
            raise AssertionError("SYNC reply has a payload")

    def expect_silence(self, timeout: float = 0.2) -> None:
        """Assert that no reply arrives within timeout."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 22)
        except TimeoutError:
            return
        finally:
            self.sock.settimeout(old)
        raise AssertionError(f"unexpected reply of {len(data)} bytes")


class ServerThread:
    """Run session.serve() in a thread; close() ends it by closing the kernel end."""

    def __init__(
        self, session: Session, kernel_sock: socket.socket, server_sock: socket.socket
    ) -> None:
        self.session = session
        self.kernel_sock = kernel_sock
        self.server_sock = server_sock
        self.reason: StopReason | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.reason = self.session.serve()

    def close(self, timeout: float = 5.0) -> StopReason | None:
        self.kernel_sock.close()
        self.thread.join(timeout)
        self.server_sock.close()
        return self.reason
