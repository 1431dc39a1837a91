"""PARTSCMDLINE partitioning and the muse_pid attribute on every visible MTD.

Runs on the default flavour and on partmaster (CONFIG_MTD_PARTITIONED_MASTER=y),
where the master MTD is visible too.
"""

from __future__ import annotations

import re

import pytest

from guest import contract
from harness.pytest.testguest import TestGuest

from .conftest import MuseServers

NAND = "--type nand --size 16MiB --writesize 2048 --oobsize 64 --erasesize 128KiB"
BOTH = [pytest.param(False, id="default"),
        pytest.param(True, id="partmaster", marks=pytest.mark.flavour("partmaster"))]
MTD_WRITEABLE = 0x400


def sysfs(vm: TestGuest, n: int, *names: str) -> list[str]:
    return vm.check(f"cd /sys/class/mtd/mtd{n} && cat {' '.join(names)}").stdout.split()


@pytest.mark.parametrize("part_master", BOTH)
def test_muse_pid_on_visible_devices(vm: TestGuest, muse: MuseServers,
                                     part_master: bool) -> None:
    server = muse.start(f"{NAND} --name pidmaster --parts '4M(pa),4M(pb),-(pc)'")
    names = {m.name for m in server.mtds}
    expected = {"pa", "pb", "pc"} | ({"pidmaster"} if part_master else set())
    assert names == expected
    proc_mtd = vm.check("cat /proc/mtd").stdout
    assert ('"pidmaster"' in proc_mtd) == part_master
    for mtd in server.mtds:
        assert sysfs(vm, mtd.index, "muse_pid") == [str(server.pid)], mtd
    muse.stop(server)
    for mtd in server.mtds:
        assert vm.run(f"test -e /sys/class/mtd/mtd{mtd.index}/muse_pid").exit_status == 1


def test_unpartitioned_device_has_muse_pid_and_no_partitions(vm: TestGuest,
                                                             muse: MuseServers) -> None:
    server = muse.start(f"{NAND} --name whole")
    assert [m.name for m in server.mtds] == ["whole"]
    assert sysfs(vm, server.mtd.index, "muse_pid") == [str(server.pid)]
    assert len(re.findall(r"^mtd\d+:", vm.check("cat /proc/mtd").stdout, re.M)) == 1


@pytest.mark.parametrize("part_master", BOTH)
def test_partitions_have_the_requested_sizes_offsets_and_flags(
        vm: TestGuest, muse: MuseServers, part_master: bool) -> None:
    server = muse.start(f"{NAND} --name layout --parts '1M(boot)ro,2M@4M(data),-(rest)'")
    got: dict[str, tuple[int, int | None, int]] = {}
    for mtd in server.mtds:
        size, flags = sysfs(vm, mtd.index, "size", "flags")
        # Only partitions have an offset attribute; the (visible) master has none.
        offset = vm.check(f"cat /sys/class/mtd/mtd{mtd.index}/offset 2>/dev/null "
                          "|| echo master").stdout.strip()
        got[mtd.name] = (int(size), int(offset) if offset != "master" else None,
                         int(flags, 16) & MTD_WRITEABLE)
    expected: dict[str, tuple[int, int | None, int]] = {
        "boot": (1 << 20, 0, 0),
        "data": (2 << 20, 4 << 20, MTD_WRITEABLE),
        "rest": (10 << 20, 6 << 20, MTD_WRITEABLE),
    }
    if part_master:
        expected["layout"] = (16 << 20, None, MTD_WRITEABLE)
    assert got == expected


def test_read_only_partition_refuses_writes(vm: TestGuest, muse: MuseServers) -> None:
    server = muse.start(f"{NAND} --parts '1M(rofs)ro,-(rwfs)'")
    ro = next(m for m in server.mtds if m.name == "rofs")
    rw = next(m for m in server.mtds if m.name == "rwfs")
    assert vm.run(f"flash_erase -q {rw.dev} 0 1").ok
    # mtdchar refuses to open a read-only MTD for writing (EACCES).
    refused = vm.run(f"flash_erase -q {ro.dev} 0 1")
    assert not refused.ok and "Permission denied" in refused.stderr, refused.describe()
    vm.check("head -c 2048 /dev/zero > /tmp/page")
    refused = vm.run(f"mtd_debug write {ro.dev} 0 2048 /tmp/page")
    assert not refused.ok, refused.describe()


@pytest.mark.parametrize("first", ["128k", "128k(a,b)"], ids=["unnamed", "comma-in-name"])
def test_sixty_four_partitions_register(vm: TestGuest, muse: MuseServers, first: str) -> None:
    """The most MUSE takes (fix 0123; a 65th is refused, test_geometry.py). On the kmsan
    flavour the unnamed case overran the init work's stack until fix 0127 made
    cmdlinepart's parser a loop. A name is taken verbatim up to ')': its commas separate
    nothing, and MUSE's count of the partitions must not count them."""
    # 64 partitions take about 3 minutes to register on the kmsan flavour (2 s each).
    server = muse.start(f"{NAND} --name many --register-timeout 590 "
                        f"--parts '{first},{'128k,' * 62}-'", timeout=600)
    first_name = first.partition("(")[2].rstrip(")") or "Partition_000"
    assert [m.name for m in server.mtds] == \
        [first_name, *(f"Partition_{i:03d}" for i in range(1, 64))]


MALFORMED = [
    ("1M(a", "no closing ) found in partition name"),
    ("abc", "partition has size 0"),
    ("1M@xyz(a)", "bad character after partition (x)"),
    ("-(a),1M(b)", "no partitions allowed after a fill-up partition"),
    ("1M(a)zz", "bad character after partition (z)"),
]


@pytest.mark.parametrize(("parts", "message"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_partition_string_is_refused_cleanly(vm: TestGuest, muse: MuseServers,
                                                       parts: str, message: str) -> None:
    """The kernel's parser refuses it with its reason: no partitions, the device comes up
    unpartitioned, and no splat (the console slice is checked after every test)."""
    server = muse.start(f"{NAND} --name badparts --unchecked "
                        f"--init-param 'PARTSCMDLINE={parts}'")
    assert [m.name for m in server.mtds] == ["badparts"]
    assert f"mtd: {message}" in vm.console


MTDRAM_PARTS = '"mtdparts=mtdram test device:256k(kpa),-(kpb)"'


@pytest.mark.kernel_args(MTDRAM_PARTS)
def test_kernel_mtdparts_still_works_after_muse_devices(vm: TestGuest,
                                                        muse: MuseServers) -> None:
    """The kernel's own mtdparts= list survives MUSE devices parsing their PARTSCMDLINE."""
    def mtdram_partitions() -> list[str]:
        vm.check(contract.mtdram_modprobe(1024, 64))
        try:
            return re.findall(r'"(kp[ab])"', vm.check("cat /proc/mtd").stdout)
        finally:
            vm.check("rmmod mtdram")

    assert mtdram_partitions() == ["kpa", "kpb"]
    for round_ in range(2):
        server = muse.start(f"{NAND} --name m{round_} --parts '8M(x{round_}),-(y{round_})'")
        muse.stop(server)
        assert mtdram_partitions() == ["kpa", "kpb"]
