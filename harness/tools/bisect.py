"""muse-harness bisect -k TEST: the first patch of the series after which TEST fails.

The series is kernel/series/<base> or --series PATH (an mbox or a directory).
Each step builds the first N patches in one build directory kept for bisect
(<base>-<flavour>-bisect): the scratch repository keeps a commit per patch
chain and restores the mtimes of files that come back unchanged, so a step
rebuilds little more than what the patches between two steps touch. TEST
runs without pytest's retries; a step without a verdict (the VM did not
boot) runs once more, and a second one, or a test that was not collected,
stops the bisect with that step's reports.

The range is --good (default: the patch that adds fs/fuse/muse.c, the first
point where a MUSE test can run) to the whole series; both ends are checked
first. The culprit is then verified: reverted on top of the whole series
(when it reverts cleanly) TEST must pass, else the exit code is 1. reports/bisect.json and bisect.md
keep every step with its times.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from harness.errors import HarnessError
from harness.kernel.build import BuildRequest, build_kernel, build_lock, series_of
from harness.kernel.series import Series, revert_patch, subjects
from harness.kernel.source import get_source
from harness.options import add_jobs_opt, add_kernel_opts, add_reports_opt
from harness.paths import cache_dir
from harness.proc import say
from harness.report.html import reported_run
from harness.report.junit import cases, junit_records
from harness.tools.common import Subparsers, kernel_request
from harness.tools.suite import SuiteRequest, run_suite
from harness.verdict.outcome import FAILED, PASSED

BUILD_AS = "bisect"
STEP_TIMEOUT = 1800.0


@dataclass
class Step:
    upto: int                   # patches applied
    patch: str                  # the last of them
    verdict: str                # good (TEST passed) or bad (TEST failed)
    build_seconds: float
    test_seconds: float
    reports: str


@dataclass
class Bisect:
    test: str
    series: list[str]           # subjects
    series_id: str
    good: int
    bad: int
    steps: list[Step] = field(default_factory=list)
    culprit: int | None = None
    culprit_subject: str = ""
    verification: str = ""      # passes with the culprit reverted / does not revert / ...
    seconds: float = 0.0


def muse_patch(series: Series) -> int:
    """The patch (1-based) that adds fs/fuse/muse.c; 0 when none does."""
    for number, patch in enumerate(series.patches, 1):
        text = patch.read_text(errors="replace")
        if "+++ b/fs/fuse/muse.c" in text and "new file mode" in text:
            return number
    return 0


def _selection(test: str) -> tuple[tuple[str, ...], str | None]:
    """A node id runs as itself; anything else is a -k expression over the suite."""
    return ((test,), None) if "::" in test else (("tests/integration",), test)


def run_step(request: BuildRequest, upto: int, test: str, reports: Path,
             what: str) -> tuple[str, float, float, Path]:
    """Build the first upto patches and run TEST: good or bad, and the times. A run
    without verdict (the VM did not boot: QEMU itself can crash under TCG) is run once
    more; a second one stops the bisect."""
    step = replace(request, upto=upto, build_as=BUILD_AS)
    begin = time.monotonic()
    kernel = build_kernel(step)
    built = round(time.monotonic() - begin, 1)
    paths, k = _selection(test)
    tested = 0.0
    for attempt in (1, 2):
        where = reports / "bisect" / (what if attempt == 1 else f"{what}-again")
        result = run_suite(SuiteRequest(kernel=step, reports=where, paths=paths, k=k, retries=0,
                                        timeout=STEP_TIMEOUT, fresh_build=kernel.builddir,
                                        what=f"bisect {what}: {test}"))
        tested += result.seconds
        records = junit_records(result.junit)
        found = {name: r.klass for name, r in records.items()}
        ran = cases(test, found) if "::" in test else found
        if not ran:
            raise HarnessError(f"bisect {what}: {test} did not run (pytest exit "
                               f"{result.exit_code}); see {where}")
        classes = set(ran.values())
        if FAILED in classes or classes == {PASSED}:
            verdict = "bad" if FAILED in classes else "good"
            say(f"bisect {what}: {verdict} (build {built} s, test {round(tested, 1)} s)")
            return verdict, built, round(tested, 1), where
        say(f"bisect {what}: no verdict ({', '.join(sorted(classes))}); see "
            f"{where / 'index.html'}" + ("; running it once more" if attempt == 1 else ""))
    raise HarnessError(f"bisect {what}: no verdict for {test} twice; see {where / 'index.html'}")


def bisect(request: BuildRequest, test: str, reports: Path, good: int | None) -> Bisect:
    started = time.monotonic()
    series = series_of(request)
    names = subjects(series)
    low = muse_patch(series) if good is None else good
    high = len(series.patches)
    if not 1 <= low < high:
        raise HarnessError(f"bisect: nothing to search between patch {low} and {high}")
    result = Bisect(test, names, series.chain_id(), low, high)

    def step(upto: int) -> str:
        verdict, built, tested, where = run_step(request, upto, test, reports,
                                                 f"step-{len(result.steps) + 1}-upto-{upto}")
        result.steps.append(Step(upto, names[upto - 1], verdict, built, tested, str(where)))
        return verdict

    if step(high) != "bad":
        raise HarnessError(f"bisect: {test} passes with the whole series: nothing to find")
    if step(low) != "good":
        raise HarnessError(f"bisect: {test} fails already at patch {low} ({names[low - 1]}); "
                           "give an earlier --good")
    while high - low > 1:
        middle = (low + high) // 2
        if step(middle) == "good":
            low = middle
        else:
            high = middle
    result.culprit, result.culprit_subject = high, names[high - 1]
    say(f"bisect: first bad patch {high}: {names[high - 1]}")
    result.verification = verify(request, series, high, test, reports)
    result.seconds = round(time.monotonic() - started, 1)
    return result


def verify(request: BuildRequest, series: Series, culprit: int, test: str,
           reports: Path) -> str:
    """TEST on the whole series with the culprit reverted."""
    whole = replace(request, upto=None, build_as=BUILD_AS)
    source = get_source(request.base, request.kernel_src)
    out = cache_dir("bisect") / f"revert-{series.chain_id()}-{culprit}.patch"
    with build_lock():
        patch = revert_patch(source, series, culprit, out)
    if patch is None:
        return f"patch {culprit} does not revert cleanly on top of the whole series"
    verdict, _, _, where = run_step(replace(whole, extra_patches=(patch,)), len(series.patches),
                                    test, reports, "verify-revert")
    return (f"confirmed: {test} passes with patch {culprit} reverted on the whole series"
            if verdict == "good" else
            f"not confirmed: {test} still fails with patch {culprit} reverted ({where})")


def markdown(b: Bisect) -> str:
    lines = [f"# Bisect: {b.test}\n", f"series {b.series_id}, {len(b.series)} patches; "
             f"searched {b.good}..{b.bad} in {len(b.steps)} steps, {b.seconds} s\n",
             "| step | patches | last patch | verdict | build s | test s |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {i} | {s.upto} | {s.patch} | {s.verdict} | {s.build_seconds} | "
              f"{s.test_seconds} |" for i, s in enumerate(b.steps, 1)]
    if b.culprit:
        lines += ["", f"First bad patch: **{b.culprit}: {b.culprit_subject}**", "",
                  f"Verification: {b.verification}"]
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> int:
    request = kernel_request(args)
    series_of(request)                  # a bad base or series fails before anything runs
    reports = args.reports.resolve()
    with reported_run(reports, {"base": args.base, "flavour": args.flavour,
                                "series_path": str(args.series) if args.series else None}):
        result = bisect(request, args.k, reports, args.good)
        data = asdict(result)
        (reports / "bisect.json").write_text(json.dumps(data, indent=2) + "\n")
        (reports / "bisect.md").write_text(markdown(result))
    say(f"{result.verification}; see {reports / 'bisect.md'}")
    # A culprit that cannot be reverted alone stands on the bisect's two steps; one whose
    # revert does not make TEST pass means the search was misled.
    return 1 if result.verification.startswith("not confirmed") else 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("bisect", help="the first patch of the series after which a test "
                                      "fails; reports/bisect.md")
    add_kernel_opts(p.add_argument)
    add_jobs_opt(p.add_argument)
    add_reports_opt(p.add_argument)
    p.add_argument("-k", required=True,
                   help="the test: a node id (tests/...py::test_x) or a -k expression")
    p.add_argument("--good", type=int, default=None,
                   help="a patch count at which the test passes (default: the patch "
                        "that adds fs/fuse/muse.c)")
    p.set_defaults(func=main)
