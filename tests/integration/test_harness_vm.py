"""The harness itself, against a real booted guest: commands, timeouts, splats, cleanup."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness.errors import VMError
from harness.kernel.build import KernelBuild
from harness.machine.accel import guest_idle
from harness.machine.guestcode import host_is_guest_python
from harness.machine.rootfs import GUEST
from harness.pytest.testguest import TestGuest


def test_guest_runs_our_kernel(vm: TestGuest, kernel_build: KernelBuild) -> None:
    result = vm.check("uname -r; cat /proc/cmdline")
    release, cmdline = result.stdout.splitlines()[:2]
    assert release == kernel_build.release
    assert "console=ttyS0" in cmdline


def test_guest_has_the_cpus_asked_for(vm: TestGuest, request: pytest.FixtureRequest) -> None:
    # Races between the kernel's work items and userspace need a second CPU to show.
    assert vm.check("nproc").stdout.strip() == str(request.config.getoption("--smp"))


def _qemu_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _host_cpu_use(vm: TestGuest, command: str, timeout: float = 120) -> float:
    """QEMU's host CPU seconds per wall second while the guest runs command."""
    pid = vm.vm.qemu_pid
    assert pid is not None
    before, start = _qemu_cpu_seconds(pid), time.monotonic()
    vm.check(command, timeout=timeout)
    return (_qemu_cpu_seconds(pid) - before) / (time.monotonic() - start)


def _busy_both_cpus(vm: TestGuest, seconds: int = 4) -> float:
    """QEMU's host CPU seconds per wall second while both guest CPUs spin."""
    spin = f"timeout {seconds} sh -c 'while :; do :; done'"
    return _host_cpu_use(vm, f"taskset -c 0 {spin} & taskset -c 1 {spin} & wait; true")


@pytest.mark.parallel_cpus
def test_parallel_cpus_really_run_at_once(vm: TestGuest,
                                          request: pytest.FixtureRequest) -> None:
    smp = request.config.getoption("--smp")
    assert vm.check("nproc").stdout.strip() == str(smp)
    if smp > 1 and (os.cpu_count() or 1) > 1:
        if vm.vm.accel.name == "tcg":
            assert vm.vm.tcg_threads == "multi"
        # Two spinning guest CPUs keep two host CPUs busy, not one.
        assert _busy_both_cpus(vm) > 1.3


def test_other_tests_get_the_tcg_threads_asked_for(vm: TestGuest,
                                                 request: pytest.FixtureRequest) -> None:
    smp = request.config.getoption("--smp")
    assert vm.check("nproc").stdout.strip() == str(smp)
    if vm.vm.accel.name == "tcg" and smp > 1 and (os.cpu_count() or 1) > 1:
        asked = request.config.getoption("--tcg-threads")
        assert vm.vm.tcg_threads == asked
        busy = _busy_both_cpus(vm)
        # Round robin keeps at most one host CPU busy; a thread per vCPU, two.
        assert busy < 1.2 if asked == "single" else busy > 1.3


def test_exit_status_and_streams(vm: TestGuest) -> None:
    result = vm.run("echo out; echo err >&2; exit 3")
    assert (result.exit_status, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_stdin_reaches_the_command(vm: TestGuest) -> None:
    assert vm.run("wc -c", stdin=b"x" * 12345).stdout.strip() == "12345"


def test_checkout_guest_package_is_importable(vm: TestGuest) -> None:
    result = vm.check("python3 -c 'import guest, os; print(os.path.dirname(guest.__file__))'")
    assert result.stdout.strip() == "/mnt/harness/guest"


def test_guest_python_loads_the_hosts_bytecode_from_a_cached_share(vm: TestGuest) -> None:
    """python3 starts take the guest modules' bytecode the host wrote (no compiling in the
    guest) from the checkout's share, which the guest caches (cache=loose)."""
    options = vm.check("awk '$2 == \"/mnt/harness\" {print $4}' /proc/mounts").stdout
    # 6.1 prints the mode ("loose"), 6.12 its flags ("cache=0xf").
    assert {"loose", "cache=0xf"} & set(options.strip().split(",")), options
    if not host_is_guest_python():
        pytest.skip(f"the host's Python is not the guest's {GUEST['python']}: no bytecode")
    loaded = vm.check("python3 -v -c 'import guest.muse.cli' 2>&1").stdout
    tag = "cpython-" + GUEST["python"].replace(".", "")
    pyc = f"/mnt/harness/guest/muse/__pycache__/cli.{tag}.pyc"
    assert f"code object from '{pyc}'" in loaded, loaded[-2000:]


def test_hanging_command_is_killed_at_its_timeout(vm: TestGuest) -> None:
    with pytest.raises(VMError, match=r"killed at its timeout of 3 s"):
        vm.run("sleep 600", timeout=3)
    # The guest is still usable afterwards and the sleeper is gone.
    assert vm.run("pgrep -x sleep || echo none").stdout.strip() == "none"


def test_background_process_output(vm: TestGuest) -> None:
    proc = vm.spawn("echo hello; sleep 600")
    proc.expect(r"^hello$", timeout=30)
    assert vm.run(f"kill -0 {proc.pid}").ok


def test_idle_guest_cpus_do_what_was_asked(vm: TestGuest,
                                           request: pytest.FixtureRequest) -> None:
    asked = request.config.getoption("--guest-idle")
    assert vm.vm.idle == guest_idle(asked, vm.vm.accel.name, vm.vm.alone, vm.vm.tcg_threads)
    cmdline = vm.check("cat /proc/cmdline").stdout.split()
    assert ("idle=poll" in cmdline) == (vm.vm.idle == "poll")
    smp = request.config.getoption("--smp")
    if vm.vm.accel.name == "tcg" and vm.vm.tcg_threads == "multi" and smp > 1 \
            and (os.cpu_count() or 1) > 1:
        use = _host_cpu_use(vm, "sleep 3", timeout=60)
        # Polling CPUs keep their host threads running; halted ones let them sleep.
        assert use > 1.3 if vm.vm.idle == "poll" else use < 0.7, f"{use:.2f} host CPUs"
