"""Flash models of the guest MUSE server: RAM, ROM, NOR, NAND (SLC/MLC)."""

import dataclasses
import errno
from collections.abc import Callable

import pytest

from guest.muse import mtdabi
from guest.muse.devices import (
    DeviceLayer,
    FlashOps,
    NandDevice,
    NorDevice,
    RamDevice,
    make_device,
)
from guest.muse.errors import OpError
from guest.muse.geometry import Geometry
from guest.muse.protocol import IO_INBAND, IO_OOB_AUTO, IO_OOB_PLACE, IO_RAW
from guest.muse.stores import open_store

NAND = Geometry(
    name="nand",
    mtd_type=mtdabi.MTD_NANDFLASH,
    flags=mtdabi.MTD_WRITEABLE,
    size=16 * 4 * 512,  # 16 blocks of 4 pages of 512 bytes
    writesize=512,
    erasesize=4 * 512,
    oobsize=16,
    oobavail=6,
)
NOR = Geometry(
    name="nor",
    mtd_type=mtdabi.MTD_NORFLASH,
    flags=mtdabi.MTD_WRITEABLE | mtdabi.MTD_BIT_WRITEABLE,
    size=8 * 1024,
    writesize=1,
    erasesize=1024,
    writebufsize=64,
)
RAM = dataclasses.replace(NOR, name="ram", mtd_type=mtdabi.MTD_RAM, writebufsize=0)


def read(device: FlashOps, addr: int, length: int, flags: int = IO_INBAND) -> bytes:
    out = bytearray(length)
    assert device.read(addr, flags, memoryview(out)) == 0
    return bytes(out)


def write(device: FlashOps, addr: int, data: bytes, flags: int = IO_INBAND) -> int:
    return device.write(addr, flags, memoryview(data))


def fails(err: int, call: Callable[..., object], *args: object) -> str:
    with pytest.raises(OpError) as info:
        call(*args)
    assert info.value.errno == err, info.value
    return str(info.value)


def test_factory_picks_the_model():
    assert type(make_device(NAND, open_store(NAND))) is NandDevice
    mlc = dataclasses.replace(NAND, mtd_type=mtdabi.MTD_MLCNANDFLASH)
    assert type(make_device(mlc, open_store(mlc))) is NandDevice
    assert type(make_device(NOR, open_store(NOR))) is NorDevice
    for kind in (mtdabi.MTD_RAM, mtdabi.MTD_ROM, mtdabi.MTD_DATAFLASH):
        geometry = dataclasses.replace(RAM, mtd_type=kind)
        assert type(make_device(geometry, open_store(geometry))) is RamDevice


def test_ram_write_overwrites():
    ram = make_device(RAM, open_store(RAM))
    write(ram, 100, b"\x00" * 8)
    write(ram, 100, b"\xaa" * 8)
    assert read(ram, 96, 16) == b"\xff" * 4 + b"\xaa" * 8 + b"\xff" * 4
    ram.erase(0, 1024)
    assert read(ram, 100, 8) == b"\xff" * 8
    assert list(ram.erase_counts) == [1] + [0] * 7


def test_rom_refuses_writes_and_erases():
    rom_geo = dataclasses.replace(RAM, mtd_type=mtdabi.MTD_ROM, flags=0)
    rom = make_device(rom_geo, open_store(rom_geo))
    fails(errno.EROFS, write, rom, 0, b"x")
    fails(errno.EROFS, rom.erase, 0, 1024)
    assert read(rom, 0, 4) == b"\xff" * 4


def test_nor_programming_only_clears_bits():
    nor = make_device(NOR, open_store(NOR))
    write(nor, 10, b"\xf0\x0f\xff")
    write(nor, 10, b"\x3c\x3c\x00")
    assert read(nor, 10, 3) == b"\x30\x0c\x00"
    write(nor, 10, b"\xff\xff\xff")  # cannot set bits again
    assert read(nor, 10, 3) == b"\x30\x0c\x00"
    nor.erase(0, 1024)
    assert read(nor, 10, 3) == b"\xff" * 3


