"""Backing stores of the guest MUSE server: memory, raw (+ .oob), raw+oob images."""

import dataclasses
import os

import pytest

from guest.muse import mtdabi
from guest.muse.devices import make_device
from guest.muse.errors import ConfigError
from guest.muse.geometry import Geometry
from guest.muse.protocol import IO_INBAND, IO_OOB_PLACE
from guest.muse.stores import image_size, open_store

GEO = Geometry(
    name="img",
    mtd_type=mtdabi.MTD_NANDFLASH,
    flags=mtdabi.MTD_WRITEABLE,
    size=8 * 4 * 512,  # 8 blocks of 4 pages of 512 bytes
    writesize=512,
    erasesize=4 * 512,
    oobsize=16,
    oobavail=8,
)


def test_memory_store_starts_erased():
    store = open_store(GEO)
    assert store.kind == "memory"
    assert b"".join(bytes(c) for c in store.data(0, GEO.size)) == b"\xff" * GEO.size
    assert bytes(store.oob(GEO.npages - 1)) == b"\xff" * 16


@pytest.mark.parametrize("fmt", ["raw", "raw+oob"])
def test_missing_image_is_created_erased(tmp_path, fmt):
    path = tmp_path / "nand.img"
    store = open_store(GEO, str(path), fmt)
    store.close()
    assert path.read_bytes() == b"\xff" * image_size(GEO, fmt)
    if fmt == "raw":
        assert (tmp_path / "nand.img.oob").read_bytes() == b"\xff" * (GEO.npages * 16)
        assert path.stat().st_size == GEO.size
    else:
        assert not (tmp_path / "nand.img.oob").exists()
        assert path.stat().st_size == GEO.npages * (512 + 16)


def test_raw_without_oob_has_no_sidecar(tmp_path):
    nor = dataclasses.replace(GEO, mtd_type=mtdabi.MTD_NORFLASH, oobsize=0, oobavail=0)
    open_store(nor, str(tmp_path / "nor.img"), "raw").close()
    assert os.listdir(tmp_path) == ["nor.img"]


def test_raw_oob_layout_is_page_then_oob(tmp_path):
    path = tmp_path / "dump.img"
    store = open_store(GEO, str(path), "raw+oob")
    (chunk,) = store.data(3 * 512 + 10, 4)
    chunk[:] = b"DATA"
    store.oob(3)[:3] = b"OOB"
    parts = list(store.data(510, 4))  # crosses a page boundary
    assert [len(part) for part in parts] == [2, 2]
    store.close()
    raw = path.read_bytes()
    stride = 512 + 16
    assert raw[3 * stride + 10 : 3 * stride + 14] == b"DATA"
    assert raw[3 * stride + 512 : 3 * stride + 515] == b"OOB"
    assert raw.count(b"\xff") == len(raw) - 7


def test_nanddump_style_image_loads(tmp_path):
    """Build an image the way `nanddump --oob` writes one and read it through the model."""
    path = tmp_path / "dump.img"
    pages = []
    for page in range(GEO.npages):
        data = bytes([page]) * 512
        oob = b"\xff\xff" + bytes([page ^ 0x55]) * 14
        pages.append(data + oob)
    path.write_bytes(b"".join(pages))
    device = make_device(GEO, open_store(GEO, str(path), "raw+oob"))
    out = bytearray(512)
    device.read(5 * 512, IO_INBAND, memoryview(out))
    assert out == bytes([5]) * 512
    spare = bytearray(16)
    device.read(7 * 512, IO_OOB_PLACE, memoryview(spare))
    assert spare == b"\xff\xff" + bytes([7 ^ 0x55]) * 14
    device.close()


@pytest.mark.parametrize("fmt", ["raw", "raw+oob"])
def test_reopen_keeps_data_and_oob(tmp_path, fmt):
    path = str(tmp_path / "nand.img")
    store = open_store(GEO, path, fmt)
    (chunk,) = store.data(2048, 5)
    chunk[:] = b"hello"
    store.oob(9)[4:8] = b"oob!"
    store.flush()
    assert store.flushes == 1
    store.close()
    again = open_store(GEO, path, fmt)
    assert bytes(next(again.data(2048, 5))) == b"hello"
    assert bytes(again.oob(9)[4:8]) == b"oob!"
    again.close()


@pytest.mark.parametrize("fmt", ["raw", "raw+oob"])
def test_wrong_size_image_is_refused(tmp_path, fmt):
    path = tmp_path / "nand.img"
    path.write_bytes(b"\0" * 1000)
    with pytest.raises(ConfigError) as info:
        open_store(GEO, str(path), fmt)
    message = str(info.value)
    assert str(path) in message
    assert "1000 bytes" in message
    assert str(image_size(GEO, fmt)) in message
    assert path.read_bytes() == b"\0" * 1000  # left alone


def test_wrong_size_sidecar_is_refused(tmp_path):
    path = tmp_path / "nand.img"
    open_store(GEO, str(path), "raw").close()
    (tmp_path / "nand.img.oob").write_bytes(b"\xff" * 3)
    with pytest.raises(ConfigError, match=r"nand\.img\.oob has 3 bytes .* needs 512"):
        open_store(GEO, str(path), "raw")


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown image format 'qcow2'"):
        open_store(GEO, str(tmp_path / "x"), "qcow2")


@pytest.mark.parametrize("fmt", ["memory", "raw", "raw+oob"])
def test_erase_fills_data_and_oob(tmp_path, fmt):
    store = open_store(GEO) if fmt == "memory" else open_store(GEO, str(tmp_path / "i"), fmt)
    for chunk in store.data(0, GEO.size):
        chunk[:] = bytes(len(chunk))
    for page in range(GEO.npages):
        store.oob(page)[:] = bytes(16)
    store.erase(4, 4)  # block 1
    data = b"".join(bytes(c) for c in store.data(0, GEO.size))
    assert data[:2048] == bytes(2048)
    assert data[2048:4096] == b"\xff" * 2048
    assert data[4096:] == bytes(GEO.size - 4096)
    assert [bytes(store.oob(p)) == b"\xff" * 16 for p in range(12)] == [False] * 4 + [True] * 4 + [
        False
    ] * 4
    store.close()
