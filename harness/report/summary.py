"""reports/: summary.json from the JUnit XML and the workers' session files, and report.md."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import jinja2

from harness.paths import TEMPLATES_DIR
from harness.report.junit import Record, class_counts, junit_counts, junit_records
from harness.verdict.outcome import PASSED, SKIPPED, exit_code


def sessions(reports: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(reports.glob("session-*.json"))]


def time_split(records: dict[str, Record], boots: list[float]) -> dict[str, float]:
    """Where the tests' time went, from each test's ledger (testguest.Ledger): waiting
    for guest commands, the ends of tests, boots; the rest is the host's own work and
    the tests' waits on spawned processes."""
    def total(name: str) -> float:
        return round(sum(float(r.properties.get(name) or 0) for r in records.values()), 1)

    tests = round(sum(r.seconds for r in records.values()), 1)
    split = {"tests": tests, "guest_commands": total("guest_command_seconds"),
             "test_ends": total("end_seconds"), "boots": round(sum(boots), 1)}
    split["rest"] = round(tests - split["guest_commands"] - split["test_ends"]
                          - split["boots"], 1)
    return split


def guest_programs(records: dict[str, Record], top: int = 10) -> list[dict[str, Any]]:
    """The guest programs the tests waited on longest, summed over the run's ledgers."""
    runs: dict[str, list[float]] = {}
    for record in records.values():
        for name, (n, seconds) in json.loads(record.properties.get("guest_programs")
                                             or "{}").items():
            total = runs.setdefault(name, [0, 0.0])
            total[0] += n
            total[1] += seconds
    ranked = sorted(runs.items(), key=lambda item: -item[1][1])[:top]
    return [{"program": name, "runs": int(n), "seconds": round(t, 1)} for name, (n, t) in ranked]


def write_summary(reports: Path, facts: dict[str, Any]) -> dict[str, Any]:
    junit = reports / "junit.xml"
    records = junit_records(junit)
    workers = sessions(reports)
    boots = [b for w in workers for b in w.get("boot_seconds", [])]
    accels = sorted({w["accel"] for w in workers if w.get("accel")})
    summary = dict(facts)
    summary.update(
        tests=junit_counts(junit),
        classes=class_counts(records),
        exit_code=exit_code(r.klass for r in records.values()),
        failures=[{"test": name, "class": r.klass, "reason": r.reason,
                   "fingerprints": r.properties.get("fingerprints", "")}
                  for name, r in records.items() if r.klass not in (PASSED, SKIPPED)],
        accel=accels[0] if len(accels) == 1 else ",".join(accels) or None,
        accel_reason=next((w["accel_reason"] for w in workers if w.get("accel_reason")), None),
        boot_seconds=boots,
        boot_seconds_median=statistics.median(boots) if boots else None,
        time_split=time_split(records, boots),
        guest_programs=guest_programs(records),
        workers=len(workers),
    )
    (reports / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    (reports / "report.md").write_text(env.get_template("report.md.j2").render(s=summary))
    return summary
