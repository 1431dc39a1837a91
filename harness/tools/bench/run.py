"""muse-harness bench: MUSE against nandsim and mtdram in one VM, repeated, with medians.

One VM holds all four devices at once: nandsim and a MUSE NAND of the same
geometry, mtdram and a MUSE RAM of the same size and eraseblock. Each repeat
runs the raw MTD tool (guest/bench) on both devices of a pair, the order
alternating between repeats so that neither side always runs on a warmer or
cooler guest. UBIFS (compr=none, so the flash path dominates) is then
measured on nandsim and MUSE NAND alike. Boot time is the bench VM's own boot
plus --boots more, each split into phases from the console.

Results: reports/<output>.json and reports/<output>.png; the goals of issue 8
are printed with where the figures stand.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from guest.contract import (
    MTDRAM_NAME,
    NANDSIM_64MIB,
    NANDSIM_NAME,
    NotRegistered,
    geometry_command,
    mtd_index,
    mtdram_modprobe,
    parse_geometry,
    start_server,
)
from harness.kernel.build import BuildRequest, KernelBuild, build_kernel
from harness.machine.rootfs import GUEST, Rootfs, build_rootfs
from harness.machine.ssh import GuestProcess
from harness.machine.vm import VM
from harness.options import add_jobs_opt, add_kernel_opts, add_reports_opt, add_vm_opts
from harness.proc import say
from harness.tools.bench.stats import (
    BenchError,
    BootPhases,
    Sample,
    aggregate,
    boot_phases,
    goals,
    median_phases,
    parse_result,
    samples_from,
    table,
)
from harness.tools.common import Subparsers, kernel_request

UBIFS_OPTIONS = "compr=none"
COMMAND_TIMEOUT = 1800.0


@dataclass
class BenchOptions:
    reports: Path
    request: BuildRequest
    repeats: int = 5
    region: str = "16MiB"         # raw MTD bytes per run
    ram_kib: int = 16384          # mtdram and MUSE RAM size
    file_size: str = "8MiB"       # UBIFS file
    random_seconds: float = 2.0
    boots: int = 3                # extra boots for the boot-time median
    profile: bool = False         # servers under cProfile (figures then not comparable)
    output: str = "bench"
    smp: int = 2
    memory_mb: int = 1024


def edit_loop_seconds(reports: Path) -> float | None:
    """The last edit-to-result measurement (muse-harness edit-loop), if any."""
    path = reports / "edit-loop.json"
    try:
        value = json.loads(path.read_text()).get("seconds")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


class Bench:
    def __init__(self, vm: VM, opts: BenchOptions) -> None:
        self.vm, self.opts = vm, opts
        self.samples: list[Sample] = []
        self.servers: dict[str, GuestProcess] = {}
        self.profiles: dict[str, str] = {}

    # -- guest helpers
    def check(self, command: str, timeout: float = COMMAND_TIMEOUT) -> str:
        result = self.vm.run(command, timeout)
        if not result.ok:
            raise BenchError(f"guest command failed:\n{result.describe()}")
        return result.stdout

    def mtd_index(self, name: str) -> int:
        index = mtd_index(self.check("cat /proc/mtd"), name)
        if index is None:
            raise BenchError(f"{name!r} is not in /proc/mtd")
        return index

    def geometry(self, index: int) -> dict[str, int]:
        return parse_geometry(self.check(geometry_command(index)))

    def start_muse(self, tag: str, args: str) -> int:
        python = "python3"
        if self.opts.profile:
            python += f" -m cProfile -o /tmp/profile-{tag}.out"
        def spawn(command: str) -> GuestProcess:
            self.servers[tag] = self.vm.spawn(command)
            return self.servers[tag]

        try:
            _, mtds = start_server(spawn, args, 300, python=python)
        except NotRegistered as exc:
            raise BenchError(f"MUSE {tag}: {exc}") from None
        return mtds[0].index

    # -- phases
    def devices(self) -> dict[str, dict[str, int]]:
        """Load nandsim and mtdram, start their MUSE peers; side -> MTD index per workload."""
        self.check(NANDSIM_64MIB)
        sim = self.mtd_index(NANDSIM_NAME)
        geo = self.geometry(sim)
        shift = (geo["writesize"] // geo["subpagesize"]).bit_length() - 1
        nand = self.start_muse("nand", (
            f"--type nand --name musebench-nand --size {geo['size']} "
            f"--erasesize {geo['erasesize']} --writesize {geo['writesize']} "
            f"--oobsize {geo['oobsize']} --subpage-shift {shift}"))
        self.check(mtdram_modprobe(self.opts.ram_kib, 128))
        ram = self.mtd_index(MTDRAM_NAME)
        muse_ram = self.start_muse("ram", (
            f"--type ram --name musebench-ram --size {self.opts.ram_kib}KiB "
            "--erasesize 128KiB"))
        return {"nand": {"kernel": sim, "muse": nand}, "ram": {"kernel": ram, "muse": muse_ram}}

    def raw(self, devices: dict[str, dict[str, int]]) -> None:
        o = self.opts
        for repeat in range(o.repeats):
            for workload in ("nand", "ram"):
                sides = ["kernel", "muse"] if repeat % 2 == 0 else ["muse", "kernel"]
                for side in sides:
                    index = devices[workload][side]
                    out = self.check(
                        f"python3 -m guest.bench mtd /dev/mtd{index} --region {o.region} "
                        f"--random-seconds {o.random_seconds} --label {workload}-{side}")
                    result = parse_result(out, f"{workload}/{side} repeat {repeat + 1}")
                    self.samples += samples_from(result, workload, side, repeat)
                    say(f"repeat {repeat + 1}/{o.repeats} {workload:5} {side:6}: "
                        f"erase {result['erase_MiBps']} write {result['write_MiBps']} "
                        f"read {result['read_MiBps']} MiB/s, "
                        f"random {result['random_read_ops']} ops/s")

    def ubifs(self, devices: dict[str, dict[str, int]]) -> None:
        o = self.opts
        ubi = {"kernel": 1, "muse": 2}
        for side, index in devices["nand"].items():
            n = ubi[side]
            self.check(f"ubiformat -y -q /dev/mtd{index} && ubiattach -m {index} -d {n} && "
                       f"ubimkvol /dev/ubi{n} -N bench -m && mkdir -p /mnt/bench{n} && "
                       f"mount -t ubifs -o {UBIFS_OPTIONS} ubi{n}:bench /mnt/bench{n}")
        try:
            for repeat in range(o.repeats):
                sides = ["kernel", "muse"] if repeat % 2 == 0 else ["muse", "kernel"]
                for side in sides:
                    mnt = f"/mnt/bench{ubi[side]}"
                    out = self.check(
                        f"python3 -m guest.bench file {mnt} --size {o.file_size} "
                        f"--mountpoint {mnt} --mount-options {UBIFS_OPTIONS} "
                        f"--label ubifs-{side}")
                    result = parse_result(out, f"ubifs/{side} repeat {repeat + 1}")
                    self.samples += samples_from(result, "ubifs", side, repeat)
                    say(f"repeat {repeat + 1}/{o.repeats} ubifs {side:6}: write "
                        f"{result['write_MiBps']} read {result['read_MiBps']} MiB/s")
        finally:
            for n in ubi.values():
                self.vm.run(f"umount /mnt/bench{n}; ubidetach -d {n}", timeout=600)

    def stop_servers(self) -> None:
        for tag, proc in self.servers.items():
            self.check(f"kill -TERM {proc.pid}")
            status = proc.wait(600)
            if status != 0:
                raise BenchError(f"MUSE {tag} server exited {status}:\n{proc.text()[-2000:]}")
            if self.opts.profile:
                self.profiles[tag] = self.check(
                    "python3 -c " + shlex.quote(
                        "import pstats, sys; s = pstats.Stats(sys.argv[1], stream=sys.stdout); "
                        "s.sort_stats('tottime').print_stats(30); "
                        "s.sort_stats('cumulative').print_stats(30)")
                    + f" /tmp/profile-{tag}.out")
        self.servers.clear()


def _boot_record(vm: VM) -> BootPhases:
    assert vm.console is not None
    return boot_phases(vm.console.text(), list(vm.console.arrivals), vm.started,
                       vm.boot_seconds, init=GUEST["init"], marker=GUEST["marker"])


def measure_boots(kernel: KernelBuild, rootfs: Rootfs, opts: BenchOptions,
                  count: int) -> list[BootPhases]:
    runs = []
    for index in range(count):
        vm = VM(kernel, rootfs, opts.reports / "bench-consoles", name=f"boot{index + 1}",
                smp=opts.smp, memory_mb=opts.memory_mb)
        try:
            vm.start()
            runs.append(_boot_record(vm))
            say(f"boot {index + 1}/{count}: SSH ready after {vm.boot_seconds} s "
                f"{runs[-1].phases}")
        finally:
            vm.close()
    return runs


def run_bench(opts: BenchOptions) -> dict[str, object]:
    started = time.monotonic()
    opts.reports.mkdir(parents=True, exist_ok=True)
    kernel = build_kernel(opts.request)
    rootfs = build_rootfs()
    vm = VM(kernel, rootfs, opts.reports / "bench-consoles", name=opts.output, smp=opts.smp,
            memory_mb=opts.memory_mb)
    say(f"booting {kernel.release} ({kernel.flavour}) for the benchmark")
    try:
        vm.start()
        boots = [_boot_record(vm)]
        bench = Bench(vm, opts)
        devices = bench.devices()
        bench.raw(devices)
        bench.ubifs(devices)
        bench.stop_servers()
        assert vm.console is not None
        splats = vm.console.splats_between(0, None)
        if splats:
            raise BenchError(f"kernel splat during the benchmark: {splats[0].title}")
        accel = vm.accel.name
    finally:
        vm.close()
    boots += measure_boots(kernel, rootfs, opts, opts.boots)
    figures = aggregate(bench.samples)
    boot_times = [b.total for b in boots]
    boot_median = statistics.median(boot_times)
    edit = edit_loop_seconds(opts.reports)
    judged = goals(figures, boot_median if accel == "tcg" else None, edit)
    result: dict[str, object] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kernel": kernel.release, "flavour": kernel.flavour, "accel": accel,
        "options": {k: v for k, v in asdict(opts).items() if k not in ("reports", "request")},
        "figures": [f.to_json() for f in figures],
        "ratios": {f"{f.workload}/{f.metric}": f.ratio for f in figures},
        "boot": {"seconds": boot_times, "median": boot_median,
                 "median_phases": median_phases(boots), "runs": [asdict(b) for b in boots]},
        "edit_to_result_seconds": edit,
        "goals": [asdict(g) for g in judged],
        "samples": [asdict(s) for s in bench.samples],
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    out = opts.reports / f"{opts.output}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    for tag, text in bench.profiles.items():
        (opts.reports / f"{opts.output}-profile-{tag}.txt").write_text(text)
    chart = opts.reports / f"{opts.output}.png"
    from harness.tools.bench.chart import draw

    draw(figures, chart, title=f"MUSE vs in-kernel, {kernel.release}, {accel}, "
                               f"medians of {opts.repeats}")
    print(table(figures))
    print(f"boot to SSH ready: median {boot_median:.2f} s of {len(boot_times)} "
          f"({', '.join(f'{k} {v:.2f}' for k, v in median_phases(boots).items())})")
    print("goals:")
    for goal in judged:
        print("  " + goal.line())
    say(f"results in {out} and {chart}")
    return result


def main(args: argparse.Namespace) -> int:
    run_bench(BenchOptions(
        reports=args.reports.resolve(), request=kernel_request(args), repeats=args.repeat,
        region=args.region, file_size=args.file_size, random_seconds=args.random_seconds,
        boots=args.boots, profile=args.profile, output=args.output, smp=args.smp,
        memory_mb=args.memory))
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("bench", help="MUSE against nandsim and mtdram in one VM; boot time; "
                                     "reports/bench.json and bench.png")
    add_kernel_opts(p.add_argument)
    add_jobs_opt(p.add_argument)
    add_vm_opts(p.add_argument)
    add_reports_opt(p.add_argument)
    p.add_argument("--repeat", type=int, default=5, help="repeats per workload (medians)")
    p.add_argument("--region", default="16MiB", help="raw MTD bytes per run")
    p.add_argument("--file-size", default="8MiB", help="UBIFS file size")
    p.add_argument("--random-seconds", type=float, default=2.0, help="random read phase")
    p.add_argument("--boots", type=int, default=3, help="extra boots for the boot median")
    p.add_argument("--profile", action="store_true",
                   help="run the MUSE servers under cProfile; save the top entries")
    p.add_argument("--output", default="bench", help="file name stem in --reports")
    p.set_defaults(func=main)
