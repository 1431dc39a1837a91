"""mutate --generate's patches and its equivalence file (harness/tools/generated_mutants.py)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.kernel.mutants import generate
from harness.report.coverage import LineTests
from harness.tools import generated_mutants as gm

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "mutants" / "sample.c"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo),
                    *args], check=True, capture_output=True)


@pytest.mark.parametrize("operator", ["errno", "pair", "delete", "negate-cond"])
def test_a_mutant_patch_applies_with_git_am(tmp_path: Path, operator: str) -> None:
    lines = SAMPLE.read_text().splitlines()
    mutant = next(m for m in generate(lines) if m.operator == operator)
    target = tmp_path / gm.TARGET
    target.parent.mkdir(parents=True)
    target.write_text(SAMPLE.read_text())
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "base")
    patch = tmp_path / "m.patch"
    patch.write_text(gm.patch_text(mutant, lines))
    _git(tmp_path, "am", "-q", str(patch))
    assert target.read_text().splitlines() == mutant.apply(lines)
    assert target.read_text().splitlines() != lines


def test_equivalents_need_an_argument(tmp_path: Path) -> None:
    good = tmp_path / "eq.txt"
    good.write_text("# id  why\ndelete-12 the value is written again before any read\n\n")
    assert gm.equivalents(good) == {"delete-12": "the value is written again before any read"}
    bad = tmp_path / "bad.txt"
    bad.write_text("delete-12\n")
    with pytest.raises(HarnessError, match="no argument"):
        gm.equivalents(bad)
    assert gm.equivalents(tmp_path / "absent.txt") == {}


def test_spread_gives_every_test_file_a_turn() -> None:
    tests = ["a.py::t1", "a.py::t2", "a.py::t3", "b.py::t1", "c.py::t1", "c.py::t2"]
    assert gm.spread(tests, 4) == ["a.py::t1", "b.py::t1", "c.py::t1", "a.py::t2"]
    assert gm.spread(tests, 100) == ["a.py::t1", "b.py::t1", "c.py::t1", "a.py::t2",
                                     "c.py::t2", "a.py::t3"]
    assert gm.spread([], 5) == []


def _coverage(folder: Path) -> None:
    folder.mkdir()
    (folder / "tests.json").write_text(json.dumps({
        f"{gm.TARGET}:10": ["x.py::a", "y.py::b"], f"{gm.TARGET}:20": ["x.py::a"],
        "fs/fuse/helper.c:10": ["z.py::c"]}))
    (folder / "summary.json").write_text(json.dumps({"files": {gm.TARGET: {
        "uncovered_by_function": {"f": [15, 30]}}}}))


def test_each_mutant_gets_the_tests_that_run_its_line(tmp_path: Path) -> None:
    _coverage(tmp_path / "coverage")
    lines = LineTests.load(tmp_path / "coverage", gm.TARGET)
    request = gm.GenerateRequest(kernel=None, reports=tmp_path,  # type: ignore[arg-type]
                                 max_tests=1)

    def at(line: int) -> list[str]:
        return gm.tests_for(replace(mutant, line=line), request, lines)

    mutant = generate(["int f(void)", "{", "\tif (x)", "\t\treturn 1;", "}"])[0]

    assert at(10) == ["x.py::a"]                   # capped at max_tests, first file first
    assert at(12) == ["x.py::a"]                   # a continuation line: its statement's
    assert at(15) == []                            # no test runs it: survives unrun
    assert at(14) == ["x.py::a"]                   # folded into 10 or 15: 10's tests
    assert at(16) == ["x.py::a"]                   # into 15 or 20 (gcov puts a statement
                                                   # on the line its code merged with)
    assert at(17) == ["x.py::a"]
    assert at(40) == list(gm.DEFAULT_TESTS)        # no code near: the default checks
    assert gm.tests_for(replace(mutant, line=20), request, None) == list(gm.DEFAULT_TESTS)


def test_the_fastest_tests_of_a_line_come_first(tmp_path: Path) -> None:
    _coverage(tmp_path / "coverage")
    (tmp_path / "junit.xml").write_text(
        '<testsuites><testsuite>'
        '<testcase classname="x" name="a" time="90.0"/>'
        '<testcase classname="y" name="b" time="2.0"/></testsuite></testsuites>')
    lines = LineTests.load(tmp_path / "coverage", gm.TARGET)
    assert lines.ran[10] == ["y.py::b", "x.py::a"]
    assert gm.spread(lines.ran[10], 8) == ["y.py::b", "x.py::a"]


def test_a_coverage_folder_without_the_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"holds no tests\.json"):
        LineTests.load(tmp_path, gm.TARGET)
    _coverage(tmp_path / "coverage")
    with pytest.raises(HarnessError, match=r"no lines of fs/fuse/other\.c"):
        LineTests.load(tmp_path / "coverage", "fs/fuse/other.c")


def test_update_puts_rejudged_verdicts_and_new_equivalents_in_place(tmp_path: Path) -> None:
    def row(ident: str, verdict: str) -> gm.GeneratedVerdict:
        return gm.GeneratedVerdict(ident, "delete", 1, "d", verdict, 1.0, [])
    earlier = tmp_path / "generated.json"
    earlier.write_text(json.dumps({"seed": 3, "mutants": [
        asdict(row("a", "killed")), asdict(row("b", "survived")),
        asdict(row("c", "survived")), asdict(row("d", "not compiled"))]}))
    out, size = gm.merged(earlier, [row("b", "killed")], {"c": "dead store", "a": "x"}, 3)
    assert size == 4
    assert [(v.id, v.verdict) for v in out] == [
        ("a", "killed"), ("b", "killed"), ("c", "equivalent"), ("d", "not compiled")]
    assert out[2].note == "dead store"
    with pytest.raises(HarnessError, match="seed 3, this run 1"):
        gm.merged(earlier, [], {}, 1)
    with pytest.raises(HarnessError, match="has no zz"):
        gm.merged(earlier, [row("zz", "killed")], {}, 3)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(HarnessError, match=r"not a generated\.json"):
        gm.merged(tmp_path / "bad.json", [], {}, 3)
