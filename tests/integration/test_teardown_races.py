"""Teardown races (issue 6): opens of /dev/mtdN while the server exits, and module
unload right after the last MUSE device went. Not bugs of the series; the kernel
must get them right: no splat, every open either works or fails with ENODEV (or
ENOENT once the node is gone), the MTD goes once the openers stop, and muse
unloads as soon as its last device is gone.
"""

from __future__ import annotations

import json
import time

import pytest

from harness.pytest.testguest import TestGuest

from .conftest import MuseServers

# Races need the guest's CPUs to run at the same time, not round robin.
pytestmark = pytest.mark.parallel_cpus

NAND = "--type nand --size 4MiB --writesize 2048 --oobsize 64 --erasesize 128KiB"

# Opens and closes argv[1] (reading one page when the open worked) until /tmp/stop
# exists; prints a JSON count of the outcomes.
OPENER = r"""
import errno, json, os, sys
counts = {}
started = False
while not os.path.exists("/tmp/stop"):
    try:
        fd = os.open(sys.argv[1], os.O_RDONLY)
    except OSError as exc:
        key = "open:" + errno.errorcode[exc.errno]
    else:
        try:
            os.pread(fd, 2048, 0)
            key = "read:ok"
            if not started:
                print("started", flush=True)
                started = True
        except OSError as exc:
            key = "read:" + errno.errorcode[exc.errno]
        os.close(fd)
    counts[key] = counts.get(key, 0) + 1
print(json.dumps(counts), flush=True)
"""


def listed(vm: TestGuest, name: str) -> bool:
    return f'"{name}"' in vm.check("cat /proc/mtd").stdout


def test_opens_while_the_server_exits(vm: TestGuest, muse: MuseServers) -> None:
    vm.check(f"rm -f /tmp/stop; cat > /tmp/opener.py <<'EOF'\n{OPENER}\nEOF")
    for round_ in range(3):
        name = f"racy{round_}"
        server = muse.start(f"{NAND} --name {name}")
        vm.check("rm -f /tmp/stop")
        openers = [vm.spawn(f"exec python3 /tmp/opener.py {server.mtd.dev}") for _ in range(3)]
        for opener in openers:
            opener.expect(r"^started$", 120)
        assert muse.stop(server) == 0
        time.sleep(1)
        vm.check("touch /tmp/stop")
        counts: dict[str, int] = {}
        for opener in openers:
            assert opener.wait(60) == 0, opener.text()
            for key, value in json.loads(opener.text().strip().splitlines()[-1]).items():
                counts[key] = counts.get(key, 0) + value
        # A read in flight when the server goes fails with ECONNABORTED, later ones with
        # ENOTCONN; opens after the server went fail with ENODEV, or ENOENT without a node.
        allowed = {"open:ENODEV", "open:ENOENT", "read:ok", "read:ECONNABORTED",
                   "read:ENOTCONN"}
        assert set(counts) <= allowed, counts
        assert counts.get("read:ok"), f"no open worked before the server exited: {counts}"
        deadline = time.monotonic() + 30
        while listed(vm, name):
            assert time.monotonic() < deadline, f"{name} stays after its users went: {counts}"
            time.sleep(0.5)


def test_rmmod_right_after_the_last_device(vm: TestGuest, muse: MuseServers) -> None:
    if "muse" not in vm.check("cut -d' ' -f1 /proc/modules").stdout.split():
        vm.check("test -e /dev/muse")
        raise AssertionError("muse is built in: this kernel cannot unload it")
    try:
        for round_ in range(3):
            server = muse.start(f"{NAND} --name unload{round_}")
            assert muse.stop(server) == 0
            # The exit work holds a module reference until it finished: rmmod may be
            # refused (EBUSY) for a moment, then must work.
            tries = vm.check("for i in $(seq 200); do rmmod muse 2>/dev/null && "
                             "{ echo $i; exit 0; }; sleep 0.05; done; exit 1").stdout.strip()
            assert int(tries) >= 1
            assert vm.run("test -e /dev/muse").exit_status == 1
            assert not listed(vm, f"unload{round_}")
            vm.check("modprobe muse && test -e /dev/muse")
    finally:
        vm.run("modprobe muse")
