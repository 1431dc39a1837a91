"""Splat fingerprints (harness/verdict/fingerprint.py) on the captured consoles."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.verdict.fingerprint import Fingerprint, fingerprint
from harness.verdict.splats import scan_text

DATA = Path(__file__).resolve().parent.parent / "data"


def _prints(path: Path) -> list[Fingerprint]:
    return [fingerprint(s) for s in scan_text(path.read_bytes())]


@pytest.mark.parametrize(("console", "title"), [
    ("kasan_uaf", "KASAN: use-after-free in lkdtm_READ_AFTER_FREE"),
    ("lkdtm_warning", "WARNING in lkdtm_WARNING"),
    ("null_deref_oops", "BUG: kernel NULL pointer dereference, address: ADDR in lkdtm_ACCESS_NULL"),
    ("gpf_kasan_null", "general protection fault, probably for non-canonical address ADDR "
                       "in muse_conn_release"),
    ("hung_task", "INFO: task blocked for more than N seconds. in request_wait_answer"),
    ("ubsan", "UBSAN: shift-out-of-bounds in muse_mtd_add"),
    ("kmsan_uninit_iov", "BUG: KMSAN: uninit-value in iov_iter_iovec_advance"),
    ("kernel_bug", "kernel BUG! in muse_mtd_write"),
    ("sleeping_bugs", "BUG: sleeping function called from invalid context in muse_mtd_sync"),
    ("softlockup_panic", "watchdog: BUG: soft lockup - CPU#N stuck for Ns! [sh:N] "
                         "in lkdtm_SOFTLOCKUP"),
])
def test_title_keeps_kind_and_function_without_numbers(console: str, title: str) -> None:
    assert _prints(DATA / "consoles" / f"{console}.log")[0].title == title


def test_top_frames_skip_the_reporting_machinery_and_unwinder_guesses() -> None:
    (kasan,) = _prints(DATA / "consoles" / "kasan_uaf.log")
    assert kasan.frames == ("lkdtm_READ_AFTER_FREE", "lkdtm_do_action", "direct_entry",
                            "full_proxy_write")


def test_same_bug_same_fingerprint_across_bases() -> None:
    # The lkdtm WARNING and the sysrq panic on 6.1 (captured earlier) and on 6.12
    # (tests/data/reports/failed): offsets and .cold splits differ, the bug does not.
    old_warn = _prints(DATA / "consoles" / "lkdtm_warning.log")[0]
    old_panic = _prints(DATA / "consoles" / "panic_sysrq.log")[0]
    slices = DATA / "reports" / "failed" / "consoles"
    new_warn = _prints(slices / "test_inner.py_test_warns.log")[0]
    new_panic = _prints(slices / "test_inner.py_test_panics.log")[0]
    assert old_warn.digest == new_warn.digest and old_warn.title == new_warn.title
    assert old_panic.digest == new_panic.digest
    assert old_warn.digest != old_panic.digest


def test_different_bugs_differ() -> None:
    digests = [fp.digest for name in ("kasan_uaf", "lkdtm_warning", "null_deref_oops",
                                      "gpf_kasan_null", "hung_task", "ubsan", "kernel_bug",
                                      "lockdep_circular", "list_corruption")
               for fp in _prints(DATA / "consoles" / f"{name}.log")]
    assert len(set(digests)) == len(digests)
