"""The invalid-geometry table of the VM test, checked against the server's model of the kernel."""

from __future__ import annotations

import re

import pytest

from guest.muse import cli
from guest.muse.errors import ConfigError
from tests.integration.geometry_cases import BASE, CASES, Case


def dry_run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    assert cli.main(["serve", *argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    return dict(re.findall(r"^(kernel|fixed kernel)=(.*)$", out, re.M))


def test_the_base_geometry_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    verdicts = dry_run([*BASE.split(), "--unchecked", "--init-param", "SIZE=8388608"], capsys)
    assert verdicts == {"kernel": "accepts", "fixed kernel": "accepts"}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_each_case_breaks_its_rule(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    verdicts = dry_run(case.argv, capsys)
    assert verdicts["fixed kernel"].startswith("refuses: "), verdicts
    assert case.why in verdicts["fixed kernel"], verdicts
    if case.fixed_only:
        assert verdicts["kernel"] == "accepts", verdicts
    else:
        assert case.why in verdicts["kernel"], verdicts


def test_the_table_has_one_case_per_rule() -> None:
    assert len({case.rule for case in CASES}) == len(CASES)
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [c for c in CASES if c.why != "does not parse"],
                         ids=lambda c: c.id)
def test_the_checked_server_refuses_it_itself(case: Case) -> None:
    # The geometry the kernel would see, validated as a server without --unchecked does.
    geometry = cli.build_config(cli.build_parser().parse_args(["serve", *case.argv])).geometry
    with pytest.raises(ConfigError, match=re.escape(case.why)):
        geometry.validate()
