"""What a test holds: one VM, reused across tests, and a per-test handle on it.

VMPool keeps one VM per worker for the flavour in use and boots a fresh one
after a splat, a death or a hang. TestGuest brackets one test with markers in
the guest's kmsg, so that the console slice between them is that test's.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.build import BuildRequest, KernelBuild, build_kernel
from harness.console import Splat, scan_text
from harness.errors import HarnessError, VMError
from harness.kmemleak import (
    CLEAR_COMMAND,
    PRESENT,
    SCAN_COMMAND,
    Leak,
    parse_report,
    report_between_markers,
)
from harness.leftovers import SETTLE_SECONDS, Pinned, parse_pinned, settle_command
from harness.rootfs import Rootfs, build_rootfs
from harness.ssh import CommandResult, GuestProcess
from harness.vm import VM


@dataclass
class PoolOptions:
    base: str
    flavour: str
    kernel_src: Path | None
    as_posted: bool
    mutation: str | None
    smp: int
    memory_mb: int
    logdir: Path
    worker: str


@dataclass
class VMPool:
    options: PoolOptions
    kernels: dict[str, KernelBuild] = field(default_factory=dict)
    rootfs: Rootfs | None = None
    vm: VM | None = None
    vm_key: tuple[str, str] = ("", "")  # (flavour, extra kernel arguments) of self.vm
    tainted: str = ""          # why the current VM must not serve the next test
    boot_times: list[float] = field(default_factory=list)
    accel: str = ""
    accel_reason: str = ""
    kmemleak: bool = False     # the current VM's kernel has kmemleak: scan after each test

    def kernel(self, flavour: str) -> KernelBuild:
        if flavour not in self.kernels:
            o = self.options
            self.kernels[flavour] = build_kernel(BuildRequest(
                base=o.base, flavour=flavour, kernel_src=o.kernel_src, as_posted=o.as_posted,
                mutation=o.mutation))
        return self.kernels[flavour]

    def get(self, flavour: str, kernel_args: str = "") -> VM:
        """A running VM of flavour booted with kernel_args, booting one when needed."""
        if self.vm is not None and (self.tainted or self.vm_key != (flavour, kernel_args)
                                    or not self.vm.running()):
            self.vm.close()
            self.vm = None
        if self.vm is None:
            kernel = self.kernel(flavour)
            if self.rootfs is None:
                self.rootfs = build_rootfs()
            vm = VM(kernel, self.rootfs, self.options.logdir,
                    name=f"{self.options.worker}-{flavour}-{len(self.boot_times) + 1}",
                    smp=self.options.smp, memory_mb=self.options.memory_mb,
                    extra_append=kernel_args)
            try:
                vm.start()
            finally:
                self.accel, self.accel_reason = vm.accel.name, vm.accel.reason
            self.vm, self.vm_key, self.tainted = vm, (flavour, kernel_args), ""
            self.boot_times.append(vm.boot_seconds)
            self.kmemleak = PRESENT in vm.run(CLEAR_COMMAND, timeout=600).stdout
        return self.vm

    def close(self) -> None:
        if self.vm:
            self.vm.close()
            self.vm = None


class TestGuest:
    """The guest as one test sees it."""

    __test__ = False  # not a pytest test class

    def __init__(self, pool: VMPool, vm: VM, test_id: str) -> None:
        self.pool, self.vm, self.test_id = pool, vm, test_id
        self.start = vm.mark(f"START {test_id}")
        self.end: int | None = None
        self.processes: list[GuestProcess] = []
        self.started_at = time.monotonic()
        self.leaks: list[Leak] = []
        self.leak_report = ""       # kmemleak's report of this test, as read
        self.kmemleak_error = ""    # kmemleak was there but gave no report
        self.kmemleak_scanned = False   # the test scanned itself (last): finish() need not
        self.pinned: Pinned | None = None   # muse still referenced once the test's work died

    @property
    def console(self) -> str:
        """The console since this test's start marker."""
        assert self.vm.console is not None
        return self.vm.console.text(self.start, self.end)

    def _fatal(self, exc: HarnessError) -> VMError:
        self.pool.tainted = f"{type(exc).__name__}: {exc}"
        return VMError(f"{exc}\n--- console since the test started ---\n{self.console}")

    def run(self, command: str, timeout: float | None = None, *,
            stdin: bytes | None = None) -> CommandResult:
        try:
            return self.vm.run(command, timeout, stdin=stdin)
        except HarnessError as exc:
            raise self._fatal(exc) from None

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
        return proc

    def finish(self) -> tuple[str, list[Splat]]:
        """Stop what the test left running, check that nothing holds muse any more,
        write the end marker, scan the slice."""
        live = [p.pid for p in self.processes if p.running()]
        try:
            result = self.vm.run(settle_command(live), timeout=SETTLE_SECONDS + 60)
            self.pinned = parse_pinned(result.exit_status, result.stdout)
            if self.pinned:
                self.pool.tainted = self.pinned.title
            if self.pool.kmemleak and not (self.kmemleak_scanned and not live):
                with contextlib.suppress(AssertionError):   # kmemleak_error says why
                    self.scan_kmemleak()
            self.end = self.vm.mark(f"END {self.test_id}")
        except HarnessError as exc:
            self.pool.tainted = f"end of test: {exc}"
            self.end = None
        text = self.console
        splats = scan_text(text)
        if splats:
            self.pool.tainted = "kernel splat: " + splats[0].title
        return text, splats

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
