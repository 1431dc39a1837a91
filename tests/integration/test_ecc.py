"""The NAND model's ECC engine (--ecc) seen through the MTD layer: nandbiterrs'
incremental test (guest/biterrs.py) on a MUSE NAND, with and without it; and
MUSE ABI 7.35 (kernel/series/*/0201-0202): the engine's geometry in sysfs as
nandsim shows its own, and bitflip_threshold deciding -EUCLEAN for an in-kernel
reader (kernel/testmods/mtd_oob_read.ko) as it does on nandsim."""

from __future__ import annotations

import json
from typing import Any

import pytest

from guest import contract
from harness.pytest.testguest import TestGuest

from .conftest import MuseServers, mtd_oob_read

NAND = "--type nand --size 8MiB --name musecc"
EUCLEAN = 117
REJECTED = 3       # the server's exit status when the kernel refuses its device


def _biterrs(vm: TestGuest, dev: str, flips: int, spread: int = 0) -> list[dict[str, Any]]:
    out = vm.check(f"python3 -m guest.biterrs {dev} --flips {flips} --spread {spread}").stdout
    steps = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert len(steps) == flips, out
    assert all(s["raw_write"]["ret"] == 0 for s in steps), out
    return steps


def test_one_flipped_bit_a_step_is_corrected_and_counted_two_are_not(
        vm: TestGuest, muse: MuseServers) -> None:
    dev = muse.start(f"{NAND} --ecc hamming-512").mtd.dev
    one, two = _biterrs(vm, dev, 2)
    assert (one["read_errno"], one["data_as_written"], one["corrected"], one["failed"]) == \
        (None, True, 1, 0), one
    # mtdchar's read hands over data with ECC errors (for dump tools): the failure
    # shows in the statistics, and the data as stored.
    assert (two["read_errno"], two["data_as_written"], two["corrected"], two["failed"]) == \
        (None, False, 0, 1), two


def test_without_ecc_a_flipped_bit_reads_back_flipped(vm: TestGuest,
                                                      muse: MuseServers) -> None:
    # What nandbiterrs found on MUSE v3: no engine, so nothing corrects the stored flip.
    dev = muse.start(NAND).mtd.dev
    (one,) = _biterrs(vm, dev, 1)
    assert (one["read_errno"], one["data_as_written"], one["corrected"]) == \
        (None, False, 0), one


# -- MUSE ABI 7.35: the ECC geometry and the bit-flip counts ---------------------------------
ECC_ATTRS = ("ecc_strength", "ecc_step_size", "bitflip_threshold")


def _sysfs(vm: TestGuest, dev: str, *attrs: str) -> tuple[int, ...]:
    base = f"/sys/class/mtd/{dev.removeprefix('/dev/')}"
    return tuple(int(vm.check(f"cat {base}/{attr}").stdout) for attr in attrs)


def _nandsim(vm: TestGuest) -> str:
    vm.check(contract.NANDSIM_64MIB)
    index = contract.mtd_index(vm.check("cat /proc/mtd").stdout, contract.NANDSIM_NAME)
    assert index is not None, "nandsim made no MTD"
    return f"/dev/mtd{index}"


def test_ecc_geometry_in_sysfs(vm: TestGuest, muse: MuseServers) -> None:
    """A MUSE NAND with the kernel's software Hamming ECC (1 bit per 256 bytes) shows
    what nandsim, which uses that ECC, shows; without an engine, no ECC at all."""
    try:
        control = _sysfs(vm, _nandsim(vm), *ECC_ATTRS)
    finally:
        vm.run("rmmod nandsim")
    assert control == (1, 256, 1)
    assert _sysfs(vm, muse.start(f"{NAND} --ecc hamming-256").mtd.dev, *ECC_ATTRS) == control
    assert _sysfs(vm, muse.start("--type nand --size 8MiB --name noecc").mtd.dev,
                  *ECC_ATTRS) == (0, 0, 0)


BAD_NAND = ("--type nand --name badecc --size 4MiB --writesize 2048 --oobsize 64 "
            "--erasesize 128KiB --unchecked")