def test_nor_programs_in_write_buffer_windows():
    windows = []

    class Recording(NorDevice):
        def _program_window(self, addr: int, data: memoryview) -> None:
            windows.append((addr, len(data)))
            super()._program_window(addr, data)

    nor = Recording(NOR, open_store(NOR))
    write(nor, 60, bytes(200))
    assert windows == [(60, 4), (64, 64), (128, 64), (192, 64), (256, 4)]
    assert read(nor, 59, 202) == b"\xff" + bytes(200) + b"\xff"


def test_erase_must_be_block_aligned_and_in_range():
    nor = make_device(NOR, open_store(NOR))
    assert "not aligned" in fails(errno.EINVAL, nor.erase, 512, 1024)
    fails(errno.EINVAL, nor.erase, 0, 1000)
    assert "beyond the device end" in fails(errno.EINVAL, nor.erase, 7 * 1024, 2048)
    nor.erase(1024, 2048)
    assert list(nor.erase_counts) == [0, 1, 1, 0, 0, 0, 0, 0]


def test_inband_out_of_range():
    ram = make_device(RAM, open_store(RAM))
    fails(errno.EINVAL, read, ram, 8 * 1024 - 4, 8)
    fails(errno.EINVAL, write, ram, 8 * 1024, b"x")
    assert read(ram, 8 * 1024 - 4, 4) == b"\xff" * 4


@pytest.mark.parametrize("flags", [0, IO_INBAND | IO_OOB_AUTO, IO_OOB_AUTO | IO_OOB_PLACE, 16])
def test_invalid_io_flags(flags):
    nand = make_device(NAND, open_store(NAND))
    fails(errno.EINVAL, nand.read, 0, flags, memoryview(bytearray(4)))


def test_oob_on_a_device_without_oob():
    nor = make_device(NOR, open_store(NOR))
    fails(errno.EOPNOTSUPP, read, nor, 0, 4, IO_OOB_PLACE)
    fails(errno.EOPNOTSUPP, nor.mark_bad, 0)
    assert nor.is_bad(0) is False


def test_nand_program_clears_bits_and_needs_whole_pages():
    nand = make_device(NAND, open_store(NAND))
    write(nand, 512, b"\x0f" * 512)
    write(nand, 512, b"\xf5" * 512)  # no program-once check by default
    assert read(nand, 512, 512) == b"\x05" * 512
    assert "aligned" in fails(errno.EINVAL, write, nand, 100, b"x" * 512)
    fails(errno.EINVAL, write, nand, 1024, b"x" * 100)
    # Reads need no alignment.
    assert read(nand, 1000, 48) == b"\x05" * 24 + b"\xff" * 24


def test_nand_program_once_check():
    nand = make_device(NAND, open_store(NAND), check_program_once=True)
    write(nand, 0, b"\x00" * 1024)
    before = read(nand, 0, 2048)
    assert "page 1" in fails(errno.EIO, write, nand, 512, b"\xff" * 1024)
    assert read(nand, 0, 2048) == before  # nothing of the failed program landed
    write(nand, 1024, b"\x11" * 512)  # an untouched page is fine
    nand.erase(0, 2048)
    write(nand, 0, b"\x22" * 512)  # allowed again after the erase
    assert read(nand, 0, 512) == b"\x22" * 512


def test_nand_program_once_survives_reopen(tmp_path):
    path = str(tmp_path / "n.img")
    nand = make_device(NAND, open_store(NAND, path, "raw+oob"), check_program_once=True)
    write(nand, 2048, b"\x00" * 512)
    write(nand, 4096 + 3, b"\x00" * 3, IO_OOB_PLACE)
    nand.close()
    nand = make_device(NAND, open_store(NAND, path, "raw+oob"), check_program_once=True)
    fails(errno.EIO, write, nand, 2048, b"\x00" * 512)
    fails(errno.EIO, write, nand, 4096, b"\x00", IO_OOB_AUTO)
    write(nand, 2560, b"\x00" * 512)
    nand.close()


