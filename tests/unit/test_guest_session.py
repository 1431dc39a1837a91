"""The guest MUSE server's request loop, driven by a fake kernel over a socketpair."""

import errno
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from guest.muse import mtdabi
from guest.muse import protocol as p
from guest.muse.devices import DeviceLayer, FlashOps, make_device
from guest.muse.ecc import scheme
from guest.muse.fakekernel import FakeKernel, ReplyError, ServerThread, socket_pair
from guest.muse.geometry import Geometry, default_max_io
from guest.muse.session import Session, StopReason
from guest.muse.stores import open_store

KIB = 1024
NAND = Geometry(
    name="fake-nand",
    mtd_type=mtdabi.MTD_NANDFLASH,
    flags=mtdabi.MTD_WRITEABLE,
    size=32 * 128 * KIB,
    writesize=2048,
    erasesize=128 * KIB,
    oobsize=64,
    oobavail=32,
    parts="1M(boot)ro,-(rest)",
)
NOR = Geometry(
    name="fake-nor",
    mtd_type=mtdabi.MTD_NORFLASH,
    flags=mtdabi.MTD_WRITEABLE | mtdabi.MTD_BIT_WRITEABLE,
    size=1024 * KIB,
    writesize=1,
    erasesize=64 * KIB,
    writebufsize=256,
)


Connect = Callable[..., tuple[FakeKernel, Session, ServerThread]]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """connect(geometry or device, init=True) -> (FakeKernel, Session, ServerThread)."""
    threads: list[ServerThread] = []

    def _connect(
        target: Geometry | FlashOps = NAND, *, init: bool = True, **session_args: Any
    ) -> tuple[FakeKernel, Session, ServerThread]:
        device = (
            target if not isinstance(target, Geometry) else make_device(target, open_store(target))
        )
        kernel_sock, server_sock = socket_pair()
        session = Session(server_sock.fileno(), device, **session_args)
        thread = ServerThread(session, kernel_sock, server_sock)
        threads.append(thread)
        kernel = FakeKernel(kernel_sock)
        if init:
            kernel.init()
        return kernel, session, thread

    yield _connect
    for thread in threads:
        thread.close()


def error_of(call: Callable[..., object], *args: object) -> int:
    with pytest.raises(ReplyError) as info:
        call(*args)
    return info.value.errno


# -- MUSE_INIT


def test_init_announces_every_parameter(connect):
    kernel, session, _ = connect(init=False)
    reply = kernel.init()
    assert (reply.major, reply.minor) == (7, 34)
    assert reply.max_read == reply.max_write == default_max_io(NAND) == 128 * KIB
    assert reply.info.endswith(b"\0") and len(reply.info) <= p.MUSE_INIT_INFO_MAX
    assert reply.params == {
        "NAME": "fake-nand",
        "TYPE": "4",
        "FLAGS": str(mtdabi.MTD_WRITEABLE),
        "SIZE": str(4 * 1024 * KIB),
        "WRITESIZE": "2048",
        "WRITEBUFSIZE": "2048",
        "ERASESIZE": str(128 * KIB),
        "OOBSIZE": "64",
        "OOBAVAIL": "32",
        "SUBPAGESHIFT": "0",
        "PARTSCMDLINE": "1M(boot)ro,-(rest)",
    }
    assert session.initialized and session.kernel_version == (7, 34)


def test_init_defaults_and_custom_max_io(connect):
    kernel, _, _ = connect(NOR, init=False, max_io=4096)
    reply = kernel.init()
    assert reply.params["WRITEBUFSIZE"] == "256"
    assert reply.params["TYPE"] == "3"
    assert reply.params["OOBSIZE"] == "0"
    assert "PARTSCMDLINE" not in reply.params
    assert (reply.max_read, reply.max_write) == (4096, 4096)


def test_init_accepts_a_newer_kernel_minor(connect):
    kernel, session, _ = connect(init=False)
    assert kernel.init(minor=38).minor == p.MUSE_ECC_MINOR
    assert session.kernel_version == (7, 38)


def _flipped_ecc_nand() -> FlashOps:
    """An ECC NAND (1 bit per 512 bytes) whose page 0 has one stored flip in each of
    its first two steps, as raw rewrites leave it."""
    device = make_device(NAND, open_store(NAND), ecc=scheme("hamming-512", NAND))
    page = bytes(range(256)) * 8
    device.write(0, p.IO_INBAND, memoryview(page))
    flipped = bytearray(page)
    flipped[1] &= ~1            # byte 1 is 0x01: bit 0 cleared, in step 0
    flipped[513] &= ~1          # and the same in step 1
    device.write(0, p.IO_INBAND | p.IO_RAW, memoryview(bytes(flipped)))
    return device


