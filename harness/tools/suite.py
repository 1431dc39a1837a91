"""One way for a tool to run the suite: run_suite(SuiteRequest) -> SuiteResult.

check, bugs and mutate all run pytest with the plugin the same way: a
command line made here from the request (the kernel as a BuildRequest, so
base, flavour, tree, fixes and extra patches mean the same as for a build),
in a process group of its own under a deadline (harness.proc.run_group),
with its JUnit XML read back by the one reader in junit.py.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.kernel.build import FRESH_BUILD_ENV, BuildRequest
from harness.options import (
    DEFAULT_GUEST_IDLE,
    DEFAULT_MEMORY_MB,
    DEFAULT_SMP,
    DEFAULT_TCG_THREADS,
)
from harness.paths import REPO
from harness.proc import run_group, say
from harness.report.junit import junit_counts, junit_outcomes
from harness.report.runinfo import COMMAND_ENV, invocation

SUITE_TIMEOUT = 3 * 3600.0


@dataclass(frozen=True)
class SuiteRequest:
    kernel: BuildRequest
    reports: Path                       # junit.xml, consoles/ and session files go here
    paths: tuple[str, ...] = ("tests",)
    k: str | None = None
    workers: int = 1
    smp: int = DEFAULT_SMP
    memory_mb: int = DEFAULT_MEMORY_MB
    tcg_threads: str = DEFAULT_TCG_THREADS
    guest_idle: str = DEFAULT_GUEST_IDLE
    timeout: float = SUITE_TIMEOUT
    pytest_args: tuple[str, ...] = ()   # more pytest options ("-q", "--flavours=...")
    # Retries of a failed test on a fresh VM (None: the plugin's default, 1). bugs and
    # mutate expect failures: they ask for none.
    retries: int | None = None
    what: str = "the suite"
    # The kernel in this build directory was just built by the caller: the pytest run
    # need not walk a user tree again (see kernel.build).
    fresh_build: Path | None = None
    junit_name: str = "junit.xml"


@dataclass(frozen=True)
class SuiteResult:
    exit_code: int          # pytest's; 124 when the deadline stopped it
    junit: Path
    outcomes: dict[str, str] = field(default_factory=dict)   # node id -> outcome
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def pytest_command(request: SuiteRequest) -> list[str]:
    kernel = request.kernel
    junit = request.reports / request.junit_name
    cmd = [sys.executable, "-m", "pytest", *request.paths, f"--junitxml={junit}",
           f"--reports={request.reports}", *kernel.as_args(), f"--smp={request.smp}",
           f"--memory={request.memory_mb}", f"--tcg-threads={request.tcg_threads}",
           f"--guest-idle={request.guest_idle}", "-ra"]
    if request.k:
        cmd += ["-k", request.k]
    if request.workers > 1:
        # worksteal: a worker that ran out takes queued tests from the other; plain load
        # scheduling left one worker idle with the fast unit tests done and the VM tests
        # of the debug flavour queued on the other.
        cmd += ["-n", str(request.workers), "--dist", "worksteal"]
    if request.retries is not None:
        cmd.append(f"--reruns={request.retries}")
    return [*cmd, *request.pytest_args]


def run_suite(request: SuiteRequest) -> SuiteResult:
    """Run the tests the request names; their outcomes as the JUnit file records them."""
    request.reports.mkdir(parents=True, exist_ok=True)
    junit = request.reports / request.junit_name
    junit.unlink(missing_ok=True)
    for stale in request.reports.glob("session-*.json"):
        stale.unlink()
    cmd = pytest_command(request)
    # The run's reproduce command is the tool's own command line, not this pytest line.
    env = dict(os.environ)
    env.setdefault(COMMAND_ENV, shlex.join(invocation()))
    if request.fresh_build:
        env[FRESH_BUILD_ENV] = str(request.fresh_build)
    say("running: " + shlex.join(cmd))
    start = time.monotonic()
    rc = run_group(cmd, request.timeout, REPO, request.what, env)
    return SuiteResult(rc, junit, junit_outcomes(junit), junit_counts(junit),
                       round(time.monotonic() - start, 1))
