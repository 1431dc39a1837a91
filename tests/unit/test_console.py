"""Unit tests for harness.verdict.splats against captured and synthetic console logs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.verdict.splats import (
    ConsoleScanner,
    Kind,
    Splat,
    scan_text,
    strip_timestamp,
)

CONSOLES = Path(__file__).resolve().parents[1] / "data" / "consoles"

# Every capture with the (kind, title) of each splat it must yield, in order.
EXPECTED: dict[str, list[tuple[Kind, str]]] = {
    "clean_boot.log": [],
    "lkdtm_warning.log": [
        (
            Kind.WARNING,
            "WARNING: CPU: 1 PID: 187 at drivers/misc/lkdtm/bugs.c:86 lkdtm_WARNING+0x1a/0x30",
        ),
    ],
    "null_deref_oops.log": [
        (Kind.OOPS, "BUG: kernel NULL pointer dereference, address: 0000000000000000"),
    ],
    "kasan_uaf.log": [
        (Kind.KASAN, "BUG: KASAN: use-after-free in lkdtm_READ_AFTER_FREE+0x1ba/0x1e0"),
    ],
    "kmemleak_console.log": [
        (Kind.KMEMLEAK, "kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)"),
    ],
    "kmemleak_debugfs.log": [
        (Kind.KMEMLEAK, "unreferenced object 0xffff888003a1c000 (size 64):"),
        (Kind.KMEMLEAK, "unreferenced object 0xffff888005e3b400 (size 1024):"),
    ],
    "lockdep_circular.log": [
        (Kind.LOCKDEP, "WARNING: possible circular locking dependency detected"),
    ],
    "hung_task.log": [
        (Kind.HUNG_TASK, "INFO: task python3:261 blocked for more than 30 seconds."),
    ],
    "rcu_stall.log": [
        (Kind.RCU_STALL, "rcu: INFO: rcu_preempt self-detected stall on CPU"),
    ],
    "ubsan.log": [
        (Kind.UBSAN, "UBSAN: shift-out-of-bounds in fs/fuse/muse.c:412:23"),
        (Kind.UBSAN, "UBSAN: array-index-out-of-bounds in drivers/misc/lkdtm/bugs.c:342:16"),
    ],
    "kcsan_data_race.log": [    # the kcsan flavour's boot, 6.12 under TCG
        (Kind.KCSAN, "BUG: KCSAN: data-race in lapic_cal_handler / setup_boot_APIC_clock"),
    ],
    "kcsan_muse_ecc_stats.log": [    # two readers of one MUSE MTD, kcsan flavour
        (Kind.KCSAN, "BUG: KCSAN: data-race in muse_do_io_part [muse] / muse_do_io_part [muse]"),
    ],
    "kmsan_uninit_iov.log": [    # kmsan flavour, muse.c mutant delete-538 (OOB kvec length)
        (Kind.KMSAN, "BUG: KMSAN: uninit-value in iov_iter_iovec_advance+0x253/0x4f0"),
    ],
    "kcsan_timekeeping.log": [    # an interrupt's timekeeping update: foreign (foreign.py)
        (Kind.KCSAN, "BUG: KCSAN: data-race in ktime_get_mono_fast_ns / timekeeping_update"),
    ],
    "kcsan_unknown_origin.log": [    # one access seen, the other not: foreign (foreign.py)
        (Kind.KCSAN, "BUG: KCSAN: data-race in virtqueue_get_buf_ctx+0x246/0x520"),
    ],
    "kcsan_dcache.log": [    # strict KCSAN on lockless dcache lookups: foreign (foreign.py)
        (Kind.KCSAN, "BUG: KCSAN: data-race in d_alloc_parallel / d_alloc_parallel"),
    ],
    "panic_sysrq.log": [
        (Kind.PANIC, "Kernel panic - not syncing: sysrq triggered crash"),
    ],
    "gpf_kasan_null.log": [
        (
            Kind.GPF,
            "general protection fault, probably for non-canonical address"
            " 0xdffffc0000000003: 0000 [#1] PREEMPT SMP KASAN NOPTI",
        ),
        (Kind.PANIC, "Kernel panic - not syncing: Fatal exception"),
    ],
    "softlockup_panic.log": [
        (Kind.SOFT_LOCKUP, "watchdog: BUG: soft lockup - CPU#1 stuck for 26s! [sh:327]"),
        (Kind.PANIC, "Kernel panic - not syncing: softlockup: hung tasks"),
    ],
    "markers_warning.log": [
        (Kind.WARNING, "WARNING: CPU: 0 PID: 1 at fs/fuse/muse.c:123 muse_mtd_write+0x2d1/0x3a0"),
    ],
    "list_corruption.log": [
        (
            Kind.WARNING,
            "WARNING: CPU: 1 PID: 318 at lib/list_debug.c:53 __list_del_entry_valid+0x9b/0x110",
        ),
        (
            Kind.WARNING,
            "WARNING: CPU: 0 PID: 325 at lib/list_debug.c:30 __list_add_valid+0xa8/0x100",
        ),
    ],
    "kernel_bug.log": [
        (Kind.BUG, "kernel BUG at fs/fuse/muse.c:288!"),
    ],
    "sysfs_duplicate.log": [
        (
            Kind.WARNING,
            "sysfs: cannot create duplicate filename '/devices/virtual/mtd/mtd0/mtd33/muse_pid'",
        ),
    ],
    "sleeping_bugs.log": [
        (
            Kind.BUG,
            "BUG: sleeping function called from invalid context at kernel/locking/mutex.c:580",
        ),
        (Kind.BUG, "BUG: scheduling while atomic: python3/340/0x00000002"),
    ],
}


def read(name: str) -> bytes:
    return (CONSOLES / name).read_bytes()


def text_lines(splat: Splat) -> list[str]:
    return [strip_timestamp(line) for line in splat.text.split("\n")]


def test_every_capture_has_expectations() -> None:
    assert sorted(p.name for p in CONSOLES.glob("*.log")) == sorted(EXPECTED)


def test_some_captures_use_crlf_and_partial_last_line() -> None:
    assert b"\r\n" in read("markers_warning.log")
    assert b"\r\n" in read("clean_boot.log")
    assert not read("panic_sysrq.log").endswith(b"\n")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_kinds_and_titles(name: str) -> None:
    splats = scan_text(read(name))
    assert [(s.kind, s.title) for s in splats] == EXPECTED[name]
    for splat in splats:
        assert splat.title in text_lines(splat)
        assert "\r" not in splat.text


def test_line_numbers_point_at_titles() -> None:
    data = read("list_corruption.log").decode()
    lines = data.split("\n")
    for splat in scan_text(data):
        assert strip_timestamp(lines[splat.line_no]) == splat.title


def test_warning_text_spans_cut_here_to_end_trace() -> None:
    (warning,) = scan_text(read("lkdtm_warning.log"))
    lines = text_lines(warning)
    assert lines[0] == "------------[ cut here ]------------"
    assert lines[1] == warning.title
    assert lines[-1] == "---[ end trace 0000000000000000 ]---"
    assert not any("MUSE-HARNESS" in line or "lkdtm:" in line for line in lines)


def test_warn_message_between_cut_here_and_title_is_kept() -> None:
    first, second = scan_text(read("list_corruption.log"))
    assert text_lines(first)[1].startswith("list_del corruption, ffff888006f1a0f0->next")
    assert text_lines(second)[1].startswith("list_add corruption. prev->next should be")
    assert text_lines(second)[-1].startswith("---[ end trace")


def test_oops_header_and_kernel_bug_opcode_belong_to_their_report() -> None:
    (oops,) = scan_text(read("null_deref_oops.log"))
    assert "Oops: 0000 [#1] PREEMPT SMP NOPTI" in text_lines(oops)
    assert text_lines(oops)[-1] == "---[ end trace 0000000000000000 ]---"
    (bug,) = scan_text(read("kernel_bug.log"))
    lines = text_lines(bug)
    assert lines[:3] == [
        "------------[ cut here ]------------",
        bug.title,
        "invalid opcode: 0000 [#1] PREEMPT SMP KASAN NOPTI",
    ]
    assert lines[-1] == "---[ end trace 0000000000000000 ]---"


def test_banner_reports_include_both_banners() -> None:
    (kasan,) = scan_text(read("kasan_uaf.log"))
    lines = text_lines(kasan)
    assert lines[0] == lines[-1] == "=" * 66
    assert "Freed by task 214:" in lines
    assert "Memory state around the buggy address:" in lines
    for ubsan in scan_text(read("ubsan.log")):
        lines = text_lines(ubsan)
        assert lines[0] == lines[-1] == "=" * 80
        assert lines[1] == ubsan.title


def test_lockdep_and_dump_stack_reports_end_at_task_end() -> None:
    (lockdep,) = scan_text(read("lockdep_circular.log"))
    lines = text_lines(lockdep)
    assert lines[0] == "=" * 54 and lines[1] == lockdep.title
    assert " *** DEADLOCK ***" in lines
    assert lines[-1] == " </TASK>"
    for name in ("hung_task.log", "rcu_stall.log", "sleeping_bugs.log"):
        for splat in scan_text(read(name)):
            assert text_lines(splat)[-1] == " </TASK>", name
    (hung,) = scan_text(read("hung_task.log"))
    assert "Showing all locks held in the system:" not in hung.text


def test_panic_text() -> None:
    (panic,) = scan_text(read("panic_sysrq.log"))
    lines = text_lines(panic)
    assert "sysrq: Trigger a crash" not in lines
    assert lines[-1] == "---[ end Kernel panic - not syncing: sysrq triggered crash ]---"
    lockup, panic = scan_text(read("softlockup_panic.log"))
    assert text_lines(lockup)[-1] == " </TASK>"
    assert text_lines(panic)[-1] == "Kernel Offset: disabled"  # panic=-1: no end line


def test_kmemleak_objects_are_split() -> None:
    first, second = scan_text(read("kmemleak_debugfs.log"))
    assert len(first.text.split("\n")) == len(second.text.split("\n")) == 16
    assert first.text.split("\n")[-1].endswith("entry_SYSCALL_64_after_hwframe+0x63/0xcd")
    assert "0xffff888005e3b400" not in first.text


def test_feed_returns_completed_splat_and_pending_shows_open_one() -> None:
    scanner = ConsoleScanner()
    lines = read("panic_sysrq.log").split(b"\r\n")
    panic_at = next(i for i, line in enumerate(lines) if b"Kernel panic" in line)
    assert scanner.pending is None
    for line in lines[: panic_at + 1]:
        assert scanner.feed(line + b"\r\n") == []
    pending = scanner.pending
    assert pending is not None and pending.kind is Kind.PANIC
    assert pending.title == "Kernel panic - not syncing: sysrq triggered crash"
    # The end line is the partial last line: only flush() completes it.
    assert scanner.feed(b"\r\n".join(lines[panic_at + 1 :])) == []
    (panic,) = scanner.flush()
    assert panic.kind is Kind.PANIC and scanner.pending is None
    assert scanner.splats == [panic]


def test_warning_is_emitted_by_the_feed_that_ends_it() -> None:
    scanner = ConsoleScanner()
    lines = read("lkdtm_warning.log").splitlines(keepends=True)
    end = next(i for i, line in enumerate(lines) if b"---[ end trace" in line)
    emitted: list[tuple[int, Splat]] = []
    for no, line in enumerate(lines):
        emitted += [(no, splat) for splat in scanner.feed(line)]
    assert [(no, s.kind) for no, s in emitted] == [(end, Kind.WARNING)]
    assert scanner.flush() == []


def _feed_chunks(data: bytes | str, sizes: random.Random | None) -> list[Splat]:
    scanner = ConsoleScanner()
    out: list[Splat] = []
    pos = 0
    while pos < len(data):
        size = sizes.randint(1, 97) if sizes else 1
        out += scanner.feed(data[pos : pos + size])
        pos += size
    out += scanner.flush()
    assert out == scanner.splats
    return out


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_chunked_feeding_matches_single_feed(name: str) -> None:
    data = read(name)
    whole = scan_text(data)
    assert _feed_chunks(data, None) == whole
    assert _feed_chunks(data, random.Random(20240607)) == whole
    text = data.decode("utf-8", "surrogateescape")
    assert _feed_chunks(text, random.Random(7)) == whole


def test_multibyte_character_split_across_feeds() -> None:
    scanner = ConsoleScanner()
    data = "[    1.000000] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x1/0x2 \u00e9\u20ac\n".encode()
    for i in range(len(data)):
        scanner.feed(data[i : i + 1])
    (splat,) = scanner.flush()
    assert splat.title.endswith("\u00e9\u20ac")


def test_non_utf8_bytes_do_not_crash() -> None:
    rng = random.Random(99)
    noise = bytes(rng.randrange(256) for _ in range(20000))
    assert all(s.kind for s in scan_text(noise))
    data = b"[    2.000000] BUG: KASAN: wild-memory-access in f\xff\xfe+0x1/0x2\r\n"
    (splat,) = scan_text(b"\x00\xc3(\x80" + b"\n" + data)
    assert splat.kind is Kind.KASAN
    assert splat.title == "BUG: KASAN: wild-memory-access in f\ufffd\ufffd+0x1/0x2"
    scanner = ConsoleScanner()
    scanner.feed(read("clean_boot.log"))
    assert scanner.flush() == []
    assert any("\ufffd" in line for line in scanner.lines)
    assert scan_text("lone surrogate \ud800 WARNING: x\n") == []


def test_clean_boot_line_count() -> None:
    data = read("clean_boot.log")
    scanner = ConsoleScanner()
    scanner.feed(data)
    scanner.flush()
    assert len(scanner.lines) == data.count(b"\n")
    assert scanner.lines[0].startswith("[    0.000000] Linux version 6.1.0")


# Lines that must never start a splat (with and without printk timestamp).
FALSE_POSITIVES = [
    "sh: warning: setlocale: LC_ALL: cannot change locale (C.UTF-8)",
    "gcc: warning: this is only a warning",
    "modprobe: WARNING: Module muse not found in directory /lib/modules/6.1.0",
    "Warning: unable to open an initial console.",
    "DEBUGBUG: not a kernel message",
    "NOBUG: fine",
    "this line mentions BUG: in the middle",
    "an Oops: 0000 [#1] quoted mid-line",
    "random: crng init done",
    "Lock dependency validator: Copyright (c) 2006 Red Hat, Inc., Ingo Molnar",
    "kasan: KernelAddressSanitizer initialized",
    "kasan: KernelAddressSanitizer initialized (generic)",
    "KASAN: KernelAddressSanitizer initialized",
    "kmemleak: Kernel memory leak detector initialized (mem pool available: 15523)",
    "kmemleak: Automatic memory scanning thread started",
    "Memory: 1642616K/2096632K available (36864K kernel code, 9180K rwdata)",
    "Kernel command line: console=ttyS0,115200 panic=-1 oops=panic softlockup_panic=1",
    "rcu: Preemptible hierarchical RCU implementation.",
    "rcu: \tRCU lockdep checking is enabled.",
    "NMI watchdog: Perf NMI watchdog permanently disabled",
    "watchdog: Watchdog detected hard LOCKUPS are fun",
    "lkdtm: Performing direct entry WARNING",
    "lkdtm: FAIL: survived array bounds overflow!",
    "sysrq: Trigger a crash",
    "------------[ cut here ]------------",
    "---[ end trace 0000000000000000 ]---",
    "---[ end Kernel panic - not syncing: sysrq triggered crash ]---",
    "KASAN: null-ptr-deref in range [0x0000000000000018-0x000000000000001f]",
    "=" * 66,
    "MUSE-HARNESS: START test_kernel::test_BUG",
    "MUSE-HARNESS: END WARNING:",
    "MUSE-HARNESS: init started",
    "/ # echo 'MUSE-HARNESS: START t1' > /dev/kmsg",
    "echo 'Kernel panic - not syncing: fake' > /tmp/x",
    "INFO: lockdep is turned off.",
    'hung_task: "echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
    "UBSAN",
    'audit: type=1400 audit(1.2:3): apparmor="DENIED" operation="open"',
    "Oopsie, userspace typo",
]


@pytest.mark.parametrize("line", FALSE_POSITIVES)
@pytest.mark.parametrize("prefix", ["", "[   12.345678] ", "[   12.345678][    T1] "])
def test_false_positive_lines(prefix: str, line: str) -> None:
    assert scan_text(prefix + line + "\n") == []


# One-line reports: (line, kind); the title is the line without timestamp.
TITLES = [
    ("Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009", Kind.PANIC),
    ("Oops: 0002 [#1] SMP", Kind.OOPS),
    ("BUG: unable to handle page fault for address: ffffc90000a7c000", Kind.OOPS),
    ("BUG: kernel NULL pointer dereference, address: 0000000000000008", Kind.OOPS),
    (
        "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000",
        Kind.OOPS,
    ),
    ("Internal error: Oops: 0000000096000005 [#1] PREEMPT SMP", Kind.OOPS),
    ("invalid opcode: 0000 [#1] PREEMPT SMP NOPTI", Kind.OOPS),
    ("double fault: 0000 [#1] PREEMPT SMP NOPTI", Kind.OOPS),
    ("stack segment: 0000 [#1] PREEMPT SMP NOPTI", Kind.OOPS),
    ("kernel stack overflow (double-fault): 0000 [#1] SMP", Kind.OOPS),
    ("traps: PANIC: double fault, error_code: 0x0", Kind.OOPS),
    ("general protection fault: 0000 [#1] PREEMPT SMP NOPTI", Kind.GPF),
    ("kernel BUG at mm/slub.c:431!", Kind.BUG),
    ("BUG: Bad page state in process python3  pfn:06d28", Kind.BUG),
    ("BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 33s!", Kind.BUG),
    ("WARNING: CPU: 0 PID: 1 at fs/fuse/muse.c:123 muse_init+0x1/0x2", Kind.WARNING),
    ("WARNING: at kernel/sched/core.c:123 old_style+0x1/0x2()", Kind.WARNING),
    ("WARNING: The mand mount option has been deprecated", Kind.WARNING),
    ("BUG: KASAN: slab-use-after-free in muse_release+0x1/0x2", Kind.KASAN),
    ("BUG: KASAN: slab-out-of-bounds in muse_read+0x1/0x2", Kind.KASAN),
    ("BUG: KFENCE: use-after-free read in test_use_after_free_read+0xb3/0x143", Kind.KFENCE),
    ("UBSAN: shift-out-of-bounds in lib/test_ubsan.c:25:2", Kind.UBSAN),
    ("BUG: KCSAN: data-race in muse_read / muse_release", Kind.KCSAN),
    ("BUG: KMSAN: uninit-value in fuse_dev_do_read+0x1/0x2", Kind.KMSAN),
    ("kmemleak: 7 new suspected memory leaks (see /sys/kernel/debug/kmemleak)", Kind.KMEMLEAK),
    ("kmemleak: unreferenced object 0xffff888003a1c000 (size 64):", Kind.KMEMLEAK),
    ("WARNING: possible circular locking dependency detected", Kind.LOCKDEP),
    ("WARNING: possible recursive locking detected", Kind.LOCKDEP),
    ("WARNING: suspicious RCU usage", Kind.LOCKDEP),
    ("WARNING: inconsistent lock state", Kind.LOCKDEP),
    ("INFO: possible irq lock inversion dependency detected", Kind.LOCKDEP),
    ("WARNING: possible irq lock inversion dependency detected", Kind.LOCKDEP),
    ("WARNING: SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected", Kind.LOCKDEP),
    ("WARNING: bad unlock balance detected!", Kind.LOCKDEP),
    ("WARNING: lock held when returning to user space!", Kind.LOCKDEP),
    ("BUG: held lock freed!", Kind.LOCKDEP),
    ("WARNING: held lock freed!", Kind.LOCKDEP),
    ("INFO: task kworker/0:1:12 blocked for more than 120 seconds.", Kind.HUNG_TASK),
    ("INFO: task my prog:99 blocked for more than 30 seconds.", Kind.HUNG_TASK),
    ("rcu: INFO: rcu_sched self-detected stall on CPU", Kind.RCU_STALL),
    ("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", Kind.RCU_STALL),
    ("rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: { 1-... }", Kind.RCU_STALL),
    ("INFO: rcu_tasks detected stalls on tasks:", Kind.RCU_STALL),
    ("watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [swapper/0:1]", Kind.SOFT_LOCKUP),
    ("watchdog: Watchdog detected hard LOCKUP on cpu 1", Kind.HARD_LOCKUP),
]


@pytest.mark.parametrize(("line", "kind"), TITLES)
@pytest.mark.parametrize("prefix", ["", "[  100.000001] ", "<4>[  100.000001] "])
def test_title_lines(prefix: str, line: str, kind: Kind) -> None:
    (splat,) = scan_text(prefix + line + "\r\n")
    assert (splat.kind, splat.title, splat.line_no) == (kind, line, 0)


def test_kernel_line_after_unterminated_userspace_output() -> None:
    data = "/ # [  301.667974] Kernel panic - not syncing: sysrq triggered crash\n"
    (splat,) = scan_text(data)
    assert (splat.kind, splat.title) == (Kind.PANIC, data[data.index("Kernel") : -1])
    assert splat.text == data[:-1]


def test_next_report_ends_an_unfinished_one() -> None:
    log = "\n".join(
        [
            "[    5.000000] ------------[ cut here ]------------",
            "[    5.000001] WARNING: CPU: 0 PID: 1 at fs/fuse/muse.c:9 f+0x1/0x2",
            "[    5.000002] Modules linked in:",
            "[    5.000003] Kernel panic - not syncing: kernel: panic_on_warn set ...",
            "[    5.000004] Kernel Offset: disabled",
        ]
    )
    warning, panic = scan_text(log)
    assert [strip_timestamp(line) for line in warning.text.split("\n")] == [
        "------------[ cut here ]------------",
        "WARNING: CPU: 0 PID: 1 at fs/fuse/muse.c:9 f+0x1/0x2",
        "Modules linked in:",
    ]
    assert (panic.kind, panic.line_no) == (Kind.PANIC, 3)


def test_banner_before_next_title_moves_to_next_report() -> None:
    log = "\n".join(
        [
            "BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 33s!",
            "Showing busy workqueues and worker pools:",
            "=" * 66,
            "BUG: KASAN: double-free in f+0x1/0x2",
            "=" * 66,
        ]
    )
    bug, kasan = scan_text(log)
    assert bug.text.split("\n") == log.split("\n")[:2]
    assert kasan.text.split("\n") == log.split("\n")[2:]


def test_cut_here_form_of_ubsan_ends_at_end_trace() -> None:
    log = "\n".join(
        [
            "------------[ cut here ]------------",
            "UBSAN: array-index-out-of-bounds in fs/fuse/muse.c:77:9",
            "index 4 is out of range for type 'u8 [4]'",
            "---[ end trace 0000000000000000 ]---",
            "not part of it",
        ]
    )
    (ubsan,) = scan_text(log)
    assert ubsan.kind is Kind.UBSAN and ubsan.text.split("\n") == log.split("\n")[:4]


def test_unwinder_warning_inside_trace_is_not_a_report() -> None:
    log = "\n".join(
        [
            "BUG: scheduling while atomic: sh/1/0x00000002",
            "Call Trace:",
            " <TASK>",
            "WARNING: stack going in the wrong direction? at f+0x1/0x2",
            " </TASK>",
        ]
    )
    (bug,) = scan_text(log)
    assert bug.text == log


def test_report_is_bounded_and_marker_ends_it() -> None:
    filler = [f"pool {i}: busy" for i in range(50)]
    log = "\n".join(["BUG: workqueue lockup - pool cpus=0 stuck for 33s!", *filler])
    (bug,) = scan_text(log, max_lines=10)
    assert bug.text.split("\n") == log.split("\n")[:10]
    marked = "\n".join(["BUG: workqueue lockup", "detail", "MUSE-HARNESS: END t", "after"])
    (bug,) = scan_text(marked)
    assert bug.text == "BUG: workqueue lockup\ndetail"
    with pytest.raises(ValueError):
        ConsoleScanner(max_lines=0)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("[   12.345678] WARNING: x", "WARNING: x"),
        ("[   12.345678]  <TASK>\r\n", " <TASK>"),
        ("[12345.000001] msg", "msg"),
        ("[    0.000000][    T0] Linux version 6.1.0", "Linux version 6.1.0"),
        ("[    1.500000][    C1] rcu: INFO: x", "rcu: INFO: x"),
        ("<4>[    1.000000] WARNING: y\n", "WARNING: y"),
        ("no timestamp [   1.000000] here", "no timestamp [   1.000000] here"),
        ("[   12.345678] ", ""),
        ("", ""),
    ],
)
def test_strip_timestamp(line: str, expected: str) -> None:
    assert strip_timestamp(line) == expected
