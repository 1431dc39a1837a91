"""reports/: summary.json from the JUnit XML and the workers' session files, and report.md."""

from __future__ import annotations

import json
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jinja2

from harness.paths import TEMPLATES_DIR


def junit_counts(junit: Path) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "total": 0}
    if not junit.is_file():
        return counts
    for case in ET.parse(junit).getroot().iter("testcase"):
        counts["total"] += 1
        outcome = {child.tag for child in case}
        if "failure" in outcome:
            counts["failed"] += 1
        elif "error" in outcome:
            counts["errors"] += 1
        elif "skipped" in outcome:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts


RANK = {"passed": 0, "skipped": 1, "errors": 2, "failed": 3}


def junit_outcomes(junit: Path) -> dict[str, str]:
    """pytest node id -> passed, failed, errors or skipped."""
    outcomes: dict[str, str] = {}
    if not junit.is_file():
        return outcomes
    for case in ET.parse(junit).getroot().iter("testcase"):
        module, _, klass = (case.get("classname") or "").partition("::")
        path = module.replace(".", "/") + ".py"
        name = "::".join(p for p in (path, klass, case.get("name") or "") if p)
        tags = {child.tag for child in case}
        outcome = ("failed" if "failure" in tags else "errors" if "error" in tags
                   else "skipped" if "skipped" in tags else "passed")
        # A test whose teardown errs after its call failed has a second testcase of the
        # same name: the worse outcome stands (failed over errors over skipped, passed).
        if RANK[outcome] >= RANK[outcomes.get(name, "passed")]:
            outcomes[name] = outcome
    return outcomes


def failures(junit: Path) -> list[dict[str, str]]:
    if not junit.is_file():
        return []
    rows = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        for child in case:
            if child.tag in ("failure", "error"):
                rows.append({"test": f"{case.get('classname')}::{case.get('name')}",
                             "kind": child.tag, "message": (child.get("message") or "")[:300]})
    return rows


def sessions(reports: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(reports.glob("session-*.json"))]


def write_summary(reports: Path, facts: dict[str, Any]) -> dict[str, Any]:
    junit = reports / "junit.xml"
    workers = sessions(reports)
    boots = [b for w in workers for b in w.get("boot_seconds", [])]
    accels = sorted({w["accel"] for w in workers if w.get("accel")})
    summary = dict(facts)
    summary.update(
        tests=junit_counts(junit),
        failures=failures(junit),
        accel=accels[0] if len(accels) == 1 else ",".join(accels) or None,
        accel_reason=next((w["accel_reason"] for w in workers if w.get("accel_reason")), None),
        boot_seconds=boots,
        boot_seconds_median=statistics.median(boots) if boots else None,
        workers=len(workers),
    )
    (reports / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    (reports / "report.md").write_text(env.get_template("report.md.j2").render(s=summary))
    return summary
