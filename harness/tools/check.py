"""muse-harness check: build, boot and run the suite; summary.json and report.md in reports/."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness.kernel.build import build_kernel, series_of
from harness.kernel.series import subjects
from harness.machine.rootfs import build_rootfs
from harness.options import add_jobs_opt, add_kernel_opts, add_reports_opt, add_vm_opts
from harness.proc import say
from harness.report.html import reported_run
from harness.report.summary import write_summary
from harness.tools.common import Subparsers, add_selection_opts, kernel_request
from harness.tools.suite import SuiteRequest, run_suite


def main(args: argparse.Namespace) -> int:
    reports = args.reports.resolve()
    # A bad base or series fails before the last run's page is touched.
    series = series_of(kernel_request(args))
    with reported_run(reports, {"base": args.base, "flavour": args.flavour,
                                "as_posted": args.as_posted, "series_id": series.chain_id(),
                                "patches": subjects(series),
                                "series_path": str(args.series) if args.series else None}):
        return _check(args, reports)


def _check(args: argparse.Namespace, reports: Path) -> int:
    start = time.monotonic()
    request = kernel_request(args)
    kernel = build_kernel(request)
    rootfs = build_rootfs()
    result = run_suite(SuiteRequest(
        kernel=request, reports=reports, paths=tuple(args.paths or ["tests"]), k=args.k,
        workers=args.workers, smp=args.smp, memory_mb=args.memory,
        tcg_threads=args.tcg_threads, guest_idle=args.guest_idle, timeout=args.timeout,
        fresh_build=kernel.builddir))
    summary = write_summary(reports, {
        "base": args.base, "flavour": args.flavour, "as_posted": args.as_posted,
        "kernel": kernel.summary(), "rootfs": {"image": str(rootfs.image), "key": rootfs.key,
                                               "rebuilt": rootfs.rebuilt,
                                               "seconds": rootfs.seconds},
        "pytest_exit": result.exit_code, "wall_seconds": round(time.monotonic() - start, 1),
        "workers_requested": args.workers,
    })
    classes = ", ".join(f"{n} {k}" for k, n in summary["classes"].items()) or "no test"
    code = check_exit_code(result.exit_code, summary["exit_code"], summary["tests"]["total"])
    say(f"{classes} in {summary['wall_seconds']} s; exit code {code}; reports in {reports}")
    return code


def check_exit_code(pytest_exit: int, by_class: int, tests: int) -> int:
    """1 a test failed, 2 no test failed but the infrastructure did, 0 otherwise.
    pytest stopping short (a collection or usage error, no test run) leaves no verdict:
    that is the infrastructure's failure too; the deadline keeps its own 124."""
    if pytest_exit == 124:
        return 124
    if by_class == 0 and (pytest_exit not in (0, 1) or tests == 0):
        return 2
    return by_class


def register(sub: Subparsers) -> None:
    p = sub.add_parser("check", help="build, boot and run the whole suite; write reports/; exit 0 "
                                      "passed, 1 a test failed, 2 only infrastructure failed")
    add_kernel_opts(p.add_argument)
    add_jobs_opt(p.add_argument)
    add_vm_opts(p.add_argument)
    add_reports_opt(p.add_argument)
    add_selection_opts(p)
    p.add_argument("-n", "--workers", type=int, default=1, help="parallel VMs (pytest-xdist)")
    p.add_argument("paths", nargs="*", help="test paths (default: tests)")
    p.set_defaults(func=main)
