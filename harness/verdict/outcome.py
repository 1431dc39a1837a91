"""A test's outcome class: what a CI does with its result.

  passed         it passed (on its first attempt)
  failed         its assertion failed, or the kernel reported a problem during it
                 (a splat, a kmemleak report, a leftover holding muse)
  error-infra    no test verdict: the kernel did not build, the VM did not boot or
                 died without a kernel report, SSH broke, the harness itself broke
  skipped        it did not run
  flaky          it failed, then passed on a fresh VM
  known-failure  it failed as an entry of the base's known-issues.toml says it does
  known-fixed    it is listed there but passed: the entry can go

A kernel report is never retried, so a test with one is never flaky: passing
once more does not unsay what the kernel printed. check's exit code follows
the classes: 1 when a test failed, 2 when none failed but the infrastructure
did, 0 otherwise (flaky, known-failure and known-fixed are shown, not fatal).
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.errors import GuestTimeout, HarnessError

PASSED = "passed"
FAILED = "failed"
INFRA = "error-infra"
SKIPPED = "skipped"
FLAKY = "flaky"
KNOWN = "known-failure"
FIXED = "known-fixed"
CLASSES = (FAILED, INFRA, FLAKY, KNOWN, FIXED, SKIPPED, PASSED)     # worst first
# Phases of one attempt combine to the worst of them.
_SEVERITY = {PASSED: 0, SKIPPED: 1, INFRA: 2, FAILED: 3}
KERNEL_REPORT = "kernel report: "       # the failure message of a kernel report


def phase_class(outcome: str, exc: BaseException | None, kernel_reported: bool) -> str:
    """The class of one phase (setup, call, teardown) of one attempt."""
    if outcome == "passed":
        return PASSED
    if outcome == "skipped":
        return SKIPPED
    if kernel_reported:
        return FAILED
    # A guest command that outlived its timeout is how a hung kernel shows: a test
    # failure. Any other harness error means no verdict was reached.
    if isinstance(exc, HarnessError) and not isinstance(exc, GuestTimeout):
        return INFRA
    return FAILED


def worst(a: str, b: str) -> str:
    return a if _SEVERITY.get(a, 0) >= _SEVERITY.get(b, 0) else b


def final_class(attempt_class: str, attempt: int, earlier: str) -> str:
    """The test's class from its last attempt; earlier: the worst class before it."""
    if attempt > 1 and attempt_class == PASSED and earlier in (FAILED, INFRA):
        return FLAKY
    return attempt_class


def exit_code(classes: Iterable[str]) -> int:
    found = set(classes)
    if FAILED in found:
        return 1
    if INFRA in found:
        return 2
    return 0
