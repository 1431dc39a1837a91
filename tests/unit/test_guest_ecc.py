"""The NAND model's ECC engine (guest/muse/ecc.py) and its use by NandDevice."""

from __future__ import annotations

import errno
import random

import pytest

from guest.muse import mtdabi
from guest.muse.devices import NandDevice, make_device
from guest.muse.ecc import Hamming, Uncorrectable, scheme
from guest.muse.errors import ConfigError
from guest.muse.geometry import Geometry
from guest.muse.protocol import IO_INBAND, IO_OOB_AUTO, IO_OOB_PLACE, IO_RAW
from guest.muse.stores import open_store

# 8 blocks of 4 pages of 2048 bytes, 64 OOB bytes: 4 x 3 ECC bytes at the end.
NAND = Geometry(name="nand", mtd_type=mtdabi.MTD_NANDFLASH, flags=mtdabi.MTD_WRITEABLE,
                size=8 * 4 * 2048, writesize=2048, erasesize=4 * 2048, oobsize=64,
                oobavail=32, subpage_shift=2)
RAW = IO_INBAND | IO_RAW


def _flip(data: bytes, *bits: int) -> bytes:
    out = bytearray(data)
    for bit in bits:
        out[bit >> 3] ^= 1 << (bit & 7)
    return bytes(out)


@pytest.mark.parametrize("step", [256, 512])
def test_every_single_flip_is_corrected_in_data_and_in_ecc(step: int) -> None:
    code = Hamming(step)
    data = random.Random(step).randbytes(step)
    ecc = code.encode(data)
    for bit in range(step * 8):
        read = bytearray(_flip(data, bit))
        assert code.correct(memoryview(read), ecc) == 1 and read == data, bit
    for bit in range(24):
        read = bytearray(data)
        assert code.correct(memoryview(read), _flip(ecc, bit)) == 1 and read == data, bit
    read = bytearray(data)
    assert code.correct(memoryview(read), ecc) == 0


def test_two_flips_in_a_step_are_uncorrectable_and_leave_the_data() -> None:
    code = Hamming(512)
    rnd = random.Random(7)
    data = rnd.randbytes(512)
    ecc = code.encode(data)
    for _ in range(300):
        a, b = rnd.sample(range(512 * 8 + 24), 2)
        read = bytearray(_flip(data, *(x for x in (a, b) if x < 4096)))
        stored = _flip(ecc, *(x - 4096 for x in (a, b) if x >= 4096))
        before = bytes(read)
        with pytest.raises(Uncorrectable):
            code.correct(memoryview(read), stored)
        assert read == before


def test_an_erased_chunk_reads_as_erased_up_to_the_strength() -> None:
    code = Hamming(512)
    read = bytearray(b"\xff" * 512)
    assert code.correct(memoryview(read), b"\xff\xff\xff") == 0
    read[100] = 0xF7
    assert code.correct(memoryview(read), b"\xff\xff\xff") == 1 and read == b"\xff" * 512
    read[100], read[200] = 0xF7, 0x7F
    with pytest.raises(Uncorrectable):
        code.correct(memoryview(read), b"\xff\xff\xff")


def _device() -> NandDevice:
    device = make_device(NAND, open_store(NAND), ecc=scheme("hamming-512", NAND))
    assert isinstance(device, NandDevice)
    return device


def _read(device: NandDevice, addr: int, length: int, flags: int = IO_INBAND) -> tuple[int, bytes]:
    out = bytearray(length)
    soft = device.read(addr, flags, memoryview(out))
    return soft, bytes(out)


def test_stored_flips_are_corrected_reported_and_seen_raw() -> None:
    device = _device()
    page = random.Random(1).randbytes(2048)
    assert device.write(4096, IO_INBAND, memoryview(page)) == 0
    assert _read(device, 4096, 2048) == (0, page)
    # As nandbiterrs does: a raw rewrite that clears one bit (programming ANDs).
    one = next(i for i in range(16384) if page[i >> 3] >> (i & 7) & 1)
    device.write(4096, RAW, memoryview(_flip(page, one)))
    assert _read(device, 4096, 2048) == (-errno.EUCLEAN, page)
    # A partial read is checked by the whole steps it touches, and only by those.
    at = one >> 3
    assert _read(device, 4096 + at, 3) == (-errno.EUCLEAN, page[at:at + 3])
    assert _read(device, 4096 + 1000, 10) == (0, page[1000:1010])
    assert _read(device, 4096, 2048, RAW) == (0, _flip(page, one))
    # A second flip in the same 512-byte step is beyond the strength.
    two = next(i for i in range(one + 1, 4096) if page[i >> 3] >> (i & 7) & 1)
    device.write(4096, RAW, memoryview(_flip(page, one, two)))
    assert _read(device, 4096, 2048) == (-errno.EBADMSG, _flip(page, one, two))
    assert device.stats()["ecc"] == {"step": 512, "strength": 1, "corrected_bits": 2,
                                     "corrected_reads": 2, "uncorrectable_reads": 1}


def test_ecc_bytes_sit_at_the_end_of_the_oob_and_leave_the_free_area() -> None:
    device = _device()
    device.write(0, IO_INBAND, memoryview(b"\x00" * 512))   # one subpage
    oob = _read(device, 0, 64, IO_OOB_PLACE)[1]
    assert oob[:52] == b"\xff" * 52
    assert oob[52:55] != b"\xff\xff\xff" and oob[55:] == b"\xff" * 9, "one step programmed"
    assert _read(device, 0, 32, IO_OOB_AUTO)[1] == b"\xff" * 32
    assert _read(device, 0, 2048)[0] == 0, "erased steps read clean"
    assert _read(device, 8192, 2048) == (0, b"\xff" * 2048)


def test_without_ecc_reads_take_the_plain_path() -> None:
    assert make_device(NAND, open_store(NAND)).plain_reads
    assert not _device().plain_reads


@pytest.mark.parametrize(("geometry", "name", "message"), [
    (NAND, "hamming-1024", "expected one of"),
    (Geometry(name="nor", mtd_type=mtdabi.MTD_NORFLASH, flags=mtdabi.MTD_WRITEABLE,
              size=65536, writesize=1, erasesize=4096), "hamming-512", "needs a NAND"),
    (Geometry(name="n", mtd_type=mtdabi.MTD_NANDFLASH, flags=mtdabi.MTD_WRITEABLE,
              size=65536, writesize=2048, erasesize=8192, oobsize=64, oobavail=52),
     "hamming-256", "cannot hold"),
    (Geometry(name="n", mtd_type=mtdabi.MTD_NANDFLASH, flags=mtdabi.MTD_WRITEABLE,
              size=65536, writesize=512, erasesize=2048, oobsize=16, oobavail=4,
              subpage_shift=2), "hamming-256", "must divide"),
])
def test_an_ecc_that_does_not_fit_is_refused(geometry: Geometry, name: str,
                                            message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        scheme(name, geometry)