def test_nand_subpages():
    geometry = dataclasses.replace(NAND, subpage_shift=2)  # 128-byte subpages
    nand = make_device(geometry, open_store(geometry), check_program_once=True)
    write(nand, 0, b"\x01" * 128)
    write(nand, 128, b"\x02" * 256)
    fails(errno.EIO, write, nand, 256, b"\x03" * 128)
    fails(errno.EINVAL, write, nand, 64, b"\x03" * 128)
    assert read(nand, 0, 512) == b"\x01" * 128 + b"\x02" * 256 + b"\xff" * 128


def test_oob_place_auto_and_raw_layouts():
    nand = make_device(NAND, open_store(NAND))
    page = 5 * 512
    write(nand, page, b"ABCDEF", IO_OOB_AUTO)  # ooboffs 0 of the free area
    # AUTO bytes live at OOB offset 2.. after the bad block marker.
    assert read(nand, page, 16, IO_OOB_PLACE) == b"\xff\xffABCDEF" + b"\xff" * 8
    assert read(nand, page, 16, IO_OOB_PLACE | IO_RAW) == b"\xff\xffABCDEF" + b"\xff" * 8
    assert read(nand, page, 6, IO_OOB_AUTO) == b"ABCDEF"
    # ooboffs inside the area: the address is page + ooboffs.
    assert read(nand, page + 3, 2, IO_OOB_AUTO) == b"DE"
    write(nand, page + 12, b"\x00\x01", IO_OOB_PLACE | IO_RAW)
    assert read(nand, page + 10, 6, IO_OOB_PLACE) == b"\xff\xff\x00\x01\xff\xff"
    # In-band data is untouched by OOB traffic.
    assert read(nand, page, 512) == b"\xff" * 512


def test_oob_spanning_pages():
    nand = make_device(NAND, open_store(NAND))
    write(nand, 0, b"a" * 6, IO_OOB_AUTO)
    write(nand, 512, b"b" * 6, IO_OOB_AUTO)
    write(nand, 1024, b"c" * 6, IO_OOB_AUTO)
    assert read(nand, 0, 18, IO_OOB_AUTO) == b"aaaaaabbbbbbcccccc"
    # Starting at offset 4 of page 0's free area, then on in page 1's.
    assert read(nand, 4, 6, IO_OOB_AUTO) == b"aabbbb"
    assert len(read(nand, 0, 16 * 64, IO_OOB_PLACE)) == 1024  # the whole device


def test_oob_address_checks():
    nand = make_device(NAND, open_store(NAND))
    fails(errno.EINVAL, read, nand, 6, 1, IO_OOB_AUTO)  # offset past the 6 free bytes
    fails(errno.EINVAL, read, nand, 16, 1, IO_OOB_PLACE)
    fails(errno.EINVAL, read, nand, NAND.size, 1, IO_OOB_PLACE)
    fails(errno.EINVAL, read, nand, NAND.size - 512, 17, IO_OOB_PLACE)
    fails(errno.EINVAL, write, nand, NAND.size - 512 + 4, b"x" * 3, IO_OOB_AUTO)
    assert read(nand, NAND.size - 512, 16, IO_OOB_PLACE) == b"\xff" * 16


def test_oob_program_once_check():
    nand = make_device(NAND, open_store(NAND), check_program_once=True)
    write(nand, 512, b"\x00", IO_OOB_AUTO)
    fails(errno.EIO, write, nand, 512 + 1, b"\x00", IO_OOB_AUTO)
    write(nand, 512, b"\x00" * 512)  # in-band is tracked separately
    nand.erase(0, 2048)
    write(nand, 512 + 1, b"\x00", IO_OOB_AUTO)


