"""The pytest plugin's verdicts, checked by running an inner pytest session (pytester),
and check's outcome classes and exit code, by running muse-harness check on inner tests.

The inner sessions boot their own VMs from the cached kernel and root filesystem.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.paths import REPO, cache_root
from harness.report.junit import junit_records

INNER = '''
def test_warns(vm):
    vm.run("echo WARNING > /sys/kernel/debug/provoke-crash/DIRECT")

def test_clean_after_warning(vm):
    assert vm.run("true").ok

def test_panics(vm):
    vm.run("echo c > /proc/sysrq-trigger", timeout=60)

def test_clean_after_panic(vm):
    assert vm.run("cat /proc/mtd").ok

def test_without_a_vm():
    assert 1 + 1 == 2
'''


@pytest.mark.vm
def test_splat_and_dead_vm_fail_the_test_and_next_test_gets_a_fresh_vm(
        pytester: pytest.Pytester, pytestconfig: pytest.Config,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # pytester gives the inner session its own HOME: keep it on our cache.
    monkeypatch.setenv("MUSE_HARNESS_CACHE", str(cache_root()))
    pytester.makepyfile(test_inner=INNER)
    args = [f"--base={pytestconfig.getoption('--base')}",
            f"--flavour={pytestconfig.getoption('--flavour')}",
            f"--reports={pytester.path / 'reports'}", "-p", "no:cacheprovider", "-rA"]
    result = pytester.runpytest_subprocess(*args, timeout=900)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 3 and outcomes.get("failed") == 2, result.stdout.str()
    # Each VM test's ledger: its one command, and the time its end took.
    ledger = junit_records(pytester.path / "reports" / "junit.xml")[
        "test_inner.py::test_clean_after_warning"].properties
    assert ledger["guest_commands"] == "1" and ledger["guest_slowest_command"].endswith(": true")
    assert float(ledger["guest_command_seconds"]) > 0 and float(ledger["end_seconds"]) > 0
    assert list(json.loads(ledger["guest_programs"])) == ["true"]
    text = result.stdout.str()
    assert "FAILED test_inner.py::test_warns" in text
    assert "kernel splat during the test (WARNING" in text
    assert "guest console" in text and "lkdtm: Performing direct entry WARNING" in text
    assert "FAILED test_inner.py::test_panics" in text
    assert "QEMU exited" in text or "Kernel panic" in text
    assert "PASSED test_inner.py::test_clean_after_warning" in text
    assert "PASSED test_inner.py::test_clean_after_panic" in text
    # The last VM test's VM went before the test that needs none (polling idle CPUs
    # would have kept the host busy under it), not at the session's end.
    session = json.loads((pytester.path / "reports" / "session-main.json").read_text())
    assert session["vm_retired"][-1] == "no VM test left", session["vm_retired"]
    # The page a person reads: both failures, the WARNING's lines marked in its console.
    page = (pytester.path / "reports" / "index.html").read_text()
    assert re.search(r'v-failed">FAILED</span>\s*<span class="o-failed">2 failed', page), page
    warns = page[page.index("<code>test_inner.py::test_warns</code>"):]
    assert re.search(r'<span class="splat">[^\n]*lkdtm_WARNING', warns), warns


CLASSES = '''
import os

import pytest


@pytest.mark.kernel_args("init=/nonexistent")
def test_needs_a_vm_that_cannot_boot(vm):
    vm.run("true")


def test_fails_once_then_passes(vm):
    mark = os.environ["FLAKY_MARK"]
    if not os.path.exists(mark):
        open(mark, "w").close()
        raise AssertionError("first attempt fails")
    assert vm.run("true").ok
'''


@pytest.mark.vm
def test_a_vm_that_cannot_boot_is_infra_and_a_pass_on_retry_is_flaky(
        tmp_path: Path, pytestconfig: pytest.Config) -> None:
    inner = tmp_path / "test_classes.py"
    inner.write_text(CLASSES)
    reports = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "check", f"--base={pytestconfig.getoption('--base')}",
         f"--flavour={pytestconfig.getoption('--flavour')}", f"--reports={reports}", str(inner)],
        cwd=REPO, env=dict(os.environ, FLAKY_MARK=str(tmp_path / "mark")),
        capture_output=True, text=True, timeout=900, check=False)
    output = proc.stdout + proc.stderr
    # No test failed, the infrastructure did: exit code 2, not 1.
    assert proc.returncode == 2, output
    summary = json.loads((reports / "summary.json").read_text())
    assert summary["classes"] == {"error-infra": 1, "flaky": 1}, output
    by_test = {f["test"].split("::")[-1]: f for f in summary["failures"]}
    assert by_test["test_needs_a_vm_that_cannot_boot"]["reason"].startswith("VMError: "), output
    assert by_test["test_fails_once_then_passes"]["reason"].startswith(
        "failed on attempt 1 (AssertionError: first attempt fails)")
    # Both attempts' consoles are kept; the page says what failed.
    assert len(list((reports / "consoles").glob("*test_fails_once_then_passes*.log"))) == 2
    page = (reports / "index.html").read_text()
    assert "INFRASTRUCTURE FAILED" in page and "attempt 2" in page
