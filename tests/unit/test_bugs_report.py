"""muse-harness bugs (harness/tools/bugs.py): Found-by lines, the two-column table, the verdict."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.paths import REPO
from harness.report.junit import junit_outcomes
from harness.tools.bugs import TEST_FILE, Bug, bugs_of, fix_patches, summarize, table, write_reports

T = "tests/integration/test_bugs.py::"
PATCH = """From 0 Mon Sep 17 00:00:00 2001
Subject: [PATCH 101/122] fuse: muse: Don't remove the MTD while it is still
 being registered

Text.

Found by: tests/integration/test_bugs.py::test_one
Found by: tests/integration/test_bugs.py::test_two
Signed-off-by: X <x@example.invalid>
---
"""


def test_subject_across_lines_and_found_by(tmp_path: Path) -> None:
    patch = tmp_path / "0101-x.patch"
    patch.write_text(PATCH)
    (bug,) = bugs_of([patch])
    assert bug.subject == "fuse: muse: Don't remove the MTD while it is still being registered"
    assert bug.tests == [T + "test_one", T + "test_two"]


def test_every_fix_patch_of_the_series_names_a_test() -> None:
    bugs = bugs_of(fix_patches("6.1"))
    assert bugs and all(b.patch[:4] >= "0101" for b in bugs)
    assert all(all(t.startswith(T + "test_") for t in b.tests) for b in bugs)
    # Each named test exists in the bug test file.
    defined = set(re.findall(r"^def (test_\w+)\(", (REPO / TEST_FILE).read_text(), re.M))
    missing = [(b.patch, t) for b in bugs for t in b.tests if t.split("::")[-1] not in defined]
    assert not missing
    assert all(b.tests for b in bugs), [b.patch for b in bugs if not b.tests]


def test_summarize_parametrized_and_missing() -> None:
    outcomes = {T + "test_a[x]": "failed", T + "test_a[y]": "failed", T + "test_b": "passed",
                T + "test_c[x]": "failed", T + "test_c[y]": "passed", T + "test_ab": "passed"}
    assert summarize(T + "test_a", outcomes) == ("failed (2 cases)", {"failed"})
    assert summarize(T + "test_b", outcomes) == ("passed", {"passed"})
    assert summarize(T + "test_c", outcomes) == ("mixed: 1 failed, 1 passed", {"failed", "passed"})
    assert summarize(T + "test_d", outcomes) == ("not run", {"not run"})


def test_row_ok_only_when_failed_as_posted_and_passed_with_fixes() -> None:
    bugs = [Bug("0101-a.patch", "a", [T + "test_a"]), Bug("0102-b.patch", "b", [T + "test_b"]),
            Bug("0103-c.patch", "c", [T + "test_c"]), Bug("0104-d.patch", "d", [T + "test_d"])]
    outcomes = {
        "as_posted": {T + "test_a": "failed", T + "test_b": "passed", T + "test_c": "failed"},
        "with_fixes": {T + "test_a": "passed", T + "test_b": "passed", T + "test_c": "skipped"},
    }
    rows = table(bugs, outcomes)
    assert [r.ok for r in rows] == [True, False, False, False]
    assert rows[2].results == {"as_posted": "failed", "with_fixes": "skipped"}
    assert rows[3].results == {"as_posted": "not run", "with_fixes": "not run"}


def test_reports_written(tmp_path: Path) -> None:
    rows = table([Bug("0101-a.patch", "fuse: a | b", [T + "test_a"])],
                 {"as_posted": {T + "test_a": "failed"}, "with_fixes": {T + "test_a": "passed"}})
    runs = {"as_posted": {"pytest_exit": 1, "seconds": 3.0, "junit": "x", "outcomes": {}},
            "with_fixes": {"pytest_exit": 0, "seconds": 2.0, "junit": "y", "outcomes": {}}}
    data = write_reports(tmp_path, rows, runs, {"base": "6.1"})
    assert data["ok"] and data["shown"] == 1
    saved = json.loads((tmp_path / "bugs.json").read_text())
    assert saved["rows"][0]["results"] == {"as_posted": "failed", "with_fixes": "passed"}
    assert "outcomes" not in saved["runs"]["as_posted"]
    md = (tmp_path / "bugs.md").read_text()
    assert "| fuse: a \\| b (`0101`) | `test_a` | failed | passed | ok |" in md
    assert "every bug shown and fixed" in md


def test_no_rows_is_not_ok(tmp_path: Path) -> None:
    data = write_reports(tmp_path, [], {}, {})
    assert not data["ok"]


def test_failed_call_then_teardown_error_counts_as_failed(tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    junit.write_text(
        '<testsuites><testsuite>'
        '<testcase classname="tests.integration.test_bugs" name="test_a"><failure/></testcase>'
        '<testcase classname="tests.integration.test_bugs" name="test_a"><error/></testcase>'
        '<testcase classname="tests.integration.test_bugs" name="test_b"/>'
        '<testcase classname="tests.integration.test_bugs" name="test_b"><error/></testcase>'
        '</testsuite></testsuites>')
    assert junit_outcomes(junit) == {T + "test_a": "failed", T + "test_b": "errors"}


def test_table_only_rebuilds_from_the_last_run(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.tools import bugs

    for column, outcome in (("as_posted", "<failure/>"), ("with_fixes", "")):
        (tmp_path / "bugs" / column).mkdir(parents=True)
        (tmp_path / "bugs" / column / "junit.xml").write_text(
            '<testsuites><testsuite><testcase classname="tests.integration.test_bugs" '
            f'name="test_a">{outcome}</testcase></testsuite></testsuites>')
    monkeypatch.setattr(bugs, "fix_patches", lambda base: [])
    monkeypatch.setattr(bugs, "bugs_of", lambda patches: [Bug("0101-a.patch", "a", [T + "test_a"])])
    monkeypatch.setattr(bugs, "run_column", lambda *a: (_ for _ in ()).throw(AssertionError))
    assert bugs.check_bugs("6.1", tmp_path, table_only=True)
    assert json.loads((tmp_path / "bugs.json").read_text())["shown"] == 1
