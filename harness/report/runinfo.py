"""run.json: what started a run, written before its work starts and completed at its end.

It holds the command to reproduce the whole run, the directory it ran in, the
harness commit and the kernel and VM options as pytest arguments, from which
the page makes the one command that reruns a single failed test.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness.paths import REPO

RUN_FILE = "run.json"
# A tool that runs pytest (check, bugs, matrix) names itself to the pytest run, so that
# the run's reproduce command is the tool's, not the pytest line the tool made up.
COMMAND_ENV = "MUSE_HARNESS_COMMAND"


def invocation() -> list[str]:
    """This process's command line as one can type it again (python -m harness.cli
    shows as .../harness/cli.py in sys.argv)."""
    argv = list(sys.argv)
    if argv and argv[0].endswith("harness/cli.py"):
        return [sys.executable, "-m", "harness.cli", *argv[1:]]
    return argv


def harness_commit() -> str:
    """git describe of the checkout ("-dirty" when it has uncommitted changes)."""
    try:
        out = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty",
                              "--abbrev=12"], capture_output=True, text=True, timeout=30,
                             check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return (out.stdout.strip().splitlines() or ["not found"])[0]


def tool_versions(bases: list[str]) -> dict[str, str]:
    """QEMU, the compilers and the kernel source packages this run can use."""
    versions = {"qemu": _first_line(["qemu-system-x86_64", "--version"]),
                "gcc": _first_line(["gcc", "--version"]),
                "clang": _first_line(["clang", "--version"])}
    for base in bases:
        versions[f"linux-source-{base}"] = _first_line(
            ["dpkg-query", "-W", "-f=${Version}\n", f"linux-source-{base}"])
    return versions


def start_run(reports: Path, command: list[str], facts: dict[str, Any]) -> dict[str, Any]:
    """Write run.json and reproduce.sh before the work starts; the returned dict goes
    to finish_run()."""
    bases = [str(b) for b in facts.get("bases", [facts["base"]] if facts.get("base") else [])]
    run: dict[str, Any] = {
        "command": os.environ.get(COMMAND_ENV) or shlex.join(command),
        "own_command": shlex.join(command), "cwd": os.getcwd(),
        "commit": harness_commit(), "started": time.time(),
        "versions": tool_versions(bases), **facts,
    }
    _write(reports, run)
    _write_reproducer(reports, run)
    return run


def _write_reproducer(reports: Path, run: dict[str, Any]) -> None:
    facts = [f"# {key}: {run[key]}" for key in ("base", "bases", "flavour", "flavours",
                                                 "as_posted", "series_id")
             if run.get(key) not in (None, "", False)]
    versions = [f"# {name}: {value}" for name, value in run["versions"].items()]
    path = reports / "reproduce.sh"
    path.write_text("\n".join([
        "#!/bin/sh",
        f"# Reproduce this run ({time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}).",
        f"# harness commit: {run['commit']} (check it out first)", *facts, *versions,
        "set -e", f"cd {shlex.quote(run['cwd'])}", run["command"], ""]))
    path.chmod(0o755)


def finish_run(reports: Path, run: dict[str, Any], **facts: Any) -> None:
    """Complete run.json. A pytest run inside this one (check's) wrote the same file
    meanwhile: its extra facts (the rerun arguments) stay, this run's own win."""
    run.update(facts, finished=time.time(), wall_seconds=round(time.time() - run["started"], 1))
    _write(reports, {**read_run(reports), **run})


def read_run(reports: Path) -> dict[str, Any]:
    path = reports / RUN_FILE
    if not path.is_file():
        return {}
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def rerun_command(run: dict[str, Any], nodeid: str, flavour: str | None) -> str:
    """The command that reruns one test on the same kernel and VM options, or ""."""
    if "pytest_args" not in run:
        return ""
    args = [run.get("python", "python3"), "-m", "pytest", nodeid, *run["pytest_args"],
            "--reports=reports/rerun"]
    if flavour:
        args.append(f"--flavours={flavour}")
    # Node ids are relative to pytest's rootdir.
    return f"cd {shlex.quote(run.get('rootdir') or run['cwd'])} && {shlex.join(args)}"


def _write(reports: Path, run: dict[str, Any]) -> None:
    reports.mkdir(parents=True, exist_ok=True)
    (reports / RUN_FILE).write_text(json.dumps(run, indent=2, default=str) + "\n")
