"""muse-harness: build, run, shell, check.

    muse-harness build                      # prints the bzImage path
    muse-harness prepare                    # kernel and guest root filesystem
    muse-harness run -- cat /proc/mtd       # boots, runs, exits with the command's status
    muse-harness shell                      # interactive guest shell
    muse-harness boot --repeat 5            # boot-to-SSH times and their median
    muse-harness series-check               # checkpatch + build after every patch
    muse-harness mutate                     # break features on purpose; the tests must fail
    muse-harness check [-k EXPR] [-n N]     # the whole suite; writes reports/
    muse-harness bench [--repeat 5]         # MUSE vs nandsim/mtdram; reports/bench.{json,png}
    muse-harness edit-loop                  # time a muse.c patch edit to one test's result
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from harness.build import FRESH_BUILD_ENV, BuildRequest, KernelBuild, build_kernel
from harness.console import scan_text
from harness.errors import HarnessError
from harness.paths import REPO
from harness.proc import restore_sigint, run_group, say
from harness.report import write_summary
from harness.rootfs import build_rootfs
from harness.vm import VM

CHECK_TIMEOUT = 3 * 3600


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", default="6.1", help="kernel base (kernel/series/<base>)")
    parser.add_argument("--kernel-src", type=Path, help="your own kernel tree (read-only to us)")
    parser.add_argument("--flavour", default="default",
                        help="config flavour (kernel/flavours.toml)")
    parser.add_argument("--as-posted", action="store_true", help="leave out the fix patches")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)


def _request(args: argparse.Namespace) -> BuildRequest:
    return BuildRequest(base=args.base, flavour=args.flavour, kernel_src=args.kernel_src,
                        as_posted=args.as_posted, jobs=args.jobs)


def _vm_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smp", type=int, default=2)
    parser.add_argument("--memory", type=int, default=1024, help="MiB")
    parser.add_argument("--logdir", type=Path, default=REPO / "reports" / "cli",
                        help="console logs go here")


def _boot(args: argparse.Namespace) -> tuple[KernelBuild, VM]:
    kernel = build_kernel(_request(args))
    rootfs = build_rootfs()
    vm = VM(kernel, rootfs, args.logdir, name=args.command, smp=args.smp,
            memory_mb=args.memory)
    say(f"booting {kernel.release} ({kernel.flavour}); console: {args.logdir}")
    vm.start()
    say(f"guest ready in {vm.boot_seconds} s ({vm.accel.name}: {vm.accel.reason})")
    return kernel, vm


def cmd_build(args: argparse.Namespace) -> int:
    kernel = build_kernel(_request(args))
    print(kernel.bzimage)
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    kernel = build_kernel(_request(args))
    rootfs = build_rootfs()
    print(kernel.bzimage)
    print(rootfs.image)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    words = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not words:
        raise HarnessError("run needs a command: muse-harness run -- CMD [ARGS...]")
    command = words[0] if len(words) == 1 else shlex.join(words)
    _, vm = _boot(args)
    try:
        result = vm.run(command, timeout=args.timeout, stream=True)
        assert vm.console is not None
        splats = scan_text(vm.console.text())
        if splats:
            say(f"kernel splat on the console: {splats[0].title} (see {vm.console.path})")
        return result.exit_status
    finally:
        vm.close()


def cmd_shell(args: argparse.Namespace) -> int:
    _, vm = _boot(args)
    try:
        assert vm.ssh is not None
        ssh = ["ssh", "-t", "-p", str(vm.ssh.port), "-i", str(vm.ssh.key),
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", "root@127.0.0.1"]
        return subprocess.run(ssh, check=False).returncode
    finally:
        vm.close()


def cmd_boot(args: argparse.Namespace) -> int:
    """Boot args.repeat times, report QEMU-start-to-SSH-ready times and their median."""
    kernel = build_kernel(_request(args))
    rootfs = build_rootfs()
    times = []
    for index in range(args.repeat):
        vm = VM(kernel, rootfs, args.logdir, name=f"boot{index + 1}", smp=args.smp,
                memory_mb=args.memory)
        try:
            vm.start()
            times.append(vm.boot_seconds)
            say(f"boot {index + 1}: SSH ready after {vm.boot_seconds} s ({vm.accel.name})")
        finally:
            vm.close()
    result = {"kernel": kernel.release, "flavour": kernel.flavour, "accel": vm.accel.name,
              "boot_seconds": times, "median": statistics.median(times)}
    print(json.dumps(result))
    return 0


def cmd_series_check(args: argparse.Namespace) -> int:
    from harness.series_check import check_series

    ok = check_series(_request(args), tuple(args.also), args.report)
    return 0 if ok else 1


def cmd_mutate(args: argparse.Namespace) -> int:
    from harness.mutations import check_mutations

    extra = [f"--base={args.base}", f"--flavour={args.flavour}"]
    if args.as_posted:
        extra.append("--as-posted")
    return 0 if check_mutations(args.base, args.mutation, extra, args.reports) else 1


def cmd_bugs(args: argparse.Namespace) -> int:
    from harness.bugs import check_bugs

    return 0 if check_bugs(args.base, args.reports, args.k, args.timeout,
                           table_only=args.table_only) else 1


def cmd_check(args: argparse.Namespace) -> int:
    start = time.monotonic()
    reports = args.reports.resolve()
    reports.mkdir(parents=True, exist_ok=True)
    for stale in [*reports.glob("session-*.json"), reports / "junit.xml"]:
        stale.unlink(missing_ok=True)
    kernel = build_kernel(_request(args))
    rootfs = build_rootfs()
    pytest_cmd = [sys.executable, "-m", "pytest", *(args.paths or ["tests"]),
                  f"--junitxml={reports / 'junit.xml'}", f"--reports={reports}",
                  f"--base={args.base}", f"--flavour={args.flavour}", "-ra"]
    if args.kernel_src:
        pytest_cmd.append(f"--kernel-src={args.kernel_src}")
    if args.as_posted:
        pytest_cmd.append("--as-posted")
    if args.k:
        pytest_cmd += ["-k", args.k]
    if args.workers > 1:
        # worksteal: a worker that ran out takes queued tests from the other; plain load
        # scheduling left one worker idle with the fast unit tests done and the VM tests
        # of the debug flavour queued on the other.
        pytest_cmd += ["-n", str(args.workers), "--dist", "worksteal"]
    say("running: " + shlex.join(pytest_cmd))
    env = dict(os.environ, **{FRESH_BUILD_ENV: str(kernel.builddir)})
    rc = run_group(pytest_cmd, args.timeout, REPO, "the suite", env)
    summary = write_summary(reports, {
        "base": args.base, "flavour": args.flavour, "as_posted": args.as_posted,
        "kernel": kernel.summary(), "rootfs": {"image": str(rootfs.image), "key": rootfs.key,
                                               "rebuilt": rootfs.rebuilt,
                                               "seconds": rootfs.seconds},
        "pytest_exit": rc, "wall_seconds": round(time.monotonic() - start, 1),
        "workers_requested": args.workers,
    })
    t = summary["tests"]
    say(f"{t['passed']} passed, {t['failed']} failed, {t['errors']} errors, "
        f"{t['skipped']} skipped in {summary['wall_seconds']} s; reports in {reports}")
    return rc


def cmd_bench(args: argparse.Namespace) -> int:
    from harness.bench import BenchOptions, run_bench

    run_bench(BenchOptions(
        reports=args.reports.resolve(), request=_request(args), repeats=args.repeat,
        region=args.region, file_size=args.file_size, random_seconds=args.random_seconds,
        boots=args.boots, profile=args.profile, output=args.output, smp=args.smp,
        memory_mb=args.memory))
    return 0


def cmd_edit_loop(args: argparse.Namespace) -> int:
    from harness.editloop import EditLoopOptions, run_edit_loop

    result = run_edit_loop(EditLoopOptions(
        base=args.base, flavour=args.flavour, k=args.k, paths=tuple(args.paths),
        repeat=args.repeat, reports=args.reports.resolve()))
    print(json.dumps(result, indent=1))
    return 0


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through finally: the VM is closed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="muse-harness", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build", help="build the kernel; print the bzImage path")
    _common(p)
    p.set_defaults(func=cmd_build)
    p = sub.add_parser("prepare", help="build the kernel and the guest root filesystem")
    _common(p)
    p.set_defaults(func=cmd_prepare)
    p = sub.add_parser("run", help="boot, run a command in the guest, exit with its status")
    _common(p)
    _vm_args(p)
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds for the command")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("shell", help="boot and open an interactive shell in the guest")
    _common(p)
    _vm_args(p)
    p.set_defaults(func=cmd_shell)
    p = sub.add_parser("boot", help="boot N times; print boot-to-SSH times and the median")
    _common(p)
    _vm_args(p)
    p.add_argument("--repeat", type=int, default=5)
    p.set_defaults(func=cmd_boot)
    p = sub.add_parser("series-check",
                       help="checkpatch every patch and build after each one (bisectable?)")
    _common(p)
    p.add_argument("--also", nargs="*", default=["builtin"],
                   help="extra flavours to build the whole series with")
    p.add_argument("--report", type=Path, default=REPO / "reports" / "series-check.json")
    p.set_defaults(func=cmd_series_check)
    p = sub.add_parser("mutate", help="build each mutation in kernel/mutations/<base>/ and "
                                      "show the tests it names fail")
    _common(p)
    p.add_argument("--mutation", help="only this one")
    p.add_argument("--reports", type=Path, default=REPO / "reports")
    p.set_defaults(func=cmd_mutate)
    p = sub.add_parser("bugs", help="the bug tests on the series as posted and with its fixes; "
                                    "write reports/bugs.md and bugs.json")
    p.add_argument("--base", default="6.1", help="kernel base (kernel/series/<base>)")
    p.add_argument("-k", help="only bug tests matching this pytest expression")
    p.add_argument("--reports", type=Path, default=REPO / "reports")
    p.add_argument("--timeout", type=float, default=CHECK_TIMEOUT, help="for each of the two runs")
    p.add_argument("--table-only", action="store_true",
                   help="run nothing: rebuild bugs.md/json from the JUnit files of the last run")
    p.set_defaults(func=cmd_bugs)
    p = sub.add_parser("check", help="build, boot and run the whole suite; write reports/")
    _common(p)
    p.add_argument("-k", help="only tests matching this pytest expression")
    p.add_argument("-n", "--workers", type=int, default=1, help="parallel VMs (pytest-xdist)")
    p.add_argument("--reports", type=Path, default=REPO / "reports")
    p.add_argument("--timeout", type=float, default=CHECK_TIMEOUT, help="for the whole suite")
    p.add_argument("paths", nargs="*", help="test paths (default: tests)")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("bench", help="MUSE against nandsim and mtdram in one VM; boot time; "
                                     "reports/bench.json and bench.png")
    _common(p)
    _vm_args(p)
    p.add_argument("--repeat", type=int, default=5, help="repeats per workload (medians)")
    p.add_argument("--region", default="16MiB", help="raw MTD bytes per run")
    p.add_argument("--file-size", default="8MiB", help="UBIFS file size")
    p.add_argument("--random-seconds", type=float, default=2.0, help="random read phase")
    p.add_argument("--boots", type=int, default=3, help="extra boots for the boot median")
    p.add_argument("--profile", action="store_true",
                   help="run the MUSE servers under cProfile; save the top entries")
    p.add_argument("--reports", type=Path, default=REPO / "reports")
    p.add_argument("--output", default="bench", help="file name stem in --reports")
    p.set_defaults(func=cmd_bench)
    p = sub.add_parser("edit-loop", help="time an edit of the muse.c patch to one test's "
                                         "result (in a scratch copy); reports/edit-loop.json")
    p.add_argument("--base", default="6.1")
    p.add_argument("--flavour", default="default", help="the flavour the scratch one copies")
    p.add_argument("-k", default="test_nand_data_reads_back", help="the test to run")
    p.add_argument("--repeat", type=int, default=2, help="edit, undo, edit, ...")
    p.add_argument("--reports", type=Path, default=REPO / "reports")
    p.add_argument("paths", nargs="*", default=["tests/integration/test_muse_basic.py"])
    p.set_defaults(func=cmd_edit_loop)
    args = parser.parse_args(argv)
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
