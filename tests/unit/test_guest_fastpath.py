"""The server's per-request fast paths: contiguous store views and zero-copy READ replies."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from guest.muse import mtdabi
from guest.muse import protocol as p
from guest.muse.devices import DeviceLayer, FlashOps, NandDevice, make_device
from guest.muse.fakekernel import FakeKernel, ServerThread, socket_pair
from guest.muse.geometry import Geometry
from guest.muse.session import Session
from guest.muse.stores import open_store

KIB = 1024
NAND = Geometry(name="fast-nand", mtd_type=mtdabi.MTD_NANDFLASH, flags=mtdabi.MTD_WRITEABLE,
                size=8 * 128 * KIB, writesize=2048, erasesize=128 * KIB, oobsize=64, oobavail=32)


@pytest.fixture
def writev_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the replies the server sent with os.writev."""
    calls: list[int] = []
    real = os.writev

    def counting(fd: int, buffers: list[memoryview]) -> int:
        calls.append(sum(len(b) for b in buffers))
        return real(fd, buffers)

    monkeypatch.setattr(os, "writev", counting)
    return calls


def _serve(device: FlashOps) -> Iterator[FakeKernel]:
    kernel_sock, server_sock = socket_pair()
    thread = ServerThread(Session(server_sock.fileno(), device), kernel_sock, server_sock)
    kernel = FakeKernel(kernel_sock)
    kernel.init()
    try:
        yield kernel
    finally:
        thread.close()


@pytest.mark.parametrize("fmt", ["memory", "raw+oob"])
def test_store_view_is_contiguous_data_only(tmp_path, fmt):
    image = None if fmt == "memory" else str(tmp_path / "nand.img")
    store = open_store(NAND, image, "raw+oob" if image else "raw")
    view = store.view(2048 + 100, 50)
    assert view is not None
    view[:] = b"x" * 50
    assert b"".join(bytes(c) for c in store.data(2048 + 100, 50)) == b"x" * 50
    crossing = store.view(2048 - 10, 20)
    if fmt == "raw+oob":  # the OOB bytes of page 0 lie between: no single view
        assert crossing is None
    else:
        assert crossing is not None and bytes(crossing) == b"\xff" * 10 + b"\xff" * 10
    store.close()


@pytest.mark.parametrize("fmt", ["memory", "raw+oob"])
def test_plain_reads_are_answered_without_a_copy(tmp_path, writev_calls, fmt):
    image = None if fmt == "memory" else str(tmp_path / "nand.img")
    device = make_device(NAND, open_store(NAND, image, "raw+oob" if image else "raw"))
    for kernel in _serve(device):
        data = bytes(range(256)) * 8 * 64  # one eraseblock
        kernel.write(128 * KIB, data)
        assert kernel.read(128 * KIB, len(data))[0] == data          # crosses pages
        assert kernel.read(128 * KIB + 2048, 2048)[0] == data[2048:4096]
        # OOB and raw reads take the copying path and still see the right bytes.
        assert kernel.read(128 * KIB, 4, p.IO_OOB_PLACE)[0] == b"\xff" * 4
        raw, _ = kernel.read(128 * KIB, 2048, p.IO_INBAND | p.IO_RAW)
        assert raw == data[:2048]
    reply = p.OUT_HEADER.size + p.IO_OUT.size
    expected = [reply + 2048] if fmt == "raw+oob" else [reply + len(data), reply + 2048]
    assert writev_calls == expected


class Marking(DeviceLayer):
    """A layer that changes what reads return: the fast path must not skip it."""

    def read(self, addr: int, flags: int, out: memoryview) -> int:
        soft = self.inner.read(addr, flags, out)
        out[:1] = b"!"
        return soft


class MarkingNand(NandDevice):
    def read(self, addr: int, flags: int, out: memoryview) -> int:
        soft = super().read(addr, flags, out)
        out[:1] = b"?"
        return soft


def test_layers_and_models_that_override_read_are_not_bypassed(writev_calls):
    for device, mark in ((Marking(make_device(NAND, open_store(NAND))), b"!"),
                         (MarkingNand(NAND, open_store(NAND)), b"?")):
        for kernel in _serve(device):
            assert kernel.read(0, 2048)[0] == mark + b"\xff" * 2047
    assert writev_calls == []
