"""A stalled server: what each kind of MTD user does while it waits, and after it ends.

The server stalls in one of two ways:
  sigstop  it is stopped before the user's request arrives: the request stays
           pending in the kernel, never read;
  swallow  it reads the request and never answers (hostile mode swallow).

For each kind of user (STALLS), guest.stallprobe starts the user's command,
reads its state once it has waited, then tries SIGINT and SIGKILL. The
results (interruptible, killable, state) are JUnit properties, the table's
columns. MTD operations wait like hardware operations: no signal ends them
(fix 0126), and muse's request_timeout (fix 0125) bounds the wait instead. So
the test requires, with the server still alive and stalled, that the waiting
task is gone within twice REQUEST_TIMEOUT (muse's watchdog finds a stalled
request between one and two periods) and before the hung-task detector's
timeout; then that the server saw its connection aborted, the MTD goes once
its last user is gone, and muse unloads. On a kernel with the hung-task
detector (debug), its timeout is lowered for the test: a report is a console
splat, which fails the test like any other.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from harness.pytest.testguest import TestGuest

from .conftest import MuseServers, quote, request_timeout, stall_probe

CTL = "/tmp/stall.ctl"
NAND = ("--type nand --name stalled --size 16MiB --writesize 2048 --oobsize 64 "
        "--erasesize 128KiB")
NOR = "--type nor --name stalled --size 4MiB --erasesize 64KiB"
REQUEST_TIMEOUT = 8            # seconds, muse's request_timeout while the test runs: more
                               # than stallprobe's ~6 s of waiting and signals, and twice
                               # it less than HUNG_TASK_TIMEOUT
HUNG_TASK_TIMEOUT = 20         # seconds, while the test runs (the flavour's own: 30)
UBI = 5


@dataclass(frozen=True)
class Stall:
    """One kind of MTD user: set-up, the operation its request stalls in, the user's
    command, and what undoes the set-up once the server is dead."""

    name: str
    prepare: str
    op: str
    command: str
    cleanup: str = ""
    trigger: str = ""     # hands work to a kernel thread: after the stall is armed
                          # (swallow), or before the server stops (sigstop)
    server: str = NAND


MNT = "/mnt/stall"
STALLS = [
    Stall("mtdchar-read", "true", "read", "dd if=/dev/mtd{n} of=/dev/null bs=2048 count=1"),
    Stall("mtdblock-read", "modprobe mtdblock", "read",
          "dd if=/dev/mtdblock{n} of=/dev/null bs=4096 count=1 iflag=direct"),
    Stall("ubiattach", "ubiformat -y -q /dev/mtd{n}", "read", f"ubiattach -m {{n}} -d {UBI}",
          f"ubidetach -d {UBI}"),
    Stall("ubifs-read",
          f"ubiformat -y -q /dev/mtd{{n}} && ubiattach -m {{n}} -d {UBI} >/dev/null && "
          f"ubimkvol /dev/ubi{UBI} -N v -m >/dev/null && mkdir -p {MNT} && "
          f"mount -t ubifs ubi{UBI}:v {MNT} && head -c 300000 /dev/urandom > {MNT}/f && "
          f"sync && echo 3 > /proc/sys/vm/drop_caches", "read", f"cat {MNT}/f",
          f"umount -l {MNT}; ubidetach -d {UBI}"),
    # ubirmvol hands the volume's eraseblocks to UBI's background thread, which
    # erases them; ubidetach then waits for that thread to stop.
    Stall("ubi-background-erase",
          f"ubiformat -y -q /dev/mtd{{n}} && ubiattach -m {{n}} -d {UBI} >/dev/null && "
          f"ubimkvol /dev/ubi{UBI} -N v -s 1MiB >/dev/null && "
          f"head -c 1048576 /dev/urandom | ubiupdatevol /dev/ubi{UBI}_0 -s 1048576 -",
          "erase", f"ubidetach -d {UBI}", f"ubidetach -d {UBI}",
          trigger=f"ubirmvol /dev/ubi{UBI} -n 0 && sleep 1"),
    # JFFS2's garbage collector erases the blocks of deleted files (SIGHUP wakes it);
    # umount then stops it with SIGKILL and waits for it to exit.
    Stall("jffs2-gc",
          f"mkdir -p {MNT} && mount -t jffs2 mtd{{n}} {MNT} && for i in $(seq 24); do "
          f"head -c 60000 /dev/urandom > {MNT}/f$i; done && sync && rm {MNT}/f* && sync",
          "any", f"umount {MNT}", f"umount -l {MNT}",
          trigger="pkill -HUP jffs2_gcd && sleep 1", server=NOR),
]


def _stall_and_probe(vm: TestGuest, stall: Stall, mode: str, pid: int,
                     n: int) -> tuple[dict[str, object], float]:
    """The probe's findings, and the monotonic time the user's command started."""
    vm.check(stall.prepare.format(n=n), timeout=300)
    if mode == "swallow":
        vm.check(f"python3 -m guest.muse ctl --control {CTL} hostile "
                 f"{quote(f'swallow,op={stall.op}')}")
        vm.check(stall.trigger or "true", timeout=120)
    else:
        vm.check(stall.trigger or "true", timeout=120)
        vm.check(f"kill -STOP {pid}")
    started = time.monotonic()
    return stall_probe(vm, stall.command.format(n=n)), started


def _hung_task_detector(vm: TestGuest) -> bool:
    return vm.run("test -w /proc/sys/kernel/hung_task_timeout_secs").ok


@pytest.mark.parametrize("mode", ["sigstop", "swallow"])
@pytest.mark.parametrize("stall", STALLS, ids=[s.name for s in STALLS])
def test_a_stalled_server_never_hangs_its_users_for_good(
        vm: TestGuest, muse: MuseServers, stall: Stall, mode: str,
        record: Callable[[str, object], None]) -> None:
    detector = _hung_task_detector(vm)
    if detector:
        vm.check(f"echo {HUNG_TASK_TIMEOUT} > /proc/sys/kernel/hung_task_timeout_secs")
    # A kernel without 0125 (--as-posted) has no timeout: its users wait for the server.
    with request_timeout(vm, REQUEST_TIMEOUT):
        server = muse.start(f"{stall.server} --control {CTL}")
        n = server.mtd.index
        try:
            found, started = _stall_and_probe(vm, stall, mode, server.pid, n)
            # The server lives and stalls on: the request timeout must end the wait.
            gone = vm.run(f"python3 -m guest.stallprobe --gone {found['pid']} "
                          f"--grace {2 * REQUEST_TIMEOUT + 10}",
                          timeout=2 * REQUEST_TIMEOUT + 60)
            released_after = time.monotonic() - started
            aborted = server.proc.wait(15) if mode == "swallow" and gone.ok else None
        finally:
            # Whatever happened, the server dies here: that is what must free everything.
            vm.run(f"kill -KILL {server.pid}")
            server.proc.wait(60)
            muse.running.remove(server)
            if detector:       # the VM may serve other tests: the flavour's own timeout
                vm.run("echo 30 > /proc/sys/kernel/hung_task_timeout_secs")
    for key in ("blocked", "state", "interruptible", "killable", "state_after_kill"):
        record(f"stall_{key}", found.get(key, "-"))
    record("stall_user", stall.name)
    record("stall_mode", mode)
    record("stall_released", gone.ok)
    record("stall_released_after", round(released_after, 1) if gone.ok else "-")
    # Without the timeout (as posted), killing the server must still free the task.
    freed = gone.ok or vm.run(f"python3 -m guest.stallprobe --gone {found['pid']} --grace 15",
                              timeout=60).ok
    if stall.cleanup:
        vm.run(stall.cleanup, timeout=120)
    mtd_gone = vm.run("for i in $(seq 100); do grep -q stalled /proc/mtd || exit 0; "
                      "sleep 0.1; done; exit 1", timeout=60).ok
    unloads = vm.run("modprobe -r muse", timeout=60).ok
    vm.check("modprobe muse")
    record("stall_recovered", freed and mtd_gone and unloads)
    # A stalled server may stall for ever: its users must not wait with it.
    assert gone.ok, (f"the waiting {stall.name} task ({mode}) outlived the request timeout "
                     f"({REQUEST_TIMEOUT} s) of a stalled server: {gone.stdout}")
    assert aborted in (None, 5), (
        f"the swallowing server did not see its connection aborted: exit {aborted}")
    assert mtd_gone, f"the MTD stayed after its server died:\n{vm.run('cat /proc/mtd').stdout}"
    assert unloads, "muse does not unload after the server died and its users left"

