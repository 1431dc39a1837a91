"""The NAND model's ECC engine (--ecc) seen through the MTD layer: nandbiterrs'
incremental test (guest/biterrs.py) on a MUSE NAND, with and without it."""

from __future__ import annotations

import json
from typing import Any

from harness.pytest.testguest import TestGuest

from .conftest import MuseServers

NAND = "--type nand --size 8MiB --name musecc"


def _biterrs(vm: TestGuest, dev: str, flips: int) -> list[dict[str, Any]]:
    out = vm.check(f"python3 -m guest.biterrs {dev} --flips {flips}").stdout
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
