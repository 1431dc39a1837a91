"""The peer table: mtd-utils' suites on MUSE and on its in-kernel control, row by row.

Read from the JUnit file of a peer run (tests/integration/test_peer.py records
peer_suite, peer_test, peer_pair and each side's result and seconds as
properties). Rows where MUSE and its control differ come first: each needs an
outcome (a server bug, a kernel bug or a documented model limitation), which the
test records as peer_note (tests/integration/peer_suites.py, RESOLVED).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.report.junit import junit_records


@dataclass(frozen=True)
class PeerRow:
    suite: str
    test: str
    pair: str
    muse: str               # passed, failed (status), timeout, or "not run"
    control: str
    muse_seconds: float | None
    control_seconds: float | None
    node: str
    note: str = ""          # why the row is as it is, where MUSE and control differ

    @property
    def differs(self) -> bool:
        return _word(self.muse) != _word(self.control)


def _word(result: str) -> str:
    return result.split(" ")[0]


def _seconds(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def peer_rows(junit: Path) -> list[PeerRow]:
    rows = []
    for node, record in junit_records(junit).items():
        props = record.properties
        if "peer_suite" not in props:
            continue
        rows.append(PeerRow(props["peer_suite"], props.get("peer_test", "?"),
                            props.get("peer_pair", "?"), props.get("peer_muse", "not run"),
                            props.get("peer_control", "not run"),
                            _seconds(props.get("peer_muse_seconds")),
                            _seconds(props.get("peer_control_seconds")), node,
                            props.get("peer_note", "")))
    return sorted(rows, key=lambda r: (not r.differs, r.suite, r.test, r.pair))


def _time(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def suite_times(rows: list[PeerRow]) -> dict[str, dict[str, float]]:
    """Per suite: cases, and the seconds MUSE and the controls took in all."""
    times: dict[str, dict[str, float]] = {}
    for r in rows:
        t = times.setdefault(r.suite, {"cases": 0, "muse_seconds": 0.0, "control_seconds": 0.0})
        t["cases"] += 1
        t["muse_seconds"] += r.muse_seconds or 0.0
        t["control_seconds"] += r.control_seconds or 0.0
    return times


def markdown(rows: list[PeerRow]) -> str:
    lines = ["# mtd-utils' suites: MUSE against its in-kernel control", "",
             "| suite | cases | MUSE time | control time |", "|---|---|---|---|"]
    for suite, t in sorted(suite_times(rows).items()):
        lines.append(f"| {suite} | {t['cases']:.0f} | {_time(t['muse_seconds'])} "
                     f"| {_time(t['control_seconds'])} |")
    lines += ["", f"{sum(r.differs for r in rows)} of {len(rows)} rows differ (first).", "",
             "| suite | test | pair | MUSE | control | MUSE time | control time | why |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mark = "**" if r.differs else ""
        lines.append(f"| {r.suite} | {mark}{r.test}{mark} | {r.pair} | {r.muse} | {r.control} "
                     f"| {_time(r.muse_seconds)} | {_time(r.control_seconds)} | {r.note} |")
    return "\n".join(lines) + "\n"


def write_peer(reports: Path, junit: Path) -> list[PeerRow]:
    rows = peer_rows(junit)
    (reports / "peer.md").write_text(markdown(rows))
    (reports / "peer.json").write_text(json.dumps(
        [{**asdict(r), "differs": r.differs} for r in rows], indent=2) + "\n")
    return rows