@pytest.mark.parametrize("params", [
    "ECCSTRENGTH=1",                                   # a strength without a step
    "ECCSTEPSIZE=512",                                 # a step without a strength
    "ECCSTRENGTH=1 ECCSTEPSIZE=300",                   # a page is not whole steps
    "ECCSTRENGTH=4097 ECCSTEPSIZE=512",                # more bits than the step has
    "ECCSTRENGTH=1 ECCSTEPSIZE=512 TYPE=3 OOBSIZE=0 OOBAVAIL=0",   # NOR has no ECC
    "ECCSTRENGTH=1x ECCSTEPSIZE=512",                  # not a number
], ids=["no-step", "no-strength", "partial-step", "too-strong", "nor", "not-a-number"])
def test_ecc_geometry_refused(vm: TestGuest, muse: MuseServers, params: str) -> None:
    args = " ".join(f"--init-param {pair}" for pair in params.split())
    status, output = muse.run_to_exit(f"{BAD_NAND} {args}")
    assert status == REJECTED, f"the kernel took the device (exit {status}):\n{output}"
    names = [m.name for m in contract.proc_mtd(vm.check("cat /proc/mtd").stdout)]
    assert "badecc" not in names, names


def _flipped_read(vm: TestGuest, dev: str, flips: int, threshold: int | None) -> dict[str, int]:
    """Page 0 with stored flips, one in each 256-byte ECC step (raw rewrites), then one
    in-band mtd_read_oob() by the kernel: its return value and request statistics."""
    _biterrs(vm, dev, flips, spread=256)
    if threshold is not None:
        sysfs = f"/sys/class/mtd/{dev.removeprefix('/dev/')}/bitflip_threshold"
        vm.check(f"echo {threshold} > {sysfs}")
    got = mtd_oob_read(vm, dev, 0, ooblen=0)
    return {key: got[key] for key in ("ret", "retlen", "max_bitflips", "corrected")}


@pytest.mark.parametrize("device", ["muse", "nandsim"])
def test_bitflip_threshold(vm: TestGuest, muse: MuseServers, device: str) -> None:
    """Corrected bit-flips are -EUCLEAN at the default threshold (the strength, 1) and
    not at threshold 2, and are counted either way, one per flipped step: the MTD core
    decides, from the driver's counts, as for any NAND driver. nandsim is the control."""
    for flips, threshold, ret in ((1, None, -EUCLEAN), (1, 2, 0), (2, None, -EUCLEAN),
                                  (2, 2, 0)):
        if device == "muse":
            server = muse.start(f"{NAND} --writesize 2048 --oobsize 64 --ecc hamming-256")
            dev = server.mtd.dev
        else:
            dev = _nandsim(vm)
        try:
            got = _flipped_read(vm, dev, flips, threshold)
        finally:
            if device == "muse":
                muse.stop(server)
            else:
                vm.run("rmmod nandsim")
        assert got == {"ret": ret, "retlen": 2048, "max_bitflips": 1, "corrected": flips}, \
            (flips, threshold, got)


def test_injected_flips_go_through_the_engine(vm: TestGuest, muse: MuseServers) -> None:
    """A fault-injected flip on an ECC NAND is sensed by the engine: the in-kernel read
    gets the data intact, -EUCLEAN only at the threshold, and the engine's counts; two
    flips in one step (ecc_error_pages) are beyond it."""
    server = muse.start(f"{NAND} --writesize 2048 --oobsize 64 --ecc hamming-256 "
                        "--fault bitflip_pages=0 --fault ecc_error_pages=64")
    dev = server.mtd.dev
    vm.check(f"dd if=/dev/urandom of=/tmp/blk bs=128k count=2 2>/dev/null && "
             f"flash_erase -q {dev} 0 2 && dd if=/tmp/blk of={dev} bs=2048 2>/dev/null")

    def kernel_read(offs: int) -> dict[str, int]:
        got = mtd_oob_read(vm, dev, offs, ooblen=0)
        return {key: got[key] for key in ("ret", "max_bitflips", "corrected", "data_crc")}

    def crc(offs: int) -> int:
        return int(vm.check(f"python3 -c \"import zlib; d=open('/tmp/blk','rb').read(); "
                            f"print(zlib.crc32(d[{offs}:{offs + 2048}]))\"").stdout)

    got = kernel_read(0)
    assert got == {"ret": -EUCLEAN, "max_bitflips": 1, "corrected": 1, "data_crc": crc(0)}, got
    vm.check(f"echo 2 > /sys/class/mtd/{dev.removeprefix('/dev/')}/bitflip_threshold")
    got = kernel_read(0)
    assert got == {"ret": 0, "max_bitflips": 1, "corrected": 1, "data_crc": crc(0)}, got
    bad = kernel_read(64 * 2048)
    assert bad["ret"] == -74 and bad["data_crc"] != crc(64 * 2048), bad      # -EBADMSG
