"""muse-harness compare (harness/tools/compare.py) on recorded reports directories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import HarnessError
from harness.tools.compare import category, compare

DATA = Path(__file__).resolve().parent.parent / "data"

# An earlier run of tests/data/junit/outcomes_test_f.py.txt, in the plugin's format.
OLD = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
{cases}
</testsuite></testsuites>
"""


def _case(name: str, outcome: str, failure: bool = False) -> str:
    props = (f'<properties><property name="outcome" value="{outcome}" />'
             f'<property name="attempt" value="1" /></properties>')
    body = '<failure message="x">x</failure>' if failure else ""
    return f'<testcase classname="test_f" name="{name}" time="1.0">{props}{body}</testcase>'


def _old(tmp_path: Path) -> Path:
    old = tmp_path / "old"
    old.mkdir()
    cases = [_case("test_flaky", "passed"), _case("test_ok", "passed"),
             _case("test_bad", "passed"), _case("test_ssh_died", "passed"),
             _case("test_hung_command", "failed", True), _case("test_skipped", "skipped"),
             _case("test_known_broken", "known-failure"), _case("test_gone", "passed"),
             _case("test_known_but_fixed", "known-failure")]
    (old / "junit.xml").write_text(OLD.format(cases="\n".join(cases)))
    return old


def _new(tmp_path: Path) -> Path:
    new = tmp_path / "new"
    new.mkdir()
    shutil.copy(DATA / "junit" / "outcomes.xml", new / "junit.xml")
    return new


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("passed", "failed", "regression"), ("failed", "passed", "fixed"),
    ("failed", "failed", "persistent failure"), ("passed", "flaky", "unstable"),
    ("flaky", "passed", "unstable"), ("passed", "error-infra", "no verdict"),
    ("", "passed", "new"), ("passed", "", "missing"), ("passed", "passed", "unchanged"),
    ("skipped", "passed", "unchanged"),
])
def test_category(old: str, new: str, expected: str) -> None:
    assert category(old, new) == expected


def test_two_runs_each_test_in_one_category(tmp_path: Path) -> None:
    result = compare(_old(tmp_path), _new(tmp_path))
    got = {c.test.split("::")[-1]: c.category for c in result.changes}
    assert got == {
        "test_bad": "regression", "test_ssh_died": "no verdict",
        "test_vm_never_booted": "new", "test_flaky": "unstable",
        "test_hung_command": "persistent failure", "test_gone": "missing",
        "test_ok": "unchanged", "test_skipped": "unchanged",
        "test_known_broken": "unchanged", "test_known_but_fixed": "unchanged",
    }
    # Regressions first.
    assert result.changes[0].category == "regression"
    assert result.exit_code == 1


def test_no_verdict_alone_exits_2_and_nothing_new_exits_0(tmp_path: Path) -> None:
    new = _new(tmp_path)
    assert compare(new, new).exit_code == 2          # error-infra in the new run
    old = _old(tmp_path)
    assert compare(old, old).exit_code == 0


def test_new_splat_fingerprints_fail_the_comparison(tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "junit.xml").write_text(OLD.format(cases=_case("test_warns", "passed")))
    result = compare(old, DATA / "reports" / "failed")
    assert result.new_fingerprints == [
        "0af278a07bc4 WARNING in lkdtm_WARNING",
        "faeac0034cc5 Kernel panic - not syncing: sysrq triggered crash in sysrq_handle_crash"]
    assert result.exit_code == 1
    # Compared with itself nothing is new.
    assert compare(DATA / "reports" / "failed", DATA / "reports" / "failed").new_fingerprints == []


def test_cli_writes_markdown_json_and_the_page(tmp_path: Path) -> None:
    old, new = _old(tmp_path), _new(tmp_path)
    assert main(["compare", str(old), str(new)]) == 1
    data = json.loads((new / "compare.json").read_text())
    assert data["counts"]["regression"] == 1 and data["exit_code"] == 1
    assert "| `test_f.py::test_bad` | regression | passed | failed |" in \
        (new / "compare.md").read_text()
    page = (new / "index.html").read_text()
    assert "<h2>Compared with an earlier run</h2>" in page and ">regression</td>" in page


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="no such reports directory"):
        compare(tmp_path / "nope", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HarnessError, match="no JUnit file"):
        compare(empty, empty)