def test_erase_resets_oob():
    nand = make_device(NAND, open_store(NAND))
    write(nand, 2048 + 512, b"\x00" * 16, IO_OOB_PLACE)
    nand.erase(2048, 2048)
    assert read(nand, 2048 + 512, 16, IO_OOB_PLACE) == b"\xff" * 16


def test_factory_bad_blocks_and_markbad():
    nand = make_device(NAND, open_store(NAND), factory_bad=[3, 7])
    assert [nand.is_bad(b * 2048) for b in range(16)] == [b in (3, 7) for b in range(16)]
    assert nand.is_bad(3 * 2048 + 700)  # any address inside the block
    # The marker is in the first page's OOB, byte 0.
    assert read(nand, 3 * 2048, 2, IO_OOB_PLACE) == b"\x00\x00"
    nand.mark_bad(9 * 2048 + 5)
    assert nand.is_bad(9 * 2048)
    assert nand.stats()["bad_blocks"] == [3, 7, 9]
    fails(errno.EINVAL, nand.is_bad, NAND.size)
    fails(errno.EINVAL, nand.mark_bad, NAND.size)


def test_erasing_a_bad_block_fails_where_it_starts():
    nand = make_device(NAND, open_store(NAND), factory_bad=[2])
    write(nand, 0, b"\x00" * 2048 * 2)
    assert "eraseblock 2 is bad" in fails(errno.EIO, nand.erase, 0, 4 * 2048)
    # Blocks before the bad one were erased, like nand_erase_nand() does.
    assert read(nand, 0, 4096) == b"\xff" * 4096
    assert list(nand.erase_counts)[:4] == [1, 1, 0, 0]
    assert nand.is_bad(2 * 2048)


@pytest.mark.parametrize("fmt", ["raw", "raw+oob"])
def test_bad_blocks_persist_across_reopen(tmp_path, fmt):
    path = str(tmp_path / "nand.img")
    nand = make_device(NAND, open_store(NAND, path, fmt), factory_bad=[1])
    nand.mark_bad(12 * 2048)
    nand.close()
    nand = make_device(NAND, open_store(NAND, path, fmt))
    assert nand.stats()["bad_blocks"] == [1, 12]
    nand.close()


def test_raw_marker_write_counts_at_next_open(tmp_path):
    path = str(tmp_path / "nand.img")
    nand = make_device(NAND, open_store(NAND, path, "raw+oob"))
    write(nand, 4 * 2048, b"\x00", IO_OOB_PLACE | IO_RAW)
    assert not nand.is_bad(4 * 2048)  # the in-memory BBT is not rescanned
    nand.close()
    assert make_device(NAND, open_store(NAND, path, "raw+oob")).is_bad(4 * 2048)


def test_factory_bad_block_out_of_range():
    with pytest.raises(ValueError, match="outside"):
        make_device(NAND, open_store(NAND), factory_bad=[16])


def test_stats_of_a_device():
    nand = make_device(NAND, open_store(NAND), factory_bad=[0])
    nand.erase(2048, 4096)
    stats = nand.stats()
    assert stats["type"] == "nand"
    assert stats["erase_counts"] == [0, 1, 1] + [0] * 13
    assert stats["bad_blocks"] == [0]


def test_device_layer_forwards_and_can_interpose():
    class Flaky(DeviceLayer):
        def read(self, addr: int, flags: int, out: memoryview) -> int:
            super().read(addr, flags, out)
            return -errno.EUCLEAN

    inner = make_device(NAND, open_store(NAND))
    layer = Flaky(inner)
    assert layer.geometry is NAND
    write(layer, 0, b"\x42" * 512)
    out = bytearray(4)
    assert layer.read(0, IO_INBAND, memoryview(out)) == -errno.EUCLEAN
    assert out == b"\x42" * 4
    layer.mark_bad(2048)
    assert layer.is_bad(2048) and inner.is_bad(2048)
    layer.erase(0, 2048)
    assert inner.erase_counts[0] == 1
    layer.sync()
    assert inner.store.flushes == 1
    layer.close()
