"""The harness itself, against a real booted guest: commands, timeouts, splats, cleanup."""

from __future__ import annotations

import pytest

from harness.errors import VMError
from harness.kernel.build import KernelBuild
from harness.pytest.testguest import TestGuest


def test_guest_runs_our_kernel(vm: TestGuest, kernel_build: KernelBuild) -> None:
    result = vm.check("uname -r; cat /proc/cmdline")
    release, cmdline = result.stdout.splitlines()[:2]
    assert release == kernel_build.release
    assert "console=ttyS0" in cmdline


def test_guest_has_the_cpus_asked_for(vm: TestGuest, request: pytest.FixtureRequest) -> None:
    # Races between the kernel's work items and userspace need a second CPU to show.
    assert vm.check("nproc").stdout.strip() == str(request.config.getoption("--smp"))


def test_exit_status_and_streams(vm: TestGuest) -> None:
    result = vm.run("echo out; echo err >&2; exit 3")
    assert (result.exit_status, result.stdout, result.stderr) == (3, "out\n", "err\n")


def test_stdin_reaches_the_command(vm: TestGuest) -> None:
    assert vm.run("wc -c", stdin=b"x" * 12345).stdout.strip() == "12345"


def test_checkout_guest_package_is_importable(vm: TestGuest) -> None:
    result = vm.check("python3 -c 'import guest, os; print(os.path.dirname(guest.__file__))'")
    assert result.stdout.strip() == "/mnt/harness/guest"


def test_hanging_command_is_killed_at_its_timeout(vm: TestGuest) -> None:
    with pytest.raises(VMError, match=r"killed at its timeout of 3 s"):
        vm.run("sleep 600", timeout=3)
    # The guest is still usable afterwards and the sleeper is gone.
    assert vm.run("pgrep -x sleep || echo none").stdout.strip() == "none"


def test_background_process_output(vm: TestGuest) -> None:
    proc = vm.spawn("echo hello; sleep 600")
    proc.expect(r"^hello$", timeout=30)
    assert vm.run(f"kill -0 {proc.pid}").ok
