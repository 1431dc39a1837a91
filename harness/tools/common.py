"""What every tool's subcommand shares: the request its options stand for, a booted VM."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from harness.kernel.build import BuildRequest, KernelBuild, build_kernel
from harness.machine.rootfs import build_rootfs
from harness.machine.vm import VM
from harness.proc import say
from harness.tools.suite import SUITE_TIMEOUT

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subparsers = argparse._SubParsersAction


def add_selection_opts(parser: argparse.ArgumentParser) -> None:
    """-k and --timeout: which tests of the suite a tool runs, and for how long at most."""
    parser.add_argument("-k", help="only tests matching this pytest expression")
    parser.add_argument("--timeout", type=float, default=SUITE_TIMEOUT,
                        help="for the whole run (exit 124 when it is reached)")


def kernel_request(args: argparse.Namespace) -> BuildRequest:
    """The kernel that add_kernel_opts() (and add_jobs_opt()) options ask for."""
    jobs = getattr(args, "jobs", None)
    return BuildRequest(base=args.base, flavour=args.flavour, kernel_src=args.kernel_src,
                        as_posted=args.as_posted, series=args.series,
                        series_fixes=args.series_fixes, upto=args.upto,
                        toolchain=args.toolchain,
                        **({"jobs": jobs} if jobs else {}))


@contextmanager
def booted(args: argparse.Namespace, name: str) -> Iterator[tuple[KernelBuild, VM]]:
    """The kernel of args booted in a VM of args' size; consoles go to <reports>/cli."""
    kernel = build_kernel(kernel_request(args))
    rootfs = build_rootfs()
    logdir = args.reports.resolve() / "cli"
    vm = VM(kernel, rootfs, logdir, name=name, smp=args.smp, memory_mb=args.memory,
            tcg_threads=args.tcg_threads, idle=args.guest_idle)
    try:
        say(f"booting {kernel.release} ({kernel.flavour}); console: {logdir}")
        vm.start()
        say(f"guest ready in {vm.boot_seconds} s ({vm.accel.name}: {vm.accel.reason}; "
            f"idle CPUs {vm.idle})")
        yield kernel, vm
    finally:
        vm.close()
