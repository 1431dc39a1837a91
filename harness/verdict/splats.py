"""Streaming scanner for kernel splats in a QEMU serial console log.

Feed raw console output (bytes or text, in chunks of any size) to a
`ConsoleScanner`.  It splits the stream into lines (CRLF, partial last line
and undecodable bytes are fine), strips printk timestamps and recognises
kernel error reports ("splats"): panics, oopses, BUG/WARNING reports,
KASAN/KFENCE/KCSAN/KMSAN/UBSAN, kmemleak, lockdep, hung tasks, RCU stalls and
lockups.

When a splat is emitted: `feed()` returns a splat once its report is
complete, i.e. on its end line ("---[ end trace ... ]---", the closing "===="
banner of KASAN/UBSAN, " </TASK>" for dump_stack() style reports, ...), when
a later line starts another report or is a harness marker, after `max_lines`
lines, or at `flush()` (end of stream).  The report still being read is
available at once through `ConsoleScanner.pending`, so the harness learns of
a panic on its first line (with panic=-1 the kernel reboots without printing
an end line, so a panic usually completes only at `flush()`).

The harness writes "MUSE-HARNESS: START <test-id>" / "MUSE-HARNESS: END
<test-id>" to /dev/kmsg around each test; such lines are never splats and
close a report still being read. Which splats fall in a test's slice is the
console reader's business (harness.machine.console: text offsets).
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ConsoleScanner",
    "Kind",
    "Splat",
    "scan_text",
    "strip_timestamp",
]


class Kind(enum.Enum):
    """The family a splat belongs to."""

    PANIC = "panic"
    OOPS = "oops"
    GPF = "gpf"
    BUG = "bug"
    WARNING = "warning"
    KASAN = "kasan"
    KFENCE = "kfence"
    KCSAN = "kcsan"
    KMSAN = "kmsan"
    UBSAN = "ubsan"
    KMEMLEAK = "kmemleak"
    LOCKDEP = "lockdep"
    HUNG_TASK = "hung_task"
    RCU_STALL = "rcu_stall"
    SOFT_LOCKUP = "soft_lockup"
    HARD_LOCKUP = "hard_lockup"


@dataclass(frozen=True)
class Splat:
    """One kernel report found on the console.

    `title` is the line that identifies the report, without timestamp;
    `line_no` is its 0-based index in the stream.  `text` is the raw report
    (timestamps kept, line ends normalised to "\\n"); it starts earlier than
    the title when a "cut here" line or a "====" banner introduces it.
    """

    kind: Kind
    title: str
    line_no: int
    text: str


class _End(enum.Enum):
    """How the report that a title line starts comes to an end."""

    TRACE = enum.auto()  # "---[ end trace ... ]---" (oops, WARN(), BUG())
    PANIC = enum.auto()  # "---[ end Kernel panic ...", absent with panic=N
    BANNER = enum.auto()  # closing "=====" banner (KASAN, KFENCE, UBSAN)
    TASK = enum.auto()  # " </TASK>" closing a dump_stack() trace
    LINE = enum.auto()  # the title is the whole report
    INDENT = enum.auto()  # indented lines that follow (kmemleak object)


@dataclass(frozen=True)
class _Rule:
    kind: Kind
    regex: re.Pattern[str]
    end: _End
    # die() prints its "Oops: 0000 [#1] ..." header a few lines after this
    # title, as part of the same report.
    die: bool = False


def _rule(kind: Kind, pattern: str, end: _End, *, die: bool = False) -> _Rule:
    return _Rule(kind, re.compile(pattern), end, die)


# "[   12.345678] ", optionally with the PRINTK_CALLER field "[    T1]" and a
# syslog level "<4>" in front.
_LEADING_TS = re.compile(r"^(?:<\d>)?\[\s*\d+\.\d+\](?:\[\s*[CT]\d+\])? ?")
# A userspace write without newline can precede a kernel line on the same
# console line ("/ # [   25.1] sysrq: ..."); the 6-digit fraction keeps this
# from matching ordinary bracketed numbers.
_EMBEDDED_TS = re.compile(r"\[\s*\d+\.\d{6}\](?:\[\s*[CT]\d+\])? ?")

_MARKER = re.compile(r"^MUSE-HARNESS: (START|END) (\S+)\s*$")
_CUT_HERE = re.compile(r"^-+\[ cut here \]-+\s*$")
_BANNER = re.compile(r"^={16,}\s*$")
_END_TRACE = r"-+\[ end trace [0-9a-f]+ \]-+"
_END_LINES = {
    _End.TRACE: re.compile(r"^" + _END_TRACE),
    _End.PANIC: re.compile(r"^(?:-+\[ end Kernel panic\b|Rebooting in \d+ seconds)"),
    _End.BANNER: re.compile(r"^(?:={16,}\s*$|" + _END_TRACE + r")"),
    _End.TASK: re.compile(r"^(?: </TASK>\s*$|" + _END_TRACE + r")"),
}
# kmemleak prints object details indented, with "kmemleak: " in front when
# they go to the console (kmemleak.verbose=1).
_INDENTED = re.compile(r"^(?:kmemleak: )?\s")
# die()'s header "<what>: <err> [#<n>]", the line that makes an oops; <what>
# is a lowercase trap name ("invalid opcode", "stack segment", ...) or Oops.
_DIE = re.compile(
    r"^(?:(?:(?:Internal error: )?Oops|[a-z][a-z0-9 ()-]*(?:,[^:\[]*)?): [0-9a-f]{4,} \[#\d+\]"
    r"|Oops: |invalid opcode: |double fault: )"
)
# Unwinder complaints printed inside a call trace, not reports of their own.
_NOT_A_SPLAT = re.compile(
    r"^WARNING: (?:kernel stack (?:frame pointer|regs) at|stack going in the wrong"
    r" direction|stack recursion on stack type)"
)

# First match wins, so specific forms come before the generic BUG:/WARNING:.
_RULES = (
    _rule(Kind.PANIC, r"^Kernel panic - not syncing", _End.PANIC),
    _rule(Kind.KASAN, r"^BUG: KASAN: ", _End.BANNER),
    _rule(Kind.KFENCE, r"^BUG: KFENCE: ", _End.BANNER),
    # "BUG: KCSAN: data-race in a / b" and "BUG: KMSAN: uninit-value in f", each
    # between two "=====" banners like KASAN's.
    _rule(Kind.KCSAN, r"^BUG: KCSAN: ", _End.BANNER),
    _rule(Kind.KMSAN, r"^BUG: KMSAN: ", _End.BANNER),
    _rule(Kind.LOCKDEP, r"^(?:BUG|WARNING): held lock freed!", _End.TASK),
    _rule(
        Kind.LOCKDEP,
        r"^(?:WARNING|INFO): (?:possible (?:circular locking dependency|recursive locking"
        r"|irq lock inversion dependency)|suspicious RCU usage|inconsistent lock state"
        r"|bad unlock balance|lock held when returning to user space"
        r"|[Nn]ested lock was not taken|\S+-safe -> \S+-unsafe lock order)",
        _End.TASK,
    ),
    _rule(Kind.UBSAN, r"^UBSAN: ", _End.BANNER),
    _rule(Kind.KMEMLEAK, r"^kmemleak: \d+ new suspected memory leaks?\b", _End.LINE),
    _rule(
        Kind.KMEMLEAK,
        r"^(?:kmemleak: )?unreferenced object 0x[0-9a-f]+ \(size \d+\):",
        _End.INDENT,
    ),
    _rule(Kind.HUNG_TASK, r"^INFO: task .+:\d+ blocked for more than \d+ seconds", _End.TASK),
    _rule(
        Kind.RCU_STALL,
        r"^(?:rcu: )?INFO: rcu_\w+ (?:self-)?detected (?:expedited )?stalls?\b",
        _End.TASK,
    ),
    _rule(Kind.SOFT_LOCKUP, r"^watchdog: BUG: soft lockup\b", _End.TASK),
    _rule(Kind.HARD_LOCKUP, r"^(?:NMI )?watchdog: Watchdog detected hard LOCKUP\b", _End.TASK),
    _rule(Kind.GPF, r"^general protection fault\b", _End.TRACE),
    _rule(
        Kind.OOPS,
        r"^(?:BUG: (?:kernel NULL pointer dereference|unable to handle\b"
        r"|.*stack guard page was hit)|Unable to handle kernel\b"
        r"|(?:traps: )?PANIC: double fault\b)",
        _End.TRACE,
        die=True,
    ),
    _rule(Kind.BUG, r"^kernel BUG at ", _End.TRACE, die=True),
    _rule(Kind.OOPS, _DIE.pattern, _End.TRACE),
    # sysfs_warn_dup(): a kobject got the same attribute twice (dump_stack()ed).
    _rule(Kind.WARNING, r"^sysfs: cannot create duplicate filename ", _End.TASK),
    # Other BUG:s (sleeping in atomic, bad page state, ...) are dump_stack()ed.
    _rule(Kind.BUG, r"^BUG: ", _End.TASK),
    _rule(Kind.WARNING, r"^WARNING: (?:CPU: \d+ PID: \d+ )?at ", _End.TRACE),
    # Other WARNING:s are one-line notices unless lockdep (above) printed them.
    _rule(Kind.WARNING, r"^WARNING: ", _End.LINE),
)

# How far back a "cut here" line may precede its WARNING/BUG title (WARN()'s
# own message lines come in between).
_PREAMBLE_LINES = 12


def strip_timestamp(line: str) -> str:
    """Return `line` without its line end and leading printk timestamp.

    Only the one space the kernel puts after "]" goes, so call trace lines
    keep their indentation (" <TASK>").
    """
    line = line.rstrip("\r\n")
    return _LEADING_TS.sub("", line, count=1)


def _message(line: str) -> str:
    """The kernel message in a console line (no line end, no timestamp)."""
    match = _LEADING_TS.match(line) or _EMBEDDED_TS.search(line)
    return line[match.end() :] if match else line


def _match(message: str) -> _Rule | None:
    if _NOT_A_SPLAT.match(message):
        return None
    return next((rule for rule in _RULES if rule.regex.match(message)), None)


@dataclass
class _Report:
    """A splat still being read."""

    rule: _Rule
    title: str
    line_no: int
    lines: list[tuple[int, str]]
    die_seen: bool = False

    def splat(self) -> Splat:
        text = "\n".join(line for _, line in self.lines)
        return Splat(self.rule.kind, self.title, self.line_no, text)


class ConsoleScanner:
    """Incremental splat finder over a console stream (see module doc)."""

    def __init__(self, max_lines: int = 150) -> None:
        if max_lines < 1:
            raise ValueError("max_lines must be at least 1")
        self.max_lines = max_lines
        self._buf = bytearray()
        self._searched = 0  # bytes of _buf known to hold no newline
        self._lines: list[str] = []
        self._splats: list[Splat] = []
        self._open: _Report | None = None
        # Lines before this one belong to an earlier report and cannot be the
        # "cut here"/banner lead-in of a new one.
        self._floor = 0
        self._recent: deque[tuple[int, str, str]] = deque(maxlen=_PREAMBLE_LINES)

    @property
    def splats(self) -> list[Splat]:
        """All splats completed so far, in stream order."""
        return list(self._splats)

    @property
    def pending(self) -> Splat | None:
        """The report being read now (text so far), or None."""
        return self._open.splat() if self._open else None

    @property
    def lines(self) -> Sequence[str]:
        """Complete lines seen so far, line ends removed, timestamps kept."""
        return self._lines

    def feed(self, data: bytes | str) -> list[Splat]:
        """Scan more console output; return the splats it completed."""
        if isinstance(data, str):
            # Lone surrogates become U+FFFD on decoding, like bad bytes do.
            data = data.encode("utf-8", "surrogatepass")
        self._buf += data
        out: list[Splat] = []
        start = 0
        pos = self._searched
        while (newline := self._buf.find(b"\n", pos)) >= 0:
            self._line(self._buf[start:newline], out)
            start = pos = newline + 1
        del self._buf[:start]
        self._searched = len(self._buf)
        return out

    def flush(self) -> list[Splat]:
        """End of stream: take the partial last line and close any report."""
        out: list[Splat] = []
        if self._buf:
            rest = bytes(self._buf)
            self._buf.clear()
            self._searched = 0
            self._line(rest, out)
        self._close(out)
        return out

    def _line(self, raw: bytes | bytearray, out: list[Splat]) -> None:
        line = bytes(raw).rstrip(b"\r").decode("utf-8", "replace")
        idx = len(self._lines)
        self._lines.append(line)
        message = _message(line)
        self._recent.append((idx, line, message))

        marker = _MARKER.match(message)
        if marker:
            self._close(out)
            self._floor = idx + 1
            return

        report = self._open
        if report and report.rule.die and not report.die_seen and _DIE.match(message):
            report.die_seen = True
            self._append(report, idx, line, message, out)
            return

        rule = _match(message)
        if rule:
            self._start(rule, idx, message, out)
        elif report:
            ends_before = _CUT_HERE.match(message) or (
                report.rule.end is _End.INDENT and not _INDENTED.match(message)
            )
            if ends_before:
                self._close(out)
            else:
                self._append(report, idx, line, message, out)

    def _start(self, rule: _Rule, idx: int, message: str, out: list[Splat]) -> None:
        lead = [r for r in self._recent if self._floor <= r[0] < idx]
        first = next((i for i, _, m in reversed(lead) if _CUT_HERE.match(m)), idx)
        if first == idx and lead and lead[-1][0] == idx - 1 and _BANNER.match(lead[-1][2]):
            first = idx - 1
        if self._open:
            # An opening banner went to the previous report: it is ours.
            self._open.lines = [entry for entry in self._open.lines if entry[0] < first]
            self._close(out)
        lines = [(i, line) for i, line, _ in self._recent if first <= i <= idx]
        report = _Report(rule, message.rstrip(), idx, lines)
        self._open = report
        self._floor = idx + 1
        if rule.end is _End.LINE or len(lines) >= self.max_lines:
            self._close(out)

    def _append(self, report: _Report, idx: int, line: str, message: str, out: list[Splat]) -> None:
        report.lines.append((idx, line))
        end = _END_LINES.get(report.rule.end)
        if (end and end.match(message)) or len(report.lines) >= self.max_lines:
            self._close(out)

    def _close(self, out: list[Splat]) -> None:
        report = self._open
        if report is None:
            return
        self._open = None
        self._floor = max(self._floor, report.lines[-1][0] + 1)
        splat = report.splat()
        self._splats.append(splat)
        out.append(splat)


def scan_text(text: str | bytes, max_lines: int = 150) -> list[Splat]:
    """All splats in a complete console log."""
    scanner = ConsoleScanner(max_lines)
    scanner.feed(text)
    scanner.flush()
    return scanner.splats
