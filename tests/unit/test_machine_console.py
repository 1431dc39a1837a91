"""The console reader's slices: a test's splats found by text offsets, from the live scan."""

from __future__ import annotations

import random
from pathlib import Path

from harness.machine.console import Console
from harness.verdict.splats import Kind

CONSOLES = Path(__file__).resolve().parents[1] / "data" / "consoles"


def _offset_after(text: str, line: str) -> int:
    """Offset just past the line holding `line` (as VM.mark() returns it)."""
    return text.index("\n", text.index(line)) + 1


def _fed(tmp_path: Path, data: bytes, seed: int) -> Console:
    console = Console(tmp_path / "console.log")
    rng = random.Random(seed)
    pos = 0
    while pos < len(data):          # chunks of any size, split anywhere
        step = rng.randint(1, 300)
        console.feed(data[pos:pos + step])
        pos += step
    return console


def test_splats_between_marker_offsets(tmp_path: Path) -> None:
    data = (CONSOLES / "markers_warning.log").read_bytes()
    for seed in range(5):
        console = _fed(tmp_path, data, seed)
        text = console.text()
        assert "\r" not in text and console.path.read_bytes() == data
        start = _offset_after(text, "MUSE-HARNESS: START test_muse::test_write_past_end")
        end = text.index("MUSE-HARNESS: END test_muse::test_write_past_end")
        (warning,) = console.splats_between(start, end)
        assert warning.kind is Kind.WARNING and "cut here" in warning.text
        clean = _offset_after(text, "MUSE-HARNESS: START test_muse::test_open_close\n")
        assert console.splats_between(clean, start) == []
        # The last test never got its END marker: the slice runs to the end.
        again = _offset_after(text, "MUSE-HARNESS: START test_muse::test_open_close_again")
        assert console.splats_between(again, None) == []
        assert console.splats_between(0, None) == [warning]
        console.close()


def test_a_report_still_open_counts_for_a_slice_without_end(tmp_path: Path) -> None:
    console = Console(tmp_path / "console.log")
    console.feed(b"[    1.000000] MUSE-HARNESS: START t\r\n")
    start = console.size
    console.feed(b"[    2.000000] Kernel panic - not syncing: sysrq triggered crash\r\n"
                 b"[    2.000001] CPU: 0 PID: 1 Comm: sh\r\n")
    (panic,) = console.splats_between(start, None)
    assert panic.kind is Kind.PANIC
    assert console.splats_between(0, start) == []
    console.close()
