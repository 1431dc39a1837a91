"""muse-harness: build, boot and test the MUSE series. Each subcommand is a tool in
harness/tools/ that owns its parser (register()); this only dispatches.

    muse-harness build                      # prints the bzImage path
    muse-harness prepare                    # kernel and guest root filesystem
    muse-harness run -- cat /proc/mtd       # boots, runs, exits with the command's status
    muse-harness shell                      # interactive guest shell
    muse-harness boot --repeat 5            # boot-to-SSH times and their median
    muse-harness check [-k EXPR] [-n N]     # the whole suite; writes reports/
    muse-harness compare OLD NEW            # two runs: regressions, fixes, new splats
    muse-harness matrix                     # the suite per base x flavour; matrix.md
    muse-harness series-check               # checkpatch + build after every patch
    muse-harness bugs                       # bug tests as posted and with the fixes
    muse-harness bisect -k TEST             # the first patch after which TEST fails
    muse-harness mutate                     # break features on purpose; the tests must fail
    muse-harness mutate --generate          # generated muse.c mutants, sampled by --seed
    muse-harness coverage                   # gcov of the series' code per test
    muse-harness peer                       # mtd-utils' suites on MUSE and nandsim/mtdram
    muse-harness bench [--repeat 5]         # MUSE vs nandsim/mtdram; reports/bench.{json,png}
    muse-harness edit-loop                  # time a muse.c patch edit to one test's result
    muse-harness report [DIR]               # rewrite DIR/index.html from its files

Exit codes: 0 success; 1 a test, check or comparison failed (check: pytest's own
status, 1 for failed tests, others for usage or collection problems); 2 a
harness error with its message (bad input, build, boot); 124 a run stopped at
its --timeout; 130 interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from harness.errors import HarnessError
from harness.proc import restore_sigint
from harness.tools import (
    bench,
    bisect,
    bugs,
    check,
    compare,
    coverage,
    editloop,
    matrix,
    mutate,
    peer,
    prepare,
    report,
    seriescheck,
    vmcmds,
)

TOOLS = (prepare, vmcmds, check, compare, matrix, seriescheck, mutate, bugs, bisect, bench,
         editloop, coverage, peer, report)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    # A second SIGTERM (timeout(1) forwards one beside the sender's own) must not
    # interrupt the unwinding that closes the VM: seen leaving an atexit close half done.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)  # unwinds through finally: the VM is closed


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="muse-harness", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)
    for tool in TOOLS:
        tool.register(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    restore_sigint()
    try:
        rc: int = args.func(args)
        return rc
    except HarnessError as exc:
        print(f"muse-harness: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("muse-harness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
