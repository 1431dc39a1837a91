"""Options are defined once: every subcommand and the pytest plugin take them by one name."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness import cli
from harness.options import DEFAULT_BASE, KERNEL_OPTS, REPORTS_OPT, VM_OPTS

KERNEL_FLAGS = [o.flags[0] for o in KERNEL_OPTS]
VM_FLAGS = [o.flags[0] for o in VM_OPTS]


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli.parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_every_kernel_command_takes_the_kernel_options() -> None:
    commands = _subcommands()
    assert set(commands) == {"build", "prepare", "run", "shell", "boot", "check", "matrix",
                             "series-check", "mutate", "bugs", "bench", "edit-loop",
                             "report", "compare", "bisect", "coverage", "peer"}
    # report and compare read directories and build nothing.
    commands.pop("report")
    commands.pop("compare")
    # bugs picks its kernels itself (as posted and with fixes, flavours by marker) and
    # edit-loop its tree (a scratch copy of the checkout): both take --base only;
    # matrix runs several bases and flavours.
    for name, parser in commands.items():
        wanted = ({"--base"} if name in ("bugs", "edit-loop") else
                  {"--bases", "--flavours"} if name == "matrix" else set(KERNEL_FLAGS))
        assert wanted <= _flags(parser), name
    # bench's --smp is a list of CPU counts to compare (1,2).
    for name in ("run", "shell", "boot", "check", "bench", "matrix"):
        assert set(VM_FLAGS) | {REPORTS_OPT.flags[0]} <= _flags(commands[name]), name


def test_defaults_come_from_one_place() -> None:
    args = cli.parser().parse_args(["check", "--smp", "1", "--memory", "512",
                                    "--reports", "/tmp/r"])
    assert (args.base, args.smp, args.memory, args.reports) == (DEFAULT_BASE, 1, 512,
                                                                Path("/tmp/r"))
    assert cli.parser().parse_args(["bugs"]).base == DEFAULT_BASE


def test_the_plugin_takes_the_same_names(pytestconfig: pytest.Config) -> None:
    for flag in [*KERNEL_FLAGS, *VM_FLAGS, REPORTS_OPT.flags[0]]:
        pytestconfig.getoption(flag)    # raises ValueError for an unknown option
    assert pytestconfig.getoption("--base") is not None
