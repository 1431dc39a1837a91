"""Mutation check: break a feature on purpose and show that the tests bite.

A mutation is a patch in kernel/mutations/ (or kernel/mutations/<base>/,
which wins for a base whose code differs) applied on top of the series;
its commit message names the tests it must make fail
("Expect-Fail: <pytest node id>"). Mutants are built in a directory of their
own beside the flavour's (<flavour>-mutant): with MUSE as a module, each
mutant after the first rebuilds little more than muse.ko, and the flavour's
kernel is never replaced under a running VM.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness.errors import HarnessError
from harness.kernel.build import BuildRequest
from harness.options import add_jobs_opt, add_kernel_opts, add_reports_opt
from harness.paths import KERNEL_DIR
from harness.proc import say
from harness.report.junit import cases
from harness.tools.common import Subparsers, kernel_request
from harness.tools.generated_mutants import DEFAULT_TESTS, GenerateRequest, run_generated
from harness.tools.suite import SUITE_TIMEOUT, SuiteRequest, run_suite

EXPECT = "Expect-Fail:"
BUILD_AS = "mutant"


@dataclass(frozen=True)
class Mutation:
    name: str
    patch: Path
    expect_fail: tuple[str, ...]


MUTATIONS_DIR = KERNEL_DIR / "mutations"


def mutation_patches(base: str) -> list[Path]:
    """kernel/mutations/*.patch, each replaced by kernel/mutations/<base>/'s of that name."""
    patches = {p.name: p for p in MUTATIONS_DIR.glob("*.patch")}
    patches.update({p.name: p for p in (MUTATIONS_DIR / base).glob("*.patch")})
    return [patches[name] for name in sorted(patches)]


def load(base: str, name: str | None = None) -> list[Mutation]:
    found = []
    for patch in mutation_patches(base):
        lines = patch.read_text().splitlines()
        expect = tuple(ln[len(EXPECT):].strip() for ln in lines if ln.startswith(EXPECT))
        if not expect:
            raise HarnessError(f"{patch}: no '{EXPECT} <test>' line: a mutation must name "
                               "the tests it breaks")
        found.append(Mutation(patch.stem, patch, expect))
    if name is not None:
        found = [m for m in found if m.name == name]
        if not found:
            raise HarnessError(f"no mutation {name!r} for base {base} in {MUTATIONS_DIR}")
    return found


@dataclass
class Verdict:
    mutation: str
    killed: bool
    failed: list[str]
    survived: list[str]


def run_mutation(mutation: Mutation, kernel: BuildRequest, reports: Path,
                 timeout: float) -> Verdict:
    """The mutant's named tests, on a kernel built with the mutation on top."""
    say(f"mutation {mutation.name}: running {len(mutation.expect_fail)} tests on the mutant")
    result = run_suite(SuiteRequest(
        kernel=replace(kernel, extra_patches=(mutation.patch,), build_as=BUILD_AS),
        reports=reports / f"mutation-{mutation.name}", paths=mutation.expect_fail,
        timeout=timeout, pytest_args=("-q",), retries=0, what=f"mutation {mutation.name}"))
    if result.counts["total"] == 0:
        raise HarnessError(f"mutation {mutation.name}: no test ran (exit {result.exit_code}; "
                           f"see {result.junit})")

    def broke(test: str) -> bool:
        # A parametrized test counts as broken when every instance of it failed.
        runs = cases(test, result.outcomes).values()
        return bool(runs) and all(o in ("failed", "errors") for o in runs)

    failed = [t for t in mutation.expect_fail if broke(t)]
    survived = [t for t in mutation.expect_fail if t not in failed]
    return Verdict(mutation.name, not survived, failed, survived)


def check_mutations(kernel: BuildRequest, name: str | None, reports: Path,
                    timeout: float = SUITE_TIMEOUT) -> bool:
    reports.mkdir(parents=True, exist_ok=True)
    verdicts = [run_mutation(m, kernel, reports, timeout) for m in load(kernel.base, name)]
    (reports / "mutations.json").write_text(
        json.dumps([asdict(v) for v in verdicts], indent=2) + "\n")
    for verdict in verdicts:
        state = "killed" if verdict.killed else "SURVIVED"
        print(f"{verdict.mutation:30} {state:9} failed: {len(verdict.failed)}, "
              f"passed on the mutant: {len(verdict.survived)}")
        for test in verdict.survived:
            print(f"    still passes: {test}")
    return all(v.killed for v in verdicts)


def main(args: argparse.Namespace) -> int:
    kernel = kernel_request(args)
    if args.generate:
        return _generated(args, kernel)
    return 0 if check_mutations(kernel, args.mutation, args.reports.resolve(),
                                args.timeout) else 1


def _generated(args: argparse.Namespace, kernel: BuildRequest) -> int:
    tests = tuple(t for t in args.tests.split(",") if t) if args.tests else DEFAULT_TESTS
    data = run_generated(GenerateRequest(
        kernel=kernel, reports=args.reports.resolve(), count=args.sample, seed=args.seed,
        tests=tests, timeout=args.timeout,
        coverage=_coverage_folder(args.coverage) if args.coverage else None,
        max_tests=args.max_tests, budget=args.budget,
        only=tuple(i for i in (args.only or "").split(",") if i),
        update=args.update.resolve() if args.update else None))
    counts = data["counts"]
    assert isinstance(counts, dict)
    print(f"{data['sample']} of {data['generated']} mutants (seed {data['seed']}): "
          + ", ".join(f"{n} {kind}" for kind, n in counts.items())
          + f"; score {data['score']}; median {data['median_seconds']} s a mutant, "
            f"{data['total_seconds']} s in all")
    score = data["score"]
    if args.min_score is not None and (not isinstance(score, float) or score < args.min_score):
        return 1
    return 0


def _coverage_folder(path: Path) -> Path:
    """A coverage run's reports directory or its coverage/ folder."""
    return path / "coverage" if (path / "coverage" / "tests.json").is_file() else path


def register(sub: Subparsers) -> None:
    p = sub.add_parser("mutate", help="build each mutation in kernel/mutations/<base>/ and "
                                      "show the tests it names fail")
    add_kernel_opts(p.add_argument)
    add_jobs_opt(p.add_argument)
    add_reports_opt(p.add_argument)
    p.add_argument("--mutation", help="only this one")
    p.add_argument("--generate", action="store_true",
                   help="generated mutants of muse.c instead of kernel/mutations/")
    p.add_argument("--sample", type=int, help="with --generate: this many, picked by --seed")
    p.add_argument("--seed", type=int, default=1, help="with --sample")
    p.add_argument("--tests", help="with --generate: comma-separated test paths or node ids "
                                   "to judge each mutant (default: the product's four checks)")
    p.add_argument("--coverage", type=Path,
                   help="with --generate: a `muse-harness coverage` run's reports (or its "
                        "coverage/ folder): judge each mutant by the tests that run its line")
    p.add_argument("--max-tests", type=int, default=8,
                   help="with --coverage: the most tests judging one mutant")
    p.add_argument("--only", metavar="ID[,ID...]",
                   help="with --generate: only these mutants of the sample (re-judge survivors, "
                        "e.g. with --flavour debug or new --tests)")
    p.add_argument("--update", type=Path, metavar="GENERATED_JSON",
                   help="with --generate: an earlier run's reports/mutants/generated.json; "
                        "the mutants judged now replace its verdicts, and the score is the "
                        "whole sample's")
    p.add_argument("--budget", type=float,
                   help="with --generate: seconds after which no mutant starts (the rest "
                        "are recorded as not run)")
    p.add_argument("--min-score", type=float,
                   help="with --generate: exit 1 when the killed share is lower")
    p.add_argument("--timeout", type=float, default=SUITE_TIMEOUT, help="for each mutant's run")
    p.set_defaults(func=main)
