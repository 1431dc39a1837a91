"""The guest's serial console as the host reads it: log file, text, live splat scan.

The reader thread of a VM feeds every chunk here. The text is kept whole
(offsets into it delimit a test's slice), and the splat scanner of
harness.verdict runs over the stream as it comes, so a panic is known on its
first line and a test's splats need no second scan at its end.
"""

from __future__ import annotations

import codecs
import threading
import time
from pathlib import Path

from harness.verdict.splats import ConsoleScanner, Splat


class Console:
    """The guest's serial console: log file, decoded text and live splat scan."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("wb")
        self._chunks: list[str] = []
        self._size = 0
        self._cond = threading.Condition()
        self._scanner = ConsoleScanner()
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._held = ""
        self.splats: list[Splat] = []
        # Text offset where each line starts: maps a splat's line number to the text.
        self._line_starts: list[int] = [0]
        self.last_output = time.monotonic()
        # (monotonic time, text size after the chunk): when each part of the boot showed.
        self.arrivals: list[tuple[float, int]] = []

    def feed(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()
        # A chunk may end inside a UTF-8 character or between "\r" and "\n".
        text = self._held + self._decoder.decode(data)
        self._held = "\r" if text.endswith("\r") else ""
        text = text.removesuffix("\r").replace("\r\n", "\n")
        with self._cond:
            found = self._scanner.feed(text)
            at = text.find("\n")
            while at >= 0:
                self._line_starts.append(self._size + at + 1)
                at = text.find("\n", at + 1)
            self._chunks.append(text)
            self._size += len(text)
            self.splats.extend(found)
            self.last_output = time.monotonic()
            if len(self.arrivals) < 100_000:
                self.arrivals.append((self.last_output, self._size))
            self._cond.notify_all()

    @property
    def size(self) -> int:
        return self._size

    @property
    def pending(self) -> Splat | None:
        """A report whose first line arrived and whose end has not (yet)."""
        with self._cond:
            return self._scanner.pending

    def splats_between(self, start: int, end: int | None) -> list[Splat]:
        """Splats whose title line starts in text[start:end]; with end None (the slice
        never got its end marker) the report still being read counts too."""
        with self._cond:
            seen = list(self.splats)
            if end is None and self._scanner.pending is not None:
                seen.append(self._scanner.pending)
            starts = list(self._line_starts)
        def offset(splat: Splat) -> int:
            return starts[splat.line_no] if splat.line_no < len(starts) else self._size
        return [s for s in seen if start <= offset(s) and (end is None or offset(s) < end)]

    def text(self, start: int = 0, end: int | None = None) -> str:
        with self._cond:
            if len(self._chunks) > 1:
                self._chunks = ["".join(self._chunks)]
            whole = self._chunks[0] if self._chunks else ""
        return whole[start:end]

    def wait_for(self, needle: str, start: int, timeout: float) -> int | None:
        """Offset just past the line holding needle, once it shows at or after start."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text(start)
            index = text.find(needle)
            if index >= 0:
                newline = text.find("\n", index)
                if newline >= 0:
                    return start + newline + 1
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with self._cond:
                self._cond.wait(min(remaining, 0.5))

    def arrival(self, offset: int) -> float | None:
        """Monotonic time at which the text at offset came in (None: not yet)."""
        with self._cond:
            return next((when for when, size in self.arrivals if size > offset), None)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.text(max(0, self.size - 20000)).splitlines()[-lines:])

    def close(self) -> None:
        self.splats.extend(self._scanner.flush())
        self._file.close()
