"""Fixtures shared by the VM tests: driving the guest MUSE server."""

from __future__ import annotations

import contextlib
import json
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from guest.contract import RegisteredMtd, serve_command, start_server
from harness.machine.ssh import GuestProcess
from harness.pytest.testguest import TestGuest


@dataclass
class MuseServer:
    """One guest server process and the MTDs the kernel registered for it."""

    proc: GuestProcess
    mtds: list[RegisteredMtd] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def mtd(self) -> RegisteredMtd:
        return self.mtds[0]


class MuseServers:
    def __init__(self, vm: TestGuest) -> None:
        self.vm = vm
        self.running: list[MuseServer] = []

    def start(self, args: str, timeout: float = 180) -> MuseServer:
        """Start `python3 -m guest.muse serve ARGS`; return once it printed 'muse: ready'."""
        proc, mtds = start_server(self.vm.spawn, args, timeout)
        server = MuseServer(proc, mtds)
        self.running.append(server)
        return server

    def stop(self, server: MuseServer, timeout: float = 120) -> int:
        """SIGTERM the server and wait for its exit status."""
        self.vm.run(f"kill -TERM {server.pid}")
        status = server.proc.wait(timeout)
        self.running.remove(server)
        return status

    def run_to_exit(self, args: str, timeout: float = 180) -> tuple[int, str]:
        """Run a server expected to exit on its own (a refused device, say)."""
        proc = self.vm.spawn(serve_command(args))
        status = proc.wait(timeout)
        return status, proc.text()


@pytest.fixture
def muse(vm: TestGuest) -> Iterator[MuseServers]:
    servers = MuseServers(vm)
    yield servers
    for server in list(servers.running):
        if server.proc.running():
            servers.stop(server)


def mtd_oob_read(vm: TestGuest, dev: str, offs: int, ooblen: int = 64) -> dict[str, int]:
    """One mtd_read_oob() of a page (and ooblen OOB bytes) made by the kernel itself
    (kernel/testmods/mtd_oob_read.ko): its return value, lengths, CRCs and stats."""
    vm.check(f"modprobe mtd_oob_read dev={dev.removeprefix('/dev/mtd')} offs={offs} "
             f"ooblen={ooblen}", timeout=120)
    try:
        out = vm.check("cd /sys/module/mtd_oob_read/parameters && grep -H . ret retlen "
                       "oobretlen data_crc oob_crc max_bitflips corrected").stdout
    finally:
        vm.check("rmmod mtd_oob_read")
    return {key: int(value) for key, value in (line.split(":", 1) for line in out.split())}


TIMEOUT_PARAM = "/sys/module/muse/parameters/request_timeout"


@contextlib.contextmanager
def request_timeout(vm: TestGuest, seconds: int) -> Iterator[None]:
    """muse's request_timeout for the block (a kernel without it, as posted, keeps
    waiting for the server); the module's own value again afterwards, for the VM's
    other tests."""
    old = vm.run(f"cat {TIMEOUT_PARAM}").stdout.strip()
    if old:
        vm.check(f"echo {seconds} > {TIMEOUT_PARAM}")
    try:
        yield
    finally:
        if old:
            vm.run(f"echo {old} > {TIMEOUT_PARAM}")


def json_lines(output: str) -> list[dict[str, Any]]:
    """The JSON result lines of a guest tool's output (bugprobe, stallprobe, the server)."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def stall_probe(vm: TestGuest, command: str) -> dict[str, Any]:
    """What guest.stallprobe found of `command`: waited 2 s, then SIGINT, then SIGKILL."""
    result = vm.run(f"python3 -m guest.stallprobe --wait 2 --grace 2 -- {command}", timeout=120)
    lines = json_lines(result.stdout)
    assert result.ok and lines, f"stallprobe gave no result:\n{result.describe()}"
    return lines[-1]


def quote(text: str) -> str:
    return shlex.quote(text)


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[[str, object], None]:
    """Add a JUnit property the way the plugin adds its own (pytest's record_property
    warns under junit_family xunit2); report tools read them back."""
    def add(name: str, value: object) -> None:
        request.node.user_properties.append((name, value))
    return add
