"""The TCG thread mode: as asked, but a thread per vCPU whenever CPUs must run in
parallel; the guest's idle mode: polling only for a VM alone under TCG."""

from __future__ import annotations

import pytest

from harness.machine.accel import accel_option, guest_idle, tcg_threads
from harness.machine.qemu import x86_64
from harness.machine.vm import VM
from harness.options import DEFAULT_GUEST_IDLE, DEFAULT_TCG_THREADS


def test_parallel_tests_always_get_a_thread_per_vcpu() -> None:
    assert DEFAULT_TCG_THREADS == "multi"
    assert tcg_threads("single", parallel=False) == "single"
    assert tcg_threads("single", parallel=True) == "multi"
    assert tcg_threads("multi", parallel=False) == "multi"
    with pytest.raises(ValueError, match="not one of multi, single"):
        tcg_threads("fast", parallel=False)


def test_the_mode_reaches_qemus_command_line(tmp_path) -> None:
    assert accel_option("tcg", "single") == "tcg,thread=single"
    assert accel_option("kvm", "single") == "kvm"     # KVM has no such mode
    cmd = x86_64.command(kernel=tmp_path / "bz", rootfs=tmp_path / "r", append="x",
                         ssh_port=2222, accel="tcg", memory_mb=512, smp=2, shares=(),
                         accel_option=accel_option("tcg", "single"))
    assert cmd[cmd.index("-accel") + 1] == "tcg,thread=single"
    assert "2,sockets=2,cores=1,threads=1" in cmd


def test_guest_idle_polls_only_for_a_vm_alone_under_tcg() -> None:
    assert DEFAULT_GUEST_IDLE == "auto"
    assert guest_idle("auto", "tcg", alone=True) == "poll"
    assert guest_idle("auto", "tcg", alone=False) == "halt"    # beside other VMs
    assert guest_idle("auto", "kvm", alone=True) == "halt"     # the host polls for KVM
    assert guest_idle("auto", "tcg", alone=True, threads="single") == "halt"
    assert guest_idle("poll", "kvm", alone=False) == "poll"    # as asked
    assert guest_idle("halt", "tcg", alone=True) == "halt"
    with pytest.raises(ValueError, match="not one of auto, halt, poll"):
        guest_idle("spin", "tcg", alone=True)


def test_the_idle_mode_reaches_the_kernel_command_line() -> None:
    assert "idle=poll" in x86_64.append_line(init="/sbin/init", idle="poll").split()
    assert "idle=" not in x86_64.append_line(init="/sbin/init", idle="halt")
    line = x86_64.append_line(init="/sbin/init", extra="muse.x=1", idle="poll")
    assert line.endswith("idle=poll muse.x=1")


def test_a_bad_idle_mode_fails_before_any_boot(tmp_path) -> None:
    with pytest.raises(ValueError, match="guest idle mode 'spin'"):
        VM(None, None, tmp_path, idle="spin")  # type: ignore[arg-type]
