"""summary.json from JUnit XML and worker session files."""

from __future__ import annotations

import json
from pathlib import Path

from harness.pytest.testguest import Ledger, program
from harness.report.summary import write_summary

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="4">
<testcase classname="t" name="ok"/>
<testcase classname="t" name="bad"><failure message="boom">x</failure></testcase>
<testcase classname="t" name="err"><error message="setup">y</error></testcase>
<testcase classname="t" name="skip"><skipped message="no"/></testcase>
</testsuite></testsuites>
"""


def test_summary_counts_and_boot_median(tmp_path: Path) -> None:
    (tmp_path / "junit.xml").write_text(JUNIT)
    for worker, boots in (("gw0", [6.0, 9.0]), ("gw1", [7.0])):
        (tmp_path / f"session-{worker}.json").write_text(json.dumps(
            {"worker": worker, "accel": "tcg", "accel_reason": "probe", "boot_seconds": boots}))
    summary = write_summary(tmp_path, {"base": "6.1", "flavour": "default", "as_posted": False,
                                       "kernel": {"release": "6.1", "origin": "o", "patches": [],
                                                  "rebuilt": False, "seconds": 1},
                                       "wall_seconds": 3.0})
    assert summary["tests"] == {"passed": 1, "failed": 1, "errors": 1, "skipped": 1, "total": 4}
    assert summary["accel"] == "tcg"
    assert summary["boot_seconds_median"] == 7.0
    # Without the plugin's outcome properties an error counts as a failure.
    assert [f["test"] for f in summary["failures"]] == ["t.py::bad", "t.py::err"]
    assert summary["classes"] == {"failed": 2, "skipped": 1, "passed": 1}
    assert summary["exit_code"] == 1
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["tests"]["failed"] == 1
    assert "| tests | 2 failed, 1 skipped, 1 passed |" in (tmp_path / "report.md").read_text()


def test_summary_carries_classes_and_reasons(tmp_path: Path) -> None:
    recorded = Path(__file__).resolve().parent.parent / "data" / "junit" / "outcomes.xml"
    (tmp_path / "junit.xml").write_text(recorded.read_text())
    summary = write_summary(tmp_path, {"base": "6.12", "flavour": "default", "as_posted": False,
                                       "kernel": {"release": "6.12", "origin": "o",
                                                  "patches": [], "rebuilt": False,
                                                  "seconds": 1},
                                       "wall_seconds": 3.0})
    assert summary["exit_code"] == 1
    by_test = {f["test"].split("::")[-1]: f for f in summary["failures"]}
    assert by_test["test_flaky"]["class"] == "flaky"
    assert by_test["test_vm_never_booted"]["class"] == "error-infra"
    report = (tmp_path / "report.md").read_text()
    assert "| `test_f.py::test_ssh_died` | error-infra | VMError: the SSH connection" in report


LEDGERS = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="2">
<testcase classname="t" name="heavy" time="40.0"><properties>
<property name="guest_command_seconds" value="25.5"/><property name="end_seconds" value="3.0"/>
<property name="guest_programs"
 value='{"python3 -m guest.muse ctl": [20, 14.5], "mount": [2, 11.0]}'/>
</properties></testcase>
<testcase classname="t" name="light" time="12.0"><properties>
<property name="guest_command_seconds" value="4.5"/><property name="end_seconds" value="1.0"/>
<property name="guest_programs" value='{"python3 -m guest.muse ctl": [3, 4.5]}'/>
</properties></testcase>
</testsuite></testsuites>
"""


def test_the_summary_splits_the_tests_time_by_their_ledgers(tmp_path: Path) -> None:
    (tmp_path / "junit.xml").write_text(LEDGERS)
    (tmp_path / "session-gw0.json").write_text(json.dumps({"boot_seconds": [6.0]}))
    summary = write_summary(tmp_path, {"base": "6.12", "flavour": "default", "as_posted": False,
                                       "kernel": {"release": "6.12", "origin": "o",
                                                  "patches": [], "rebuilt": False,
                                                  "seconds": 1},
                                       "wall_seconds": 60.0})
    assert summary["time_split"] == {"tests": 52.0, "guest_commands": 30.0, "test_ends": 4.0,
                                     "boots": 6.0, "rest": 12.0}
    assert summary["guest_programs"] == [
        {"program": "python3 -m guest.muse ctl", "runs": 23, "seconds": 19.0},
        {"program": "mount", "runs": 2, "seconds": 11.0}]
    report = (tmp_path / "report.md").read_text()
    assert "guest commands 30.0 s, ends of tests 4.0 s, boots 6.0 s, the rest 12.0 s" in report
    assert "| `python3 -m guest.muse ctl` | 23 | 19.0 |" in report


def test_the_ledger_sums_by_program() -> None:
    ledger = Ledger()
    for command, seconds in (("python3 -m guest.muse ctl --control /c get", 0.5),
                             ("python3 -m guest.muse ctl --control /c stats", 0.25),
                             ("python3 -m guest.stallprobe --timeout 3", 1.0),
                             ("mount -t ubifs ubi0:v /mnt", 2.0)):
        ledger.record(command, seconds)
    assert ledger.programs == {"python3 -m guest.muse ctl": [2, 0.75],
                               "python3 -m guest.stallprobe": [1, 1.0], "mount": [1, 2.0]}
    props = dict(ledger.properties())
    assert props["guest_commands"] == "4" and props["guest_command_seconds"] == "3.75"
    assert props["guest_slowest_command"] == "2.00 s: mount -t ubifs ubi0:v /mnt"
    assert program("") == "" and program("set -e\nfor i in 1 2; do x; done") == "set"
