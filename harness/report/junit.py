"""The suite's results as pytest's JUnit XML gives them: the one reader every tool uses.

junit_outcomes() maps pytest node ids to passed, failed, errors or skipped;
cases() is the one test-name matcher (a test stands for all its
parametrized cases), so that check, bugs and mutate agree on what ran.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path


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


@dataclass
class Record:
    """One test as the JUnit file tells it."""

    outcome: str                    # passed, failed, errors or skipped
    seconds: float = 0.0
    properties: dict[str, str] = field(default_factory=dict)   # the plugin's user properties
    message: str = ""


def _node_id(case: ET.Element) -> str:
    module, _, klass = (case.get("classname") or "").partition("::")
    path = module.replace(".", "/") + ".py"
    return "::".join(p for p in (path, klass, case.get("name") or "") if p)


def junit_records(junit: Path) -> dict[str, Record]:
    """pytest node id -> its Record."""
    records: dict[str, Record] = {}
    if not junit.is_file():
        return records
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = _node_id(case)
        tags = {child.tag: child for child in case}
        outcome = ("failed" if "failure" in tags else "errors" if "error" in tags
                   else "skipped" if "skipped" in tags else "passed")
        bad = tags.get("failure", tags.get("error"))
        props = {p.get("name") or "": p.get("value") or ""
                 for p in case.iter("property")}
        record = Record(outcome, float(case.get("time") or 0), props,
                        (bad.get("message") or "")[:300] if bad is not None else "")
        # A test whose teardown errs after its call failed has a second testcase of the
        # same name: the worse outcome stands (failed over errors over skipped, passed).
        old = records.get(name)
        if old is None or RANK[outcome] >= RANK[old.outcome]:
            if old is not None:
                record.seconds += old.seconds
                record.properties = {**old.properties, **record.properties}
            records[name] = record
    return records


def junit_outcomes(junit: Path) -> dict[str, str]:
    """pytest node id -> passed, failed, errors or skipped."""
    return {name: r.outcome for name, r in junit_records(junit).items()}


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


def cases(test: str, outcomes: dict[str, str]) -> dict[str, str]:
    """The outcomes of test: the node id itself or its parametrized cases (test[...])."""
    return {k: v for k, v in outcomes.items() if k == test or k.startswith(test + "[")}
