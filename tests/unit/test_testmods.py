"""harness/kernel/testmods.py: the test modules build in the build directory, not the repo."""

from __future__ import annotations

import stat
from pathlib import Path

from harness.kernel.testmods import build_testmods, module_sources
from harness.paths import TESTMODS_DIR


def test_sources_are_the_modules_and_their_kbuild() -> None:
    names = [p.name for p in module_sources()]
    assert "Kbuild" in names and "race_delay.c" in names
    assert "race_delay.o" not in names


def fake_make(tmp_path: Path) -> tuple[list[str], Path]:
    calls = tmp_path / "calls"
    script = tmp_path / "make"
    script.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return [str(script), "-C", "/src", "O=/build"], calls


def test_build_and_install_from_a_copy(tmp_path: Path) -> None:
    make, calls = fake_make(tmp_path)
    builddir = tmp_path / "build"
    build_testmods(make, builddir, tmp_path / "build.log")
    work = builddir / "testmods"
    assert sorted(p.name for p in work.iterdir()) == sorted(p.name for p in module_sources())
    lines = calls.read_text().splitlines()
    assert lines[0].endswith(f"M={work} modules")
    assert f"M={work}" in lines[1] and f"INSTALL_MOD_PATH={builddir / 'modroot'}" in lines[1]
    assert lines[1].endswith("modules_install")
    assert not any(TESTMODS_DIR.glob("*.o")), "kbuild output landed in the repository"
