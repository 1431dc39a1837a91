"""What a reports directory holds, gathered for the page: collect(reports) -> Page.

Every part is optional: a check run has a JUnit file and session files, a
bugs run a bugs.json over two pytest runs, a matrix run a matrix.json, a
bench run a bench.json and its chart. The page shows what is there.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.report.junit import Record, junit_records
from harness.report.runinfo import read_run, rerun_command
from harness.report.slices import Line, marked_lines, slice_name

# Worst first: what a reader opens the page for.
ORDER = ("failed", "errors", "skipped", "passed")


@dataclass
class Kernel:
    flavour: str
    release: str
    origin: str
    compiler: str
    series_id: str
    patches: list[str]


@dataclass
class Header:
    title: str
    base: str = ""
    flavour: str = ""
    as_posted: bool = False
    kernels: list[Kernel] = field(default_factory=list)
    commit: str = ""
    accel: str = ""
    accel_reason: str = ""
    boot_median: float | None = None
    boots: int = 0
    wall_seconds: float | None = None
    started: str = ""
    command: str = ""
    cwd: str = ""

    @property
    def toolchains(self) -> list[str]:
        return sorted({k.compiler for k in self.kernels if k.compiler})


@dataclass
class Case:
    test: str
    outcome: str
    seconds: float
    message: str
    flavour: str
    splats: list[str]
    console: list[Line]
    console_cut: int            # leading lines left out of the page
    console_file: str           # relative to the page
    kmemleak_file: str
    rerun: str


@dataclass
class Page:
    header: Header
    counts: dict[str, int]      # outcome -> tests, worst first
    cases: list[Case]           # every test that did not pass, worst first
    bugs: dict[str, Any] | None = None
    matrix: dict[str, Any] | None = None
    bench: dict[str, Any] | None = None
    bench_png: str = ""         # base64: the page is one self-contained file
    links: list[tuple[str, str]] = field(default_factory=list)   # (label, relative href)

    @property
    def verdict(self) -> str:
        if self.counts.get("failed") or self.counts.get("errors"):
            return "failed"
        if self.bugs is not None and not self.bugs.get("ok"):
            return "failed"
        if self.matrix is not None and any(
                c["outcome"] in ("failed", "errors")
                for r in self.matrix["rows"] for c in r["cells"].values()):
            return "failed"
        if not self.counts and self.bugs is None and self.matrix is None and self.bench is None:
            return "no result"
        return "passed"


def _json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _junit(reports: Path, run: dict[str, Any]) -> Path | None:
    named = Path(run["junit"]) if run.get("junit") else None
    if named is not None and named.is_file():
        return named
    found = sorted(reports.glob("*junit*.xml"))
    return found[0] if found else None


def _header(reports: Path, run: dict[str, Any], sessions: list[dict[str, Any]],
            summary: dict[str, Any]) -> Header:
    kernels: dict[str, Kernel] = {}
    for session in sessions:
        for flavour, k in session.get("kernels", {}).items():
            kernels[flavour] = Kernel(flavour, k.get("release", ""), k.get("origin", ""),
                                      k.get("compiler", ""), k.get("series_id", ""),
                                      list(k.get("patches", [])))
    boots = [b for s in sessions for b in s.get("boot_seconds", [])]
    accels = sorted({s["accel"] for s in sessions if s.get("accel")})
    started = run.get("started")
    boots_sorted = sorted(boots)
    return Header(
        title=f"MUSE harness: {reports.name}",
        base=str(run.get("base") or summary.get("base") or ""),
        flavour=str(run.get("flavour") or summary.get("flavour") or ""),
        as_posted=bool(run.get("as_posted") or summary.get("as_posted")),
        kernels=sorted(kernels.values(), key=lambda k: k.flavour),
        commit=str(run.get("commit", "")),
        accel=",".join(accels),
        accel_reason=next((s["accel_reason"] for s in sessions if s.get("accel_reason")), ""),
        boot_median=boots_sorted[len(boots_sorted) // 2] if boots_sorted else None,
        boots=len(boots),
        wall_seconds=run.get("wall_seconds") or summary.get("wall_seconds"),
        started=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)) if started else "",
        command=str(run.get("command", "")), cwd=str(run.get("cwd", "")),
    )


def _case(reports: Path, run: dict[str, Any], test: str, record: Record) -> Case:
    console_path = reports / "consoles" / slice_name(test)
    text = console_path.read_text(errors="replace") if console_path.is_file() else ""
    lines, cut = marked_lines(text)
    leak = console_path.with_suffix(".kmemleak.txt")
    flavour = record.properties.get("flavour", "")
    splats = [s for s in record.properties.get("splats", "").split("; ") if s]
    return Case(test, record.outcome, round(record.seconds, 1), record.message, flavour,
                splats, lines, cut,
                str(console_path.relative_to(reports)) if console_path.is_file() else "",
                str(leak.relative_to(reports)) if leak.is_file() else "",
                rerun_command(run, test, flavour or None))


def _links(reports: Path) -> list[tuple[str, str]]:
    names = ["report.md", "summary.json", "bugs.md", "bugs.json", "matrix.md", "matrix.json",
             "bench.json", "bench.png", "run.json"]
    links = [(n, n) for n in names if (reports / n).is_file()]
    for junit in sorted(reports.glob("*junit*.xml")):
        links.append((junit.name, junit.name))
    for sub in sorted(reports.glob("*/**/index.html")):
        rel = str(sub.relative_to(reports))
        links.append((rel.removesuffix("/index.html") + "/", rel))
    return links


def collect(reports: Path) -> Page:
    run = read_run(reports)
    summary = _json(reports / "summary.json") or {}
    sessions = [json.loads(p.read_text()) for p in sorted(reports.glob("session-*.json"))]
    header = _header(reports, run, sessions, summary)
    junit = _junit(reports, run)
    records = junit_records(junit) if junit else {}
    counts = Counter(r.outcome for r in records.values())
    bad = [(t, r) for t, r in records.items() if r.outcome != "passed"]
    bad.sort(key=lambda tr: (ORDER.index(tr[1].outcome), tr[0]))
    bench = _json(reports / "bench.json")
    png = reports / "bench.png"
    bugs = _json(reports / "bugs.json")
    if bugs and not header.base:
        header.base = str(bugs.get("base", ""))
    return Page(
        header=header,
        counts={k: counts[k] for k in ORDER if counts.get(k)},
        cases=[_case(reports, run, t, r) for t, r in bad],
        bugs=bugs, matrix=_json(reports / "matrix.json"), bench=bench,
        bench_png=base64.b64encode(png.read_bytes()).decode() if bench and png.is_file() else "",
        links=_links(reports),
    )
