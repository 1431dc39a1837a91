"""Which data-race reports concern the code under test.

The kcsan flavour runs KCSAN in strict mode (plain writes not assumed atomic,
races reported without a value change), so that MUSE's plain stores show. In
that mode KCSAN also reports races the rest of the kernel accepts by design:
lockless dcache lookups under seqcounts (d_alloc_parallel, __d_lookup_rcu)
and the APIC timer calibration at boot. Such a report has no frame in the MUSE
and MTD stack. It is kept beside the test's console, as foreign, and fails
nothing; a race with any frame in that stack is the series' business and
fails the test like any other splat. Only KCSAN reports are sorted this way:
every other kind of report fails its test wherever it points.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from harness.verdict.fingerprint import frames_of
from harness.verdict.splats import Kind, Splat

# Function-name prefixes of the stack under test: MUSE and FUSE, the MTD core,
# its partition parsers and character/block devices, NAND, UBI, UBIFS, JFFS2.
OURS = re.compile(r"^(?:muse|fuse|cuse|mtd|part_|parse_\w*partitions|nand|ubi|ubifs|jffs2)",
                  re.IGNORECASE)
MODULE = re.compile(r"\[(?:muse|fuse|cuse|mtd\w*|nandsim|ubi|ubifs|jffs2)\]")


def is_ours(splat: Splat) -> bool:
    """A KCSAN report with a frame (or a module tag) in the stack under test; True
    for every other kind of report."""
    if splat.kind is not Kind.KCSAN:
        return True
    return bool(any(OURS.match(f) for f in frames_of(splat)) or MODULE.search(splat.text))


def split(splats: Iterable[Splat]) -> tuple[tuple[Splat, ...], tuple[Splat, ...]]:
    """(ours, foreign), each in console order."""
    ours: list[Splat] = []
    foreign: list[Splat] = []
    for splat in splats:
        (ours if is_ours(splat) else foreign).append(splat)
    return tuple(ours), tuple(foreign)
