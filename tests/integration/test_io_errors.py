"""A server's I/O errors as the caller sees them (muse_do_io_part()).

The whole-suite coverage run found no test running these paths: a soft error
other than -EUCLEAN/-EBADMSG ends a read or write with that very error, and a
reply shorter than the request fails it with -EIO (MTD has no short I/O).
Generated mutants that survived the suite added the rest: a reply whose len
claims more than its data, a reply of length 0, and the SYNC request that
closing a writable /dev/mtdN sends (mtdchar_close() calls mtd_sync()).
"""

from __future__ import annotations

import json

from harness.pytest.testguest import TestGuest

from .conftest import MuseServers
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


def _syncs(vm: TestGuest) -> int:
    out = vm.check(f"python3 -m guest.muse ctl --control {CTL} stats").stdout
    ops: dict[str, dict[str, int]] = json.loads(out)["stats"]["ops"]
    return ops.get("MUSE_SYNC", {}).get("requests", 0)


def test_closing_a_writable_mtd_sends_sync(vm: TestGuest, muse: MuseServers) -> None:
    dev = serve_with_control(muse)
    before = _syncs(vm)
    vm.check(f"python3 -c \"open('{dev}', 'r+b').close()\"")
    vm.check(f"python3 -c \"open('{dev}', 'rb').close()\"")     # read-only: no sync
    assert _syncs(vm) == before + 1


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
