"""Options defined once, for the CLI's subcommands and for the pytest plugin alike.

Each option is data (its flags and argparse keywords); add_kernel_opts(),
add_vm_opts() and add_reports_opt() hand them to any add_argument-like
callable: argparse's parser.add_argument or pytest's group.addoption. So
`muse-harness check --smp 1` and `pytest --smp 1` mean the same, under the
same name.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.kernel.toolchains import DEFAULT_TOOLCHAIN, TOOLCHAINS
from harness.paths import REPO

DEFAULT_BASE = "6.12"
DEFAULT_FLAVOUR = "default"
DEFAULT_SMP = 2
DEFAULT_MEMORY_MB = 1024
DEFAULT_REPORTS = REPO / "reports"
# TCG's thread modes: "multi" gives each vCPU a host thread of its own (the vCPUs
# really run in parallel); "single" runs all vCPUs round robin on one host thread.
TCG_THREADS = ("multi", "single")
DEFAULT_TCG_THREADS = "multi"
# What an idle guest CPU does (harness.machine.accel.guest_idle() says why it matters).
GUEST_IDLE = ("auto", "halt", "poll")
# auto: polling makes MUSE requests 1.5 to 3 times faster in the bench. Once the
# guest stopped reading its Python over uncached 9p (issue 23), it cost the suite's
# MUSE-heavy files 2 to 3 %, within their spread (it had cost 19 to 43 %: the
# spinning vCPUs took the host cores QEMU's I/O thread needed).
DEFAULT_GUEST_IDLE = "auto"


@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


KERNEL_OPTS = (
    Option(("--base",), {"default": DEFAULT_BASE,
                         "help": "kernel base with a series in kernel/series/<base>"}),
    Option(("--flavour",), {"default": DEFAULT_FLAVOUR,
                            "help": "kernel config flavour (kernel/flavours.toml)"}),
    Option(("--kernel-src",), {"type": Path, "default": None,
                               "help": "your own kernel tree (never written to)"}),
    Option(("--as-posted",), {"action": "store_true",
                              "help": "build the series without its fix patches"}),
    Option(("--series",), {"type": Path, "default": None,
                           "help": "a revision of the series instead of kernel/series/<base>: "
                                   "an mbox (git format-patch --stdout, b4 am) or a "
                                   "directory with a series file"}),
    Option(("--series-fixes",), {"action": "store_true",
                                 "help": "with --series: the base's fix patches on top"}),
    Option(("--toolchain",), {"choices": tuple(TOOLCHAINS), "default": DEFAULT_TOOLCHAIN,
                              "help": "compiler for the kernel: gcc, or clang (LLVM=1)"}),
    Option(("--upto",), {"type": int, "default": None,
                         "help": "only the first N patches of the series (bisect steps)"}),
)
VM_OPTS = (
    Option(("--smp",), {"type": int, "default": DEFAULT_SMP, "help": "guest CPUs"}),
    Option(("--memory",), {"type": int, "default": DEFAULT_MEMORY_MB,
                           "help": "guest memory in MiB"}),
    Option(("--tcg-threads",), {"choices": TCG_THREADS, "default": DEFAULT_TCG_THREADS,
                                "help": "under TCG: a host thread per vCPU (multi) or all "
                                        "vCPUs on one (single: faster MUSE requests on a "
                                        "busy host); parallel_cpus tests always get multi"}),
    Option(("--guest-idle",), {"choices": GUEST_IDLE, "default": DEFAULT_GUEST_IDLE,
                               "help": "under TCG, what an idle guest CPU does: halt (its "
                                       "host thread sleeps), poll (idle=poll: it spins, so "
                                       "MUSE requests run 1.4 to 3 times faster on 2 vCPUs "
                                       "and the VM keeps a host core per vCPU busy), auto "
                                       "(poll when one VM runs at a time); default auto"}),
)
REPORTS_OPT = Option(("--reports",), {"type": Path, "default": DEFAULT_REPORTS,
                                      "help": "where reports and console logs go"})
JOBS_OPT = Option(("-j", "--jobs"), {"type": int, "default": os.cpu_count() or 1,
                                     "help": "parallel make jobs"})

AddOption = Callable[..., object]


def _add(add: AddOption, options: tuple[Option, ...]) -> None:
    for option in options:
        add(*option.flags, **option.kwargs)


def add_kernel_opts(add: AddOption) -> None:
    """--base, --flavour, --kernel-src, --as-posted: which kernel."""
    _add(add, KERNEL_OPTS)


def add_vm_opts(add: AddOption) -> None:
    """--smp, --memory, --tcg-threads, --guest-idle: the guest's machine."""
    _add(add, VM_OPTS)


def add_memory_opt(add: AddOption) -> None:
    """--memory alone: for a tool whose --smp means something else (bench: lists)."""
    _add(add, VM_OPTS[1:2])


def add_reports_opt(add: AddOption) -> None:
    _add(add, (REPORTS_OPT,))


def add_jobs_opt(add: AddOption) -> None:
    _add(add, (JOBS_OPT,))
