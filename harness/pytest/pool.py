"""The VM pool: one VM per worker, reused across tests while it can be trusted.

The pool alone decides when a VM is done with: after a test whose aftermath
(harness.verdict.aftermath) taints it, or when the next test needs another
flavour or kernel command line. The next test then boots a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.errors import HarnessError
from harness.kernel.build import BuildRequest, KernelBuild, build_kernel
from harness.machine.accel import tcg_threads
from harness.machine.rootfs import Rootfs, build_rootfs
from harness.machine.vm import VM
from harness.options import DEFAULT_GUEST_IDLE
from harness.proc import say
from harness.pytest.testguest import GCOV_PROBE
from harness.verdict.aftermath import Aftermath
from harness.verdict.kmemleak import CLEAR_COMMAND, PRESENT


@dataclass(frozen=True)
class VMSpec:
    """What a test needs of its VM."""

    flavour: str
    kernel_args: str = ""        # extra kernel command line (kernel_args marker)
    parallel: bool = False       # its CPUs must really run in parallel (parallel_cpus marker)


@dataclass(frozen=True)
class PoolOptions:
    kernel: BuildRequest       # the run's kernel; a test's flavour marker replaces the flavour
    smp: int
    memory_mb: int
    tcg_threads: str
    logdir: Path
    worker: str
    guest_idle: str = DEFAULT_GUEST_IDLE
    alone: bool = True         # one VM at a time (no xdist workers beside this one)


@dataclass
class VMPool:
    options: PoolOptions
    kernels: dict[str, KernelBuild] = field(default_factory=dict)
    rootfs: Rootfs | None = None
    vm: VM | None = None
    vm_key: tuple[str, str, str] | None = None   # flavour, kernel args, TCG threads of self.vm
    tainted: str = ""          # why the current VM must not serve the next test
    retired: list[str] = field(default_factory=list)   # why each earlier VM went
    boot_times: list[float] = field(default_factory=list)
    accel: str = ""
    accel_reason: str = ""
    idle: str = ""             # what the VMs' idle CPUs did (accel.guest_idle())
    kmemleak: bool = False     # the current VM's kernel has kmemleak: scan after each test
    gcov: bool = False         # ... has gcov: counters reset before and read after each test
    failed: dict[str, HarnessError] = field(default_factory=dict)  # kernels that did not build

    def prepare(self, flavours: list[str]) -> None:
        """Every kernel the session's tests need, and the root filesystem, before the
        first test. A kernel that fails to build fails each test that needs it, with
        its error, and is not tried again."""
        base = self.options.kernel.base
        for index, flavour in enumerate(flavours, 1):
            say(f"kernel {index}/{len(flavours)} of this session, before its first test: "
                f"{base} {flavour}")
            try:
                self.kernel(flavour)
            except HarnessError as exc:
                self.failed[flavour] = exc
                say(f"the {base} {flavour} kernel did not build: its tests will fail")
        if self.rootfs is None:
            try:
                self.rootfs = build_rootfs()
            except HarnessError as exc:
                say(f"the guest root filesystem did not build (each VM test will say why): "
                    f"{str(exc).splitlines()[0]}")

    def kernel(self, flavour: str) -> KernelBuild:
        if flavour in self.failed:
            raise self.failed[flavour]
        if flavour not in self.kernels:
            self.kernels[flavour] = build_kernel(replace(self.options.kernel, flavour=flavour))
        return self.kernels[flavour]

    def get(self, spec: VMSpec) -> VM:
        """A running VM booted for spec, booting one when needed."""
        # Compared as QEMU will run it: with a thread per vCPU anyway, a parallel_cpus
        # test can use the VM of the test before.
        key = (spec.flavour, spec.kernel_args, tcg_threads(self.options.tcg_threads,
                                                          spec.parallel))
        if self.vm is not None:
            if not self.vm.running():
                self.retire(self.tainted or "QEMU exited")
            elif self.tainted or self.vm_key != key:
                self.retire(self.tainted or "another flavour, command line or TCG mode")
        if self.vm is None:
            kernel = self.kernel(spec.flavour)
            if self.rootfs is None:
                self.rootfs = build_rootfs()
            vm = VM(kernel, self.rootfs, self.options.logdir,
                    name=f"{self.options.worker}-{spec.flavour}-{len(self.boot_times) + 1}",
                    smp=self.options.smp, memory_mb=self.options.memory_mb,
                    extra_append=spec.kernel_args, parallel=spec.parallel,
                    tcg_threads=self.options.tcg_threads, idle=self.options.guest_idle,
                    alone=self.options.alone)
            try:
                vm.start()
            finally:
                self.accel, self.accel_reason = vm.accel.name, vm.accel.reason
                self.idle = vm.idle
            self.vm, self.vm_key = vm, key
            self.boot_times.append(vm.boot_seconds)
            self.kmemleak = PRESENT in vm.run(CLEAR_COMMAND, timeout=600).stdout
            self.gcov = "gcov" in vm.run(GCOV_PROBE, timeout=60).stdout
        return self.vm

    def release(self, aftermath: Aftermath, failed: bool) -> str:
        """A test is over: is its VM fit for the next one? Returns why not ('' if it is).
        A tainted VM lives on until the next get(), for the test's fixture teardown."""
        self.tainted = aftermath.taint(failed)
        return self.tainted

    def retire(self, reason: str) -> None:
        """Shut the current VM down now; the next get() boots a fresh one."""
        if self.vm is not None:
            self.vm.close()
            self.vm = None
            self.retired.append(reason)
        self.tainted = ""

    def close(self) -> None:
        self.retire("end of session")
