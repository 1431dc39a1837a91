"""One MUSE connection: read a request, dispatch it, write the reply.

The loop works on any fd that delivers one request per read() and takes one
reply per write(): /dev/muse, or one end of an AF_UNIX SOCK_SEQPACKET pair
driven by a fake kernel in tests. Buffers are allocated once: requests are
read into a buffer of the size the FUSE device demands, READ replies are
assembled in place (the model reads straight into the reply buffer) and sent
with a single write.

Handlers follow libfuse's lowlevel style: a table maps each opcode to a small
method that unpacks its in-args, calls the device model and replies. A model
raising OpError becomes an error reply (-errno, header only).

Stopping: request_stop() may be called from a signal handler. It only raises
(to break out of the blocking read) while the loop is waiting for a request,
so a request that is being served always gets its reply. A device raising
PowerCut (emulated power loss) ends the loop at once, that request unanswered.

A hostile engine (hostile/), when given, builds the INIT payload and sees
every reply before it is written: it may rewrite, repeat, drop it or die.
"""

from __future__ import annotations

import enum
import errno
import logging
import mmap
import os
from collections.abc import Callable
from typing import Protocol

from . import protocol as p
from .devices.base import Device, FlashOps
from .errors import OpError, PowerCut
from .geometry import default_max_io
from .stats import Stats

log = logging.getLogger("muse")

_HDR = p.IN_HEADER.size
_OUT = p.OUT_HEADER.size
_IO_IN = p.IO_IN.size
_IO_REPLY = _OUT + p.IO_OUT.size

Handler = Callable[[int, memoryview], None]
# Buffers above this are anonymous mappings, so only what the kernel writes is touched.
_MAPPED_BUFFER = 64 << 20
# read() moves at most this much (MAX_RW_COUNT): a larger buffer cannot help.
_MAX_RW_COUNT = 0x7FFFF000
# Linux's MAP_NORESERVE (the mmap module lacks it before 3.13): no commit charge.
_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000)


class HostileHooks(Protocol):
    """What a hostile engine does to the INIT payload and to the replies."""

    def init_payload(self, unique: int, default: Callable[[], bytes]) -> bytes: ...

    def reply(self, opcode: int, data: bytes, send: Callable[[bytes], bool]) -> bool | None:
        """Send data or what it makes of it; True if the kernel took a message, None if none."""
        ...


def request_buffer(size: int) -> bytearray | mmap.mmap:
    if size <= _MAPPED_BUFFER:
        return bytearray(size)
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | _MAP_NORESERVE)


class StopReason(enum.Enum):
    SIGNAL = "signal"  # request_stop() was called
    ABORTED = "aborted"  # ENODEV/ECONNABORTED: the kernel aborted the connection
    CLOSED = "closed"  # EOF: the peer closed its end (socket transport)
    PROTOCOL = "protocol"  # the kernel speaks another FUSE major version
    POWER_CUT = "power-cut"  # the device emulated a power loss (see power_cut)


class _Stop(Exception):
    """Raised out of a signal handler to leave the blocking read."""


