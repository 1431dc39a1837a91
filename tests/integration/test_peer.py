"""The peer run: mtd-utils' own suites on MUSE and on the in-kernel control, side by side.

Each test runs one program of mtd-tests, ubi-tests or fs-tests on the control
(nandsim or mtdram) and on the MUSE device of the same geometry, in the same VM,
and records both results and times as JUnit properties (muse-harness peer turns
them into reports/peer.md and peer.json). It fails when MUSE fails: a simulator
that is to replace nandsim must pass what nandsim passes, and what nandsim fails
for want of fidelity. The control's result is recorded, not judged, except on
the rows peer_suites.RESOLVED explains, which must show the results it names.

Marked `peer`: only a run with --peer (muse-harness peer, make peer) selects them,
except the few cases in peer_suites.QUICK, which every run takes (make test).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import pytest

from guest import contract
from harness.pytest.testguest import TestGuest

from .conftest import MuseServers, quote
from .peer_suites import (
    FS_PAIRS,
    FS_TESTS,
    MTD_TESTS,
    POWER_CUT_FS,
    POWER_CUT_MUSE,
    POWER_CUT_REARM,
    POWER_CUT_SECONDS,
    QUICK,
    RESOLVED,
    UBI_PAIRS,
    UBI_TESTS,
    FsPair,
    Pair,
    program,
)

PROGRAM_TIMEOUT = 900          # seconds, enforced in the guest (timeout(1) exits 124)
UBI_NUMBER = {"control": 7, "muse": 8}
# test_1, test_2 and the stress tests fill the file system: on a whole 64 MiB UBI
# volume test_2 alone took 250 s on nandsim (400-byte appends until full).
FS_UBI_VOLUME = "16MiB"
MOUNT = "/mnt/peer-{side}"

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
        mnt = MOUNT.format(side=side)
        cleanup = f"umount {mnt} 2>/dev/null; ubidetach -m {index} 2>/dev/null"
        if side == "control":
            vm.run(f"{cleanup}; {pair.control_unload}", timeout=300)
        else:
            vm.run(cleanup, timeout=300)
            muse.stop(server)
    return outputs


def _row(record: Callable[[str, object], None], suite: str, test: str, pair: str) -> None:
    """The row's identity in the JUnit file, for the peer table."""
    for key, value in (("peer_suite", suite), ("peer_test", test), ("peer_pair", pair)):
        record(key, value)


def _judge(test: str, pair: str, out: dict[str, str],
           record: Callable[[str, object], None]) -> None:
    """MUSE must pass, unless RESOLVED explains the row: then both results must be
    the ones it names (a row that changes is looked at again)."""
    resolved = RESOLVED.get((test, pair))
    if resolved is None:
        assert out["muse"].startswith("passed"), (
            f"{test} on MUSE {pair}: {out['muse']}\n--- on the control: {out['control']}")
        return
    muse_word, control_word, why = resolved
    record("peer_note", why)
    got = (out["muse"].split(maxsplit=1)[0], out["control"].split(maxsplit=1)[0])
    assert got == (muse_word, control_word), (
        f"{test} on {pair}: expected MUSE {muse_word} and control {control_word} "
        f"({why}), got {got}\n--- MUSE: {out['muse']}\n--- control: {out['control']}")


def _params(cases: list[tuple[str, Pair]] | list[tuple[str, FsPair]]) -> list[object]:
    """pytest params named test-pair; the QUICK ones marked for every run."""
    params: list[object] = []
    for test, pair in cases:
        name = f"{test}-{pair.name}"
        marks = (pytest.mark.peer_quick,) if name in QUICK else ()
        params.append(pytest.param(test, pair, id=name, marks=marks))
    return params


MTD_CASES = [(test, pair) for test, (_, pairs) in MTD_TESTS.items() for pair in pairs]
UBI_CASES = [(test, pair) for test in UBI_TESTS for pair in UBI_PAIRS]


@pytest.mark.parametrize(("test", "pair"), _params(MTD_CASES))
def test_mtd_tests(vm: TestGuest, muse: MuseServers, test: str, pair: Pair,
                   record: Callable[[str, object], None]) -> None:
    args = MTD_TESTS[test][0]
    _row(record, "mtd-tests", test, pair.name)
    out = _on_both(vm, muse, pair, lambda index, _: f"{program(test)} {args} /dev/mtd{index}",
                   record)
    _judge(test, pair.name, out, record)


