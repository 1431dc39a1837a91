"""muse-harness run, shell and boot: one booted guest, by hand or timed."""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess

from harness.errors import HarnessError
from harness.kernel.build import build_kernel
from harness.machine.rootfs import build_rootfs
from harness.machine.vm import VM
from harness.options import add_jobs_opt, add_kernel_opts, add_reports_opt, add_vm_opts
from harness.proc import say
from harness.tools.bench.run import boot_record
from harness.tools.bench.stats import BootPhases, median_phases
from harness.tools.common import Subparsers, booted, kernel_request


def cmd_run(args: argparse.Namespace) -> int:
    words = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not words:
        raise HarnessError("run needs a command: muse-harness run -- CMD [ARGS...]")
    command = words[0] if len(words) == 1 else shlex.join(words)
    with booted(args, "run") as (_, vm):
        result = vm.run(command, timeout=args.timeout, stream=True)
        assert vm.console is not None
        splats = vm.console.splats_between(0, None)
        if splats:
            say(f"kernel splat on the console: {splats[0].title} (see {vm.console.path})")
        return result.exit_status


def cmd_shell(args: argparse.Namespace) -> int:
    with booted(args, "shell") as (_, vm):
        assert vm.ssh is not None
        ssh = ["ssh", "-t", "-p", str(vm.ssh.port), "-i", str(vm.ssh.key),
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", "root@127.0.0.1"]
        return subprocess.run(ssh, check=False).returncode


def cmd_boot(args: argparse.Namespace) -> int:
    """Boot args.repeat times, report QEMU-start-to-SSH-ready times and their median."""
    kernel = build_kernel(kernel_request(args))
    rootfs = build_rootfs()
    logdir = args.reports.resolve() / "cli"
    runs: list[BootPhases] = []
    accel = ""
    for index in range(args.repeat):
        vm = VM(kernel, rootfs, logdir, name=f"boot{index + 1}", smp=args.smp,
                memory_mb=args.memory, tcg_threads=args.tcg_threads, idle=args.guest_idle)
        try:
            vm.start()
            runs.append(boot_record(vm))
            accel = vm.accel.name
            phases = ", ".join(f"{k} {v:.2f}" for k, v in runs[-1].phases.items())
            say(f"boot {index + 1}: SSH ready after {vm.boot_seconds} s ({accel}; {phases})")
        finally:
            vm.close()
    times = [r.total for r in runs]
    result = {"kernel": kernel.release, "flavour": kernel.flavour, "accel": accel,
              "boot_seconds": times, "median": statistics.median(times),
              "median_phases": median_phases(runs)}
    print(json.dumps(result))
    return 0


def _vm_parser(sub: Subparsers, name: str, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help)
    add_kernel_opts(p.add_argument)
    add_jobs_opt(p.add_argument)
    add_vm_opts(p.add_argument)
    add_reports_opt(p.add_argument)
    return p


def register(sub: Subparsers) -> None:
    p = _vm_parser(sub, "run", "boot, run a command in the guest, exit with its status")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds for the command")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    p.set_defaults(func=cmd_run)
    p = _vm_parser(sub, "shell", "boot and open an interactive shell in the guest")
    p.set_defaults(func=cmd_shell)
    p = _vm_parser(sub, "boot", "boot N times; print boot-to-SSH times and the median")
    p.add_argument("--repeat", type=int, default=5)
    p.set_defaults(func=cmd_boot)