class Session:
    def __init__(
        self,
        fd: int,
        device: FlashOps,
        *,
        max_io: int | None = None,
        stats: Stats | None = None,
        on_init: Callable[[], None] | None = None,
        hostile: HostileHooks | None = None,
        request_max_write: int = 0,
    ) -> None:
        self.fd = fd
        self.device = device
        self.geometry = device.geometry
        self.max_io = max_io or default_max_io(self.geometry)
        self.stats = stats or Stats()
        self.on_init = on_init
        self.hostile = hostile
        self.initialized = False
        self.kernel_version: tuple[int, int] | None = None
        self.minor = p.MUSE_MINOR          # the MUSE ABI agreed in MUSE_INIT
        self.protocol_error = ""
        self.power_cut: PowerCut | None = None
        self._reason: StopReason | None = None
        self._waiting = False
        self._opcode = 0
        # The kernel refuses reads smaller than 80 + the max_write it was told.
        size = p.request_buffer_size(max(self.max_io, request_max_write))
        if size > _MAX_RW_COUNT:  # no read() can satisfy it: the first one says why
            size = p.request_buffer_size(self.max_io)
        self._req = request_buffer(size)
        self._req_view = memoryview(self._req)
        self._rep = bytearray(_IO_REPLY + self.max_io)
        self._rep_view = memoryview(self._rep)
        # Header-only and READ/WRITE reply headers are packed here, not allocated.
        self._small = bytearray(_IO_REPLY)
        self._small_view = memoryview(self._small)
        # A bare model (no layer, no hostile engine) lends its store for READ
        # replies: header and data go out in one writev, without a copy here.
        self._read_view: Callable[[int, int], memoryview | None] | None = None
        if hostile is None and isinstance(device, Device) and device.plain_reads:
            self._read_view = device.read_view
        self._requests = self.stats.requests
        self._handlers: dict[int, Handler] = {
            p.Opcode.MUSE_INIT: self._op_init,
            p.Opcode.MUSE_READ: self._op_read,
            p.Opcode.MUSE_WRITE: self._op_write,
            p.Opcode.MUSE_ERASE: self._op_erase,
            p.Opcode.MUSE_ISBAD: self._op_isbad,
            p.Opcode.MUSE_MARKBAD: self._op_markbad,
            p.Opcode.MUSE_SYNC: self._op_sync,
            p.Opcode.FUSE_INTERRUPT: self._op_interrupt,
        }

    # -- loop
    def serve(self) -> StopReason:
        """Serve until stopped, aborted or closed; returns why."""
        # The per-request path is kept flat: under TCG every Python call costs.
        fd, bufs, handle = self.fd, [self._req], self.handle
        try:
            while self._reason is None:
                self._waiting = True
                try:
                    if self._reason is not None:
                        break
                    size = os.readv(fd, bufs)
                except OSError as err:
                    self._read_failed(err)
                    break
                finally:
                    self._waiting = False
                if size == 0:
                    self._reason = StopReason.CLOSED
                    break
                handle(size)
        except _Stop:
            pass
        return self._reason or StopReason.SIGNAL

    def request_stop(self) -> None:
        """Stop after the current request; call it from a signal handler of serve()'s thread."""
        if self._reason is None:
            self._reason = StopReason.SIGNAL
        if self._waiting:
            raise _Stop

    def _read_failed(self, err: OSError) -> None:
        """A failed read of the next request: the end of the connection, or raise."""
        # ECONNABORTED is what fusectl aborts with FUSE_ABORT_ERROR give instead.
        if err.errno == errno.EINVAL:
            log.error(
                "the kernel refuses to read a request into %d bytes: the max_write it was "
                "told needs 80 + max_write (and read() moves at most %d)",
                len(self._req),
                _MAX_RW_COUNT,
            )
        elif err.errno not in (errno.ENODEV, errno.ECONNABORTED):
            raise err
        self._reason = StopReason.ABORTED

    def handle(self, size: int) -> None:
        """Serve the request of size bytes at the start of the request buffer."""
        buf = self._req
        if size < _HDR:
            self.stats.malformed += 1
            if size < p.IN_HEADER_PREFIX.size:
                log.warning("dropping a %d-byte request: too short to name its unique", size)
                return
            _, opcode, unique = p.IN_HEADER_PREFIX.unpack_from(buf)
            self._malformed(opcode, unique, f"{size}-byte request is shorter than its header")
            return
        length, opcode, unique, _, _, _, pid, _ = p.IN_HEADER.unpack_from(buf)
        if length != size:
            self.stats.malformed += 1
            self._malformed(opcode, unique, f"header says {length} bytes, read returned {size}")
            return
        self._opcode = opcode
        requests = self._requests
        requests[opcode] = requests.get(opcode, 0) + 1
        handler = self._handlers.get(opcode)
        if handler is None:
            log.info("unknown opcode %d (unique %d): ENOSYS", opcode, unique)
            self._reply_error(unique, errno.ENOSYS)
            return
        try:
            handler(unique, self._req_view[_HDR:size])
        except PowerCut as cut:
            # No reply: closing the fd makes the kernel fail the request.
            self.power_cut = cut
            self._reason = StopReason.POWER_CUT
        except OpError as err:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s unique %d pid %d: %s", p.opcode_name(opcode), unique, pid, err)
            self._reply_error(unique, err.errno)
        except Exception:
            log.exception("%s unique %d failed", p.opcode_name(opcode), unique)
            self._reply_error(unique, errno.EIO)

    def _malformed(self, opcode: int, unique: int, why: str) -> None:
        log.warning("malformed %s (unique %d): %s", p.opcode_name(opcode), unique, why)
        # Interrupts are never answered; unique 0 would be read as a notification.
        if opcode != p.Opcode.FUSE_INTERRUPT and unique:
            self._opcode = opcode
            self._reply_error(unique, errno.EINVAL)

    def _expect(self, payload: memoryview, size: int, what: str) -> None:
        if len(payload) != size:
            self.stats.malformed += 1
            raise OpError(errno.EINVAL, f"{what}: {len(payload)} bytes of in-args, expected {size}")

    # -- replies
    def _send(self, data: bytes | bytearray | memoryview) -> bool | None:
        """True if the kernel took the reply (None: a hostile engine sent nothing)."""
        if self.hostile is not None:
            return self.hostile.reply(self._opcode, bytes(data), self._write)
        return self._write(data)

    def _write(self, data: bytes | bytearray | memoryview) -> bool:
        try:
            written = os.write(self.fd, data)
        except OSError as err:
            return self._write_failed(err)
        if written != len(data):
            log.error("short reply write: %d of %d bytes", written, len(data))
        return True

    def _writev(self, header: memoryview, data: memoryview, total: int) -> bool:
        """One reply from two buffers (READ header + store data): one writev, one message."""
        try:
            written = os.writev(self.fd, (header, data))
        except OSError as err:
            return self._write_failed(err)
        if written != total:
            log.error("short reply write: %d of %d bytes", written, total)
        return True

    def _write_failed(self, err: OSError) -> bool:
        if err.errno == errno.ENOENT:
            log.info("reply for a request the kernel no longer waits for (interrupted)")
        elif err.errno in (errno.ENODEV, errno.EPIPE, errno.ECONNRESET):
            self._reason = self._reason or StopReason.ABORTED
        else:
            log.error("the kernel refused a reply: %s", err)
        return False

    def _reply_error(self, unique: int, err: int) -> bool | None:
        self.stats.error(self._opcode)
        return self._send(p.OUT_HEADER.pack(_OUT, -err, unique))

    def _reply(self, unique: int, payload: bytes = b"") -> bool | None:
        if not payload:
            p.OUT_HEADER.pack_into(self._small, 0, _OUT, 0, unique)
            return self._send(self._small_view[:_OUT])
        return self._send(p.OUT_HEADER.pack(_OUT + len(payload), 0, unique) + payload)

    # -- handlers
    def _op_init(self, unique: int, payload: memoryview) -> None:
        if len(payload) < p.INIT_IN.size:
            self._expect(payload, p.INIT_IN.size, "MUSE_INIT")
        major, minor = p.INIT_IN.unpack_from(payload)
        self.kernel_version = (major, minor)
        if major != p.FUSE_KERNEL_VERSION:
            self.protocol_error = (
                f"the kernel speaks FUSE {major}.{minor}; this server speaks "
                f"{p.FUSE_KERNEL_VERSION}.{p.MUSE_MINOR} only"
            )
            log.error("%s", self.protocol_error)
            self._reply_error(unique, errno.EPROTO)
            self._reason = StopReason.PROTOCOL
            return
        if self.initialized:
            raise OpError(errno.EINVAL, "MUSE_INIT after the connection was initialised")
        # 7.35 (the harness's extension) only with a kernel that offers it.
        self.minor = p.MUSE_ECC_MINOR if minor >= p.MUSE_ECC_MINOR else p.MUSE_MINOR
        log.debug("kernel offers FUSE %d.%d, answering %d.%d", major, minor, 7, self.minor)

        def default_payload() -> bytes:
            params = self.geometry.init_params()
            ecc = self.device.ecc_geometry
            if ecc is not None and self.minor >= p.MUSE_ECC_MINOR:
                params["ECCSTRENGTH"], params["ECCSTEPSIZE"] = ecc
            out = p.INIT_OUT.pack(p.FUSE_KERNEL_VERSION, self.minor, self.max_io, self.max_io)
            return out + p.encode_init_info(params)

        self.initialized = True
        if self.hostile is not None:
            taken = self._reply(unique, self.hostile.init_payload(unique, default_payload))
        else:
            taken = self._reply(unique, default_payload())
        if taken is False:
            # Refused (EINVAL, ENOENT): no registration will follow, the kernel may still wait.
            log.error("the kernel refused the MUSE_INIT reply")
            self._reason = self._reason or StopReason.ABORTED
        if self.on_init is not None:
            self.on_init()

    def _op_read(self, unique: int, payload: memoryview) -> None:
        if len(payload) != _IO_IN:
            self._expect(payload, _IO_IN, "MUSE_READ")
        addr, length, flags, padding = p.IO_IN.unpack_from(payload)
        if padding:
            self.stats.dirty_padding += 1
        if length > self.max_io:
            raise OpError(errno.EINVAL, f"read of {length} bytes exceeds max_read {self.max_io}")
        end = _IO_REPLY + length
        if flags == p.IO_INBAND and self._read_view is not None:
            data = self._read_view(addr, length)
            if data is not None:
                small = self._small
                p.OUT_HEADER.pack_into(small, 0, end, 0, unique)
                p.IO_OUT.pack_into(small, _OUT, length, 0, 0)
                self.stats.bytes["read"] += length
                self._writev(self._small_view, data, end)
                return
        soft = self.device.read(addr, flags, self._rep_view[_IO_REPLY:end])
        p.OUT_HEADER.pack_into(self._rep, 0, end, 0, unique)
        if soft == -errno.EUCLEAN and self.minor >= p.MUSE_ECC_MINOR:
            worst, total = self.device.last_bitflips
            p.READ_OUT.pack_into(self._rep, _OUT, length, p.errno_to_u32(soft),
                                 min(worst, 0xFFFF), min(total, 0xFFFF))   # u16, saturated
        else:
            p.IO_OUT.pack_into(self._rep, _OUT, length, p.errno_to_u32(soft), 0)
        self.stats.bytes["read" if flags & p.IO_INBAND else "oob_read"] += length
        if soft:
            self.stats.soft_errors["read"] += 1
        self._send(self._rep_view[:end])

    def _op_write(self, unique: int, payload: memoryview) -> None:
        if len(payload) < _IO_IN:
            self._expect(payload, _IO_IN, "MUSE_WRITE")
        addr, length, flags, padding = p.IO_IN.unpack_from(payload)
        if padding:
            self.stats.dirty_padding += 1
        if len(payload) != _IO_IN + length:
            self._expect(payload, _IO_IN + length, f"MUSE_WRITE of {length} bytes")
        soft = self.device.write(addr, flags, payload[_IO_IN:])
        self.stats.bytes["written" if flags & p.IO_INBAND else "oob_written"] += length
        if soft:
            self.stats.soft_errors["write"] += 1
        small = self._small
        p.OUT_HEADER.pack_into(small, 0, _IO_REPLY, 0, unique)
        p.IO_OUT.pack_into(small, _OUT, length, p.errno_to_u32(soft), 0)
        self._send(self._small_view)

    def _op_erase(self, unique: int, payload: memoryview) -> None:
        self._expect(payload, p.ERASE_IN.size, "MUSE_ERASE")
        addr, length = p.ERASE_IN.unpack_from(payload)
        self.device.erase(addr, length)
        self._reply(unique)

    def _op_isbad(self, unique: int, payload: memoryview) -> None:
        self._expect(payload, p.ADDR_IN.size, "MUSE_ISBAD")
        (addr,) = p.ADDR_IN.unpack_from(payload)
        self._reply(unique, p.ISBAD_OUT.pack(int(self.device.is_bad(addr)), 0))

    def _op_markbad(self, unique: int, payload: memoryview) -> None:
        self._expect(payload, p.ADDR_IN.size, "MUSE_MARKBAD")
        (addr,) = p.ADDR_IN.unpack_from(payload)
        self.device.mark_bad(addr)
        self._reply(unique)

    def _op_sync(self, unique: int, payload: memoryview) -> None:
        self.device.sync()
        self._reply(unique)

    def _op_interrupt(self, unique: int, payload: memoryview) -> None:
        # Never answered: the kernel would take a reply as "interrupt not supported".
        if len(payload) >= p.INTERRUPT_IN.size:
            log.debug("interrupt for request %d ignored", p.INTERRUPT_IN.unpack_from(payload)[0])
