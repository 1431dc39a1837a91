"""Refcounted teardown: the MTD outlives its server while users hold it, and only then.

Once the server closes /dev/muse: with no users the MTD goes at once; with
users it stays, I/O fails with ENOTCONN, a new open fails with ENODEV, and
it goes when the last user lets go.
"""

from __future__ import annotations

import time

import pytest

from harness.pytest.testguest import TestGuest

from .conftest import MuseServers

NAND = "--type nand --size 8MiB --writesize 2048 --oobsize 64 --erasesize 128KiB"

# Opens the MTD, then on /tmp/go reads from it and prints the errno, then on
# /tmp/release closes it.
HOLDER = r"""
import errno, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
print("held", flush=True)
def wait(path):
    while not os.path.exists(path):
        time.sleep(0.05)
wait("/tmp/go")
try:
    os.pread(fd, 2048, 0)
    print("read: ok", flush=True)
except OSError as exc:
    print("read:", errno.errorcode[exc.errno], flush=True)
wait("/tmp/release")
os.close(fd)
print("released", flush=True)
"""


def listed(vm: TestGuest, name: str) -> bool:
    return f'"{name}"' in vm.check("cat /proc/mtd").stdout


def wait_gone(vm: TestGuest, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while listed(vm, name):
        assert time.monotonic() < deadline, f"{name} still in /proc/mtd after {timeout} s"
        time.sleep(0.5)


def open_errno(vm: TestGuest, dev: str) -> str:
    return vm.run(
        "python3 -c \"import errno, os, sys\ntry:\n os.open(sys.argv[1], os.O_RDONLY)\n"
        " print('ok')\nexcept OSError as e:\n print(errno.errorcode[e.errno])\" " + dev
    ).stdout.strip()


def test_no_users_mtd_goes_at_once(vm: TestGuest, muse: MuseServers) -> None:
    server = muse.start(f"{NAND} --name lonely")
    assert muse.stop(server) == 0
    assert not listed(vm, "lonely")


def test_held_by_mtdchar_open(vm: TestGuest, muse: MuseServers) -> None:
    server = muse.start(f"{NAND} --name heldchar")
    dev = server.mtd.dev
    vm.check("rm -f /tmp/go /tmp/release")
    vm.run(f"cat > /tmp/holder.py <<'EOF'\n{HOLDER}\nEOF")
    holder = vm.spawn(f"exec python3 /tmp/holder.py {dev}")
    holder.expect(r"^held$", 60)
    muse.stop(server)
    assert listed(vm, "heldchar"), "MTD vanished while a user held it"
    assert open_errno(vm, dev) == "ENODEV"
    vm.check("touch /tmp/go")
    holder.expect(r"^read: ", 60)
    assert "read: ENOTCONN" in holder.text()
    assert listed(vm, "heldchar")
    vm.check("touch /tmp/release")
    holder.expect(r"^released$", 60)
    wait_gone(vm, "heldchar")


def test_held_by_mounted_mtdblock(vm: TestGuest, muse: MuseServers) -> None:
    server = muse.start("--type ram --size 4MiB --erasesize 64KiB --name heldblock")
    n = server.mtd.index
    vm.check(f"mkfs.ext2 -q -F /dev/mtdblock{n} && mkdir -p /mnt/blk && "
             f"mount -t ext2 /dev/mtdblock{n} /mnt/blk && echo hello > /mnt/blk/f && sync")
    muse.stop(server)
    try:
        assert listed(vm, "heldblock")
        assert open_errno(vm, f"/dev/mtd{n}") == "ENODEV"
    finally:
        vm.run("umount /mnt/blk")
    wait_gone(vm, "heldblock")


def test_held_by_ubi(vm: TestGuest, muse: MuseServers) -> None:
    server = muse.start(f"{NAND} --name heldubi")
    n = server.mtd.index
    vm.check(f"ubiattach -m {n} -d 7", timeout=300)
    muse.stop(server)
    try:
        assert listed(vm, "heldubi")
        assert open_errno(vm, f"/dev/mtd{n}") == "ENODEV"
    finally:
        vm.run("ubidetach -d 7", timeout=300)
    wait_gone(vm, "heldubi")


@pytest.mark.parametrize("users", [False, True], ids=["no-users", "with-user"])
def test_connect_disconnect_cycles(vm: TestGuest, users: bool,
                                   pytestconfig: pytest.Config) -> None:
    """--muse-cycles servers in a row (100 by default), each registering and going away,
    optionally while held; /proc/mtd is clean at the end."""
    cycles = int(pytestconfig.getoption("--muse-cycles"))
    hold = ("exec 3</dev/mtd$n; " if users else "")
    script = (
        "set -e\n"
        f"for i in $(seq {cycles}); do\n"
        # The background job truncates the file only once it runs: without the rm, the
        # loop below can read the last cycle's ready line and kill a server that is
        # still starting (exit 143 when the guest's CPUs run round robin).
        "  rm -f /tmp/cyc.out\n"
        "  python3 -m guest.muse serve --type ram --size 256KiB --erasesize 64KiB "
        "--name cyc$i > /tmp/cyc.out &\n"
        "  pid=$!\n"
        "  until grep -qs 'muse: ready' /tmp/cyc.out; do kill -0 $pid; sleep 0.05; done\n"
        "  n=$(sed -n 's/^muse: registered mtd\\([0-9]*\\).*/\\1/p' /tmp/cyc.out)\n"
        f"  {hold}kill -TERM $pid; wait $pid\n"
        + ("  grep -q \"\\\"cyc$i\\\"\" /proc/mtd; exec 3<&-\n" if users else "")
        + "done\n"
    )
    # A cycle took 29 s on the debug flavour under TCG, mostly the server's python3
    # start under KASAN; a hang still ends at this limit.
    vm.check(script, timeout=60 + 60 * cycles)
    wait_gone(vm, f"cyc{cycles}")
    assert "cyc" not in vm.check("cat /proc/mtd").stdout
