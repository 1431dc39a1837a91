"""MUSE_INIT info the kernel must refuse: numbers it cannot parse, malformed key lists.

muse_parse_mtdreq() reads each numeric key with kstrto*() and gives up on the
first that fails; fuse_kv_parse_one() refuses info that is not NUL-terminated
and a key of zero length. Each case must end the connection (the server exits 3,
"kernel rejected the device") with no MTD left behind. The coverage run found
these paths run by no test.
"""

from __future__ import annotations

import pytest

from guest import contract
from harness.pytest.testguest import TestGuest

from .conftest import MuseServers, quote

NAME = "badinfo"
NAND = (f"--type nand --name {NAME} --size 4MiB --writesize 2048 --oobsize 64 "
        "--erasesize 128KiB --unchecked")
NUMERIC_KEYS = ("TYPE", "FLAGS", "SIZE", "WRITESIZE", "WRITEBUFSIZE", "OOBSIZE", "OOBAVAIL",
                "ERASESIZE", "SUBPAGESHIFT")
REJECTED = 3       # the server's exit status when the kernel refuses its device


def _refused(vm: TestGuest, muse: MuseServers, args: str) -> None:
    status, output = muse.run_to_exit(args)
    assert status == REJECTED, f"the kernel took the device (exit {status}):\n{output}"
    names = [m.name for m in contract.proc_mtd(vm.check("cat /proc/mtd").stdout)]
    assert NAME not in names, f"a refused device is registered: {names}"


@pytest.mark.parametrize("key", NUMERIC_KEYS)
def test_a_number_the_kernel_cannot_parse_is_refused(vm: TestGuest, muse: MuseServers,
                                                     key: str) -> None:
    _refused(vm, muse, f"{NAND} --init-param {key}=12x")


def test_an_empty_key_is_refused(vm: TestGuest, muse: MuseServers) -> None:
    _refused(vm, muse, f"{NAND} --init-param {quote('=5')}")


def test_info_without_its_terminating_nul_is_refused(vm: TestGuest, muse: MuseServers) -> None:
    info = (f"NAME={NAME}\0TYPE=4\0SIZE=4194304\0WRITESIZE=2048\0ERASESIZE=131072\0"
            "OOBSIZE=64\0FLAGS=1024").encode()       # the last pair has no NUL
    _refused(vm, muse, f"--type nand --unchecked --init-raw {info.hex()}")
