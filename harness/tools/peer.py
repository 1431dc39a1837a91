"""muse-harness peer: mtd-utils' own suites on MUSE and on the in-kernel controls.

Runs the peer tests (tests/integration/test_peer.py, marker peer) on the
chosen kernel: each program of mtd-tests, ubi-tests and fs-tests on a MUSE
device and on nandsim or mtdram of the same geometry, in one VM run. The programs come from
Debian's mtd-utils source, built into the guest image (harness.machine.
mtdtests). Writes reports/peer.md and peer.json (report.peer), rows where MUSE
and its control differ first.

The guest has one vCPU unless --smp says otherwise: no peer case needs two, both
sides of a pair run in the same guest, and a MUSE request costs 3 to 5 times as
much on a 2-vCPU guest under TCG (issue 23), which put io_basic past its 900 s.
"""

from __future__ import annotations

import argparse

from harness.machine.mtdtests import build_mtd_tests
from harness.options import add_jobs_opt, add_kernel_opts, add_reports_opt, add_vm_opts
from harness.proc import say
from harness.report.peer import write_peer
from harness.tools.common import Subparsers, add_selection_opts, kernel_request
from harness.tools.suite import SuiteRequest, run_suite

TEST_FILE = "tests/integration/test_peer.py"
PEER_SMP = 1


def main(args: argparse.Namespace) -> int:
    request = kernel_request(args)
    reports = args.reports.resolve()
    build_mtd_tests()          # a failed source build says so before any kernel work
    result = run_suite(SuiteRequest(
        kernel=request, reports=reports, paths=(TEST_FILE,), k=args.k, timeout=args.timeout,
        smp=args.smp, memory_mb=args.memory, tcg_threads=args.tcg_threads,
        guest_idle=args.guest_idle,
        pytest_args=("--peer",), retries=0, what="the peer run"))
    rows = write_peer(reports, result.junit)
    if not rows:
        say(f"no peer results in {result.junit}")
        return 1
    differ = [r for r in rows if r.differs]
    for row in differ:
        print(f"  differs: {row.suite} {row.test} on {row.pair}: MUSE {row.muse}, "
              f"control {row.control}")
    say(f"{len(rows)} rows, {len(differ)} differ: {reports / 'peer.md'}")
    return 0 if result.exit_code == 0 else 1


def register(sub: Subparsers) -> None:
    p = sub.add_parser("peer", help="mtd-utils' suites on MUSE and on nandsim/mtdram; "
                                    "reports/peer.md and peer.json")
    add_kernel_opts(p.add_argument)
    add_jobs_opt(p.add_argument)
    add_vm_opts(p.add_argument)
    add_reports_opt(p.add_argument)
    add_selection_opts(p)
    p.set_defaults(func=main, smp=PEER_SMP)
