"""muse-harness coverage: the suite on the coverage flavour; which lines of the series ran.

The coverage flavour (kernel/flavours.toml) profiles only the series' objects
(GCOV_PROFILE_<object>.o=y). The plugin resets the counters before each test
and saves them after it; report.coverage maps them back to the source with
gcovr. Tests marked for another flavour (--also partmaster,debug) boot its
gcov twin, coverage-<flavour>, so their counters join the same report:
reports/coverage/html/index.html, summary.json (lines and branches of
each file, each patch's added lines, uncovered lines by function) and
tests.json (which tests run each line: mutate --generate can pick its tests
by it).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from harness.errors import HarnessError
from harness.kernel.build import BuildRequest, build_kernel, series_of, series_tree
from harness.kernel.kconfig import flavour
from harness.kernel.series import added_lines
from harness.kernel.source import get_source
from harness.machine.rootfs import build_rootfs
from harness.options import add_jobs_opt, add_kernel_opts, add_reports_opt
from harness.proc import say
from harness.report.coverage import write_coverage
from harness.tools.common import Subparsers, add_selection_opts, kernel_request
from harness.tools.suite import SuiteRequest, run_suite

FILES = ["fs/fuse/muse.c", "fs/fuse/helper.c", "drivers/mtd/parsers/cmdlinepart.c",
         "drivers/mtd/mtdpart.c"]
DEFAULT_FLAVOUR = "coverage"


def main(args: argparse.Namespace) -> int:
    request = kernel_request(args)
    if request.flavour == "default":
        request = replace(request, flavour=DEFAULT_FLAVOUR)
    if not any(v.startswith("GCOV_PROFILE") for v in flavour(request.flavour,
                                                             request.base).make_vars):
        raise HarnessError(f"flavour {request.flavour!r} profiles nothing with gcov "
                           f"(no GCOV_PROFILE make_vars): use --flavour {DEFAULT_FLAVOUR}")
    also = {name: f"{DEFAULT_FLAVOUR}-{name}" for name in args.also.split(",") if name}
    for twin in also.values():
        flavour(twin, request.base)      # an unknown one fails here, before any build
    reports = args.reports.resolve()
    kernel = build_kernel(request)
    exit_code = 0
    if args.report_only:
        say(f"no run: the counters already in {reports / 'coverage/gcda'}")
    else:
        build_rootfs()
        exit_code = _run(args, request, kernel.builddir, reports, also)
    # The twins' counters map back through their own build directories.
    builddirs = [kernel.builddir, *(build_kernel(replace(request, flavour=twin)).builddir
                                    for twin in also.values())]
    with series_tree(request) as tree:
        added = added_lines(get_source(request.base, request.kernel_src), series_of(request),
                            FILES)
        summary = write_coverage(reports, builddirs, tree, FILES, added)
    for name, data in summary["files"].items():
        say(f"{name}: lines {data['lines_covered']}/{data['lines']}, branches "
            f"{data['branches_covered']}/{data['branches']}")
    for patch, data in summary["patches"].items():
        if data["added_code_lines"]:
            print(f"  {patch:70} {data['covered']:4}/{data['added_code_lines']:4} added lines ran")
    say(f"{summary['tests']} tests' counters; report: {reports / 'coverage/html/index.html'}")
    return 0 if exit_code == 0 else 1


def _run(args: argparse.Namespace, request: BuildRequest, builddir: Path, reports: Path,
         also: dict[str, str]) -> int:
    result = run_suite(SuiteRequest(
        kernel=request, reports=reports, paths=tuple(args.paths or ["tests"]), k=args.k,
        timeout=args.timeout, pytest_args=(
            f"--flavours={','.join([request.flavour, *also])}",
            f"--flavour-map={','.join(f'{name}={twin}' for name, twin in also.items())}"),
        fresh_build=builddir, what="the suite on the coverage flavour"))
    return result.exit_code


def register(sub: Subparsers) -> None:
    p = sub.add_parser("coverage", help="the suite on the coverage flavour: gcov of the "
                                        "series' code, per test; reports/coverage/")
    add_kernel_opts(p.add_argument)
    add_jobs_opt(p.add_argument)
    add_reports_opt(p.add_argument)
    p.add_argument("--also", default="partmaster",
                   help="comma-separated flavours whose marked tests run too, each on its gcov "
                        "twin coverage-<flavour> (debug: a KASAN build, about 30 min)")
    add_selection_opts(p)
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: write the reports from the counters a run left in "
                        "--reports (coverage/gcda/)")
    p.add_argument("paths", nargs="*", help="test paths (default: tests)")
    p.set_defaults(func=main)
