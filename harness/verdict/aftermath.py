"""A test's aftermath: everything its end found, as one immutable record.

TestGuest.finish() reads it once (console slice, splats, kmemleak, what
still holds muse, whether the VM still answered); the VM pool decides from
it whether the VM may serve the next test, and the pytest plugin turns its
problems into the test's failure and its attachments into files.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from harness.verdict.kmemleak import Leak
from harness.verdict.leftovers import Pinned
from harness.verdict.splats import Splat


@dataclass(frozen=True)
class Aftermath:
    """What a test left behind; problems() says why it fails, taint() why its VM goes."""

    test_id: str
    console: str                        # the console since the test's start marker
    splats: tuple[Splat, ...] = ()
    foreign: tuple[Splat, ...] = ()     # reports outside the stack under test (foreign.py)
    leaks: tuple[Leak, ...] = ()
    leak_report: str = ""               # kmemleak's report, as read
    kmemleak_error: str = ""            # kmemleak was there but gave no report
    pinned: Pinned | None = None        # muse still referenced once the test's work died
    vm_error: str = ""                  # what a command of the test ran into (VM hung, died)
    broken: str = ""                    # the end of the test found the VM dead or hung

    @property
    def kmemleak_text(self) -> str:
        return self.leak_report or self.kmemleak_error

    @property
    def kernel_reported(self) -> bool:
        """The kernel (or the end-of-test check of what holds muse) reported a problem:
        a verdict on the series, never infrastructure."""
        return bool(self.splats or self.leaks or self.kmemleak_error or self.pinned)

    def problems(self) -> list[str]:
        """Why the test fails even though its own assertions held, worst first."""
        found = []
        if self.splats:
            # A report repeated for every request (256 KMSAN reports of one line)
            # is named once, with its count.
            titles = Counter(f"{s.kind.name}: {s.title}" for s in self.splats)
            kinds = ", ".join(t if n == 1 else f"{t} (x{n})" for t, n in titles.items())
            found.append(f"kernel splat during the test ({kinds})")
        if self.leaks or self.kmemleak_error:
            what = "; ".join(leak.title for leak in self.leaks) or self.kmemleak_error
            found.append(f"kmemleak after the test: {what}")
        if self.pinned:
            found.append(f"{self.pinned.title}: a server or MTD user the test left behind, "
                         "or a leaked reference (see 'muse references')")
        if self.broken:
            found.append(f"the VM broke: {self.broken}")
        return found

    def taint(self, failed: bool) -> str:
        """Why the VM must not serve another test ('' when it may)."""
        if self.broken or self.vm_error:
            return self.broken or self.vm_error
        if self.splats:
            return "kernel splat: " + self.splats[0].title
        if self.pinned:
            return self.pinned.title
        if failed:
            # A failed test may leave stale MTDs, stuck requests or armed fault
            # injection behind: the next test gets a fresh VM.
            return f"{self.test_id} failed"
        return ""
