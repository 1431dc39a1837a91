"""kmemleak at the end of every test: the guest command that scans, and its report parsed.

kmemleak only reports objects older than its minimum age (5 s) and, since a
pointer may sit in a register or on a stack during one scan, a leak can take
a second scan to show; the command waits past the minimum age and scans twice.
Reading /sys/kernel/debug/kmemleak lists every object reported since the last
"clear", so the command clears after reading: the next test starts empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KMEMLEAK = "/sys/kernel/debug/kmemleak"
MIN_AGE = 5.0   # seconds; kmemleak's jiffies_min_age (MSECS_MIN_AGE)

# Prints the report between two markers (no output at all: no kmemleak in this kernel).
SCAN_COMMAND = (
    f"test -w {KMEMLEAK} || exit 0; sleep {MIN_AGE + 0.5:g}; "
    f"echo scan > {KMEMLEAK} && echo scan > {KMEMLEAK} && "
    f"echo KMEMLEAK-REPORT && cat {KMEMLEAK} && echo KMEMLEAK-END && "
    f"echo clear > {KMEMLEAK}"
)
# On a fresh VM: is kmemleak there? Then forget what boot and module loading leaked.
PRESENT = "kmemleak-present"
CLEAR_COMMAND = (f"test -w {KMEMLEAK} || exit 0; echo scan > {KMEMLEAK}; "
                 f"echo clear > {KMEMLEAK} && echo {PRESENT}")

_OBJECT = re.compile(r"^unreferenced object (0x[0-9a-f]+) \(size (\d+)\):")
_COMM = re.compile(r'^\s+comm "(.*)", pid (\d+), jiffies \d+')
_FRAME = re.compile(r"^\s+\[<[0-9a-f]+>\] (\S+?)(?:\+0x[0-9a-f]+/0x[0-9a-f]+)?(?: \[(\S+)\])?$")


@dataclass
class Leak:
    """One unreferenced object of a kmemleak report."""

    address: str
    size: int
    comm: str = ""
    pid: int = 0
    backtrace: list[str] = field(default_factory=list)   # function names, innermost first
    text: str = ""

    @property
    def allocator(self) -> str:
        """The first frame outside the allocators: who leaked it."""
        generic = re.compile(r"^(?:__?kmalloc|kmalloc|kmem_cache_alloc|kmemdup|kstrn?dup|"
                             r"kvasprintf|kasprintf|kzalloc|krealloc|__kmem_cache|slab_|"
                             r"kmemleak|__alloc|alloc_pages|kvmalloc|kmalloc_trace)")
        return next((f for f in self.backtrace if not generic.match(f)),
                    self.backtrace[0] if self.backtrace else "?")

    @property
    def title(self) -> str:
        return f"unreferenced object {self.address} (size {self.size}) from {self.allocator}"


def parse_report(text: str) -> list[Leak]:
    """The objects of a /sys/kernel/debug/kmemleak read (timestamps not expected)."""
    leaks: list[Leak] = []
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").splitlines():
        match = _OBJECT.match(line)
        if match:
            if leaks:
                leaks[-1].text = "\n".join(lines) + "\n"
            leaks.append(Leak(match.group(1), int(match.group(2))))
            lines = [line]
            continue
        if not leaks:
            continue
        lines.append(line)
        comm = _COMM.match(line)
        if comm:
            leaks[-1].comm, leaks[-1].pid = comm.group(1), int(comm.group(2))
        frame = _FRAME.match(line)
        if frame:
            leaks[-1].backtrace.append(frame.group(1))
    if leaks:
        leaks[-1].text = "\n".join(lines) + "\n"
    return leaks


def report_between_markers(output: str) -> str | None:
    """The report part of SCAN_COMMAND's output; None when kmemleak is not there."""
    start = output.find("KMEMLEAK-REPORT\n")
    end = output.find("KMEMLEAK-END", start)
    if start < 0 or end < 0:
        return None
    return output[start + len("KMEMLEAK-REPORT\n"):end]
