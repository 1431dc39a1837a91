"""edit-loop's scratch copy and its reading of the build lock wait (no build, no VM)."""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path

import pytest

from harness.kernel.kconfig import flavour, load_flavours
from harness.proc import file_lock
from harness.tools import editloop


def test_scratch_copy_gets_a_flavour_of_its_own(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / "kernel").mkdir(parents=True)
    (repo / "kernel/flavours.toml").write_text('[default]\nfragments = ["base.config"]\n')
    (repo / "reports").mkdir()
    (repo / "reports/big.json").write_text("{}")
    monkeypatch.setattr(editloop, "REPO", repo)
    monkeypatch.setenv("MUSE_HARNESS_CACHE", str(tmp_path / "cache"))
    scratch = editloop.scratch_checkout(editloop.EditLoopOptions())
    flavours = load_flavours(scratch / "kernel/flavours.toml")
    wanted = [f.name for f in flavour("default").fragments]
    assert [f.name for f in flavours[editloop.FLAVOUR].fragments] == wanted
    assert not (scratch / "reports").exists()      # reports stay out of the copy
    # A second run starts from the checkout again: one editloop flavour, not two.
    again = editloop.scratch_checkout(editloop.EditLoopOptions())
    assert (again / "kernel/flavours.toml").read_text().count(f"[{editloop.FLAVOUR}]") == 1


def test_lock_wait_is_read_from_what_the_lock_says(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    lock = tmp_path / "build.lock"
    with file_lock(lock, busy="never said"):  # a free lock is taken silently
        pass
    assert capsys.readouterr().err == ""
    holder = lock.open("w")
    fcntl.flock(holder, fcntl.LOCK_EX)       # another "process" holds it for a while
    threading.Timer(1.2, holder.close).start()
    with file_lock(lock, busy="waiting for the build lock"):
        pass
    said = capsys.readouterr().err
    assert "waiting for the build lock" in said
    assert [int(m) for m in editloop.LOCK_WAIT.findall(said)] in ([1], [2])
