"""Bytecode for the guest's python3, written on the host (harness/machine/guestcode.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from harness.machine import guestcode
from harness.machine.rootfs import GUEST


def _package(tmp_path: Path) -> Path:
    package = tmp_path / "guest"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "mod.py").write_text("VALUE = 1\n")
    return package


def test_bytecode_is_written_for_every_guest_module(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    package = _package(tmp_path)
    monkeypatch.setattr(guestcode, "GUEST_PACKAGE", package)
    monkeypatch.setitem(GUEST, "python", f"{sys.version_info.major}.{sys.version_info.minor}")
    assert guestcode.compile_for_guest()
    for source in package.rglob("*.py"):
        assert Path(importlib.util.cache_from_source(str(source))).is_file(), source


def test_nothing_is_written_for_another_python(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The guest would not read another version's bytecode (another cache tag)."""
    package = _package(tmp_path)
    monkeypatch.setattr(guestcode, "GUEST_PACKAGE", package)
    monkeypatch.setitem(GUEST, "python", "2.7")
    assert not guestcode.compile_for_guest()
    assert not list(package.rglob("__pycache__"))

