"""A test's aftermath: why it fails, and whether its VM may serve the next test."""

from __future__ import annotations

from harness.verdict.aftermath import Aftermath
from harness.verdict.kmemleak import Leak
from harness.verdict.leftovers import Pinned
from harness.verdict.splats import Kind, Splat

WARNING = Splat(Kind.WARNING, "WARNING: CPU: 0 PID: 1 at fs/fuse/muse.c:10 f", 3, "...")


def test_a_clean_test_keeps_its_vm() -> None:
    clean = Aftermath("t", "console")
    assert clean.problems() == [] and clean.taint(failed=False) == ""
    assert clean.taint(failed=True) == "t failed"


def test_each_problem_is_named_and_taints_as_it_should() -> None:
    splat = Aftermath("t", "", splats=(WARNING,))
    assert "kernel splat during the test (WARNING: WARNING: CPU" in splat.problems()[0]
    assert splat.taint(failed=False).startswith("kernel splat: WARNING")
    leak = Aftermath("t", "", leaks=(Leak("0xffff1", 64, backtrace=["kmalloc", "muse_x"]),),
                     leak_report="unreferenced object 0xffff1 (size 64):")
    assert leak.problems() == ["kmemleak after the test: unreferenced object 0xffff1 "
                               "(size 64) from muse_x"]
    assert leak.taint(failed=False) == "" and leak.kmemleak_text.startswith("unreferenced")
    pinned = Aftermath("t", "", pinned=Pinned(2, "muse refcnt 2"))
    assert "muse is still referenced (2)" in pinned.problems()[0]
    assert pinned.taint(failed=False).startswith("muse is still referenced")
    broken = Aftermath("t", "", broken="end of test: VMError: QEMU exited")
    assert broken.problems() == ["the VM broke: end of test: VMError: QEMU exited"]
    assert broken.taint(failed=False) == "end of test: VMError: QEMU exited"


def test_a_repeated_report_is_named_once_with_its_count() -> None:
    other = Splat(Kind.KMSAN, "BUG: KMSAN: uninit-value in f", 9, "...")
    many = Aftermath("t", "", splats=(WARNING, other, WARNING, WARNING))
    assert many.problems()[0] == ("kernel splat during the test (WARNING: WARNING: CPU: 0 PID: 1 "
                                  "at fs/fuse/muse.c:10 f (x3), KMSAN: BUG: KMSAN: uninit-value "
                                  "in f)")


def test_an_error_the_test_caught_taints_without_failing() -> None:
    # A command that timed out inside pytest.raises: the test passes, its VM goes.
    caught = Aftermath("t", "", vm_error="GuestTimeout: killed at its timeout of 3 s")
    assert caught.problems() == []
    assert caught.taint(failed=False) == "GuestTimeout: killed at its timeout of 3 s"
