"""Coverage of the series' code from a coverage-flavour run (gcov in the kernel, gcovr here).

The plugin saved each test's counters as reports/coverage/gcda/<test>.tar
(member names are the objects' build paths). With the build directory's
.gcno files beside them, gcovr turns each into a JSON of its own; merged,
they give:

  coverage/html/index.html   gcovr --html-details, for a person to open
  coverage/summary.json      lines and branches covered per file; each patch's
                             added lines covered; uncovered lines by function
  coverage/tests.json        "file:line" -> the tests that ran it

This module runs gcovr on files a run left; it builds and boots nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.report.junit import junit_records

GCOVR = [sys.executable, "-m", "gcovr"]
TIMEOUT = 600.0


def _gcovr(args: list[str]) -> None:
    try:
        result = subprocess.run([*GCOVR, *args], capture_output=True, text=True,
                                timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise HarnessError(f"gcovr took over {TIMEOUT:.0f} s: {' '.join(args)}") from None
    if result.returncode != 0:
        raise HarnessError(f"gcovr failed (exit {result.returncode}):\n{result.stderr[-2000:]}")


def _filters(tree: Path, files: list[str]) -> list[str]:
    return [arg for f in files for arg in ("--filter", str(tree / f).replace(".", r"\."))]


def _build_of(name: str, builddirs: list[Path]) -> tuple[Path, Path] | None:
    """The build directory an archived counter file belongs to, and its path there."""
    for builddir in builddirs:
        try:
            return builddir, Path("/" + name).relative_to(builddir)
        except ValueError:
            continue
    return None


def test_json(tar: Path, builddirs: list[Path], tree: Path, files: list[str],
              out: Path) -> bool:
    """One test's gcovr JSON from its counters; False when it has none of our objects.
    A test's counters come from the one kernel it booted: any of builddirs (a flavour
    and its gcov twins share the source tree)."""
    with tempfile.TemporaryDirectory() as scratch, tarfile.open(tar) as archive:
        root = Path(scratch)
        placed: Path | None = None
        for member in archive.getmembers():
            found = _build_of(member.name, builddirs)
            if found is None:
                continue   # an object of another build
            builddir, rel = found
            gcno = builddir / rel.with_suffix(".gcno")
            data = archive.extractfile(member)
            if data is None or not gcno.is_file():
                continue
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data.read())
            shutil.copyfile(gcno, root / rel.with_suffix(".gcno"))
            placed = builddir
        if placed is None:
            return False
        _gcovr(["--root", str(tree), "--object-directory", str(placed), *_filters(tree, files),
                "--json", str(out), str(root)])
    return True


def line_map(per_test: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """'file:line' -> the tests (node ids) that ran it, from per-test gcovr JSON."""
    ran: dict[str, list[str]] = defaultdict(list)
    for test, data in sorted(per_test.items()):
        for entry in data["files"]:
            for line in entry["lines"]:
                if line["count"] > 0:
                    ran[f"{entry['file']}:{line['line_number']}"].append(test)
    return dict(sorted(ran.items()))


def summarize(merged: dict[str, Any], added: dict[str, dict[str, list[int]]]) -> dict[str, Any]:
    """Per file: lines and branches covered, uncovered lines by function; per patch:
    of its added lines that carry code, how many ran."""
    files: dict[str, Any] = {}
    counts: dict[str, dict[int, int]] = {}
    for entry in merged["files"]:
        lines = entry["lines"]
        branches = [b for ln in lines for b in ln["branches"]]
        uncovered: dict[str, list[int]] = defaultdict(list)
        for line in lines:
            if line["count"] == 0:
                uncovered[line.get("function_name") or "?"].append(line["line_number"])
        counts[entry["file"]] = {ln["line_number"]: ln["count"] for ln in lines}
        files[entry["file"]] = {
            "lines": len(lines), "lines_covered": sum(1 for ln in lines if ln["count"] > 0),
            "branches": len(branches),
            "branches_covered": sum(1 for b in branches if b["count"] > 0),
            "uncovered_by_function": dict(sorted(uncovered.items())),
        }
    patches = {}
    for patch, per_file in added.items():
        code = [(f, n) for f, numbers in per_file.items() for n in numbers
                if n in counts.get(f, {})]
        patches[patch] = {"added_code_lines": len(code),
                          "covered": sum(1 for f, n in code if counts[f][n] > 0)}
    return {"files": files, "patches": patches}


def write_coverage(reports: Path, builddirs: list[Path], tree: Path, files: list[str],
                   added: dict[str, dict[str, list[int]]]) -> dict[str, Any]:
    """Everything under reports/coverage/ from the saved counters; the summary."""
    folder = reports / "coverage"
    tars = sorted((folder / "gcda").glob("*.tar"))
    if not tars:
        raise HarnessError(f"{folder / 'gcda'} holds no counters: did the run use a kernel "
                           "with gcov (the coverage flavour)?")
    (folder / "tests").mkdir(exist_ok=True)
    per_test = {}
    # One test at a time: gcov writes its intermediate files into the object
    # directory, so two gcovr runs at once trip over each other's.
    for tar in tars:
        out = folder / "tests" / f"{tar.stem}.json"
        named = tar.with_suffix(".test")
        test = named.read_text().strip() if named.is_file() else tar.stem
        if test_json(tar, builddirs, tree, files, out):
            per_test[test] = json.loads(out.read_text())
    if not per_test:
        raise HarnessError(f"no test's counters name an object of "
                           f"{' or '.join(map(str, builddirs))}")
    merged_path = folder / "merged.json"
    adds = [arg for path in sorted((folder / "tests").glob("*.json"))
            for arg in ("--add-tracefile", str(path))]
    (folder / "html").mkdir(exist_ok=True)
    _gcovr(["--root", str(tree), *adds, "--json", str(merged_path),
            "--html-details", str(folder / "html" / "index.html")])
    summary = summarize(json.loads(merged_path.read_text()), added)
    summary["tests"] = len(per_test)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (folder / "tests.json").write_text(json.dumps(line_map(per_test), indent=1) + "\n")
    return summary


@dataclass(frozen=True)
class LineTests:
    """Which tests run each line of one file, from a coverage run's coverage/ folder."""
    ran: dict[int, list[str]]        # executable lines some test ran -> those tests, fastest
                                     # first (by the run's JUnit times)
    unrun: frozenset[int]            # executable lines no test ran
    seconds: dict[str, float] = field(default_factory=dict)     # test -> its JUnit time

    @classmethod
    def load(cls, folder: Path, path: str) -> LineTests:
        tests, summary = folder / "tests.json", folder / "summary.json"
        if not tests.is_file() or not summary.is_file():
            raise HarnessError(f"{folder} holds no tests.json and summary.json: give the "
                               "coverage/ folder of a `muse-harness coverage` run")
        seconds = {node: r.seconds for node, r in junit_records(folder.parent /
                                                                "junit.xml").items()}
        ran = {int(key.rpartition(":")[2]): sorted(names, key=lambda n: seconds.get(n, 1e9))
               for key, names in json.loads(tests.read_text()).items()
               if key.rpartition(":")[0] == path}
        entry = json.loads(summary.read_text())["files"].get(path)
        if entry is None or not ran:
            raise HarnessError(f"{folder}: the coverage run has no lines of {path}")
        unrun = frozenset(n for lines in entry["uncovered_by_function"].values() for n in lines)
        return cls(ran, unrun, seconds)

    def tests_for(self, line: int, reach: int = 4) -> list[str] | None:
        """The tests that run this line: [] when none does; None when no line near it
        carries code. A line without code of its own (a statement the compiler folded
        into a neighbour, or one spanning lines) takes the tests of the nearest code
        line above and of the nearest below, fastest first."""
        if line in self.ran or line in self.unrun:
            return self.ran.get(line, [])
        above = self._nearest(range(line - 1, max(line - reach, 1) - 1, -1))
        below = self._nearest(range(line + 1, line + reach + 1))
        if above is None and below is None:
            return None
        union = dict.fromkeys([*(above or []), *(below or [])])
        return sorted(union, key=lambda name: self.seconds.get(name, 1e9))

    def _nearest(self, numbers: range) -> list[str] | None:
        for number in numbers:
            if number in self.ran or number in self.unrun:
                return self.ran.get(number, [])
        return None
