"""Console slices: the file a test's console goes to, and its lines with the splats marked."""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.verdict.splats import scan_text

MAX_LINES = 3000    # a page stays readable; the file beside it has everything


@dataclass(frozen=True)
class Line:
    number: int         # 1-based, in the slice file
    text: str
    splat: bool         # part of a kernel report


def slice_name(nodeid: str, attempt: int = 1) -> str:
    """consoles/<this>: the console slice file of a test's attempt (a retry's is kept too)."""
    stem = re.sub(r"[^\w.-]+", "_", nodeid)[-150:]
    return f"{stem}.log" if attempt == 1 else f"{stem}.try{attempt}.log"


def marked_lines(console: str) -> tuple[list[Line], int]:
    """The slice's lines, each splat's lines marked; and how many leading lines were cut
    to keep MAX_LINES (the end of a slice is where a failure shows)."""
    lines = console.splitlines()
    marked = [False] * len(lines)
    for splat in scan_text(console):
        report = splat.text.splitlines()
        # The report may start before its title line ("cut here", a "====" banner).
        lead = next((i for i, ln in enumerate(report) if splat.title in ln), 0)
        start = max(0, splat.line_no - lead)
        for i in range(start, min(len(lines), start + len(report))):
            marked[i] = True
    cut = max(0, len(lines) - MAX_LINES)
    return [Line(i + 1, lines[i], marked[i]) for i in range(cut, len(lines))], cut
