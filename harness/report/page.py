"""What a reports directory holds, gathered for the page: collect(reports) -> Page.

Every part is optional: a check run has a JUnit file and session files, a
bugs run a bugs.json over two pytest runs, a matrix run a matrix.json, a
bench run a bench.json and its chart. The page shows what is there.
"""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.report.junit import Record, class_counts, junit_records, run_junits
from harness.report.runinfo import read_run, rerun_command
from harness.report.slices import Line, marked_lines, slice_name
from harness.verdict.outcome import CLASSES, FAILED, INFRA, PASSED, exit_code


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
    series: list[str] = field(default_factory=list)     # subjects (file names if unknown)
    series_id: str = ""
    series_path: str = ""       # a revision from elsewhere (--series)

    @property
    def toolchains(self) -> list[str]:
        return sorted({k.compiler for k in self.kernels if k.compiler})


@dataclass
class Slice:
    """One attempt's console slice."""

    attempt: int
    lines: list[Line]
    cut: int                    # leading lines left out of the page
    file: str                   # relative to the page


@dataclass
class Case:
    test: str
    outcome: str                # the outcome class
    seconds: float
    reason: str
    flavour: str
    splats: list[str]           # "<fingerprint> <normalised title>", else the raw titles
    slices: list[Slice]
    kmemleak_file: str
    rerun: str
    vm_console: str = ""        # the whole console of the VM a reason names (did not boot)


@dataclass
class Page:
    header: Header
    counts: dict[str, int]      # outcome -> tests, worst first
    cases: list[Case]           # every test that did not pass, worst first
    bugs: dict[str, Any] | None = None
    matrix: dict[str, Any] | None = None
    bench: dict[str, Any] | None = None
    bench_png: str = ""         # base64: the page is one self-contained file
    compare: dict[str, Any] | None = None
    bisect: dict[str, Any] | None = None
    links: list[tuple[str, str]] = field(default_factory=list)   # (label, relative href)

    @property
    def exit_code(self) -> int:
        return exit_code(self.counts)

    @property
    def verdict(self) -> str:
        if self.counts.get(FAILED):
            return "failed"
        if self.counts.get(INFRA):
            return "infrastructure failed"
        if self.bugs is not None and not self.bugs.get("ok"):
            return "failed"
        if self.matrix is not None and any(
                c["outcome"] in ("failed", "errors")
                for r in self.matrix["rows"] for c in r["cells"].values()):
            return "failed"
        if self.bisect is not None and str(self.bisect.get("verification", "")).startswith(
                "not confirmed"):       # as bisect's exit code: the search was misled
            return "failed"
        if self.bisect is not None and self.bisect.get("culprit") and not self.counts:
            return "culprit found"
        if not self.counts and not any((self.bugs, self.matrix, self.bench, self.bisect)):
            return "no result"
        return "passed"


def _json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


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
        series=list(run.get("patches") or next(
            (k.patches for k in sorted(kernels.values(), key=lambda k: k.flavour)), [])),
        series_id=str(run.get("series_id") or next(
            (k.series_id for k in kernels.values() if k.series_id), "")),
        series_path=str(run.get("series_path") or ""),
    )


def _case(reports: Path, run: dict[str, Any], test: str, record: Record) -> Case:
    slices = []
    for attempt in range(1, record.attempt + 1):
        path = reports / "consoles" / slice_name(test, attempt)
        if path.is_file():
            lines, cut = marked_lines(path.read_text(errors="replace"))
            slices.append(Slice(attempt, lines, cut, str(path.relative_to(reports))))
    leak = reports / "consoles" / Path(slice_name(test)).with_suffix(".kmemleak.txt")
    flavour = record.properties.get("flavour", "")
    splats = [s for s in (record.properties.get("fingerprints")
                          or record.properties.get("splats", "")).split("; ") if s]
    named = re.search(r"\b([\w.]+-[\w.]+-\d+): ", record.reason)     # "main-default-3: ..."
    whole = reports / "consoles" / f"{named.group(1)}-console.log" if named else None
    return Case(test, record.klass, round(record.seconds, 1), record.reason, flavour,
                splats, slices, str(leak.relative_to(reports)) if leak.is_file() else "",
                record.properties.get("rerun") or rerun_command(run, test, flavour or None),
                str(whole.relative_to(reports)) if whole is not None and whole.is_file() else "")


def _links(reports: Path) -> list[tuple[str, str]]:
    names = ["report.md", "summary.json", "compare.md", "compare.json", "bugs.md", "bugs.json",
             "matrix.md", "matrix.json", "bisect.md", "bisect.json", "bench.json", "bench.png",
             "run.json", "reproduce.sh"]
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
    records: dict[str, Record] = {}
    for junit in run_junits(reports, run.get("junit")):
        records.update(junit_records(junit))
    bad = [(t, r) for t, r in records.items() if r.klass != PASSED]
    bad.sort(key=lambda tr: (CLASSES.index(tr[1].klass) if tr[1].klass in CLASSES
                             else len(CLASSES), tr[0]))
    bench = _json(reports / "bench.json")
    png = reports / "bench.png"
    bugs = _json(reports / "bugs.json")
    if bugs and not header.base:
        header.base = str(bugs.get("base", ""))
    return Page(
        header=header,
        counts=class_counts(records),
        cases=[_case(reports, run, t, r) for t, r in bad],
        bugs=bugs, matrix=_json(reports / "matrix.json"), bench=bench,
        compare=_json(reports / "compare.json"), bisect=_json(reports / "bisect.json"),
        bench_png=base64.b64encode(png.read_bytes()).decode() if bench and png.is_file() else "",
        links=_links(reports),
    )
