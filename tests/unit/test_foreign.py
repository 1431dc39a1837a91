"""KCSAN reports sorted into the series' and foreign ones (harness/verdict/foreign.py),
on captured consoles."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.verdict.foreign import is_ours, split
from harness.verdict.splats import Kind, scan_text

CONSOLES = Path(__file__).resolve().parent.parent / "data" / "consoles"


@pytest.mark.parametrize(("console", "ours"), [
    ("kcsan_muse_ecc_stats", True),    # both accesses in muse_do_io_part [muse]
    ("kcsan_dcache", False),           # lockless dcache lookups: the VFS's design
    ("kcsan_data_race", False),        # APIC timer calibration at boot
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
