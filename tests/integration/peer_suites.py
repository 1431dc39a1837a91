"""What the peer run (test_peer.py) runs: mtd-utils' suites on a MUSE device and on its
in-kernel control of the same geometry. Data only; the programs live in the guest
image under TESTDIR (harness/machine/mtdtests.py).

Parameters are bounded so that one program takes seconds to minutes under TCG,
and are the same on both sides of a pair. Where the two sides differ, or both
fail, RESOLVED says why (the peer table prints it).
"""

from __future__ import annotations

from dataclasses import dataclass

from guest.contract import (
    MTDRAM_NAME,
    NANDSIM_64MIB,
    NANDSIM_64MIB_MLC,
    NANDSIM_NAME,
    mtdram_modprobe,
)
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
    # the kernel's software Hamming ECC over 256-byte steps (OOBAVAIL as its layout).
    "--type nand --name peer-nand --size 64MiB --erasesize 128KiB --writesize 2048 "
    "--oobsize 64 --oobavail 38 --subpage-shift 2 --ecc hamming-256",
    NANDSIM_64MIB, NANDSIM_NAME, "rmmod nandsim")
# The same MUSE NAND without the ECC engine, for the ubi-tests and fs-tests: nothing
# flips there, and in the guest's Python under TCG the engine checks a whole 256-byte
# step for every read, UBI's 64-byte headers too: io_basic took 241 s with it and 66 s
# without (1 vCPU, measured side by side), and passed 900 s in a loaded peer run.
NAND_SLC_PLAIN = Pair(
    "nand-slc-plain",
    "--type nand --name peer-nand --size 64MiB --erasesize 128KiB --writesize 2048 "
    "--oobsize 64 --oobavail 38 --subpage-shift 2",
    NANDSIM_64MIB, NANDSIM_NAME, "rmmod nandsim")
NAND_MLC = Pair(
    "nand-mlc",
    # The MLC variant: 4 KiB pages, 128 OOB bytes (78 free before the 48 ECC bytes),
    # 256 KiB eraseblocks, no subpages (the NAND core allows none on MLC).
    "--type mlc-nand --name peer-mlc --size 64MiB --erasesize 256KiB --writesize 4096 "
    "--oobsize 128 --oobavail 78 --subpage-shift 0 --ecc hamming-256",
    NANDSIM_64MIB_MLC, NANDSIM_NAME, "rmmod nandsim")
RAM = Pair("ram", "--type ram --name peer-ram --size 16MiB --erasesize 128KiB",
           mtdram_modprobe(16384, 128), MTDRAM_NAME, "rmmod mtdram")
NOR = Pair("nor", "--type nor --name peer-nor --size 16MiB --erasesize 128KiB",
           mtdram_modprobe(16384, 128), MTDRAM_NAME, "rmmod mtdram")

# mtd-tests: program -> (its arguments before the device, the pairs it runs on).
# nandpagetest and nandsubpagetest take --seed=N: their short option -S takes no
# argument in 2.1.5's getopt string ("Sk"), so "-S 1" crashes them on a NULL optarg.
RAW_PAIRS = (NAND_SLC, NAND_MLC, RAM, NOR)
NAND_PAIRS = (NAND_SLC, NAND_MLC)
MTD_TESTS: dict[str, tuple[str, tuple[Pair, ...]]] = {
    "flash_readtest": ("-c 8", RAW_PAIRS),
    "flash_speed": ("-c 8 -d", RAW_PAIRS),
    "flash_stress": ("-c 1000 -s 1", RAW_PAIRS),
    "flash_torture": ("-c 2", RAW_PAIRS),
    "nandpagetest": ("-c 8 --seed=1", NAND_PAIRS),
    "nandsubpagetest": ("-c 8 --seed=1", NAND_PAIRS),
    "nandbiterrs-incremental": ("-i -b 12 -p 0 -s 1", NAND_PAIRS),
    "nandbiterrs-overwrite": ("-o -b 13 -p 0 -w 100 -s 1", NAND_PAIRS),
}

# ubi-tests (runubitests.sh's set), each on a UBI device freshly attached to the MTD.
# UBI refuses MLC NAND, so only SLC.
UBI_TESTS = ("mkvol_basic", "mkvol_bad", "mkvol_paral", "rsvol", "io_basic", "io_read",
             "io_update", "io_paral", "volrefcnt", "integ")
