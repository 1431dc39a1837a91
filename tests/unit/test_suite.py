"""run_suite(): the one way tools run pytest; outcomes read back from its JUnit file."""

from __future__ import annotations

from pathlib import Path

from harness.kernel.build import BuildRequest
from harness.report.junit import cases
from harness.tools.suite import SuiteRequest, pytest_command, run_suite

INNER = '''
import pytest, time

def test_ok():
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n == 1

def test_slow():
    if __import__("os").environ.get("SLOW"):
        time.sleep(120)
'''


def test_command_carries_the_kernel_request(tmp_path: Path) -> None:
    kernel = BuildRequest(base="6.1", flavour="debug", kernel_src=Path("/src/linux"),
                          as_posted=True, extra_patches=(Path("/m/x.patch"),), build_as="mutant")
    cmd = pytest_command(SuiteRequest(kernel=kernel, reports=tmp_path, paths=("tests/a.py",),
                                      k="test_x", workers=2, smp=1, memory_mb=512,
                                      pytest_args=("-q",)))
    assert cmd[3] == "tests/a.py" and cmd[-1] == "-q"
    for arg in ("--base=6.1", "--flavour=debug", "--kernel-src=/src/linux", "--as-posted",
                "--extra-patch=/m/x.patch", "--build-as=mutant", "--smp=1", "--memory=512",
                f"--reports={tmp_path}", f"--junitxml={tmp_path / 'junit.xml'}"):
        assert arg in cmd, arg
    assert cmd[cmd.index("-k") + 1] == "test_x" and cmd[cmd.index("-n") + 1] == "2"


def test_outcomes_come_back_by_node_id(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    result = run_suite(SuiteRequest(kernel=BuildRequest(), reports=tmp_path / "r",
                                    paths=(str(tmp_path / "test_inner.py"),), timeout=120))
    assert result.exit_code == 1
    assert result.counts == {"passed": 3, "failed": 1, "errors": 0, "skipped": 0, "total": 4}
    by_name = {k.rsplit("::", 1)[1]: v for k, v in result.outcomes.items()}
    assert by_name == {"test_ok": "passed", "test_param[1]": "passed",
                       "test_param[2]": "failed", "test_slow": "passed"}
    param = next(k for k in result.outcomes if k.endswith("test_param[1]")).split("[")[0]
    assert set(cases(param, result.outcomes).values()) == {"passed", "failed"}


def test_the_deadline_stops_the_run(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    monkeypatch.setenv("SLOW", "1")
    result = run_suite(SuiteRequest(kernel=BuildRequest(), reports=tmp_path / "r",
                                    paths=(str(tmp_path / "test_inner.py"),), k="test_slow",
                                    timeout=5))
    assert result.exit_code == 124 and result.outcomes == {}
    assert result.seconds < 60
