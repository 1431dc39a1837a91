"""muse-harness build and prepare: the kernel, and the guest root filesystem beside it."""

from __future__ import annotations

import argparse
from dataclasses import replace

from harness.kernel.build import build_kernel
from harness.kernel.kconfig import flavour
from harness.machine.rootfs import build_rootfs
from harness.options import add_jobs_opt, add_kernel_opts
from harness.tools.common import Subparsers, kernel_request


def cmd_build(args: argparse.Namespace) -> int:
    print(build_kernel(kernel_request(args)).bzimage)
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    request = kernel_request(args)
    flavours = [f.strip() for f in args.flavours.split(",")] if args.flavours else \
        [request.flavour]
    for name in flavours:
        flavour(name, request.base)   # an unknown flavour fails before the first build
    kernels = [build_kernel(replace(request, flavour=name)) for name in flavours]
    rootfs = build_rootfs()
    for kernel in kernels:
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
    p.add_argument("--flavours", help="comma-separated: build each of these flavours "
                                      "(instead of --flavour's one)")
    p.set_defaults(func=cmd_prepare)
