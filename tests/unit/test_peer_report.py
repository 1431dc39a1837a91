"""The peer table from a peer run's JUnit file (harness/report/peer.py)."""

from __future__ import annotations

import json
from pathlib import Path

from harness.report.peer import peer_rows, write_peer


def _case(name: str, props: dict[str, str], failed: bool = False) -> str:
    inner = "".join(f'<property name="{k}" value="{v}"/>' for k, v in props.items())
    fail = '<failure message="muse failed"/>' if failed else ""
    return (f'<testcase classname="tests.integration.test_peer" name="{name}" time="3.0">'
            f"<properties>{inner}</properties>{fail}</testcase>")


def _junit(tmp_path: Path) -> Path:
    same = {"peer_suite": "mtd-tests", "peer_test": "flash_readtest", "peer_pair": "nor",
            "peer_control": "passed", "peer_muse": "passed", "peer_control_seconds": "1.5",
            "peer_muse_seconds": "4.0"}
    differ = {"peer_suite": "mtd-tests", "peer_test": "nandbiterrs-incremental",
              "peer_pair": "nand-slc", "peer_control": "failed (1)", "peer_muse": "passed",
              "peer_control_seconds": "0.5", "peer_muse_seconds": "2.0",
              "peer_note": "nandsim limitation"}
    muse_fails = {"peer_suite": "ubi-tests", "peer_test": "io_basic", "peer_pair": "nand-slc",
                  "peer_control": "passed", "peer_muse": "timeout"}
    other = _case("test_unrelated", {"outcome": "passed"})
    path = tmp_path / "junit.xml"
    path.write_text("<testsuites><testsuite>" + _case("test_mtd_tests[a]", same)
                    + _case("test_mtd_tests[b]", differ)
                    + _case("test_ubi_tests[c]", muse_fails, failed=True) + other
                    + "</testsuite></testsuites>")
    return path


def test_rows_that_differ_come_first(tmp_path: Path) -> None:
    rows = peer_rows(_junit(tmp_path))
    assert [(r.test, r.differs) for r in rows] == [
        ("nandbiterrs-incremental", True), ("io_basic", True), ("flash_readtest", False)]
    assert rows[2].muse_seconds == 4.0 and rows[1].muse_seconds is None


def test_markdown_and_json_are_written(tmp_path: Path) -> None:
    write_peer(tmp_path, _junit(tmp_path))
    table = (tmp_path / "peer.md").read_text()
    assert "2 of 3 rows differ" in table
    assert "| mtd-tests | 2 | 6.0 s | 2.0 s |" in table and "| ubi-tests | 1 | 0.0 s |" in table
    assert ("| mtd-tests | **nandbiterrs-incremental** | nand-slc | passed | failed (1) "
            "| 2.0 s | 0.5 s | nandsim limitation |") in table
    data = json.loads((tmp_path / "peer.json").read_text())
    assert [d["differs"] for d in data] == [True, True, False]