UBI_PAIRS = (NAND_SLC_PLAIN,)


@dataclass(frozen=True)
class FsPair:
    """A file system on a pair's two MTDs."""

    fs: str                   # ubifs or jffs2
    pair: Pair

    @property
    def name(self) -> str:
        return f"{self.fs}-{self.pair.name}"


FS_PAIRS = (FsPair("ubifs", NAND_SLC_PLAIN), FsPair("jffs2", NOR), FsPair("jffs2", RAM))

# fs-tests, on every FS_PAIRS entry: program -> its arguments ({mnt}: the mount point).
# TEST_FILE_SYSTEM_MOUNT_DIR and TEST_FILE_SYSTEM_TYPE tell the programs where and what.
# Sizes are fs_run_all.sh's divided by 10 to 1000; rndrm00 and rmdir00 grow to 2 MB
# instead of filling the file system (-z0 had run 4 min on one side of a 16 MiB UBIFS
# when it was stopped); fs_stress00.sh and fs_stress01.sh run 30 s, not 360.
FS_TESTS: dict[str, str] = {
    "test_1": "",
    "test_2": "",
    "integck": "-n 1 {mnt}",
    "rndrm00": "-z2000000",
    "rmdir00": "-z2000000",
    "stress_1": "-z1000000 -e",
    "stress_2": "-z1000000",
    "stress_3": "-z1000000 -e",
    "fs_stress00.sh": "30",
    "fs_stress01.sh": "30",
}

# integck's power-cut mode (-p) on UBIFS: it runs until stopped (POWER_CUT_SECONDS);
# after each cut, when UBI has turned read-only and UBIFS answers EROFS, it unmounts,
# detaches and reattaches the MTD (-m), mounts and checks all it had synced. The cuts
# come from UBI's emulation on nandsim, which counts EC and VID header writes, and
# from the server's recurring cuts on MUSE (--powercut-every), which count media ops
# (about 65 page programs and an erase per header write under UBIFS) and tear the op
# they hit. UBI's emulation resets at every attach: POWER_CUT_REARM arms it again.
POWER_CUT_FS = FsPair("ubifs", NAND_SLC_PLAIN)
POWER_CUT_SECONDS = 90
POWER_CUT_MUSE = "--powercut-every 300:4000"
POWER_CUT_REARM = (
    "while :; do for d in /sys/kernel/debug/ubi/ubi*; do "
    "[ \"$(cat $d/tst_emulate_power_cut 2>/dev/null)\" = 0 ] && "
    "echo 4 > $d/tst_emulate_power_cut_min && echo 64 > $d/tst_emulate_power_cut_max && "
    "echo 3 > $d/tst_emulate_power_cut; done; sleep 0.05; done")


# (test, pair name) -> why the row is as it is, for rows where MUSE and its control
# differ or both fail. A row listed here must show exactly this pair of results.
RESOLVED: dict[tuple[str, str], tuple[str, str, str]] = {
    # (MUSE result, control result, why)
    **{("nandbiterrs-incremental", pair.name): (
        "passed", "failed",
        "nandsim limitation: it takes a raw page program only with the OOB bytes (\"too "
        "few bytes were input\": the page without its OOB), and nandbiterrs rewrites its "
        "page raw without them; MUSE's NAND programs it and its ECC engine corrects")
       for pair in NAND_PAIRS},
    ("integ", "nand-slc-plain"): (
        "failed", "failed",
        "suite limitation: integ writes volumes with write(2) and never asks UBI for "
        "direct writes (UBI_VOL_PROP_DIRECT_WRITE), so UBI answers EPERM on any MTD"),
}


# The cases every run takes (make test): one of each suite, seconds each.
QUICK = {"flash_readtest-nand-slc", "nandbiterrs-incremental-nand-slc",
         "mkvol_basic-nand-slc-plain", "test_1-jffs2-nor"}


def program(test: str) -> str:
    """The program a test id runs: nandbiterrs-incremental runs nandbiterrs."""
    return f"{TESTDIR}/{test.split('-')[0]}"
