"""Bases are data: kernel/series/<base>/ makes a base known; an unknown one fails at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli
from harness.errors import SeriesError
from harness.kernel import build, kconfig
from harness.kernel.build import BuildRequest
from harness.kernel.kconfig import flavour, load_flavours
from harness.kernel.series import known_bases, read_series
from harness.options import DEFAULT_BASE


def test_both_bases_are_known_and_the_default_is_the_newest() -> None:
    assert known_bases()[-2:] == ["6.1", "6.12"]
    assert known_bases()[-1] == DEFAULT_BASE
    for base in ("6.1", "6.12"):
        series = read_series(base)
        assert len(series.patches) == 39 and series.fixes == 32
        assert series.extensions == 2
        assert len(read_series(base, as_posted=True).patches) == 7
    names = [p.name for p in read_series("6.1").patches]
    assert names == [p.name for p in read_series("6.12").patches]


def test_an_unknown_base_fails_before_anything_is_installed(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def no_source(*args: object) -> None:
        raise AssertionError("get_source ran for an unknown base")

    monkeypatch.setattr(build, "get_source", no_source)
    with pytest.raises(SeriesError, match=r"no series for base '9\.9'.*known bases: .*6\.1, 6\.12"):
        build.build_kernel(BuildRequest(base="9.9"))
    assert cli.main(["build", "--base", "9.9"]) == 2
    assert "known bases: " in capsys.readouterr().err


def test_a_fragment_of_a_base_of_its_own_wins(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert flavour("default", "6.12").fragments == flavour("default").fragments
    (tmp_path / "9.9").mkdir()
    for name in ("a.config", "b.config", "9.9/b.config"):
        (tmp_path / name).write_text("CONFIG_X=y\n")
    toml = tmp_path / "flavours.toml"
    toml.write_text('[f]\nfragments = ["a.config", "b.config"]\n')
    monkeypatch.setattr(kconfig, "CONFIGS_DIR", tmp_path)
    assert load_flavours(toml, "9.9")["f"].fragments == (tmp_path / "a.config",
                                                        tmp_path / "9.9" / "b.config")
    assert load_flavours(toml, "9.8")["f"].fragments == (tmp_path / "a.config",
                                                        tmp_path / "b.config")
