"""run.json and reproduce.sh (harness/report/runinfo.py), written before a run starts."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from harness.report.runinfo import COMMAND_ENV, finish_run, read_run, rerun_command, start_run


def test_reproducer_and_run_file_before_the_work(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(COMMAND_ENV, raising=False)
    run = start_run(tmp_path, ["muse-harness", "check", "--base", "6.12", "-k", "a b"],
                    {"base": "6.12", "flavour": "debug", "series_id": "ad17a5e98a87bf3f"})
    script = (tmp_path / "reproduce.sh").read_text()
    assert script.startswith("#!/bin/sh\n")
    assert "muse-harness check --base 6.12 -k 'a b'\n" in script
    for fact in ("# base: 6.12", "# flavour: debug", "# series_id: ad17a5e98a87bf3f",
                 "# harness commit: ", "# qemu: ", "# gcc: ", "# linux-source-6.12: "):
        assert fact in script
    assert f"cd {os.getcwd()}" in script
    assert os.stat(tmp_path / "reproduce.sh").st_mode & stat.S_IXUSR
    assert read_run(tmp_path)["command"] == run["command"]
    # A pytest run inside this one adds its facts; the run's own stay.
    inner = {**json.loads((tmp_path / "run.json").read_text()), "pytest_args": ["--base=6.12"],
             "command": "inner"}
    (tmp_path / "run.json").write_text(json.dumps(inner))
    finish_run(tmp_path, run)
    done = read_run(tmp_path)
    assert done["command"] == run["command"] and done["pytest_args"] == ["--base=6.12"]
    assert done["wall_seconds"] >= 0


def test_a_tool_names_itself_to_the_pytest_run_inside(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(COMMAND_ENV, "muse-harness bugs --base 6.12")
    run = start_run(tmp_path, ["python", "-m", "pytest", "tests/x.py"], {"base": "6.12"})
    assert run["command"] == "muse-harness bugs --base 6.12"
    assert run["own_command"] == "python -m pytest tests/x.py"


def test_rerun_command() -> None:
    run = {"python": "/v/bin/python", "pytest_args": ["--base=6.1", "--as-posted"],
           "cwd": "/work", "rootdir": "/repo"}
    assert rerun_command(run, "tests/t.py::test_x[a b]", "debug") == (
        "cd /repo && /v/bin/python -m pytest 'tests/t.py::test_x[a b]' --base=6.1 "
        "--as-posted --reports=reports/rerun --flavours=debug")
    assert rerun_command({"cwd": "/w"}, "t", None) == ""
