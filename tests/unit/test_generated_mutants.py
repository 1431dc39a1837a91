"""mutate --generate's patches and its equivalence file (harness/tools/generated_mutants.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.kernel.mutants import generate
from harness.tools import generated_mutants as gm

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "mutants" / "sample.c"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo),
                    *args], check=True, capture_output=True)


@pytest.mark.parametrize("operator", ["errno", "pair", "delete", "negate-cond"])
def test_a_mutant_patch_applies_with_git_am(tmp_path: Path, operator: str) -> None:
    lines = SAMPLE.read_text().splitlines()
    mutant = next(m for m in generate(lines) if m.operator == operator)
    target = tmp_path / gm.TARGET
    target.parent.mkdir(parents=True)
    target.write_text(SAMPLE.read_text())
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "base")
    patch = tmp_path / "m.patch"
    patch.write_text(gm.patch_text(mutant, lines))
    _git(tmp_path, "am", "-q", str(patch))
    assert target.read_text().splitlines() == mutant.apply(lines)
    assert target.read_text().splitlines() != lines


def test_equivalents_need_an_argument(tmp_path: Path) -> None:
    good = tmp_path / "eq.txt"
    good.write_text("# id  why\ndelete-12 the value is written again before any read\n\n")
    assert gm.equivalents(good) == {"delete-12": "the value is written again before any read"}
    bad = tmp_path / "bad.txt"
    bad.write_text("delete-12\n")
    with pytest.raises(HarnessError, match="no argument"):
        gm.equivalents(bad)
    assert gm.equivalents(tmp_path / "absent.txt") == {}
