"""Which data-race reports concern the code under test.

The kcsan flavour runs KCSAN in strict mode (plain writes not assumed atomic,
races reported without a value change), so that MUSE's plain stores show. In
that mode KCSAN also reports races the rest of the kernel accepts by design:
lockless dcache lookups under seqcounts (d_alloc_parallel, __d_lookup_rcu),
the timekeeping latch read by ktime_get_mono_fast_ns(), the APIC timer
calibration at boot. A report is the series' business when one of its two
accesses is made in the MUSE and MTD stack: one of the first TOP frames of
either access's stack is ours (the accessing function or a near caller, which
covers an inlined or generic helper working on our data). Registration runs
deep in the block layer and the timekeeping code, so a frame further down
(muse_init_mtd_work far below a timekeeping race) does not make it ours.
A foreign report is kept beside the test's console and fails nothing; one that
is ours, or a KCSAN report whose accesses cannot be read, fails the test like
any other splat. Every other kind of report fails wherever it points.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from harness.verdict.splats import Kind, Splat, strip_timestamp

# Function-name prefixes of the stack under test: MUSE and FUSE, the MTD core,
# its partition parsers and character/block devices, NAND, UBI, UBIFS, JFFS2.
OURS = re.compile(r"^(?:muse|fuse|cuse|mtd|part_|parse_\w*partitions|nand|ubi|ubifs|jffs2)",
                  re.IGNORECASE)
MODULE = re.compile(r"\[(?:muse|fuse|cuse|mtd\w*|nandsim|ubi|ubifs|jffs2)\]")
# "read to 0x... of 4 bytes by task 2160 on cpu 1:", "write (marked) to ...",
# "race at unknown origin, with read to ...": each access's stack follows, up to
# a blank line.
ACCESS = re.compile(r"^(?:race at unknown origin, with )?(?:read|write|read-write)\b[^:]* to 0x")
TOP = 3


def accesses(splat: Splat) -> list[list[str]]:
    """Each access's stack frames, as printed ("func+0x1/0x2 [module]"), innermost first."""
    stacks: list[list[str]] = []
    current: list[str] | None = None
    for line in splat.text.splitlines():
        message = strip_timestamp(line).strip()
        if ACCESS.match(message):
            current = []
            stacks.append(current)
        elif current is not None and not message:
            current = None
        elif current is not None and not message.startswith("?"):
            current.append(message)
    return stacks


def _ours(frame: str) -> bool:
    return bool(OURS.match(frame.split("+", 1)[0]) or MODULE.search(frame))


def is_ours(splat: Splat) -> bool:
    """True unless a KCSAN report's accesses both lie outside the stack under test."""
    if splat.kind is not Kind.KCSAN:
        return True
    stacks = accesses(splat)
    return not stacks or any(_ours(f) for stack in stacks for f in stack[:TOP])


def split(splats: Iterable[Splat]) -> tuple[tuple[Splat, ...], tuple[Splat, ...]]:
    """(ours, foreign), each in console order."""
    ours: list[Splat] = []
    foreign: list[Splat] = []
    for splat in splats:
        (ours if is_ours(splat) else foreign).append(splat)
    return tuple(ours), tuple(foreign)
