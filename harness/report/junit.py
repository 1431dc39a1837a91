"""The suite's results as pytest's JUnit XML gives them: the one reader every tool uses.

junit_outcomes() maps pytest node ids to passed, failed, errors or skipped;
cases() is the one test-name matcher (a test stands for all its
parametrized cases), so that check, bugs and mutate agree on what ran.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from harness.verdict.outcome import CLASSES, FAILED

RANK = {"passed": 0, "skipped": 1, "errors": 2, "failed": 3}


@dataclass
class Record:
    """One test as the JUnit file tells it."""

    outcome: str                    # passed, failed, errors or skipped
    seconds: float = 0.0
    properties: dict[str, str] = field(default_factory=dict)   # the plugin's user properties
    message: str = ""

    @property
    def klass(self) -> str:
        """The outcome class (harness.verdict.outcome) the plugin recorded; for a JUnit
        file without one, pytest's outcome, an error counting as a failure."""
        return self.properties.get("outcome") or (
            FAILED if self.outcome in ("failed", "errors") else self.outcome)

    @property
    def reason(self) -> str:
        return self.properties.get("reason") or self.message

    @property
    def attempt(self) -> int:
        return int(self.properties.get("attempt") or 1)


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
        # A retried test has a testcase per attempt: the last attempt stands.
        old = records.get(name)
        if old is None:
            records[name] = record
            continue
        if record.attempt != old.attempt:
            later = record.attempt > old.attempt
        else:
            later = RANK[outcome] >= RANK[old.outcome]
        keep, other = (record, old) if later else (old, record)
        keep.seconds = round(keep.seconds + other.seconds, 3)
        keep.properties = {**other.properties, **keep.properties}
        records[name] = keep
    return records


def run_junits(reports: Path, named: str | None) -> list[Path]:
    """The JUnit files of the run in reports: the one run.json names (by its name within
    the directory, so a copied directory still finds it), else every one there."""
    if named and (reports / Path(named).name).is_file():
        return [reports / Path(named).name]
    return sorted(reports.glob("*junit*.xml"))


def junit_counts(junit: Path) -> dict[str, int]:
    """Tests by pytest outcome, a retried test once (its last attempt)."""
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "total": 0}
    for record in junit_records(junit).values():
        counts[record.outcome] += 1
        counts["total"] += 1
    return counts


def class_counts(records: dict[str, Record]) -> dict[str, int]:
    """Tests by outcome class, worst class first, absent classes left out."""
    found = [r.klass for r in records.values()]
    return {k: found.count(k) for k in CLASSES if k in found}


def junit_outcomes(junit: Path) -> dict[str, str]:
    """pytest node id -> passed, failed, errors or skipped."""
    return {name: r.outcome for name, r in junit_records(junit).items()}


def cases(test: str, outcomes: dict[str, str]) -> dict[str, str]:
    """The outcomes of test: the node id itself or its parametrized cases (test[...])."""
    return {k: v for k, v in outcomes.items() if k == test or k.startswith(test + "[")}
