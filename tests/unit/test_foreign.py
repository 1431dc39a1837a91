"""KCSAN reports sorted into the series' and foreign ones (harness/verdict/foreign.py),
on captured consoles."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.verdict.foreign import accesses, is_ours, split
from harness.verdict.splats import Kind, Splat, scan_text

CONSOLES = Path(__file__).resolve().parent.parent / "data" / "consoles"


@pytest.mark.parametrize(("console", "ours"), [
    ("kcsan_muse_ecc_stats", True),    # both accesses in muse_do_io_part [muse]
    ("kcsan_dcache", False),           # lockless dcache lookups: the VFS's design
    ("kcsan_data_race", False),        # APIC timer calibration at boot
    ("kcsan_timekeeping", False),      # the timekeeping latch, far above muse's init work
    ("kcsan_unknown_origin", False),   # one stack only: virtio-net at boot
    ("ubsan", True),                   # any other kind fails wherever it points
    ("kasan_uaf", True),
    ("kmsan_uninit_iov", True),        # KMSAN, from a muse.c mutant
])
def test_sorted(console: str, ours: bool) -> None:
    splats = scan_text((CONSOLES / f"{console}.log").read_bytes())
    assert splats
    assert [is_ours(s) for s in splats] == [ours] * len(splats)


def test_split_keeps_order() -> None:
    text = b"".join((CONSOLES / f"{name}.log").read_bytes()
                    for name in ("kcsan_dcache", "kcsan_muse_ecc_stats", "kcsan_data_race"))
    ours, foreign = split(scan_text(text))
    assert [s.kind for s in ours] == [Kind.KCSAN]
    assert "muse_do_io_part" in ours[0].title
    assert [s.title.split(" in ", 1)[1] for s in foreign] == [
        "d_alloc_parallel / d_alloc_parallel", "lapic_cal_handler / setup_boot_APIC_clock"]


def test_a_report_whose_accesses_cannot_be_read_fails_its_test() -> None:
    odd = Splat(Kind.KCSAN, "BUG: KCSAN: data-race in a / b", 0,
                "BUG: KCSAN: data-race in a / b\nsomething new\n a+0x1/0x2\n")
    assert is_ours(odd)


def test_a_frame_far_below_the_race_does_not_make_it_ours() -> None:
    (report,) = scan_text((CONSOLES / "kcsan_timekeeping.log").read_bytes())
    assert any("[muse]" in f for stack in accesses(report) for f in stack)
    assert not is_ours(report)
