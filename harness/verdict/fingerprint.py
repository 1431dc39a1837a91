"""The same bug across runs, bases and flavours: a splat's normalised title and fingerprint.

The title keeps the report's kind and the function it names, with addresses,
numbers, offsets, line numbers, task names and PIDs taken out, the way
syzkaller names crashes ("KASAN: use-after-free in muse_mtd_read"). The
fingerprint hashes the kind and the top stack frames that are not the
reporting machinery itself (dump_stack, __warn, kasan_report, ...), so two
reports of the same bug hash alike even when their titles word it
differently or their offsets moved with a rebuild.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from harness.verdict.splats import Splat, strip_timestamp

TOP_FRAMES = 4

# "func+0x1a/0x40 [module]" in a call trace; "? func" frames are guesses of the unwinder.
_FRAME = re.compile(r"^\s+(?:\S+ )?([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+(?: \[\w+\])?\s*$")
_RIP = re.compile(r"^RIP: 0010:([A-Za-z_][\w.]*)\+0x")
# Frames of the reporting and exception machinery, and of every syscall's entry.
_MACHINERY = re.compile(
    r"^(?:dump_stack\w*|show_stack|print_report|print_address_description\w*|kasan_\w+"
    r"|__kasan_\w+|__asan_\w+|report_bug|__report_bug|handle_bug|exc_invalid_op"
    r"|asm_exc_\w+|__warn\w*|warn_slowpath\w*|panic|vpanic|__schedule|schedule\w*"
    r"|ubsan_\w+|__ubsan_\w+|kmemleak_\w+|check_\w+_bug|__might_\w+|___might_sleep"
    r"|lock_acquire|__lock_acquire|check_prev_add|validate_chain|print_\w+"
    r"|do_syscall_64|entry_SYSCALL_64\w*|x64_sys_call|__x64_sys_\w+|ret_from_fork\w*"
    r"|kthread|worker_thread|process_one_work|__might_resched|__schedule_bug"
    r"|mutex_lock\w*|__mutex_lock\w*|nmi_\w*backtrace\w*|rcu_dump_cpu_stacks|\w*watchdog\w*"
    r"|__hrtimer_run_queues|hrtimer_interrupt|sysfs_warn_dup)$"
)
# "... in func+0x1/0x2", "... at file.c:12 func+0x1/0x2": the function a title names.
_TITLE_FUNC = re.compile(r"(?: in | at \S+:\d+ )([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+")


@dataclass(frozen=True)
class Fingerprint:
    title: str          # normalised
    frames: tuple[str, ...]
    digest: str         # 12 hex digits over the kind and frames (or the title, frameless)


def _symbol(name: str) -> str:
    """func.cold, func.isra.0, func.constprop.0: the compiler's split of one function."""
    return name.split(".", 1)[0]


def frames_of(splat: Splat) -> list[str]:
    """The report's call-trace functions, innermost first, without unwinder guesses."""
    frames = []
    for line in splat.text.splitlines():
        message = strip_timestamp(line)
        if message.lstrip().startswith("?"):
            continue
        match = _FRAME.match(message)
        if match:
            frames.append(_symbol(match.group(1)))
    return frames


def _function(splat: Splat, frames: list[str]) -> str:
    match = _TITLE_FUNC.search(splat.title)
    if match:
        return _symbol(match.group(1))
    for line in splat.text.splitlines():
        rip = _RIP.match(strip_timestamp(line))
        if rip:
            return _symbol(rip.group(1))
    return next((f for f in frames if not _MACHINERY.match(f)), "")


def normalise_title(splat: Splat, function: str) -> str:
    title = splat.title
    title = re.sub(r"^(BUG|WARNING): (?=KASAN|KFENCE)", "", title)
    title = re.sub(r"CPU: \d+ PID: \d+ ", "", title)
    title = re.sub(r" (?:in|at) \S+:\d+ \S+\+0x\S+| in \S+\+0x[0-9a-f]+/0x[0-9a-f]+", "", title)
    title = re.sub(r": [0-9a-f]{4} \[#\d+\].*$", "", title)       # die()'s header
    title = re.sub(r"\btask \S+:\d+", "task", title)                  # hung task's comm:pid
    title = re.sub(r": \S+/\d+/0x[0-9a-f]+$", "", title)                # comm/pid/preempt count
    title = re.sub(r" (?:in|at) [\w/.-]+\.[ch]:\d+(?::\d+)?", "", title)   # UBSAN, might_sleep
    title = re.sub(r"\S+\+0x[0-9a-f]+/0x[0-9a-f]+", "", title)
    title = re.sub(r"0x[0-9a-f]+|\b[0-9a-f]{8,}\b", "ADDR", title)
    title = re.sub(r"\[#\d+\]|\d+", "N", title)
    title = re.sub(r"\s+", " ", title).strip(" ,:")
    if function and function not in title:
        title += f" in {function}"
    return title


def fingerprint(splat: Splat) -> Fingerprint:
    frames = frames_of(splat)
    top = tuple(f for f in frames if not _MACHINERY.match(f))[:TOP_FRAMES]
    title = normalise_title(splat, _function(splat, frames))
    # Frameless reports (a kmemleak summary line, a one-line WARNING) hash their title.
    basis = "|".join((splat.kind.value, *top)) if top else f"{splat.kind.value}|{title}"
    return Fingerprint(title, top, hashlib.sha256(basis.encode()).hexdigest()[:12])

