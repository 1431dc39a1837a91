"""UBI against the MUSE server's injected NAND faults (guest/muse/FAULTS.md).

Each test puts checksummed data in UBI volumes on a MUSE NAND (16 MiB, 2 KiB
pages), aims faults at the blocks that hold it or will hold it (their
numbers read from the image with guest.workloads.ubimap), sets them at start
(`--fault`) or at run time (`ctl set`), and asserts on what UBI did (its
kernel messages, the server's fault counters and bad block list, where the
data went) and on the data, before and after a restart from the image.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from typing import Any

from harness.pytest.testguest import TestGuest

from .conftest import MuseServer, MuseServers

IMG, CTL, DATA = "/tmp/faults.img", "/tmp/faults.ctl", "/tmp/faults"
UBI = 6
LEB = 126976  # 128 KiB PEB less two 2 KiB pages of headers (no subpages)
LEB_SUBPAGE = 129024  # with 512-byte subpages both headers share the first page
PAGES_PER_BLOCK = 64
LONG = 900


def fresh(vm: TestGuest) -> None:
    """Tests share the VM: each starts from an erased image of its own."""
    vm.check(f"rm -f {IMG} {IMG}.base {DATA}-*")


def nand(subpages: bool, extra: str = "") -> str:
    shift = 2 if subpages else 0
    return (f"--type nand --size 16MiB --erasesize 128KiB --writesize 2048 --oobsize 64 "
            f"--subpage-shift {shift} --image {IMG} --image-format raw+oob --control {CTL} "
            f"--seed 7 --name musefaults {extra}")


def ctl(vm: TestGuest, *args: str) -> dict[str, Any]:
    out = vm.check(f"python3 -m guest.muse ctl --control {CTL} "
                   + " ".join(shlex.quote(a) for a in args)).stdout
    reply: dict[str, Any] = json.loads(out)
    assert reply["ok"], reply
    return reply


def injected(vm: TestGuest) -> dict[str, Any]:
    stats: dict[str, Any] = ctl(vm, "stats")["stats"]
    return stats


def ubimap(vm: TestGuest) -> dict[str, Any]:
    out = vm.check(f"python3 -m guest.workloads.ubimap {IMG}").stdout
    found: dict[str, Any] = json.loads(out)
    return found


def mark(vm: TestGuest, text: str) -> int:
    """A marker in the kernel log; returns the console offset just past it.

    The console, not dmesg: UBI's hex dumps of failed writes overrun the ring buffer.
    """
    return vm.vm.mark(f"muse-faults {text}")


def log_since(vm: TestGuest, start: int) -> str:
    end = vm.vm.mark("muse-faults log read")  # all printed before this has arrived
    assert vm.vm.console is not None
    return vm.vm.console.text(start, end)


def wait_log(vm: TestGuest, start: int, pattern: str, timeout: float = 240) -> None:
    """Wait for a kernel message matching pattern after start (the console offset)."""
    assert vm.vm.console is not None
    deadline = time.monotonic() + timeout
    while not re.search(pattern, vm.vm.console.text(start), re.M):
        assert time.monotonic() < deadline, \
            f"no {pattern!r} in the kernel log within {timeout} s:\n{log_since(vm, start)}"
        time.sleep(0.5)


def make_volume(vm: TestGuest, name: str, lebs: int, leb: int) -> str:
    """A dynamic volume of `lebs` LEBs filled with random data; returns its sha256."""
    path = f"{DATA}-{name}"
    vm.check(f"ubimkvol /dev/ubi{UBI} -N {name} -s {lebs * leb} && "
             f"head -c {lebs * leb} /dev/urandom > {path}", timeout=LONG)
    vm.check(f"ubiupdatevol /dev/ubi{UBI}_{volume_id(vm, name)} {path}", timeout=LONG)
    return sha(vm, f"cat {path}")


def volume_id(vm: TestGuest, name: str) -> int:
    info = vm.check(f"ubinfo -d {UBI} -N {name}").stdout
    found = re.search(r"^Volume ID:\s+(\d+)", info, re.M)
    assert found, info
    return int(found.group(1))


def sha(vm: TestGuest, producer: str) -> str:
    out = vm.check(f"bash -o pipefail -c {shlex.quote(producer + ' | sha256sum')}",
                   timeout=LONG).stdout
    return out.split()[0]


def read_volume(vm: TestGuest, name: str, size: int, bs: int = 2048) -> str:
    """sha256 of the first `size` bytes of a volume, read `bs` bytes at a time."""
    dev = f"/dev/ubi{UBI}_{volume_id(vm, name)}"
    return sha(vm, f"dd if={dev} bs={bs} count={size // bs} status=none")


def restart(vm: TestGuest, muse: MuseServers, server: MuseServer, args: str,
            snapshot: bool = False) -> MuseServer:
    """Detach, stop the server (copy its image: snapshot), serve it again, reattach."""
    vm.check(f"ubidetach -d {UBI}", timeout=LONG)
    assert muse.stop(server) == 0
    if snapshot:
        vm.check(f"cp {IMG} {IMG}.base")
    server = muse.start(args)
    vm.check(f"ubiattach -m {server.mtd.index} -d {UBI}", timeout=LONG)
    return server


def test_ubi_scrubs_a_block_after_correctable_bitflips(vm: TestGuest,
                                                       muse: MuseServers) -> None:
    fresh(vm)
    server = muse.start(nand(subpages=True))
    vm.check(f"ubiattach -m {server.mtd.index} -d {UBI}", timeout=LONG)
    want = make_volume(vm, "data", 8, LEB_SUBPAGE)
    before = ubimap(vm)["lebs"]
    vol = volume_id(vm, "data")
    target = before[f"{vol}:3"]
    # Every page read of that block now has a correctable flip (-EUCLEAN).
    ctl(vm, "set", f"bitflip_blocks={target}")
    marker = mark(vm, f"bitflips on PEB {target}")
    assert read_volume(vm, "data", 8 * LEB_SUBPAGE) == want
    wait_log(vm, marker, f"scrubbed PEB {target} ")
    log = log_since(vm, marker)
    assert f"fixable bit-flip detected at PEB {target}" in log
    moved = re.search(rf"scrubbed PEB {target} \(LEB {vol}:3\), data moved to PEB (\d+)", log)
    assert moved, log
    assert injected(vm)["faults"]["injected"]["corrected"] > 0
    after = ubimap(vm)["lebs"]
    assert after[f"{vol}:3"] == int(moved.group(1)) != target
    assert {k: v for k, v in after.items() if k != f"{vol}:3"} == \
        {k: v for k, v in before.items() if k != f"{vol}:3"}
    ctl(vm, "clear")
    assert read_volume(vm, "data", 8 * LEB_SUBPAGE) == want
    server = restart(vm, muse, server, nand(subpages=True))
    assert read_volume(vm, "data", 8 * LEB_SUBPAGE) == want
    vm.check(f"ubidetach -d {UBI}", timeout=LONG)


def test_ubi_keeps_data_through_uncorrectable_errors(vm: TestGuest, muse: MuseServers) -> None:
    # No subpages: the VID header has a page of its own, apart from the EC header.
    fresh(vm)
    server = muse.start(nand(subpages=False))
    vm.check(f"ubiattach -m {server.mtd.index} -d {UBI}", timeout=LONG)
    want = make_volume(vm, "data", 8, LEB)
    sums = [sha(vm, f"dd if={DATA}-data bs={LEB} skip={i} count=1 status=none")
            for i in range(8)]
    vol = volume_id(vm, "data")
    lebs = ubimap(vm)["lebs"]

    # Transient: one page read in 20 is uncorrectable (-EBADMSG, data corrupted).
    # UBI retries a failed read: page-sized reads come back whole.
    marker = mark(vm, "transient ECC errors")
    ctl(vm, "set", "ecc_error_rate=0.05")
    assert read_volume(vm, "data", 8 * LEB) == want
    assert injected(vm)["faults"]["injected"]["uncorrectable"] > 0
    assert re.search(r"error -74 \(ECC error\) while reading 2048 bytes from PEB \d+:\d+, "
                     r"read only 2048 bytes, retry", log_since(vm, marker))
    ctl(vm, "clear")

    # Persistent, in a data page of LEB 2: that LEB reports the error, no silent
    # garbage; the other LEBs read intact; the block is left alone, so the data is
    # back once the page reads again.
    peb = lebs[f"{vol}:2"]
    ctl(vm, "set", f"ecc_error_pages={peb * PAGES_PER_BLOCK + 2 + 5}")
    dev = f"/dev/ubi{UBI}_{vol}"
    failed = vm.run(f"dd if={dev} of={DATA}-leb2 bs={LEB} skip=2 count=1 status=none")
    assert not failed.ok and "Bad message" in failed.stderr, \
        f"a read with an uncorrectable error did not fail:\n{failed.describe()}"
    for i in (0, 1, 3, 4, 5, 6, 7):
        assert sha(vm, f"dd if={dev} bs={LEB} skip={i} count=1 status=none") == sums[i]
    assert ubimap(vm)["lebs"] == lebs
    ctl(vm, "clear")
    assert read_volume(vm, "data", 8 * LEB) == want

    # The EC header of LEB 5's block unreadable at attach: UBI keeps the block's
    # data (the VID header is fine), and scrubs it to another block.
    peb = lebs[f"{vol}:5"]
    vm.check(f"ubidetach -d {UBI}", timeout=LONG)
    marker = mark(vm, f"EC header of PEB {peb} unreadable")
    ctl(vm, "set", f"ecc_error_pages={peb * PAGES_PER_BLOCK}")
    vm.check(f"ubiattach -m {server.mtd.index} -d {UBI}", timeout=LONG)
    log = log_since(vm, marker)
    assert re.search(rf"error -74 \(ECC error\) while reading 64 bytes from PEB {peb}:0", log)
    assert read_volume(vm, "data", 8 * LEB) == want
    ctl(vm, "clear")
    server = restart(vm, muse, server, nand(subpages=False))
    assert read_volume(vm, "data", 8 * LEB) == want
    vm.check(f"ubidetach -d {UBI}", timeout=LONG)


def test_ubi_marks_blocks_bad_on_program_failures_without_data_loss(
        vm: TestGuest, muse: MuseServers) -> None:
    fresh(vm)
    server = muse.start(nand(subpages=True))
    vm.check(f"ubiattach -m {server.mtd.index} -d {UBI}", timeout=LONG)
    first = make_volume(vm, "first", 8, LEB_SUBPAGE)
    vm.check(f"ubimkvol /dev/ubi{UBI} -N second -s {12 * LEB_SUBPAGE} && "
             f"head -c {12 * LEB_SUBPAGE} /dev/urandom > {DATA}-second", timeout=LONG)
    vol = volume_id(vm, "second")
    # Rehearsal: from a copy of the image, see which blocks UBI takes for the second
    # volume's LEBs; its choices depend only on what is on the flash.
    server = restart(vm, muse, server, nand(subpages=True), snapshot=True)
    vm.check(f"ubiupdatevol /dev/ubi{UBI}_{vol} {DATA}-second", timeout=LONG)
    picks = ubimap(vm)["lebs"]
    weak = sorted({picks[f"{vol}:3"], picks[f"{vol}:8"]})
    vm.check(f"ubidetach -d {UBI}", timeout=LONG)
    assert muse.stop(server) == 0
    vm.check(f"cp {IMG}.base {IMG}")
    # The same write again, those two blocks now failing every program (set at start).
    marker = mark(vm, f"program failures on PEBs {weak}")
    server = muse.start(nand(subpages=True, extra="--fault program_fail_blocks="
                             + ",".join(map(str, weak))))
    assert ctl(vm, "get")["faults"]["program_fail_blocks"] == weak
    vm.check(f"ubiattach -m {server.mtd.index} -d {UBI} && "
             f"ubiupdatevol /dev/ubi{UBI}_{vol} {DATA}-second", timeout=LONG)
    second = sha(vm, f"cat {DATA}-second")
    # A failed write sends the block to UBI's torture test (background thread); it
    # fails again there, and UBI marks the block bad. Wait for every torture to end so.
    assert vm.vm.console is not None
    deadline = time.monotonic() + 240
    while True:
        log = vm.vm.console.text(marker)
        tortured = set(re.findall(r"run torture test for PEB (\d+)", log))
        marked = sorted({int(p) for p in re.findall(r"mark PEB (\d+) as bad", log)})
        if tortured and tortured <= set(map(str, marked)):
            break
        assert time.monotonic() < deadline, f"tortured {tortured}, marked bad {marked}:\n{log}"
        time.sleep(0.5)
    assert set(marked) <= set(weak), f"UBI marked {marked} bad, only {weak} fail"
    log = log_since(vm, marker)
    assert re.search(rf"failed to write .*PEB ({'|'.join(map(str, marked))})\b", log), log
    stats = injected(vm)
    assert stats["faults"]["injected"]["program_failures"] > 0
    assert sorted(stats["device"]["bad_blocks"]) == marked
    info = vm.check(f"ubinfo -d {UBI}").stdout
    assert re.search(rf"Count of bad physical eraseblocks:\s+{len(marked)}\b", info), info
    assert read_volume(vm, "first", 8 * LEB_SUBPAGE) == first
    assert read_volume(vm, "second", 12 * LEB_SUBPAGE) == second
    # The markers are in the image: a restarted server still reports the blocks bad.
    marker = mark(vm, "restart after the bad blocks")
    server = restart(vm, muse, server, nand(subpages=True))
    assert f"bad PEBs: {len(marked)}," in log_since(vm, marker), "bad blocks forgotten"
    assert read_volume(vm, "first", 8 * LEB_SUBPAGE) == first
    assert read_volume(vm, "second", 12 * LEB_SUBPAGE) == second
    vm.check(f"ubidetach -d {UBI}", timeout=LONG)


# MEMERASE (_IOW('M', 2, struct erase_info_user)) of one block, by ioctl: mtd-utils'
# flash_erase reports a failed block and goes on, its exit status does not tell.
ERASE_ONE = ("import fcntl, os, struct, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
             "fcntl.ioctl(fd, 0x40084D02, struct.pack('II', int(sys.argv[2]), 131072))")


def test_an_erase_failure_reaches_the_caller(vm: TestGuest, muse: MuseServers) -> None:
    """muse_mtd_erase() hands the server's error on (generated mutants of its
    `if (ret < 0)` survived every test that ran it)."""
    server = muse.start("--type nand --name erasefail --size 4MiB --writesize 2048 "
                        "--oobsize 64 --erasesize 128KiB --fault erase_fail_blocks=3")
    erase = f"python3 -c {shlex.quote(ERASE_ONE)} {server.mtd.dev}"
    failed = vm.run(f"{erase} {3 * 131072}")
    assert failed.exit_status != 0 and "Errno 5" in failed.stderr, failed.describe()
    vm.check(f"{erase} {2 * 131072}")