def test_a_7_35_kernel_gets_the_ecc_keys_and_the_bitflip_counts(connect):
    kernel, session, _ = connect(_flipped_ecc_nand(), init=False)
    reply = kernel.init(minor=p.MUSE_ECC_MINOR)
    assert (reply.minor, session.minor) == (35, 35)
    assert (reply.params["ECCSTRENGTH"], reply.params["ECCSTEPSIZE"]) == ("1", "512")
    data, soft = kernel.read(0, 2048)
    assert (soft, data, kernel.bitflips) == (-errno.EUCLEAN, bytes(range(256)) * 8, (1, 2))
    assert kernel.read(1024, 1024)[1] == 0 and kernel.bitflips == (0, 0)


def test_a_7_34_kernel_gets_neither(connect):
    kernel, _, _ = connect(_flipped_ecc_nand(), init=False)
    reply = kernel.init(minor=34)
    assert reply.minor == 34 and "ECCSTRENGTH" not in reply.params
    assert kernel.read(0, 2048)[1] == -errno.EUCLEAN and kernel.bitflips == (0, 0)


def test_a_nand_without_ecc_declares_none(connect):
    kernel, _, _ = connect(init=False)
    assert "ECCSTRENGTH" not in kernel.init(minor=p.MUSE_ECC_MINOR).params


def test_init_calls_back_once_replied(connect):
    called = threading.Event()
    kernel, _, _ = connect(init=False, on_init=called.set)
    assert not called.is_set()
    kernel.init()
    assert called.wait(2)


def test_init_major_mismatch_is_refused(connect):
    kernel, session, thread = connect(init=False)
    assert error_of(kernel.init, 8, 0) == errno.EPROTO
    thread.thread.join(2)
    assert thread.reason is StopReason.PROTOCOL
    assert "FUSE 8.0" in session.protocol_error and "7.34" in session.protocol_error
    assert not session.initialized


def test_second_init_is_refused(connect):
    kernel, _, _ = connect()
    assert error_of(kernel.init) == errno.EINVAL
    kernel.sync()  # still serving


def test_short_init_is_refused(connect):
    kernel, _, _ = connect(init=False)
    assert error_of(kernel.call, p.Opcode.MUSE_INIT, b"\x07\0\0\0") == errno.EINVAL


# -- every opcode


def test_write_then_read_inband(connect):
    kernel, session, _ = connect()
    data = bytes(range(256)) * 16
    assert kernel.write(4096, data[:2048]) == 0
    assert kernel.write(6144, data[2048:]) == 0
    got, soft = kernel.read(4096, 4096)
    assert (got, soft) == (data, 0)
    assert kernel.read(0, 16)[0] == b"\xff" * 16
    assert session.stats.bytes["written"] == 4096 and session.stats.bytes["read"] == 4112


def test_read_of_max_io_bytes(connect):
    kernel, _, _ = connect()
    got, _ = kernel.read(0, 128 * KIB)
    assert got == b"\xff" * 128 * KIB
    assert error_of(kernel.read, 0, 128 * KIB + 2048) == errno.EINVAL


def test_erase(connect):
    kernel, session, _ = connect()
    kernel.write(128 * KIB, b"\0" * 2048)
    kernel.erase(128 * KIB, 256 * KIB)
    assert kernel.read(128 * KIB, 2048)[0] == b"\xff" * 2048
    assert session.device.stats()["erase_counts"][:4] == [0, 1, 1, 0]


def test_isbad_and_markbad(connect):
    kernel, _, _ = connect()
    assert kernel.isbad(5 * 128 * KIB) == 0
    kernel.markbad(5 * 128 * KIB)
    assert kernel.isbad(5 * 128 * KIB + 4096) == 1
    assert kernel.isbad(4 * 128 * KIB) == 0
    assert error_of(kernel.erase, 5 * 128 * KIB, 128 * KIB) == errno.EIO


def test_sync_flushes_the_store(connect):
    kernel, session, _ = connect()
    store = session.device.store
    kernel.sync()
    kernel.sync()
    assert store.flushes == 2


@pytest.mark.parametrize(
    ("flags", "addr_offset", "length"),
    [(p.IO_OOB_AUTO, 0, 32), (p.IO_OOB_PLACE, 0, 64), (p.IO_OOB_PLACE | p.IO_RAW, 0, 64)],
)
def test_oob_modes_over_the_wire(connect, flags, addr_offset, length):
    kernel, session, _ = connect()
    page = 7 * 2048
    pattern = bytes(range(length))
    assert kernel.write(page + addr_offset, pattern, flags) == 0
    assert kernel.read(page, length, flags)[0] == pattern
    place, _ = kernel.read(page, 64, p.IO_OOB_PLACE)
    start = 2 if flags == p.IO_OOB_AUTO else 0
    assert place[start : start + length] == pattern
    assert kernel.read(page, 2048)[0] == b"\xff" * 2048
    assert session.stats.bytes["oob_written"] == length


