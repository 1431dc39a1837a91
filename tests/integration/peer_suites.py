"""What the peer run (test_peer.py) runs: mtd-utils' suites on a MUSE device and on its
in-kernel control of the same geometry. Data only; the programs live in the guest
image under TESTDIR (harness/machine/mtdtests.py).

Parameters are bounded so that one program takes seconds to minutes under TCG,
and are the same on both sides of a pair.
"""

from __future__ import annotations

from dataclasses import dataclass

from guest.contract import MTDRAM_NAME, NANDSIM_64MIB, NANDSIM_NAME, mtdram_modprobe
from harness.machine.mtdtests import TESTDIR


@dataclass(frozen=True)
class Pair:
    """A MUSE device and the in-kernel control it is held against."""

    name: str
    muse: str                 # guest.muse serve arguments
    control_load: str         # shell command that creates the control MTD
    control_name: str         # its name in /proc/mtd
    control_unload: str


NAND_SLC = Pair(
    "nand-slc",
    # nandsim's chip: 64 MiB, 2 KiB pages with 512-byte subpages, 64 OOB bytes, and
    # the kernel's software Hamming ECC over 256-byte steps.
    "--type nand --name peer-nand --size 64MiB --erasesize 128KiB --writesize 2048 "
    "--oobsize 64 --subpage-shift 2 --ecc hamming-256",
    NANDSIM_64MIB, NANDSIM_NAME, "rmmod nandsim")
RAM = Pair("ram", "--type ram --name peer-ram --size 16MiB --erasesize 128KiB",
           mtdram_modprobe(16384, 128), MTDRAM_NAME, "rmmod mtdram")
NOR = Pair("nor", "--type nor --name peer-nor --size 16MiB --erasesize 128KiB",
           mtdram_modprobe(16384, 128), MTDRAM_NAME, "rmmod mtdram")

# mtd-tests: program -> (its arguments before the device, the pairs it runs on).
RAW_PAIRS = (NAND_SLC, RAM, NOR)
MTD_TESTS: dict[str, tuple[str, tuple[Pair, ...]]] = {
    "flash_readtest": ("-c 8", RAW_PAIRS),
    "flash_speed": ("-c 8 -d", RAW_PAIRS),
    "flash_stress": ("-c 1000 -s 1", RAW_PAIRS),
    "flash_torture": ("-c 2", RAW_PAIRS),
    "nandpagetest": ("-c 8 -S 1", (NAND_SLC,)),
    "nandsubpagetest": ("-c 8 -S 1", (NAND_SLC,)),
    "nandbiterrs-incremental": ("-i -b 12 -p 0 -s 1", (NAND_SLC,)),
    "nandbiterrs-overwrite": ("-o -b 13 -p 0 -w 100 -s 1", (NAND_SLC,)),
}

# ubi-tests (runubitests.sh's set), each on a UBI device freshly attached to the MTD.
UBI_TESTS = ("mkvol_basic", "mkvol_bad", "mkvol_paral", "rsvol", "io_basic", "io_read",
             "io_update", "io_paral", "volrefcnt")
UBI_PAIRS = (NAND_SLC,)


def program(test: str) -> str:
    """The program a test id runs: nandbiterrs-incremental runs nandbiterrs."""
    return f"{TESTDIR}/{test.split('-')[0]}"
