"""nandbiterrs' incremental test, as raw system calls on /dev/mtdX.

    python3 -m guest.biterrs /dev/mtd0 --flips 2 [--page N] [--spread STEP]

Erases the page's eraseblock, writes the page normally (the ECC engine stores
its ECC), then again and again rewrites it raw with one more bit cleared (a
raw program bypasses ECC, and programming only clears bits) and reads it
normally. One JSON line per step: flips so far, the read's errno (null when
it succeeded), whether the data read back as written, and the change in the
MTD's ECC statistics (ECCGETSTATS: corrected, failed). Every flip lands in the
first ECC step, or with --spread STEP each in the next STEP-byte step.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import os

from guest.bugprobe import (
    LIBC,
    MEMERASE,
    MEMWRITE,
    WRITE_REQ,
    ecc_stats,
    emit,
    errname,
    result,
)

MTD_OPS_RAW = 2
MEMGETINFO = 0x80204D01


def _info(fd: int) -> tuple[int, int, int]:
    """(erasesize, writesize, oobsize) of the MTD (struct mtd_info_user: u8 type, then
    u32 flags, size, erasesize, writesize, oobsize at 4, 8, 12, 16, 20)."""
    buf = ctypes.create_string_buffer(32)
    if LIBC.ioctl(fd, MEMGETINFO, buf) != 0:
        raise OSError(ctypes.get_errno(), "MEMGETINFO")
    erasesize = int.from_bytes(buf.raw[12:16], "little")
    writesize = int.from_bytes(buf.raw[16:20], "little")
    return erasesize, writesize, int.from_bytes(buf.raw[20:24], "little")


def _pattern(length: int) -> bytes:
    # Odd bytes (bit 0 set, to be cleared), none 0xFF (an erased page's look).
    return bytes(0x55 + 2 * ((i * 29) % 0x2A) for i in range(length))


def run(dev: str, page: int, flips: int, spread: int = 0) -> None:
    fd = os.open(dev, os.O_RDWR)
    erasesize, writesize, oobsize = _info(fd)
    # The raw rewrite carries an all-ones OOB, which programs nothing: nandsim takes
    # a raw page program only with its OOB ("too few bytes were input").
    oob = ctypes.create_string_buffer(b"\xff" * oobsize, oobsize)
    offset = page * writesize
    block = ctypes.create_string_buffer(
        (offset // erasesize * erasesize).to_bytes(4, "little")
        + erasesize.to_bytes(4, "little"))
    if LIBC.ioctl(fd, MEMERASE, block) != 0:
        raise OSError(ctypes.get_errno(), "MEMERASE")
    data = bytearray(_pattern(writesize))
    if os.pwrite(fd, bytes(data), offset) != writesize:
        raise OSError(errno.EIO, "short write")
    for step in range(1, flips + 1):
        # Bit 0 of byte 8*step of the first ECC step, or of step-1 with --spread.
        data[(step - 1) * spread + 8 * step] &= 0xFE
        buf = ctypes.create_string_buffer(bytes(data), writesize)
        req = ctypes.create_string_buffer(WRITE_REQ.pack(
            offset, writesize, oobsize, ctypes.addressof(buf), ctypes.addressof(oob),
            MTD_OPS_RAW))
        raw = result(LIBC.ioctl(fd, MEMWRITE, req))
        before = ecc_stats(fd)
        out = ctypes.create_string_buffer(writesize)
        ctypes.set_errno(0)
        got = LIBC.pread(fd, out, writesize, offset)
        failure = errname(ctypes.get_errno()) if got < 0 else None
        after = ecc_stats(fd)
        emit(flips=step, raw_write=raw, read_errno=failure,
             data_as_written=out.raw == _pattern(writesize),
             corrected=after["corrected"] - before["corrected"],
             failed=after["failed"] - before["failed"])
    os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dev")
    parser.add_argument("--page", type=int, default=0)
    parser.add_argument("--flips", type=int, default=2)
    parser.add_argument("--spread", type=int, default=0, metavar="STEP",
                        help="put each flip in its own ECC step of STEP bytes")
    args = parser.parse_args()
    run(args.dev, args.page, args.flips, args.spread)


if __name__ == "__main__":
    main()