def test_inband_raw_flag(connect):
    kernel, _, _ = connect()
    kernel.write(0, b"\x5a" * 2048, p.IO_INBAND | p.IO_RAW)
    assert kernel.read(0, 2048, p.IO_INBAND | p.IO_RAW)[0] == b"\x5a" * 2048


def test_nor_over_the_wire(connect):
    kernel, _, _ = connect(NOR)
    kernel.write(1000, b"\x0f" * 600)
    kernel.write(1000, b"\xf3" * 600)
    assert kernel.read(1000, 600)[0] == b"\x03" * 600
    kernel.erase(0, 64 * KIB)
    assert kernel.read(1000, 4)[0] == b"\xff" * 4
    assert kernel.isbad(0) == 0
    assert error_of(kernel.markbad, 0) == errno.EOPNOTSUPP


# -- error paths


def test_out_of_range_and_misaligned(connect):
    kernel, _, _ = connect()
    size = NAND.size
    assert error_of(kernel.read, size - 1024, 2048) == errno.EINVAL
    assert error_of(kernel.write, size, b"\0" * 2048) == errno.EINVAL
    assert error_of(kernel.erase, 4096, 128 * KIB) == errno.EINVAL
    assert error_of(kernel.erase, size, 128 * KIB) == errno.EINVAL
    assert error_of(kernel.isbad, size) == errno.EINVAL
    assert error_of(kernel.markbad, size + 5) == errno.EINVAL
    assert error_of(kernel.read, 0, 4, p.IO_INBAND | p.IO_OOB_AUTO) == errno.EINVAL
    assert error_of(kernel.read, 100, 1, p.IO_OOB_PLACE) == errno.EINVAL


def test_program_once_violation_over_the_wire(connect):
    device = make_device(NAND, open_store(NAND), check_program_once=True)
    kernel, _, _ = connect(device)
    kernel.write(0, b"\0" * 2048)
    assert error_of(kernel.write, 0, b"\0" * 2048) == errno.EIO


@pytest.mark.parametrize("opcode", [1, 15, 26, 8199, 0xFFFFFFFF])
def test_unknown_opcode_gets_enosys(connect, opcode):
    kernel, session, _ = connect()
    assert error_of(kernel.call, opcode, b"whatever") == errno.ENOSYS
    assert session.stats.errors[opcode] == 1


def test_interrupt_is_never_answered(connect):
    kernel, session, _ = connect()
    kernel.send(p.Opcode.FUSE_INTERRUPT, p.INTERRUPT_IN.pack(2), unique=3)
    kernel.send(p.Opcode.FUSE_INTERRUPT, b"", unique=5)  # malformed: still silent
    unique = kernel.send(p.Opcode.MUSE_SYNC)
    assert kernel.recv().unique == unique
    kernel.expect_silence()
    assert session.stats.requests[p.Opcode.FUSE_INTERRUPT] == 2


def test_soft_errors_and_crashes_of_a_layer(connect):
    class Faulty(DeviceLayer):
        def read(self, addr: int, flags: int, out: memoryview) -> int:
            super().read(addr, flags, out)
            return -errno.EUCLEAN if addr == 0 else -errno.EBADMSG

        def write(self, addr: int, flags: int, data: memoryview) -> int:
            raise RuntimeError("model bug")

    kernel, session, _ = connect(Faulty(make_device(NAND, open_store(NAND))))
    data, soft = kernel.read(0, 2048)
    assert (data, soft) == (b"\xff" * 2048, -errno.EUCLEAN)
    assert kernel.read(2048, 16)[1] == -errno.EBADMSG
    assert error_of(kernel.write, 0, b"\0" * 2048) == errno.EIO
    kernel.sync()  # the crash did not end the loop
    assert session.stats.soft_errors["read"] == 2


def test_nonzero_padding_is_counted(connect):
    kernel, session, _ = connect()
    kernel.call(p.Opcode.MUSE_READ, p.IO_IN.pack(0, 16, p.IO_INBAND, 0xDEAD))
    payload = p.IO_IN.pack(0, 2048, p.IO_INBAND, 1) + b"\0" * 2048
    kernel.call(p.Opcode.MUSE_WRITE, payload)
    kernel.read(0, 16)
    assert session.stats.dirty_padding == 2
    assert session.stats.snapshot()["dirty_padding"] == 2


