"""A server's I/O errors as the caller sees them (muse_do_io_part()).

The whole-suite coverage run found no test running these paths: a soft error
other than -EUCLEAN/-EBADMSG ends a read or write with that very error, and a
reply shorter than the request fails it with -EIO (MTD has no short I/O).
Generated mutants that survived the suite added the rest: a reply whose len
claims more than its data, a reply of length 0, and the SYNC request that
closing a writable /dev/mtdN sends (mtdchar_close() calls mtd_sync()).

An operation with in-band and OOB data is two requests, and how their errors
combine is what an in-kernel MTD user gets back from mtd_read_oob(). MEMREAD
hides it (it loops over each part and rebuilds its result from the ECC
counters), so kernel/testmods/mtd_oob_read.ko makes that call itself.
"""

from __future__ import annotations

import json
import zlib

from harness.pytest.testguest import TestGuest

from .conftest import MuseServers, mtd_oob_read
from .test_bugs import CTL, hostile, probe, serve_with_control


def test_a_soft_error_ends_the_operation_with_that_error(vm: TestGuest,
                                                         muse: MuseServers) -> None:
    dev = serve_with_control(muse)
    hostile(vm, "soft-error:-28,op=write")       # -ENOSPC
    write = probe(vm, f"write {dev} --off 0")
    hostile(vm, "soft-error:-61,op=read")        # -ENODATA
    read = probe(vm, f"read {dev} --off 0")
    assert (write["ret"], write["errno"]) == (-1, "ENOSPC"), write
    assert (read["ret"], read["errno"]) == (-1, "ENODATA"), read


def test_a_short_reply_is_an_io_error(vm: TestGuest, muse: MuseServers) -> None:
    dev = serve_with_control(muse)
    hostile(vm, "io-len-short,op=read")
    short_read = probe(vm, f"read {dev} --off 2048")
    hostile(vm, "io-len-short,op=write")
    short_write = probe(vm, f"write {dev} --off 4096")
    hostile(vm, "io-len-long:1,op=read")         # len says one byte more than came
    long_read = probe(vm, f"read {dev} --off 6144")
    hostile(vm, "io-len:0,op=write")
    empty_write = probe(vm, f"write {dev} --off 8192")
    results = {"short read": short_read, "short write": short_write, "len+1 read": long_read,
               "len 0 write": empty_write}
    assert {k: (v["ret"], v["errno"]) for k, v in results.items()} == \
        {k: (-1, "EIO") for k in results}, results


def _requests(vm: TestGuest, op: str) -> int:
    """How many requests of op (MUSE_READ, MUSE_SYNC, ...) the server has had."""
    out = vm.check(f"python3 -m guest.muse ctl --control {CTL} stats").stdout
    ops: dict[str, dict[str, int]] = json.loads(out)["stats"]["ops"]
    return ops.get(op, {}).get("requests", 0)


def test_closing_a_writable_mtd_sends_sync(vm: TestGuest, muse: MuseServers) -> None:
    dev = serve_with_control(muse)
    before = _requests(vm, "MUSE_SYNC")
    vm.check(f"python3 -c \"open('{dev}', 'r+b').close()\"")
    vm.check(f"python3 -c \"open('{dev}', 'rb').close()\"")     # read-only: no sync
    assert _requests(vm, "MUSE_SYNC") == before + 1


def test_io_larger_than_max_io_goes_in_chunks_to_the_right_places(vm: TestGuest,
                                                                   muse: MuseServers) -> None:
    """With max_read/max_write at 4 KiB, a 64 KiB write and read each take 16 requests;
    every chunk must land at its own offset (a generated mutant that stopped advancing
    the position survived every test that ran the loop)."""
    dev = muse.start("--type nand --name chunks --size 4MiB --writesize 2048 --oobsize 64 "
                     "--erasesize 128KiB --max-io 4KiB").mtd.dev
    vm.check(f"head -c 65536 /dev/urandom > /tmp/chunks && "
             f"dd if=/tmp/chunks of={dev} bs=65536 count=1 seek=1 2>/dev/null && "
             f"dd if={dev} of=/tmp/back bs=65536 count=1 skip=1 2>/dev/null && "
             "cmp /tmp/chunks /tmp/back")


# -- in-band and OOB in one mtd_read_oob() ---------------------------------------------------
DATA_CRC = zlib.crc32(bytes((i * 13 + 1) & 0xFF for i in range(2048)))   # bugprobe memwrite
OOB_CRC = zlib.crc32(bytes((0xA0 + i) & 0xFF for i in range(64)))


def kernel_read_oob(vm: TestGuest, dev: str, off: int, rules: list[str]) -> tuple[object, ...]:
    """Arm rules, make one mtd_read_oob() of a page and its 64 OOB bytes in the kernel:
    (return value, both parts delivered intact, read requests the server got)."""
    vm.check(f"python3 -m guest.muse ctl --control {CTL} hostile off")
    for rule in rules:
        hostile(vm, rule)
    before = _requests(vm, "MUSE_READ")
    got = mtd_oob_read(vm, dev, off)
    intact = (got["retlen"], got["oobretlen"], got["data_crc"], got["oob_crc"]) == \
        (2048, 64, DATA_CRC, OOB_CRC)
    return got["ret"], intact, _requests(vm, "MUSE_READ") - before


def test_data_and_oob_errors_combine_for_an_in_kernel_reader(vm: TestGuest,
                                                              muse: MuseServers) -> None:
    """Each part's soft error, as muse_do_io() must combine them: a hard error in the
    data ends the call before the OOB request; -EBADMSG beats -EUCLEAN; an -EUCLEAN of
    either part survives a clean other part. Generated mutants that read only one part,
    or let the OOB part's status replace the data part's, passed every MEMREAD test."""
    dev = serve_with_control(muse)
    cases = {
        "clean": ([], (0, True, 2)),
        "data EBADMSG, OOB EUCLEAN": (["soft-error:-74,op=read",
                                       "soft-error:-117,op=read,nth=2"], (-74, True, 2)),
        "data EUCLEAN, OOB clean": (["soft-error:-117,op=read"], (-117, True, 2)),
        "data clean, OOB EUCLEAN": (["soft-error:-117,op=read,nth=2"], (-117, True, 2)),
        "data EIO": (["soft-error:-5,op=read"], (-5, False, 1)),
    }
    for page, case in enumerate(cases, start=1):
        wrote = probe(vm, f"memwrite {dev} --off {page * 2048} --len 2048 --ooblen 64")
        assert wrote == {"ret": 0, "errno": None}, (case, wrote)
    got = {case: kernel_read_oob(vm, dev, page * 2048, rules)
           for page, (case, (rules, _)) in enumerate(cases.items(), start=1)}
    assert got == {case: want for case, (_, want) in cases.items()}
