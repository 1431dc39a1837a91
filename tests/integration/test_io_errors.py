"""A server's I/O errors as the caller sees them (muse_do_io_part()).

The whole-suite coverage run found no test running these paths: a soft error
other than -EUCLEAN/-EBADMSG ends a read or write with that very error, and a
reply shorter than the request fails it with -EIO (MTD has no short I/O).
"""

from __future__ import annotations

from harness.pytest.testguest import TestGuest

from .conftest import MuseServers
from .test_bugs import hostile, probe, serve_with_control


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
    assert (short_read["ret"], short_read["errno"]) == (-1, "EIO"), short_read
    assert (short_write["ret"], short_write["errno"]) == (-1, "EIO"), short_write
