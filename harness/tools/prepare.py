"""muse-harness build and prepare: the kernel, and the guest root filesystem beside it."""

from __future__ import annotations

import argparse

from harness.kernel.build import build_kernel
from harness.machine.rootfs import build_rootfs
from harness.options import add_jobs_opt, add_kernel_opts
from harness.tools.common import Subparsers, kernel_request


def cmd_build(args: argparse.Namespace) -> int:
    print(build_kernel(kernel_request(args)).bzimage)
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    kernel = build_kernel(kernel_request(args))
    rootfs = build_rootfs()
    print(kernel.bzimage)
    print(rootfs.image)
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("build", help="build the kernel; print the bzImage path")
    add_kernel_opts(p.add_argument)
    add_jobs_opt(p.add_argument)
    p.set_defaults(func=cmd_build)
    p = sub.add_parser("prepare", help="build the kernel and the guest root filesystem")
    add_kernel_opts(p.add_argument)
    add_jobs_opt(p.add_argument)
    p.set_defaults(func=cmd_prepare)
