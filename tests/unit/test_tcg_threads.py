"""The TCG thread mode: as asked, but a thread per vCPU whenever CPUs must run in parallel."""

from __future__ import annotations

import pytest

from harness.machine.accel import accel_option, tcg_threads
from harness.machine.qemu import x86_64
from harness.options import DEFAULT_TCG_THREADS


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
