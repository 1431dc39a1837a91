"""One test's handle on its VM: commands, spawned processes, and the test's end.

TestGuest brackets a test with markers in the guest's kmsg, so that the
console slice between them is that test's. Its finish() kills what the test
left running, waits until nothing holds muse, scans kmemleak and returns the
test's Aftermath (harness.verdict.aftermath): the one record the pool and the
plugin judge the test by. Its Ledger says where the test's time went.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import time
from dataclasses import dataclass, field

from harness.errors import HarnessError, VMError
from harness.machine.ssh import CommandResult, GuestProcess
from harness.machine.vm import VM
from harness.verdict.aftermath import Aftermath
from harness.verdict.foreign import split
from harness.verdict.kmemleak import SCAN_COMMAND, Leak, parse_report, report_between_markers
from harness.verdict.leftovers import SETTLE_SECONDS, parse_pinned, settle_command

GCOV_RESET = "python3 -m guest.gcov reset"
GCOV_DUMP = "python3 -m guest.gcov dump"
GCOV_PROBE = "test -d /sys/kernel/debug/gcov && echo gcov"


@dataclass
class Ledger:
    """Where a test's time went on the guest's side, for the JUnit file: the suite's
    MUSE-heavy tests are not bound by MUSE requests (issue 23), so what is it?"""

    commands: int = 0               # run() and check(): SSH commands waited for
    command_seconds: float = 0.0
    slowest: str = ""               # the longest command, with its seconds
    slowest_seconds: float = 0.0
    spawned: int = 0                # processes started in the background
    end_seconds: float = 0.0        # finish(): settle, kmemleak, gcov, the end marker
    programs: dict[str, list[float]] = field(default_factory=dict)   # program: [runs, s]

    def record(self, command: str, seconds: float) -> None:
        self.commands += 1
        self.command_seconds += seconds
        if seconds > self.slowest_seconds:
            self.slowest, self.slowest_seconds = command[:120], seconds
        runs = self.programs.setdefault(program(command), [0, 0.0])
        runs[0] += 1
        runs[1] += seconds

    def properties(self) -> list[tuple[str, str]]:
        return [("guest_commands", str(self.commands)),
                ("guest_command_seconds", f"{self.command_seconds:.2f}"),
                ("guest_slowest_command", f"{self.slowest_seconds:.2f} s: {self.slowest}"),
                ("guest_spawned", str(self.spawned)),
                ("end_seconds", f"{self.end_seconds:.2f}"),
                ("guest_programs", json.dumps(
                    {name: [int(n), round(t, 2)] for name, (n, t) in self.programs.items()}))]


def program(command: str) -> str:
    """What a command runs, as the ledger sums it: "python3 -m guest.muse ctl",
    "mount", "set" for a script."""
    words = command.split()
    if words[:2] == ["python3", "-m"] and len(words) > 2:
        return " ".join(words[:3] + [w for w in words[3:4] if not w.startswith("-")])
    return words[0] if words else ""


class TestGuest:
    """The guest as one test sees it."""

    __test__ = False  # not a pytest test class

    def __init__(self, vm: VM, test_id: str, *, kmemleak: bool = False,
                 gcov: bool = False) -> None:
        self.vm, self.test_id, self.kmemleak, self.gcov = vm, test_id, kmemleak, gcov
        self.gcov_data = b""        # the test's gcov counters (a tar), when gcov is on
        self.gcov_error = ""
        if gcov:
            # Counters from zero: what this test runs, and nothing before it.
            vm.run(GCOV_RESET, timeout=120)
        self.start = vm.mark(f"START {test_id}")
        self.end: int | None = None
        self.processes: list[GuestProcess] = []
        self.started_at = time.monotonic()
        self.vm_error = ""          # a command found the VM dead or hung
        # What the test's own kmemleak scans found (scan_kmemleak()).
        self.leaks: list[Leak] = []
        self.leak_report = ""
        self.kmemleak_error = ""
        self.kmemleak_scanned = False   # the test scanned itself (last): finish() need not
        self.aftermath: Aftermath | None = None   # set once by finish()
        self.ledger = Ledger()

    @property
    def console(self) -> str:
        """The console since this test's start marker."""
        assert self.vm.console is not None
        return self.vm.console.text(self.start, self.end)

    def _fatal(self, exc: HarnessError) -> VMError:
        self.vm_error = f"{type(exc).__name__}: {exc}"
        return VMError(f"{exc}\n--- console since the test started ---\n{self.console}")

    def run(self, command: str, timeout: float | None = None, *,
            stdin: bytes | None = None) -> CommandResult:
        started = time.monotonic()
        try:
            return self.vm.run(command, timeout, stdin=stdin)
        except HarnessError as exc:
            raise self._fatal(exc) from None
        finally:
            self.ledger.record(command, time.monotonic() - started)

    def check(self, command: str, timeout: float | None = None) -> CommandResult:
        """run() that fails the test unless the command exits 0."""
        result = self.run(command, timeout)
        if not result.ok:
            raise AssertionError(f"guest command failed:\n{result.describe()}")
        return result

    def spawn(self, command: str) -> GuestProcess:
        try:
            proc = self.vm.spawn(command)
        except HarnessError as exc:
            raise self._fatal(exc) from None
        self.processes.append(proc)
        self.ledger.spawned += 1
        return proc

    def finish(self) -> Aftermath:
        """Stop what the test left running, check that nothing holds muse any more,
        scan kmemleak, write the end marker; the test's aftermath."""
        started = time.monotonic()
        live = [p.pid for p in self.processes if p.running()]
        pinned, broken = None, ""
        try:
            result = self.vm.run(settle_command(live), timeout=SETTLE_SECONDS + 60)
            pinned = parse_pinned(result.exit_status, result.stdout)
            if self.kmemleak and not (self.kmemleak_scanned and not live):
                with contextlib.suppress(AssertionError):   # kmemleak_error says why
                    self.scan_kmemleak()
            if self.gcov:
                self._collect_gcov()
            self.end = self.vm.mark(f"END {self.test_id}")
        except HarnessError as exc:
            broken = f"end of test: {exc}"
            self.end = None
        assert self.vm.console is not None
        ours, foreign = split(self.vm.console.splats_between(self.start, self.end))
        self.aftermath = Aftermath(
            test_id=self.test_id, console=self.console, splats=ours, foreign=foreign,
            leaks=tuple(self.leaks), leak_report=self.leak_report,
            kmemleak_error=self.kmemleak_error, pinned=pinned,
            vm_error=self.vm_error, broken=broken)
        self.ledger.end_seconds = time.monotonic() - started
        return self.aftermath

    def _collect_gcov(self) -> None:
        """The counters after the test (and after muse's release, so the teardown
        paths count): base64 of a tar, decoded here."""
        result = self.vm.run(GCOV_DUMP, timeout=300)
        try:
            self.gcov_data = base64.b64decode(result.stdout.strip(), validate=True)
        except binascii.Error:
            self.gcov_data = b""
        if not result.ok or not self.gcov_data:
            self.gcov_error = f"gcov counters not read:\n{result.describe()}"

    def scan_kmemleak(self) -> list[Leak]:
        """Scan, read and clear kmemleak (inside the test's console slice). A test that
        asserts on leaks calls this as its last step; the plugin then reports what it
        found instead of scanning (two scans, several seconds each under TCG) again."""
        result = self.run(SCAN_COMMAND, timeout=600)
        report = report_between_markers(result.stdout)
        self.kmemleak_scanned = True
        if report is None:
            self.kmemleak_error = f"kmemleak scan gave no report:\n{result.describe()}"
            raise AssertionError(self.kmemleak_error)
        self.leak_report += report
        self.leaks += parse_report(report)
        return self.leaks
