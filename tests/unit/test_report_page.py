"""reports/index.html (harness/report/): rendered from recorded reports directories.

tests/data/reports/failed is a real run: the plugin's inner session of
tests/integration/test_harness_plugin.py on 6.12 (a WARNING from lkdtm, then a
panic that kills the VM, each followed by a clean test). bench/ holds a real
bench.json; bugs/ the bugs.json of a real `muse-harness bugs --base 6.12 --flavours
default,partmaster` run.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from harness.cli import main
from harness.report.html import write_page
from harness.report.page import collect
from harness.report.slices import marked_lines

DATA = Path(__file__).resolve().parent.parent / "data" / "reports"


def _copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(DATA / name, tmp_path / name))


def _section(html: str, title: str) -> str:
    """The page from the h2 whose text starts with title to the next h2."""
    start = html.index(f"<h2>{title}")
    end = html.find("<h2>", start + 4)
    return html[start:end if end > 0 else None]


def test_failed_run_shows_failures_first_with_splat_console_and_rerun(tmp_path: Path) -> None:
    reports = _copy("failed", tmp_path)
    html = write_page(reports).read_text()
    assert "<title>MUSE harness: failed: failed</title>" in html
    assert re.search(r'class="verdict v-failed">FAILED</span>\s*<span class="o-failed">2 failed'
                     r'</span>, <span class="o-passed">2 passed', html)
    # The header: base, kernel, toolchain, commit, reproduce command.
    assert "<th>base</th><td>6.12</td>" in html
    assert "6.12.118+ from debian:linux-source-6.12=" in html
    assert "gcc (Debian 12.2.0" in html
    assert re.search(r"<code>[0-9a-f]{12}(-dirty)?</code>", html)
    assert "<th>exit code</th><td>1 " in html
    assert "-m pytest test_inner.py --base=6.12" in html
    failed = _section(html, "Tests that did not pass")
    # Both failures, each with its reason, splat title and the one command that reruns it.
    assert failed.index("test_inner.py::test_panics") < failed.index("test_inner.py::test_warns")
    assert "<code>kernel report: kernel splat during the test (WARNING" in failed
    # Splats by fingerprint and normalised title: the same bug on 6.1 hashes alike.
    assert "<li><code>0af278a07bc4 WARNING in lkdtm_WARNING</code></li>" in failed
    assert ("<li><code>faeac0034cc5 Kernel panic - not syncing: sysrq triggered crash in "
            "sysrq_handle_crash</code></li>") in failed
    assert ("test_inner.py::test_warns --base=6.12 --flavour=default --smp=2 --memory=1024 "
            "--tcg-threads=multi --reports=reports/rerun --flavours=default") in failed
    # The console slice is collapsed, its splat lines highlighted, the lines around not.
    warns = failed[failed.index("test_inner.py::test_warns"):]
    assert "<details><summary>console slice:" in warns
    splat_lines = re.findall(r'<span class="splat"><span class="ln">\s*\d+ </span>([^\n]*?)</span>',
                             warns)
    assert any("lkdtm_WARNING+0xa/0x10" in ln for ln in splat_lines)
    assert any("end trace" in ln for ln in splat_lines)
    assert not any("Performing direct entry WARNING" in ln for ln in splat_lines)
    assert "Performing direct entry WARNING" in warns
    assert 'href="consoles/test_inner.py_test_warns.log"' in warns
    # Passing tests are counted, not listed.
    assert "test_clean_after_warning" not in failed


def test_page_is_one_self_contained_file(tmp_path: Path) -> None:
    html = write_page(_copy("failed", tmp_path)).read_text()
    assert "<script" not in html and "<link" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<style>" in html


def test_console_text_is_escaped(tmp_path: Path) -> None:
    reports = _copy("failed", tmp_path)
    console = reports / "consoles" / "test_inner.py_test_warns.log"
    console.write_text(console.read_text() + "<script>alert(1)</script>\n")
    html = write_page(reports).read_text()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_empty_directory_is_no_result_never_a_pass(tmp_path: Path) -> None:
    page = collect(tmp_path)
    assert page.verdict == "no result"
    assert "NO RESULT" in write_page(tmp_path).read_text()


def test_splat_lines_marked_from_title_back_to_cut_here() -> None:
    text = ("[ 1.0] hello\n[ 1.1] ------------[ cut here ]------------\n"
            "[ 1.1] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x1/0x2\n[ 1.1] Call Trace:\n"
            "[ 1.1] ---[ end trace 0000000000000000 ]---\n[ 1.2] after\n")
    lines, cut = marked_lines(text)
    assert cut == 0
    assert [ln.splat for ln in lines] == [False, True, True, True, True, False]
    assert lines[0].number == 1


def test_bench_section_with_inline_chart(tmp_path: Path) -> None:
    reports = _copy("bench", tmp_path)
    chart = Figure(figsize=(2, 2))
    chart.subplots().bar([0, 1], [1.0, 2.0])
    chart.savefig(reports / "bench.png")
    html = write_page(reports).read_text()
    bench = _section(html, "Bench")
    assert "MUSE NAND / nandsim, sequential read" in bench
    assert '<img alt="bench chart" style="max-width:100%" src="data:image/png;base64,iVBOR' in bench


def test_bug_table(tmp_path: Path) -> None:
    reports = _copy("bugs", tmp_path)
    data = json.loads((reports / "bugs.json").read_text())
    html = write_page(reports).read_text()
    table = _section(html, "Bug table")
    assert f"{data['shown']} of {len(data['rows'])} bug tests failed as posted" in table
    for row in data["rows"]:
        assert f"<code>{row['test']}</code>" in table
    assert table.count(">yes</td>") == sum(1 for r in data["rows"] if r["ok"])


def test_report_command_rewrites_every_page(tmp_path: Path) -> None:
    top = tmp_path / "top"
    shutil.copytree(DATA / "failed", top / "bugs" / "as_posted")
    assert main(["report", str(top)]) == 0
    assert (top / "bugs" / "as_posted" / "index.html").is_file()
    assert 'href="bugs/as_posted/index.html"' in (top / "index.html").read_text()


def test_report_command_on_a_missing_directory(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "no such reports directory" in capsys.readouterr().err


def test_bisect_page_names_the_culprit(tmp_path: Path) -> None:
    steps = [{"upto": 31, "patch": "last", "verdict": "bad", "build_seconds": 42.2,
              "test_seconds": 17.8, "reports": "r"},
             {"upto": 7, "patch": "muse", "verdict": "good", "build_seconds": 44.5,
              "test_seconds": 17.3, "reports": "r"}]
    data = {"test": "tests/t.py::test_x", "series": ["a"] * 31, "series_id": "ba37875041b02c8b",
            "good": 7, "bad": 31, "steps": steps, "culprit": 19,
            "culprit_subject": "fuse: muse: Don't return -ENOTSUPP to userspace",
            "verification": "patch 19 does not revert cleanly on top of the whole series",
            "seconds": 409.3}
    (tmp_path / "bisect.json").write_text(json.dumps(data))
    html = write_page(tmp_path).read_text()
    assert 'class="verdict v-culprit-found">CULPRIT FOUND' in html
    assert "First bad patch: <b>19: fuse: muse: Don&#39;t return -ENOTSUPP to userspace</b>" in html
    data["verification"] = "not confirmed: tests/t.py::test_x still fails with patch 19 reverted"
    (tmp_path / "bisect.json").write_text(json.dumps(data))
    assert 'class="verdict v-failed">FAILED' in write_page(tmp_path).read_text()
