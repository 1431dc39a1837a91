"""muse-harness bugs: the bug tests on the series as posted and with its fixes, side by side.

Every fix patch after the "# --- fixes ---" line of the series names the test
that shows its bug ("Found by: tests/...::test_NAME"). tests/integration/
test_bugs.py runs twice, once on the kernels built without the fixes
(--as-posted) and once with them; each test's flavour marker picks its kernel
(default or debug) within a run. The verdict holds when every named test
failed as posted and passed with the fixes. reports/bugs.md and bugs.json
keep the table.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from harness.kernel.build import BuildRequest
from harness.kernel.kconfig import load_flavours
from harness.kernel.series import read_series, subject_of, subjects
from harness.options import DEFAULT_BASE, add_reports_opt
from harness.paths import TEMPLATES_DIR
from harness.proc import say
from harness.report.html import reported_run
from harness.report.junit import cases, junit_outcomes
from harness.tools.common import Subparsers
from harness.tools.suite import SUITE_TIMEOUT, SuiteRequest, run_suite

TEST_FILE = "tests/integration/test_bugs.py"
FOUND_BY = re.compile(r"^Found by: (\S+::(\w+))\s*$", re.M)
COLUMNS = (("as_posted", True), ("with_fixes", False))


@dataclass
class Bug:
    patch: str
    subject: str
    tests: list[str]          # node ids without parameters


@dataclass
class Row:
    bug: str                  # the fix patch's subject
    patch: str
    test: str
    results: dict[str, str] = field(default_factory=dict)   # column -> summary
    ok: bool = False


def fix_patches(base: str) -> list[Path]:
    """The patches listed after the fixes marker of kernel/series/<base>/series, without
    the extensions (they fix no bug)."""
    series = read_series(base)
    end = len(series.patches) - series.extensions
    return list(series.patches[end - (series.fixes - series.extensions):end])


def bugs_of(patches: list[Path]) -> list[Bug]:
    bugs = []
    for patch in patches:
        text = patch.read_text()
        tests = [m.group(1) for m in FOUND_BY.finditer(text)]
        bugs.append(Bug(patch.name, subject_of(patch, text), tests))
    return bugs


def summarize(test: str, outcomes: dict[str, str]) -> tuple[str, set[str]]:
    """One cell: the outcome of test, or of its parameter cases; and the set of outcomes."""
    found = cases(test, outcomes)
    if not found:
        return "not run", {"not run"}
    kinds = set(found.values())
    if len(kinds) == 1:
        kind = next(iter(kinds))
        return (kind if len(found) == 1 else f"{kind} ({len(found)} cases)"), kinds
    counts = ", ".join(f"{sum(1 for v in found.values() if v == k)} {k}" for k in sorted(kinds))
    return f"mixed: {counts}", kinds


def table(bugs: list[Bug], outcomes: dict[str, dict[str, str]]) -> list[Row]:
    rows = []
    for bug in bugs:
        for test in bug.tests or ["(no test: see the patch's Found by line)"]:
            row = Row(bug.subject, bug.patch, test)
            kinds = {}
            for column, _ in COLUMNS:
                row.results[column], kinds[column] = summarize(test, outcomes.get(column, {}))
            row.ok = kinds["as_posted"] == {"failed"} and kinds["with_fixes"] == {"passed"}
            rows.append(row)
    return rows


def run_column(column: str, as_posted: bool, reports: Path, base: str, k: str | None,
               timeout: float, flavours: str | None = None) -> dict[str, Any]:
    """One pytest run of the bug tests; its JUnit XML and consoles go to reports/bugs/<column>."""
    result = run_suite(SuiteRequest(
        kernel=BuildRequest(base=base, as_posted=as_posted), reports=reports / "bugs" / column,
        paths=(TEST_FILE,), k=k, timeout=timeout, retries=0, what=f"{column}: the bug tests",
        pytest_args=(f"--flavours={flavours}",) if flavours else ()))
    return {"pytest_exit": result.exit_code, "seconds": result.seconds,
            "outcomes": result.outcomes, "junit": str(result.junit)}


def write_reports(reports: Path, rows: list[Row], runs: dict[str, dict[str, Any]],
                  facts: dict[str, Any]) -> dict[str, Any]:
    data = dict(facts)
    data.update(ok=bool(rows) and all(r.ok for r in rows), rows=[asdict(r) for r in rows],
                runs={c: {k: v for k, v in r.items() if k != "outcomes"} for c, r in runs.items()})
    data["shown"] = sum(1 for r in rows if r.ok)
    (reports / "bugs.json").write_text(json.dumps(data, indent=2) + "\n")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    (reports / "bugs.md").write_text(env.get_template("bugs.md.j2").render(b=data))
    return data


def earlier_run(column: str, reports: Path) -> dict[str, Any]:
    """A column as an earlier run left it in reports/bugs/<column>/ (table only)."""
    junit = reports / "bugs" / column / "junit.xml"
    previous = reports / "bugs.json"
    run = json.loads(previous.read_text())["runs"].get(column, {}) if previous.is_file() else {}
    return {"pytest_exit": run.get("pytest_exit"), "seconds": run.get("seconds"),
            "outcomes": junit_outcomes(junit), "junit": str(junit)}


def check_bugs(base: str, reports: Path, k: str | None = None,
               timeout: float = SUITE_TIMEOUT, table_only: bool = False,
               flavours: str | None = None) -> bool:
    reports = reports.resolve()
    reports.mkdir(parents=True, exist_ok=True)
    bugs = bugs_of(fix_patches(base))
    if table_only:
        runs = {column: earlier_run(column, reports) for column, _ in COLUMNS}
    else:
        # Every flavour by name, opt-in ones too (kmsan): each bug's row is shown.
        named = flavours or ",".join(load_flavours(base=base))
        runs = {column: run_column(column, posted, reports, base, k, timeout, named)
                for column, posted in COLUMNS}
    rows = table(bugs, {c: r["outcomes"] for c, r in runs.items()})
    data = write_reports(reports, rows, runs, {"base": base, "k": k, "finished": time.time()})
    say(f"{data['shown']} of {len(rows)} bug tests failed as posted and passed with the fixes; "
        f"see {reports / 'bugs.md'}")
    return bool(data["ok"])


def main(args: argparse.Namespace) -> int:
    reports = args.reports.resolve()
    # A bad base fails before the last run's page is touched.
    series = read_series(args.base)
    with reported_run(reports, {"base": args.base, "series_id": series.chain_id(),
                                "patches": subjects(series)}):
        ok = check_bugs(args.base, reports, args.k, args.timeout, table_only=args.table_only,
                        flavours=args.flavours)
    return 0 if ok else 1


def register(sub: Subparsers) -> None:
    p = sub.add_parser("bugs", help="the bug tests on the series as posted and with its fixes; "
                                    "write reports/bugs.md and bugs.json")
    # Only --base: each test's flavour marker picks its kernel, and the two runs are
    # the series as posted and with its fixes.
    p.add_argument("--base", default=DEFAULT_BASE, help="kernel base (kernel/series/<base>)")
    add_reports_opt(p.add_argument)
    p.add_argument("-k", help="only bug tests matching this pytest expression")
    p.add_argument("--flavours", help="only bug tests of these flavours, comma-separated "
                                      "(the debug ones need a KASAN build each column)")
    p.add_argument("--timeout", type=float, default=SUITE_TIMEOUT,
                   help="for each of the two runs")
    p.add_argument("--table-only", action="store_true",
                   help="run nothing: rebuild bugs.md/json from the JUnit files of the last run")
    p.set_defaults(func=main)
