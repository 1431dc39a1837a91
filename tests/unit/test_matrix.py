"""muse-harness matrix: JUnit records of each base's run become one table."""

from __future__ import annotations

from pathlib import Path

from harness.report.junit import junit_records
from harness.tools.matrix import column, render, rows_of

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite>
<testcase classname="tests.integration.test_a" name="test_x" time="3.5"><properties>
<property name="base" value="{base}"/><property name="flavour" value="default"/></properties>
{x}</testcase>
<testcase classname="tests.integration.test_a" name="test_y" time="1"><properties>
<property name="base" value="{base}"/><property name="flavour" value="partmaster"/>
{splats}</properties></testcase>
<testcase classname="tests.unit.test_u" name="test_host" time="0.1"/>
</testsuite></testsuites>
"""


def _junit(tmp_path: Path, base: str, x: str = "", splats: str = "") -> Path:
    path = tmp_path / f"{base}.xml"
    path.write_text(JUNIT.format(base=base, x=x, splats=splats))
    return path


def test_rows_per_test_columns_per_base_and_flavour(tmp_path: Path) -> None:
    records = {
        "6.1": junit_records(_junit(tmp_path, "6.1")),
        "6.12": junit_records(_junit(
            tmp_path, "6.12", x='<failure message="boom"/>',
            splats='<property name="splats" value="WARNING: CPU: 0 at x"/>')),
    }
    rows = rows_of(records)
    # The unit test ran on no kernel: not in the matrix. The differing row comes first.
    assert [r.test for r in rows] == ["tests/integration/test_a.py::test_x",
                                      "tests/integration/test_a.py::test_y"]
    assert rows[0].differs and not rows[1].differs
    assert rows[0].cells[column("6.12", "default")].outcome == "failed"
    assert rows[0].cells[column("6.1", "default")].seconds == 3.5
    assert rows[1].cells[column("6.12", "partmaster")].splats == "WARNING: CPU: 0 at x"
    columns = [column(b, f) for b in ("6.1", "6.12") for f in ("default", "partmaster")]
    text = render(rows, columns, {"6.1": {"pytest_exit": 0, "seconds": 1},
                                  "6.12": {"pytest_exit": 1, "seconds": 2}})
    assert "| test | 6.1/default | 6.1/partmaster | 6.12/default | 6.12/partmaster |" in text
    assert "| **differs** `tests/integration/test_a.py::test_x` | passed 3.5s |  | " \
           "failed 3.5s |  |" in text
    assert "2 tests, 1 with outcomes that differ" in text
