"""kmemleak report parsing (harness/verdict/kmemleak.py): a report captured on the debug kernel, and
a hand-written one with two objects and module frames."""

from __future__ import annotations

from pathlib import Path

from harness.verdict.kmemleak import SCAN_COMMAND, parse_report, report_between_markers

DATA = Path(__file__).resolve().parent.parent / "data" / "kmemleak"


def test_objects_sizes_owners_and_backtraces() -> None:
    leaks = parse_report((DATA / "two-objects.txt").read_text())
    assert [(leak.address, leak.size, leak.comm, leak.pid) for leak in leaks] == [
        ("0xffff888006f1c3a0", 32, "python3", 412),
        ("0xffff88800a2b4e10", 8, "kworker/u4:2", 57),
    ]
    assert leaks[0].backtrace[:4] == ["__kmalloc_node_track_caller", "kvasprintf", "kasprintf",
                                      "muse_parse_mtdreq"]
    assert len(leaks[0].backtrace) == 12
    assert leaks[1].backtrace[-1] == "mtd_part_do_parse"


def test_allocator_skips_the_allocation_helpers() -> None:
    first, second = parse_report((DATA / "two-objects.txt").read_text())
    assert first.allocator == "muse_parse_mtdreq"
    assert second.allocator == "newpart"
    assert first.title == "unreferenced object 0xffff888006f1c3a0 (size 32) from muse_parse_mtdreq"


def test_each_object_keeps_its_own_text() -> None:
    first, second = parse_report((DATA / "two-objects.txt").read_text())
    assert first.text.startswith("unreferenced object 0xffff888006f1c3a0")
    assert "newpart" not in first.text and "leak:1M(a)" in first.text
    assert second.text.startswith("unreferenced object 0xffff88800a2b4e10")


def test_empty_report_and_no_kmemleak() -> None:
    assert parse_report("") == []
    assert report_between_markers("KMEMLEAK-REPORT\nKMEMLEAK-END\n") == ""
    assert report_between_markers("") is None      # kmemleak absent: the command prints nothing
    assert report_between_markers("KMEMLEAK-REPORT\nunreferenced") is None   # cut short


def test_report_between_markers_round_trip() -> None:
    text = (DATA / "two-objects.txt").read_text()
    output = f"KMEMLEAK-REPORT\n{text}KMEMLEAK-END\n"
    assert report_between_markers(output) == text
    assert len(parse_report(report_between_markers(output) or "")) == 2


def test_scan_waits_past_the_minimum_age_and_scans_twice() -> None:
    assert "sleep 5.5" in SCAN_COMMAND
    assert SCAN_COMMAND.count("echo scan >") == 2
    assert SCAN_COMMAND.index("cat ") < SCAN_COMMAND.index("echo clear")


def test_captured_report_of_the_debug_kernel() -> None:
    # Read from /sys/kernel/debug/kmemleak on the debug flavour, series as posted, after a
    # MUSE_INIT with PARTSCMDLINE and WRITESIZE=0 (test_init_invalid_params_leak).
    (leak,) = parse_report((DATA / "captured-6.1-debug-init-leak.txt").read_text())
    assert (leak.size, leak.comm, leak.pid) == (32, "python3", 50)
    assert leak.backtrace[3] == "muse_process_init_reply"
    assert leak.allocator == "muse_process_init_reply"
    assert leak.backtrace[-1] == "entry_SYSCALL_64_after_hwframe"
    assert "muse-50:1M(a),-(" in leak.text
