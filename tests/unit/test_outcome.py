"""Outcome classes, retries and known issues (harness/verdict/outcome.py, known.py,
harness/pytest/outcomes.py) on a recorded JUnit file.

tests/data/junit/outcomes.xml is what the plugin wrote for
outcomes_test_f.py.txt run with --known-issues=outcomes_known.toml (default
retries): a test that failed once, one that always fails, an SSH death, a
guest command timeout, a VM that never booted, a skip, and two known issues.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import BuildError, GuestTimeout, HarnessError, VMError
from harness.report.junit import class_counts, junit_counts, junit_records
from harness.tools.check import check_exit_code
from harness.verdict import known
from harness.verdict.outcome import (
    FAILED,
    FLAKY,
    INFRA,
    PASSED,
    SKIPPED,
    exit_code,
    final_class,
    phase_class,
    worst,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "junit"


def test_recorded_run_classes_and_reasons() -> None:
    records = junit_records(DATA / "outcomes.xml")
    got = {name.split("::")[-1]: (r.klass, r.attempt) for name, r in records.items()}
    assert got == {
        "test_flaky": ("flaky", 2), "test_ok": ("passed", 1), "test_bad": ("failed", 2),
        "test_ssh_died": ("error-infra", 2), "test_hung_command": ("failed", 2),
        "test_vm_never_booted": ("error-infra", 2), "test_skipped": ("skipped", 1),
        "test_known_broken": ("known-failure", 1), "test_known_but_fixed": ("known-fixed", 1),
    }
    flaky = records["test_f.py::test_flaky"]
    assert flaky.reason.startswith("failed on attempt 1 (AssertionError: first attempt fails)")
    assert "remove the entry" in records["test_f.py::test_known_but_fixed"].reason
    assert records["test_f.py::test_vm_never_booted"].reason.startswith("VMError: ")


def test_a_retried_test_counts_once() -> None:
    counts = junit_counts(DATA / "outcomes.xml")
    assert counts["total"] == 9
    assert class_counts(junit_records(DATA / "outcomes.xml")) == {
        "failed": 2, "error-infra": 2, "flaky": 1, "known-failure": 1, "known-fixed": 1,
        "skipped": 1, "passed": 1}


@pytest.mark.parametrize(("outcome", "exc", "reported", "expected"), [
    ("passed", None, False, PASSED),
    ("skipped", None, False, SKIPPED),
    ("failed", AssertionError("x"), False, FAILED),
    ("failed", AssertionError("x"), True, FAILED),
    ("failed", VMError("SSH dropped"), False, INFRA),
    ("failed", VMError("QEMU exited"), True, FAILED),       # it died of a kernel report
    ("failed", GuestTimeout("hung"), False, FAILED),         # how a hung kernel shows
    ("failed", BuildError("make failed"), False, INFRA),
    ("failed", HarnessError("bad"), False, INFRA),
    ("failed", KeyError("k"), False, FAILED),
])
def test_phase_class(outcome: str, exc: BaseException | None, reported: bool,
                     expected: str) -> None:
    assert phase_class(outcome, exc, reported) == expected


def test_attempts_combine() -> None:
    assert worst(PASSED, INFRA) == INFRA and worst(FAILED, INFRA) == FAILED
    assert final_class(PASSED, 2, FAILED) == FLAKY
    assert final_class(PASSED, 2, INFRA) == FLAKY
    assert final_class(FAILED, 2, FAILED) == FAILED
    assert final_class(PASSED, 1, PASSED) == PASSED


def test_exit_codes() -> None:
    assert exit_code([PASSED, FLAKY, "known-failure", "known-fixed", SKIPPED]) == 0
    assert exit_code([PASSED, INFRA]) == 2
    assert exit_code([INFRA, FAILED]) == 1
    # check: pytest stopping short leaves no verdict; the deadline keeps 124.
    assert check_exit_code(0, 0, 10) == 0
    assert check_exit_code(1, 1, 10) == 1
    assert check_exit_code(2, 0, 10) == 2        # interrupted, collection error
    assert check_exit_code(5, 0, 0) == 2         # no test ran
    assert check_exit_code(124, 0, 3) == 124


def test_known_issues_file(tmp_path: Path) -> None:
    issues = known.load(DATA / "outcomes_known.toml")
    assert [i.test for i in issues] == ["test_f.py::test_known_broken",
                                        "test_f.py::test_known_but_fixed"]
    assert known.find(issues, "test_f.py::test_known_broken", "default") is issues[0]
    assert known.find(issues, "test_f.py::test_known_broken[x]", "debug") is issues[0]
    assert known.find(issues, "test_f.py::test_known_broken_too", "default") is None
    assert known.load(tmp_path / "none.toml") == []
    bad = tmp_path / "bad.toml"
    bad.write_text('[[issue]]\ntest = "t"\nexpect = "sometimes"\nreason = "r"\nsee = "s"\n')
    with pytest.raises(HarnessError, match="expect must be one of fail, flaky"):
        known.load(bad)
    bad.write_text('[[issue]]\ntest = "t"\nexpect = "fail"\n')
    with pytest.raises(HarnessError, match="issue 1 lacks reason, see"):
        known.load(bad)
    flavoured = known.KnownIssue("t", "fail", "r", "s", flavour="debug")
    assert not flavoured.covers("t", "default") and flavoured.covers("t", "debug")
