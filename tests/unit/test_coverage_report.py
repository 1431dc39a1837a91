"""Coverage summary and per-test map (harness/report/coverage.py) on captured gcovr JSON.

tests/data/coverage/test_{a,b}.json are gcovr 8.8 --json of demo.c (beside
them) built with --coverage and run as `demo` and `demo 1 2 3 4 5 6`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.report.coverage import _build_of, line_map, summarize

DATA = Path(__file__).resolve().parent.parent / "data" / "coverage"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


def test_each_line_names_the_tests_that_ran_it() -> None:
    ran = line_map({"t::a": _load("test_a.json"), "t::b": _load("test_b.json")})
    assert ran["demo.c:5"] == ["t::a", "t::b"]
    assert ran["demo.c:17"] == ["t::b"], "only the run with many arguments prints 'many'"
    assert "demo.c:6" not in ran, "no run had a negative count"


def test_summary_counts_lines_branches_and_each_patch() -> None:
    added = {"0001-x.patch": {"demo.c": [5, 6, 7, 10]}, "0002-y.patch": {"demo.c": [17]}}
    summary = summarize(_load("test_a.json"), added)
    demo = summary["files"]["demo.c"]
    assert (demo["lines"], demo["lines_covered"]) == (11, 8)
    assert demo["uncovered_by_function"] == {"classify": [6, 8], "main": [17]}
    assert demo["branches"] > demo["branches_covered"] > 0
    # Line 10 holds no code ("}" of classify): it is not counted for the patch.
    assert summary["patches"]["0001-x.patch"] == {"added_code_lines": 3, "covered": 2}
    assert summary["patches"]["0002-y.patch"] == {"added_code_lines": 1, "covered": 0}


def test_counters_map_to_the_build_they_came_from() -> None:
    builds = [Path("/c/build/6.12-coverage"), Path("/c/build/6.12-coverage-partmaster")]
    assert _build_of("c/build/6.12-coverage-partmaster/fs/fuse/muse.gcda", builds) == (
        builds[1], Path("fs/fuse/muse.gcda"))
    assert _build_of("c/build/6.12-coverage/fs/fuse/muse.gcda", builds) == (
        builds[0], Path("fs/fuse/muse.gcda"))
    assert _build_of("c/build/6.12-debug/fs/fuse/muse.gcda", builds) is None
