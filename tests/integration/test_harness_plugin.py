"""The pytest plugin's verdicts, checked by running an inner pytest session (pytester).

The inner session boots its own VM from the cached kernel and root filesystem.
"""

from __future__ import annotations

import re

import pytest

from harness.paths import cache_root

INNER = '''
def test_warns(vm):
    vm.run("echo WARNING > /sys/kernel/debug/provoke-crash/DIRECT")

def test_clean_after_warning(vm):
    assert vm.run("true").ok

def test_panics(vm):
    vm.run("echo c > /proc/sysrq-trigger", timeout=60)

def test_clean_after_panic(vm):
    assert vm.run("cat /proc/mtd").ok
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
    assert outcomes.get("passed") == 2 and outcomes.get("failed") == 2, result.stdout.str()
    text = result.stdout.str()
    assert "FAILED test_inner.py::test_warns" in text
    assert "kernel splat during the test (WARNING" in text
    assert "guest console" in text and "lkdtm: Performing direct entry WARNING" in text
    assert "FAILED test_inner.py::test_panics" in text
    assert "QEMU exited" in text or "Kernel panic" in text
    assert "PASSED test_inner.py::test_clean_after_warning" in text
    assert "PASSED test_inner.py::test_clean_after_panic" in text
    # The page a person reads: both failures, the WARNING's lines marked in its console.
    page = (pytester.path / "reports" / "index.html").read_text()
    assert re.search(r'v-failed">FAILED</span>\s*<span class="o-failed">2 failed', page), page
    warns = page[page.index("<code>test_inner.py::test_warns</code>"):]
    assert re.search(r'<span class="splat">[^\n]*lkdtm_WARNING', warns), warns