@pytest.mark.parametrize(("test", "pair"), _params(UBI_CASES))
def test_ubi_tests(vm: TestGuest, muse: MuseServers, test: str, pair: Pair,
                   record: Callable[[str, object], None]) -> None:
    _row(record, "ubi-tests", test, pair.name)

    def command(index: int, side: str) -> str:
        number = UBI_NUMBER[side]
        return (f"ubiformat -y -q /dev/mtd{index} && ubiattach -m {index} -d {number} "
                f">/dev/null && {program(test)} /dev/ubi{number}")

    out = _on_both(vm, muse, pair, command, record)
    _judge(test, pair.name, out, record)


FS_CASES = [(test, fs) for test in FS_TESTS for fs in FS_PAIRS]


def _mount(fs: FsPair, index: int, side: str, ubi: int | None = None) -> str:
    """A fresh file system of fs.fs on mtd<index>, mounted at MOUNT (UBIFS: on UBI
    device `ubi`, by default the side's UBI_NUMBER)."""
    mnt = MOUNT.format(side=side)
    if fs.fs == "ubifs":
        number = UBI_NUMBER[side] if ubi is None else ubi
        make = (f"ubiformat -y -q /dev/mtd{index} && ubiattach -m {index} -d {number} "
                f">/dev/null && ubimkvol /dev/ubi{number} -N peer -s {FS_UBI_VOLUME} "
                f">/dev/null && mount -t ubifs ubi{number}:peer {mnt}")
    else:
        make = f"flash_erase -q /dev/mtd{index} 0 0 && mount -t jffs2 mtd{index} {mnt}"
    return f"mkdir -p {mnt} && {make}"


@pytest.mark.parametrize(("test", "fs"), _params(FS_CASES))
def test_fs_tests(vm: TestGuest, muse: MuseServers, test: str, fs: FsPair,
                  record: Callable[[str, object], None]) -> None:
    _row(record, "fs-tests", test, fs.name)

    def command(index: int, side: str) -> str:
        mnt = MOUNT.format(side=side)
        args = FS_TESTS[test].format(mnt=mnt)
        # Not run from inside the mount: integck unmounts and remounts it.
        return (f"{_mount(fs, index, side)} && "
                f"TEST_FILE_SYSTEM_MOUNT_DIR={mnt} TEST_FILE_SYSTEM_TYPE={fs.fs} "
                f"{program(test)} {args}")

    out = _on_both(vm, muse, fs.pair, command, record)
    _judge(test, fs.name, out, record)


def test_integck_power_cut(vm: TestGuest, muse: MuseServers,
                          record: Callable[[str, object], None]) -> None:
    """integck -p for POWER_CUT_SECONDS on each side: it must still be running when
    stopped (a failed check after a cut ends it early), and cuts must have fired."""
    fs = POWER_CUT_FS
    _row(record, "fs-tests", "integck-powercut", fs.name)
    ctl = "/tmp/peer-powercut.ctl"
    pair = dataclasses.replace(fs.pair, muse=f"{fs.pair.muse} {POWER_CUT_MUSE} --control {ctl}")
    count = "/tmp/peer-powercut.cuts"
    muse_cuts = (f"python3 -m guest.muse ctl --control {ctl} get | python3 -c "
                 "'import json, sys; print(json.load(sys.stdin)[\"powercut\"][\"cuts\"])'")

    def command(index: int, side: str) -> str:
        mnt = MOUNT.format(side=side)
        if side == "control":
            start = (f"python3 -m guest.kmsgcount 'emulating a power cut' {count} & "
                     f"watch=$!; ({POWER_CUT_REARM}) & arm=$!; ")
            cuts = f"kill $arm $watch; cuts=$(cat {count})"
        else:
            start, cuts = "", f"cuts=$({muse_cuts})"
        # timeout's 124 is the pass: integck -p stops only on a failed check. UBI
        # device 0: integck's reattach takes the lowest free number, and mounts the
        # same "ubi0:peer" again.
        return (f"{_mount(fs, index, side, ubi=0)} || exit 1; {start}"
                f"TEST_FILE_SYSTEM_MOUNT_DIR={mnt} TEST_FILE_SYSTEM_TYPE={fs.fs} "
                f"timeout {POWER_CUT_SECONDS} {program('integck')} -p -m {index} {mnt}; "
                f"status=$?; {cuts}; echo \"integck exit $status, power cuts: $cuts\"; "
                f"[ $status = 124 ] && [ \"$cuts\" -gt 0 ]")

    out = _on_both(vm, muse, pair, command, record)
    cuts = {}
    for side, text in out.items():
        found = [ln for ln in text.splitlines() if ln.startswith("integck exit")]
        cuts[side] = found[-1].rsplit(" ", 1)[-1] if found else "-"
    record("peer_note", f"power cuts in {POWER_CUT_SECONDS} s: MUSE {cuts['muse']} "
                        f"(its own, torn ops), nandsim {cuts['control']} (UBI's emulation)")
    _judge("integck-powercut", fs.name, out, record)
