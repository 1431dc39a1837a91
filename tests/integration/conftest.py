"""Fixtures shared by the VM tests: driving the guest MUSE server."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from harness.guest import TestGuest
from harness.ssh import GuestProcess

REGISTERED = re.compile(r"^muse: registered mtd(\d+) name=(\S+) size=(\d+) dev=(\S+)", re.M)


@dataclass
class Mtd:
    index: int
    name: str
    size: int
    dev: str


@dataclass
class MuseServer:
    """One guest server process and the MTDs the kernel registered for it."""

    proc: GuestProcess
    mtds: list[Mtd] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def mtd(self) -> Mtd:
        return self.mtds[0]


class MuseServers:
    def __init__(self, vm: TestGuest) -> None:
        self.vm = vm
        self.running: list[MuseServer] = []

    def start(self, args: str, timeout: float = 180) -> MuseServer:
        """Start `python3 -m guest.muse serve ARGS`; return once it printed 'muse: ready'."""
        proc = self.vm.spawn(f"exec python3 -m guest.muse serve {args}")
        server = MuseServer(proc)
        self.running.append(server)
        proc.expect(r"^muse: ready", timeout)
        server.mtds = [Mtd(int(m[0]), m[1], int(m[2]), m[3])
                       for m in REGISTERED.findall(proc.text())]
        assert server.mtds, f"server ready without registered MTDs:\n{proc.text()}"
        return server

    def stop(self, server: MuseServer, timeout: float = 120) -> int:
        """SIGTERM the server and wait for its exit status."""
        self.vm.run(f"kill -TERM {server.pid}")
        status = server.proc.wait(timeout)
        self.running.remove(server)
        return status

    def run_to_exit(self, args: str, timeout: float = 180) -> tuple[int, str]:
        """Run a server expected to exit on its own (a refused device, say)."""
        proc = self.vm.spawn(f"exec python3 -m guest.muse serve {args}")
        status = proc.wait(timeout)
        return status, proc.text()


@pytest.fixture
def muse(vm: TestGuest) -> Iterator[MuseServers]:
    servers = MuseServers(vm)
    yield servers
    for server in list(servers.running):
        if server.proc.running():
            servers.stop(server)


# Why /dev/muse is still pinned: the module's count, and who holds a MUSE file,
# an MTD or a kernel stack in MUSE or MTD code.
PINNED_BY = (
    "echo \"muse refcnt $(cat /sys/module/muse/refcnt)\"; grep -w ^muse /proc/modules; "
    "for f in /proc/[0-9]*/fd/*; do l=$(readlink $f 2>/dev/null) && case $l in "
    "*muse*|*mtd*) echo \"$f -> $l\";; esac; done; "
    "for t in /proc/[0-9]*/task/*; do grep -qE 'muse|mtd' $t/stack 2>/dev/null && "
    "{ echo \"$t $(cat $t/comm) $(cat $t/wchan)\"; cat $t/stack; }; done; "
    "cat /proc/mtd; ps -eo pid,stat,etimes,cmd"
)


def unload_muse(vm: TestGuest, within: float = 120) -> None:
    """Unload muse, retrying while a connection's exit work still pins it."""
    result = vm.run(f"end=$(($(date +%s) + {int(within)})); "
                    "until err=$(modprobe -r muse 2>&1); do "
                    f"[ $(date +%s) -lt $end ] || {{ echo \"$err\"; {PINNED_BY}; exit 1; }}; "
                    "sleep 0.5; done; ! test -e /dev/muse", timeout=within + 60)
    assert result.ok, f"muse stays loaded after {within:.0f} s:\n{result.describe()}"


def quote(text: str) -> str:
    return shlex.quote(text)
