"""Mutation check: break a feature on purpose and show that the tests bite.

A mutation is a patch in kernel/mutations/<base>/ applied on top of the
series; its commit message names the tests it must make fail
("Expect-Fail: <pytest node id>"). Mutants are built in a directory of their
own beside the flavour's (<flavour>-mutant): with MUSE as a module, each
mutant after the first rebuilds little more than muse.ko, and the flavour's
kernel is never replaced under a running VM.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.paths import KERNEL_DIR, REPO
from harness.proc import say
from harness.report import junit_counts, junit_outcomes

EXPECT = "Expect-Fail:"


@dataclass(frozen=True)
class Mutation:
    name: str
    patch: Path
    expect_fail: tuple[str, ...]


def mutations_dir(base: str) -> Path:
    return KERNEL_DIR / "mutations" / base


def load(base: str, name: str | None = None) -> list[Mutation]:
    found = []
    for patch in sorted(mutations_dir(base).glob("*.patch")):
        lines = patch.read_text().splitlines()
        expect = tuple(ln[len(EXPECT):].strip() for ln in lines if ln.startswith(EXPECT))
        if not expect:
            raise HarnessError(f"{patch}: no '{EXPECT} <test>' line: a mutation must name "
                               "the tests it breaks")
        found.append(Mutation(patch.stem, patch, expect))
    if name is not None:
        found = [m for m in found if m.name == name]
        if not found:
            raise HarnessError(f"no mutation {name!r} in {mutations_dir(base)}")
    return found


def patch_for(base: str, name: str) -> Path:
    return load(base, name)[0].patch


@dataclass
class Verdict:
    mutation: str
    killed: bool
    failed: list[str]
    survived: list[str]


def run_mutation(mutation: Mutation, pytest_args: list[str], reports: Path) -> Verdict:
    junit = reports / f"mutation-{mutation.name}.xml"
    cmd = [sys.executable, "-m", "pytest", *mutation.expect_fail, f"--mutation={mutation.name}",
           f"--junitxml={junit}", f"--reports={reports / ('mutation-' + mutation.name)}",
           "-q", *pytest_args]
    say(f"mutation {mutation.name}: running {len(mutation.expect_fail)} tests on the mutant")
    subprocess.run(cmd, cwd=REPO, check=False)
    outcomes = junit_outcomes(junit)
    if junit_counts(junit)["total"] == 0:
        raise HarnessError(f"mutation {mutation.name}: no test ran (see {junit})")
    def broke(test: str) -> bool:
        # A parametrized test counts as broken when every instance of it failed.
        runs = [o for name, o in outcomes.items() if name == test or name.startswith(test + "[")]
        return bool(runs) and all(o in ("failed", "errors") for o in runs)

    failed = [t for t in mutation.expect_fail if broke(t)]
    survived = [t for t in mutation.expect_fail if t not in failed]
    return Verdict(mutation.name, not survived, failed, survived)


def check_mutations(base: str, name: str | None, pytest_args: list[str],
                    reports: Path) -> bool:
    reports.mkdir(parents=True, exist_ok=True)
    verdicts = [run_mutation(m, pytest_args, reports) for m in load(base, name)]
    (reports / "mutations.json").write_text(
        json.dumps([asdict(v) for v in verdicts], indent=2) + "\n")
    for verdict in verdicts:
        state = "killed" if verdict.killed else "SURVIVED"
        print(f"{verdict.mutation:30} {state:9} failed: {len(verdict.failed)}, "
              f"passed on the mutant: {len(verdict.survived)}")
        for test in verdict.survived:
            print(f"    still passes: {test}")
    return all(v.killed for v in verdicts)
