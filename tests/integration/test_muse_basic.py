"""The 6.1 port boots and works: /dev/muse, registration, geometry, muse_pid, data."""

from __future__ import annotations

import re

from harness.pytest.testguest import TestGuest

from .conftest import MuseServers

NAND = "--type nand --size 16MiB --writesize 2048 --oobsize 64 --erasesize 128KiB"


def test_dev_muse_is_a_misc_device(vm: TestGuest) -> None:
    result = vm.check("stat -c %F /dev/muse; grep -w muse /proc/misc")
    assert result.stdout.startswith("character special file\n")
    assert re.search(r"^\s*\d+ muse$", result.stdout, re.M)


def test_nand_registers_with_the_requested_geometry(vm: TestGuest, muse: MuseServers) -> None:
    server = muse.start(f"{NAND} --name musenand")
    n = server.mtd.index
    proc_mtd = vm.check("cat /proc/mtd").stdout
    assert re.search(rf'^mtd{n}: 01000000 00020000 "musenand"$', proc_mtd, re.M), proc_mtd
    values = vm.check(f"cd /sys/class/mtd/mtd{n} && cat size erasesize writesize oobsize "
                      "type muse_pid flags").stdout.split()
    assert values[:6] == ["16777216", "131072", "2048", "64", "nand", str(server.pid)]
    assert int(values[6], 16) & 0x8000, "MTD_MUSE flag missing"


def test_nor_registers_and_muse_pid_matches(vm: TestGuest, muse: MuseServers) -> None:
    server = muse.start("--type nor --size 4MiB --erasesize 64KiB --name musenor")
    n = server.mtd.index
    values = vm.check(f"cd /sys/class/mtd/mtd{n} && cat name size erasesize type "
                      "muse_pid").stdout.split()
    assert values == ["musenor", "4194304", "65536", "nor", str(server.pid)]


def test_nand_data_reads_back(vm: TestGuest, muse: MuseServers) -> None:
    dev = muse.start(NAND).mtd.dev
    vm.check("head -c 262144 /dev/urandom > /tmp/in && "
             f"flash_erase -q {dev} 0 2 && nandwrite -q -p {dev} /tmp/in && "
             f"nanddump -q -l 262144 -f /tmp/out {dev} && cmp /tmp/in /tmp/out", timeout=300)


def test_ram_data_reads_back(vm: TestGuest, muse: MuseServers) -> None:
    dev = muse.start("--type ram --size 1MiB --erasesize 64KiB").mtd.dev
    vm.check("head -c 100000 /dev/urandom > /tmp/in && "
             f"mtd_debug write {dev} 4096 100000 /tmp/in && "
             f"mtd_debug read {dev} 4096 100000 /tmp/out && cmp /tmp/in /tmp/out")


def test_mtd_goes_away_when_the_server_stops(vm: TestGuest, muse: MuseServers) -> None:
    server = muse.start(NAND + " --name goingaway")
    assert "goingaway" in vm.check("cat /proc/mtd").stdout
    assert muse.stop(server) == 0
    assert "goingaway" not in vm.check("cat /proc/mtd").stdout
    assert vm.run(f"test -e /sys/class/mtd/mtd{server.mtd.index}/muse_pid").exit_status == 1
