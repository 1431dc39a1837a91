"""UBI/UBIFS on MUSE NAND and JFFS2 on MUSE NOR, each beside its in-kernel control.

nandsim (same geometry) controls UBI, mtdram controls JFFS2; both run the
same steps in the same test and must give the same results.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from guest import contract
from harness.pytest.testguest import TestGuest

from .conftest import MuseServers

WRITE_FILES = (
    "mkdir -p {mnt}/d && for i in $(seq 1 12); do "
    "head -c $((i * 7919)) /dev/urandom > {mnt}/d/f$i; done && sync && "
    "(cd {mnt} && sha256sum d/*) > /tmp/{tag}.sums"
)
VERIFY_FILES = "cd {mnt} && sha256sum -c --quiet /tmp/{tag}.sums"
UBINFO_KEYS = ("Logical eraseblock size", "Total amount of logical eraseblocks",
               "Amount of available logical eraseblocks", "Count of bad physical eraseblocks",
               "Count of reserved physical eraseblocks", "Minimum input/output unit size")


def mtd_index(vm: TestGuest, name: str) -> int:
    index = contract.mtd_index(vm.check("cat /proc/mtd").stdout, name)
    assert index is not None, f"{name} not in /proc/mtd"
    return index


def geometry(vm: TestGuest, n: int) -> dict[str, int]:
    return contract.parse_geometry(vm.check(contract.geometry_command(n)).stdout)


def ubi_cycle(vm: TestGuest, n: int, ubi: int, tag: str,
              restart: Callable[[], int]) -> dict[str, str]:
    """Attach, make a volume, write files on UBIFS, detach, restart, reattach, verify."""
    mnt = f"/mnt/{tag}"
    vm.check(f"ubiattach -m {n} -d {ubi} && ubimkvol /dev/ubi{ubi} -N vol -m && "
             f"mkdir -p {mnt} && mount -t ubifs ubi{ubi}:vol {mnt}", timeout=600)
    info = vm.check(f"ubinfo /dev/ubi{ubi}").stdout
    vm.check(WRITE_FILES.format(mnt=mnt, tag=tag), timeout=600)
    vm.check(f"umount {mnt} && ubidetach -d {ubi}", timeout=600)
    n = restart()
    vm.check(f"ubiattach -m {n} -d {ubi} && mount -t ubifs ubi{ubi}:vol {mnt}", timeout=600)
    vm.check(VERIFY_FILES.format(mnt=mnt, tag=tag))
    vm.check(f"umount {mnt} && ubidetach -d {ubi}", timeout=600)
    return {k: v.strip() for k, v in re.findall(r"^([^:\n]+):\s+(.*)$", info, re.M)
            if k in UBINFO_KEYS}


def test_ubi_and_ubifs_on_muse_nand_match_nandsim(vm: TestGuest, muse: MuseServers) -> None:
    vm.check(contract.NANDSIM_64MIB)
    try:
        sim = mtd_index(vm, contract.NANDSIM_NAME)
        geo = geometry(vm, sim)
        control = ubi_cycle(vm, sim, 1, "nandsim", lambda: sim)
    finally:
        vm.run("umount /mnt/nandsim; ubidetach -d 1; rmmod nandsim")
    shift = int(math.log2(geo["writesize"] // geo["subpagesize"]))
    args = (f"--type nand --size {geo['size']} --erasesize {geo['erasesize']} "
            f"--writesize {geo['writesize']} --oobsize {geo['oobsize']} "
            f"--subpage-shift {shift} --image /tmp/ubi.img --image-format raw+oob --name museubi")
    server = muse.start(args)

    def restart() -> int:
        assert muse.stop(server) == 0
        return muse.start(args).mtd.index

    try:
        result = ubi_cycle(vm, server.mtd.index, 2, "muse", restart)
    finally:
        vm.run("umount /mnt/muse; ubidetach -d 2")
    assert set(control) == set(UBINFO_KEYS), control
    assert result == control


def jffs2_cycle(vm: TestGuest, n: int, tag: str) -> None:
    mnt = f"/mnt/{tag}"
    vm.check(f"flash_erase -q /dev/mtd{n} 0 0 && mkdir -p {mnt} && "
             f"mount -t jffs2 mtd{n} {mnt}", timeout=600)
    vm.check(WRITE_FILES.format(mnt=mnt, tag=tag), timeout=600)
    vm.check(f"umount {mnt} && mount -t jffs2 mtd{n} {mnt}", timeout=600)
    vm.check(VERIFY_FILES.format(mnt=mnt, tag=tag))
    vm.check(f"umount {mnt}")


def test_jffs2_on_muse_nor_matches_mtdram(vm: TestGuest, muse: MuseServers) -> None:
    vm.check(contract.mtdram_modprobe(4096, 64))
    try:
        jffs2_cycle(vm, mtd_index(vm, contract.MTDRAM_NAME), "mtdram")
    finally:
        vm.run("umount /mnt/mtdram; rmmod mtdram")
    server = muse.start("--type nor --size 4MiB --erasesize 64KiB --name musenor")
    try:
        jffs2_cycle(vm, server.mtd.index, "musenor")
    finally:
        vm.run("umount /mnt/musenor")
