"""Each test's outcome class, retries on a fresh VM, and known issues, for the plugin.

The class (harness.verdict.outcome) of each attempt is the worst of its
phases; the last attempt's, with "flaky" for a pass after a failure, goes to
the JUnit file as the properties outcome, reason and attempt, where
summary.json, report.md, the page and compare read it.

Retries are pytest-rerunfailures' (--reruns, default 1 here): a failed test
runs once more; the VM pool has already retired its VM, so the retry boots a
fresh one. A failure that carries a kernel report is never retried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.paths import SERIES_DIR
from harness.verdict import known
from harness.verdict.outcome import (
    FIXED,
    KERNEL_REPORT,
    KNOWN,
    PASSED,
    final_class,
    phase_class,
    worst,
)

DEFAULT_RERUNS = 1
PROPERTIES = ("outcome", "reason", "attempt", "known")


@dataclass
class Attempts:
    number: int = 1
    current: str = PASSED        # the worst class of this attempt's phases so far
    reason: str = ""
    earlier: str = PASSED        # the worst class of the attempts before
    earlier_reason: str = ""
    xfailed: bool = False        # pytest's xfail took a failure of a known issue


ATTEMPTS_KEY = pytest.StashKey[Attempts]()
REPORTED_KEY = pytest.StashKey[bool]()        # the kernel reported a problem in this attempt
KNOWN_KEY = pytest.StashKey[known.KnownIssue]()


def configure_retries(config: pytest.Config) -> None:
    """Retry once unless --reruns says otherwise; never a failure with a kernel report."""
    if config.getoption("reruns", None) is None and hasattr(config.option, "reruns"):
        config.option.reruns = DEFAULT_RERUNS
    if hasattr(config.option, "rerun_except"):
        config.option.rerun_except = [*(config.option.rerun_except or []), KERNEL_REPORT]


def mark_known(config: pytest.Config, items: list[pytest.Item],
               flavour_of: Callable[[pytest.Item], str]) -> None:
    """xfail each test listed in the base's known-issues file (not strict)."""
    base = config.getoption("--base")
    path = config.getoption("--known-issues") or SERIES_DIR / base / known.FILE
    try:
        issues = known.load(Path(path))
    except HarnessError as exc:
        raise pytest.UsageError(str(exc)) from exc
    for item in items:
        issue = known.find(issues, item.nodeid, flavour_of(item))
        if issue is not None:
            item.stash[KNOWN_KEY] = issue
            item.add_marker(pytest.mark.xfail(
                reason=f"known issue on {base}: {issue.reason} (see {issue.see})", strict=False))


def _reason(report: pytest.TestReport, call: pytest.CallInfo[None]) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        text = str(report.longrepr[2])
    elif call.excinfo is not None and not report.passed:
        # pytest.fail()'s message says it all; other exceptions are named.
        text = str(call.excinfo.value) if call.excinfo.errisinstance(pytest.fail.Exception) \
            else f"{call.excinfo.typename}: {call.excinfo.value}"
    else:
        text = report.longreprtext
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    # "guest command failed:" says more with the line that follows it.
    first = " ".join(lines[:2]) if lines and lines[0].endswith(":") else (lines or [""])[0]
    return first[:300]


def record(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """Fold one phase's report into the attempt; at teardown, write the test's class."""
    attempts = item.stash.setdefault(ATTEMPTS_KEY, Attempts())
    number = int(getattr(item, "execution_count", 1) or 1)
    if number != attempts.number:            # a retry began
        attempts.earlier = worst(attempts.earlier, attempts.current)
        attempts.earlier_reason = attempts.reason or attempts.earlier_reason
        attempts.number, attempts.current, attempts.reason = number, PASSED, ""
        item.stash[REPORTED_KEY] = False
    if hasattr(report, "wasxfail") and report.skipped:
        attempts.xfailed = True
    exc = call.excinfo.value if call.excinfo is not None else None
    cls = phase_class(report.outcome, exc, item.stash.get(REPORTED_KEY, False))
    if cls != PASSED and worst(attempts.current, cls) == cls and not attempts.reason:
        attempts.reason = _reason(report, call)
    attempts.current = worst(attempts.current, cls)
    if report.when != "teardown":
        return
    final = final_class(attempts.current, number, attempts.earlier)
    reason = attempts.reason if final != "flaky" else \
        f"failed on attempt {number - 1} ({attempts.earlier_reason}), passed when retried"
    issue = item.stash.get(KNOWN_KEY, None)
    if issue is not None:
        xfailed = attempts.xfailed
        final = KNOWN if xfailed else (FIXED if issue.expect == "fail" else final)
        reason = (f"known issue: {issue.reason} (see {issue.see})" if xfailed else
                  f"listed as known ({issue.see}) but passed: remove the entry"
                  if final == FIXED else reason)
    props = [(k, v) for k, v in report.user_properties if k not in PROPERTIES]
    props += [("outcome", final), ("reason", reason), ("attempt", str(number))]
    if issue is not None:
        props.append(("known", issue.see))
    report.user_properties = props