# -- malformed requests


def test_truncated_header_without_unique_is_dropped(connect):
    kernel, session, _ = connect()
    kernel.send_raw(b"\x0a\0\0\0" + b"\0" * 6)
    kernel.expect_silence()
    kernel.sync()
    assert session.stats.malformed == 1


def test_truncated_header_with_unique_gets_einval(connect):
    kernel, _, _ = connect()
    kernel.send_raw(p.IN_HEADER.pack(40, p.Opcode.MUSE_SYNC, 77, 1, 0, 0, 0, 0)[:24])
    reply = kernel.recv()
    assert (reply.unique, reply.error) == (77, errno.EINVAL)


def test_length_mismatch_gets_einval(connect):
    kernel, _, _ = connect()
    unique = kernel.send(p.Opcode.MUSE_READ, p.IO_IN.pack(0, 16, p.IO_INBAND, 0), length=100)
    reply = kernel.recv()
    assert (reply.unique, reply.error, reply.payload) == (unique, errno.EINVAL, b"")


def test_short_write_payload_changes_nothing(connect):
    kernel, session, _ = connect()
    payload = p.IO_IN.pack(0, 2048, p.IO_INBAND, 0) + b"\0" * 100
    assert error_of(kernel.call, p.Opcode.MUSE_WRITE, payload) == errno.EINVAL
    assert kernel.read(0, 2048)[0] == b"\xff" * 2048
    assert session.stats.malformed == 1


@pytest.mark.parametrize(
    ("opcode", "payload"),
    [
        (p.Opcode.MUSE_READ, p.IO_IN.pack(0, 16, 1, 0)[:20]),
        (p.Opcode.MUSE_READ, p.IO_IN.pack(0, 16, 1, 0) + b"x"),
        (p.Opcode.MUSE_WRITE, b"\0" * 8),
        (p.Opcode.MUSE_ERASE, b"\0" * 8),
        (p.Opcode.MUSE_ISBAD, b""),
        (p.Opcode.MUSE_MARKBAD, b"\0" * 9),
    ],
)
def test_wrong_in_arg_sizes_get_einval(connect, opcode, payload):
    kernel, _, _ = connect()
    assert error_of(kernel.call, opcode, payload) == errno.EINVAL
    kernel.sync()


def test_reply_to_a_vanished_request_is_survived(connect, monkeypatch):
    kernel, _, _ = connect()
    real_write = os.write
    failures = [OSError(errno.ENOENT, "gone")]

    def flaky_write(fd: int, data: bytes) -> int:
        if failures:
            raise failures.pop()
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", flaky_write)
    kernel.send(p.Opcode.MUSE_SYNC)
    unique = kernel.send(p.Opcode.MUSE_SYNC)
    assert kernel.recv().unique == unique


# -- stopping


def test_peer_close_ends_the_loop(connect):
    _, _, thread = connect()
    assert thread.close() is StopReason.CLOSED


@pytest.mark.parametrize("err", [errno.ENODEV, errno.ECONNABORTED])
def test_enodev_means_aborted(monkeypatch, err):
    def aborted(fd: int, buffers: object) -> int:
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(os, "readv", aborted)
    session = Session(-1, make_device(NOR, open_store(NOR)))
    assert session.serve() is StopReason.ABORTED


def test_signal_interrupts_the_blocking_read():
    """request_stop() from a signal handler leaves os.readv(), which PEP 475 would retry."""
    kernel_sock, server_sock = socket_pair()
    session = Session(server_sock.fileno(), make_device(NOR, open_store(NOR)))
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: session.request_stop())
    # Should the signal not break the read, closing the peer does (and the test fails).
    safety = threading.Timer(3.0, kernel_sock.shutdown, (socket.SHUT_RDWR,))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        safety.start()
        assert session.serve() is StopReason.SIGNAL
    finally:
        safety.cancel()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        kernel_sock.close()
        server_sock.close()


def test_stop_requested_while_serving_lets_the_request_finish():
    kernel_sock, server_sock = socket_pair()
    kernel = FakeKernel(kernel_sock)

    class StopDuringSync(DeviceLayer):
        def sync(self) -> None:
            session.request_stop()  # not waiting: must not raise
            super().sync()

    session = Session(server_sock.fileno(), StopDuringSync(make_device(NOR, open_store(NOR))))
    unique = kernel.send(p.Opcode.MUSE_SYNC)
    assert session.serve() is StopReason.SIGNAL
    assert kernel.recv().unique == unique
    kernel_sock.close()
    server_sock.close()
