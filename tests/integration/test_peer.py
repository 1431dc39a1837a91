"""The peer run: mtd-utils' own suites on MUSE and on the in-kernel control, side by side.

Each test runs one program of mtd-tests or ubi-tests on the control (nandsim or
mtdram) and on the MUSE device of the same geometry, in the same VM, and records
both results and times as JUnit properties (muse-harness peer turns them into
reports/peer.md and peer.json). It fails when MUSE fails: a simulator that is to
replace nandsim must pass what nandsim passes, and what nandsim fails for want of
fidelity. The control's result is recorded, not judged.

Marked `peer`: only a run with --peer (muse-harness peer, make peer) selects them.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from guest import contract
from harness.pytest.testguest import TestGuest

from .conftest import MuseServers, quote
from .peer_suites import MTD_TESTS, UBI_PAIRS, UBI_TESTS, Pair, program

PROGRAM_TIMEOUT = 900          # seconds, enforced in the guest (timeout(1) exits 124)
UBI_NUMBER = {"control": 7, "muse": 8}

pytestmark = pytest.mark.peer


def _result(status: int) -> str:
    return {0: "passed", 124: "timeout"}.get(status, f"failed ({status})")


def _on_both(vm: TestGuest, muse: MuseServers, pair: Pair, command: Callable[[int, str], str],
             record: Callable[[str, object], None]) -> dict[str, str]:
    """Run command(mtd index, side) on the control, then on MUSE; record both."""
    outputs = {}
    for side in ("control", "muse"):
        if side == "control":
            vm.check(pair.control_load)
            index = contract.mtd_index(vm.check("cat /proc/mtd").stdout, pair.control_name)
            assert index is not None, f"{pair.control_name!r} not in /proc/mtd"
        else:
            server = muse.start(pair.muse)
            index = server.mtd.index
        start = time.monotonic()
        result = vm.run(f"timeout -s KILL {PROGRAM_TIMEOUT} sh -c {quote(command(index, side))}"
                        " 2>&1", timeout=PROGRAM_TIMEOUT + 120)
        record(f"peer_{side}_seconds", round(time.monotonic() - start, 1))
        record(f"peer_{side}", _result(result.exit_status))
        outputs[side] = f"{_result(result.exit_status)}\n{result.stdout[-3000:]}"
        print(f"--- {side}: {outputs[side]}")      # kept in the JUnit file's system-out
        if side == "control":
            vm.run(f"ubidetach -d {UBI_NUMBER[side]} 2>/dev/null; {pair.control_unload}")
        else:
            vm.run(f"ubidetach -d {UBI_NUMBER[side]} 2>/dev/null")
            muse.stop(server)
    return outputs


def _ids(cases: list[tuple[str, Pair]]) -> list[str]:
    return [f"{test}-{pair.name}" for test, pair in cases]


MTD_CASES = [(test, pair) for test, (_, pairs) in MTD_TESTS.items() for pair in pairs]
UBI_CASES = [(test, pair) for test in UBI_TESTS for pair in UBI_PAIRS]


@pytest.mark.parametrize(("test", "pair"), MTD_CASES, ids=_ids(MTD_CASES))
def test_mtd_tests(vm: TestGuest, muse: MuseServers, test: str, pair: Pair,
                   record: Callable[[str, object], None]) -> None:
    args = MTD_TESTS[test][0]
    for key, value in (("peer_suite", "mtd-tests"), ("peer_test", test),
                       ("peer_pair", pair.name)):
        record(key, value)
    out = _on_both(vm, muse, pair, lambda index, _: f"{program(test)} {args} /dev/mtd{index}",
                   record)
    assert out["muse"].startswith("passed"), (
        f"{test} on MUSE {pair.name}: {out['muse']}\n--- on the control: {out['control']}")


@pytest.mark.parametrize(("test", "pair"), UBI_CASES, ids=_ids(UBI_CASES))
def test_ubi_tests(vm: TestGuest, muse: MuseServers, test: str, pair: Pair,
                   record: Callable[[str, object], None]) -> None:
    for key, value in (("peer_suite", "ubi-tests"), ("peer_test", test),
                       ("peer_pair", pair.name)):
        record(key, value)

    def command(index: int, side: str) -> str:
        number = UBI_NUMBER[side]
        return (f"ubiformat -y -q /dev/mtd{index} && ubiattach -m {index} -d {number} "
                f">/dev/null && {program(test)} /dev/ubi{number}")

    out = _on_both(vm, muse, pair, command, record)
    assert out["muse"].startswith("passed"), (
        f"{test} on MUSE {pair.name}: {out['muse']}\n--- on the control: {out['control']}")
