"""muse-harness matrix: the suite on every base x flavour, one table.

One pytest run per base (run_suite), with the flavours asked for: each
test runs on its flavour's kernel (its marker, else the first flavour), and
the plugin records base and flavour in the JUnit file, so each test lands
in its column. reports/matrix.md and matrix.json hold a row per test and a
column per base/flavour (outcome, seconds, splat titles); tests whose
outcome differs between columns come first.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.kernel.build import BuildRequest
from harness.kernel.series import read_series
from harness.options import (
    DEFAULT_BASE,
    DEFAULT_GUEST_IDLE,
    DEFAULT_MEMORY_MB,
    DEFAULT_SMP,
    DEFAULT_TCG_THREADS,
    add_reports_opt,
    add_vm_opts,
)
from harness.proc import say
from harness.report.html import reported_run
from harness.report.junit import Record, junit_records
from harness.tools.common import Subparsers
from harness.tools.suite import SUITE_TIMEOUT, SuiteRequest, run_suite

DEFAULT_FLAVOURS = "default,partmaster"


@dataclass
class Cell:
    outcome: str
    seconds: float
    splats: str = ""


@dataclass
class Row:
    test: str
    cells: dict[str, Cell] = field(default_factory=dict)    # "base/flavour" -> cell

    @property
    def differs(self) -> bool:
        return len({c.outcome for c in self.cells.values()}) > 1


def column(base: str, flavour: str) -> str:
    return f"{base}/{flavour}"


def rows_of(records: dict[str, dict[str, Record]]) -> list[Row]:
    """records: base -> node id -> Record. Tests without a kernel (unit tests) are left
    out; differing rows first, then by name."""
    rows: dict[str, Row] = {}
    for base, found in records.items():
        for test, record in found.items():
            flavour = record.properties.get("flavour")
            if not flavour:
                continue
            cell = Cell(record.outcome, round(record.seconds, 1),
                        record.properties.get("splats", ""))
            rows.setdefault(test, Row(test)).cells[column(base, flavour)] = cell
    return sorted(rows.values(), key=lambda r: (not r.differs, r.test))


def render(rows: list[Row], columns: list[str], runs: dict[str, dict[str, object]]) -> str:
    head = ["| test | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    body = []
    for row in rows:
        cells = []
        for name in columns:
            cell = row.cells.get(name)
            text = "" if cell is None else f"{cell.outcome} {cell.seconds:g}s"
            if cell is not None and cell.splats:
                text += f" ({cell.splats})"
            cells.append(text)
        mark = "**differs** " if row.differs else ""
        body.append(f"| {mark}`{row.test}` | " + " | ".join(cells) + " |")
    runs_text = "\n".join(f"- {base}: pytest exit {r['pytest_exit']}, {r['seconds']} s"
                          for base, r in runs.items())
    differing = sum(1 for r in rows if r.differs)
    return (f"# The suite per base and flavour\n\n{len(rows)} tests, {differing} with outcomes "
            f"that differ between columns (listed first).\n\n{runs_text}\n\n"
            + "\n".join(head + body) + "\n")


@dataclass
class MatrixRequest:
    bases: tuple[str, ...]
    flavours: tuple[str, ...]
    reports: Path
    paths: tuple[str, ...] = ("tests/integration",)
    k: str | None = None
    smp: int = DEFAULT_SMP
    memory_mb: int = DEFAULT_MEMORY_MB
    tcg_threads: str = DEFAULT_TCG_THREADS
    guest_idle: str = DEFAULT_GUEST_IDLE
    timeout: float = SUITE_TIMEOUT


def run_matrix(request: MatrixRequest) -> bool:
    for base in request.bases:      # every base known before anything is built
        read_series(base)
    records: dict[str, dict[str, Record]] = {}
    runs: dict[str, dict[str, object]] = {}
    for base in request.bases:
        result = run_suite(SuiteRequest(
            kernel=BuildRequest(base=base, flavour=request.flavours[0]),
            reports=request.reports / "matrix" / base, paths=request.paths, k=request.k,
            smp=request.smp, memory_mb=request.memory_mb, tcg_threads=request.tcg_threads,
            guest_idle=request.guest_idle, timeout=request.timeout,
            pytest_args=(f"--flavours={','.join(request.flavours)}",),
            what=f"the suite on {base}"))
        records[base] = junit_records(result.junit)
        runs[base] = {"pytest_exit": result.exit_code, "seconds": result.seconds,
                      "junit": str(result.junit)}
    columns = [column(b, f) for b in request.bases for f in request.flavours]
    rows = rows_of(records)
    (request.reports / "matrix.json").write_text(json.dumps({
        "bases": request.bases, "flavours": request.flavours, "columns": columns,
        "runs": runs, "finished": time.time(), "rows": [asdict(r) for r in rows]},
        indent=1) + "\n")
    (request.reports / "matrix.md").write_text(render(rows, columns, runs))
    failed = [r.test for r in rows if any(c.outcome in ("failed", "errors")
                                          for c in r.cells.values())]
    say(f"{len(rows)} tests in {len(columns)} columns, {len(failed)} with a failure; "
        f"see {request.reports / 'matrix.md'}")
    return bool(rows) and not failed and all(r["pytest_exit"] == 0 for r in runs.values())


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def main(args: argparse.Namespace) -> int:
    request = MatrixRequest(
        bases=_names(args.bases), flavours=_names(args.flavours),
        reports=args.reports.resolve(), paths=tuple(args.paths), k=args.k, smp=args.smp,
        memory_mb=args.memory, tcg_threads=args.tcg_threads, guest_idle=args.guest_idle,
        timeout=args.timeout)
    for base in request.bases:      # a bad base fails before the last run's page is touched
        read_series(base)
    with reported_run(request.reports, {"bases": request.bases, "flavours": request.flavours}):
        ok = run_matrix(request)
    return 0 if ok else 1


def register(sub: Subparsers) -> None:
    p = sub.add_parser("matrix", help="the suite on every base x flavour; "
                                      "reports/matrix.md and matrix.json")
    p.add_argument("--bases", default=f"6.1,{DEFAULT_BASE}", help="comma-separated bases")
    p.add_argument("--flavours", default=DEFAULT_FLAVOURS, help="comma-separated flavours")
    add_vm_opts(p.add_argument)
    add_reports_opt(p.add_argument)
    p.add_argument("-k", help="only tests matching this pytest expression")
    p.add_argument("--timeout", type=float, default=SUITE_TIMEOUT, help="for each base's run")
    p.add_argument("paths", nargs="*", default=["tests/integration"])
    p.set_defaults(func=main)
