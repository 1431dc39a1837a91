"""muse-harness compare OLD NEW: what changed between two runs' reports directories.

Each test that ran in either is put in one category by its outcome class in
each run (harness/verdict/outcome.py):

  regression           passed before, failed now
  fixed                failed before, passes now
  unstable             flaky in either run
  persistent failure   failed in both
  no verdict           error-infra now: the infrastructure failed, nothing is known
  new / missing        in one run only
  unchanged            the rest (passed, skipped or known in both)

It lists splat fingerprints that only the new run has, the boot time when
the two runs' boot ranges do not overlap, and bench ratios that dropped
beyond their spread (bench.json in both). compare.md and compare.json go to
--reports (default NEW), whose page then shows them. Exit code as check's:
1 on a regression, a new test that fails or a new splat fingerprint; 2 when
none of those but the new run has tests without verdict; 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.proc import say
from harness.report.html import write_page
from harness.report.junit import Record, junit_records, run_junits
from harness.report.runinfo import read_run
from harness.tools.bench.stats import drops
from harness.tools.common import Subparsers
from harness.verdict.outcome import FAILED, FLAKY, INFRA, PASSED

CATEGORIES = ("regression", "no verdict", "unstable", "persistent failure",
              "fixed", "new", "missing", "unchanged")


@dataclass
class Change:
    test: str
    category: str
    old: str            # outcome class, "" when absent
    new: str
    reason: str = ""    # the new run's (the old one's for fixed and missing)


@dataclass
class Comparison:
    old: str
    new: str
    changes: list[Change] = field(default_factory=list)
    new_fingerprints: list[str] = field(default_factory=list)    # "<hash> <title>"
    boot: dict[str, Any] = field(default_factory=dict)
    bench_drops: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        found = [c.category for c in self.changes]
        return {k: found.count(k) for k in CATEGORIES if k in found}

    @property
    def exit_code(self) -> int:
        counts = self.counts()
        failing_new = any(c.category == "new" and c.new == FAILED for c in self.changes)
        if counts.get("regression") or failing_new or self.new_fingerprints:
            return 1
        no_verdict = any(c.new == INFRA for c in self.changes)
        return 2 if no_verdict else 0


def category(old: str, new: str) -> str:
    if not old:
        return "new"
    if not new:
        return "missing"
    if FLAKY in (old, new):
        return "unstable"
    if new == INFRA:
        return "no verdict"
    if new == FAILED:
        return "persistent failure" if old == FAILED else "regression"
    if old == FAILED and new == PASSED:
        return "fixed"
    return "unchanged"


def _records(reports: Path) -> dict[str, Record]:
    if not reports.is_dir():
        raise HarnessError(f"{reports}: no such reports directory")
    junits = run_junits(reports, read_run(reports).get("junit"))
    if not junits:
        raise HarnessError(f"{reports}: no JUnit file (junit.xml) to compare")
    records: dict[str, Record] = {}
    for junit in junits:
        records.update(junit_records(junit))
    return records


def _fingerprints(records: dict[str, Record]) -> set[str]:
    return {fp for r in records.values()
            for fp in r.properties.get("fingerprints", "").split("; ") if fp}


def _boots(reports: Path) -> list[float]:
    return [b for p in sorted(reports.glob("session-*.json"))
            for b in json.loads(p.read_text()).get("boot_seconds", [])]


def compare(old_dir: Path, new_dir: Path) -> Comparison:
    old, new = _records(old_dir), _records(new_dir)
    result = Comparison(str(old_dir), str(new_dir))
    for test in sorted(set(old) | set(new)):
        before, now = old.get(test), new.get(test)
        kind = category(before.klass if before else "", now.klass if now else "")
        reason = (now.reason if now and kind not in ("fixed", "missing")
                  else before.reason if before else "")
        result.changes.append(Change(test, kind, before.klass if before else "",
                                     now.klass if now else "", reason))
    old_prints = {fp.split(" ", 1)[0] for fp in _fingerprints(old)}
    result.new_fingerprints = sorted(fp for fp in _fingerprints(new)
                                     if fp.split(" ", 1)[0] not in old_prints)
    old_boots, new_boots = _boots(old_dir), _boots(new_dir)
    if old_boots and new_boots:
        slower = min(new_boots) > max(old_boots)
        faster = max(new_boots) < min(old_boots)
        result.boot = {"old": [min(old_boots), max(old_boots)],
                       "new": [min(new_boots), max(new_boots)],
                       "change": "slower" if slower else "faster" if faster else "within spread"}
    if (old_dir / "bench.json").is_file() and (new_dir / "bench.json").is_file():
        result.bench_drops = [asdict(d) for d in drops(
            json.loads((old_dir / "bench.json").read_text()),
            json.loads((new_dir / "bench.json").read_text()))]
    result.changes.sort(key=lambda c: (CATEGORIES.index(c.category), c.test))
    return result


def markdown(c: Comparison) -> str:
    counts = ", ".join(f"{n} {k}" for k, n in c.counts().items())
    lines = [f"# Compare\n\nold: `{c.old}`  \nnew: `{c.new}`\n\n{counts}; exit code "
             f"{c.exit_code}\n"]
    shown = [ch for ch in c.changes if ch.category != "unchanged"]
    if shown:
        lines += ["| test | change | old | new | reason |", "|---|---|---|---|---|"]
        lines += [f"| `{ch.test}` | {ch.category} | {ch.old or '-'} | {ch.new or '-'} | "
                  f"{ch.reason.replace('|', '/')} |" for ch in shown]
    if c.new_fingerprints:
        lines += ["", "New splat fingerprints:", *[f"- `{fp}`" for fp in c.new_fingerprints]]
    if c.boot:
        lines += ["", f"Boot to SSH: {c.boot['old']} s before, {c.boot['new']} s now: "
                      f"{c.boot['change']}."]
    for drop in c.bench_drops:
        lines.append(f"- bench {drop['config']} {drop['figure']}: {drop['before']}x -> "
                     f"{drop['now']}x (below the earlier lowest {drop['before_low']}x)")
    return "\n".join(lines) + "\n"


def write(c: Comparison, reports: Path) -> None:
    reports.mkdir(parents=True, exist_ok=True)
    data = {**asdict(c), "counts": c.counts(), "exit_code": c.exit_code}
    (reports / "compare.json").write_text(json.dumps(data, indent=2) + "\n")
    (reports / "compare.md").write_text(markdown(c))


def main(args: argparse.Namespace) -> int:
    old, new = args.old.resolve(), args.new.resolve()
    result = compare(old, new)          # bad input fails before anything is written
    reports = (args.reports or new).resolve()
    # Not a run of its own: NEW's run.json stays; its page gains the comparison.
    write(result, reports)
    write_page(reports)
    say(", ".join(f"{n} {k}" for k, n in result.counts().items())
        + f"; {len(result.new_fingerprints)} new splat fingerprints; "
          f"see {reports / 'compare.md'}")
    return result.exit_code


def register(sub: Subparsers) -> None:
    p = sub.add_parser("compare", help="two reports directories: regressions, fixes, "
                                       "unstable tests, new splats; exit 0, 1 or 2")
    p.add_argument("old", type=Path, help="the earlier run's reports directory")
    p.add_argument("new", type=Path, help="the later run's reports directory")
    p.add_argument("--reports", type=Path, default=None,
                   help="where compare.md and compare.json go (default: NEW)")
    p.set_defaults(func=main)
