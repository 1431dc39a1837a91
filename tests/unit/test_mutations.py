"""Mutation patches name the tests they break; JUnit outcomes map back to node ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.report.junit import junit_outcomes
from harness.tools import mutate as mutations


def test_shipped_mutations_name_existing_tests() -> None:
    found = mutations.load("6.1")
    assert {m.name for m in found} >= {"drop-muse-pid", "teardown-ignores-users"}
    root = Path(__file__).resolve().parents[2]
    for mutation in found:
        for test in mutation.expect_fail:
            path, _, name = test.partition("::")
            assert f"def {name}(" in (root / path).read_text(), test


def test_mutation_without_expectations_is_refused(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "9.9").mkdir()
    (tmp_path / "9.9" / "x.patch").write_text("Subject: [PATCH] x\n\n---\n")
    monkeypatch.setattr(mutations, "MUTATIONS_DIR", tmp_path)
    with pytest.raises(HarnessError, match="Expect-Fail"):
        mutations.load("9.9")


def test_a_base_of_its_own_overrides_a_shared_mutation(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "9.9").mkdir()
    for path, test in ((tmp_path / "m.patch", "t::shared"),
                       (tmp_path / "9.9" / "m.patch", "t::own"),
                       (tmp_path / "n.patch", "t::n")):
        path.write_text(f"Subject: [PATCH] m\n\nExpect-Fail: {test}\n---\n")
    monkeypatch.setattr(mutations, "MUTATIONS_DIR", tmp_path)
    assert {m.name: m.expect_fail for m in mutations.load("9.9")} == {
        "m": ("t::own",), "n": ("t::n",)}
    assert mutations.load("9.8")[0].expect_fail == ("t::shared",)


def test_junit_outcomes_map_to_node_ids(tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    junit.write_text(
        '<testsuites><testsuite>'
        '<testcase classname="tests.integration.test_a" name="test_x"/>'
        '<testcase classname="tests.integration.test_a" name="test_y[1]">'
        '<failure message="m"/></testcase>'
        '<testcase classname="tests.integration.test_b.TestK" name="test_z">'
        '<error message="e"/></testcase>'
        '</testsuite></testsuites>')
    assert junit_outcomes(junit) == {
        "tests/integration/test_a.py::test_x": "passed",
        "tests/integration/test_a.py::test_y[1]": "failed",
        "tests/integration/test_b/TestK.py::test_z": "errors",
    }
