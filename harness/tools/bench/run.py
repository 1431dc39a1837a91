"""muse-harness bench: MUSE against nandsim and mtdram in one VM, repeated, with medians.

One VM holds all four devices at once: nandsim and a MUSE NAND of the same
geometry, mtdram and a MUSE RAM of the same size and eraseblock. Each repeat
runs the raw MTD tool (guest/bench) on both devices of a pair, the order
alternating between repeats so that neither side always runs on a warmer or
cooler guest. UBIFS (compr=none, so the flash path dominates) is then
measured on nandsim and MUSE NAND alike (mounted with bulk_read by default:
UBIFS then reads a run of nodes in one call, which is what a flash with a
cost per read wants), and on a third MUSE NAND whose write buffer
(WRITEBUFSIZE, UBI's max_write_size) is --ubifs-writebufsize: UBIFS then
writes that much a request instead of a page. Its ratios are held against the
same nandsim figures. Boot time is the bench VM's own boot
plus --boots more, each split into phases from the console.

Results: reports/<output>.json and reports/<output>.png; the goals of issue 8
are printed with where the figures stand.
"""

from __future__ import annotations

import argparse
import json
import re
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
from harness.kernel.series import read_series
from harness.machine.accel import guest_idle
from harness.machine.rootfs import GUEST, Rootfs, build_rootfs
from harness.machine.ssh import GuestProcess
from harness.machine.vm import VM
from harness.options import (
    DEFAULT_GUEST_IDLE,
    DEFAULT_TCG_THREADS,
    TCG_THREADS,
    add_jobs_opt,
    add_kernel_opts,
    add_memory_opt,
    add_reports_opt,
)
from harness.proc import say
from harness.report.html import reported_run
from harness.tools.bench.stats import (
    BenchError,
    BootPhases,
    Figure,
    Sample,
    aggregate,
    boot_phases,
    drops,
    goals,
    median_phases,
    parse_result,
    samples_from,
    side_by_side,
)
from harness.tools.common import Subparsers, kernel_request

UBIFS_OPTIONS = "compr=none,bulk_read"
COMMAND_TIMEOUT = 1800.0


@dataclass
class BenchOptions:
    reports: Path
    request: BuildRequest
    repeats: int = 5
    region: str = "16MiB"         # raw MTD bytes per run
    ram_kib: int = 16384          # mtdram and MUSE RAM size
    file_size: str = "8MiB"       # UBIFS file
    ubifs_options: str = UBIFS_OPTIONS
    ubifs_writebufsize: str = "64KiB"   # of the third MUSE NAND; "0": no third device
    random_seconds: float = 2.0
    boots: int = 3                # extra boots for the boot-time median
    profile: bool = False         # servers under cProfile (figures then not comparable)
    output: str = "bench"
    smps: tuple[int, ...] = (1, 2)           # guest CPUs: each is a configuration
    tcg_threads: tuple[str, ...] = TCG_THREADS   # and each TCG thread mode with it
    kernel_args: tuple[str, ...] = ("",)     # and each guest kernel command line addition
    idles: tuple[str, ...] = ("halt", "poll")  # and each idle mode, where it can matter
    memory_mb: int = 1024
    against: Path | None = None              # an earlier bench.json to hold this run against


@dataclass(frozen=True)
class Config:
    """One VM set-up the workloads run in."""

    smp: int
    tcg_threads: str
    append: str = ""      # added to the guest kernel's command line (a lever)
    idle: str = "halt"    # what idle guest CPUs do (accel.guest_idle())

    @property
    def name(self) -> str:
        # "+idle=poll" as the command line word: the name an earlier bench.json gave
        # the same guest when it was asked for with --kernel-args.
        words = [*(["idle=poll"] if self.idle == "poll" else []), *self.append.split()]
        return f"smp{self.smp}-{self.tcg_threads}" + "".join(f"+{w}" for w in words)


def configs(opts: BenchOptions) -> list[Config]:
    """Every combination, but polling only where it can matter: on more than one
    vCPU, each with a host thread (on one, or round robin, a polling vCPU only takes
    time from the others)."""
    return [Config(smp, threads, append, idle) for smp in opts.smps
            for threads in opts.tcg_threads for append in opts.kernel_args
            for idle in opts.idles
            if idle == "halt" or (smp > 1 and threads == "multi")]


def suite_config(opts: BenchOptions) -> Config:
    """The configuration the suite's guests run in by default: the most CPUs asked
    for, the default TCG thread mode, the default idle mode as a VM alone under TCG
    resolves it (make test runs one at a time); halt if that one was not asked for."""
    idle = guest_idle(DEFAULT_GUEST_IDLE, "tcg", alone=True, threads=DEFAULT_TCG_THREADS)
    return Config(max(opts.smps), DEFAULT_TCG_THREADS,
                  idle=idle if idle in opts.idles else "halt")


def edit_loop_seconds(reports: Path) -> float | None:
    """The last edit-to-result measurement (muse-harness edit-loop), if any."""
    path = reports / "edit-loop.json"
    try:
        value = json.loads(path.read_text()).get("seconds")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


class Bench:
    """The workloads in one VM."""

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
        twin = (f"--type nand --size {geo['size']} --erasesize {geo['erasesize']} "
                f"--writesize {geo['writesize']} --oobsize {geo['oobsize']} "
                f"--subpage-shift {shift}")
        nand = self.start_muse("nand", f"{twin} --name musebench-nand")
        wide = {}
        if self.opts.ubifs_writebufsize not in ("", "0"):
            wide = {"muse-wbuf": self.start_muse("nand-wbuf", (
                f"{twin} --name musebench-wbuf "
                f"--writebufsize {self.opts.ubifs_writebufsize}"))}
        self.check(mtdram_modprobe(self.opts.ram_kib, 128))
        ram = self.mtd_index(MTDRAM_NAME)
        muse_ram = self.start_muse("ram", (
            f"--type ram --name musebench-ram --size {self.opts.ram_kib}KiB "
            "--erasesize 128KiB"))
        return {"nand": {"kernel": sim, "muse": nand}, "ram": {"kernel": ram, "muse": muse_ram},
                "ubifs": {"kernel": sim, "muse": nand, **wide}}

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
        ubi = {side: n for n, side in enumerate(devices["ubifs"], 1)}
        for side, index in devices["ubifs"].items():
            n = ubi[side]
            self.check(f"ubiformat -y -q /dev/mtd{index} && ubiattach -m {index} -d {n} && "
                       f"ubimkvol /dev/ubi{n} -N bench -m && mkdir -p /mnt/bench{n} && "
                       f"mount -t ubifs -o {o.ubifs_options} ubi{n}:bench /mnt/bench{n}")
        try:
            for repeat in range(o.repeats):
                # The order turns each repeat: no side always runs first.
                sides = list(ubi)[repeat % len(ubi):] + list(ubi)[:repeat % len(ubi)]
                for side in sides:
                    mnt = f"/mnt/bench{ubi[side]}"
                    out = self.check(
                        f"python3 -m guest.bench file {mnt} --size {o.file_size} "
                        f"--mountpoint {mnt} --mount-options {o.ubifs_options} "
                        f"--label ubifs-{side}")
                    result = parse_result(out, f"ubifs/{side} repeat {repeat + 1}")
                    if side == "kernel":
                        for workload in ("ubifs", "ubifs-wbuf")[:len(ubi) - 1]:
                            self.samples += samples_from(result, workload, side, repeat)
                    else:
                        workload = "ubifs" if side == "muse" else "ubifs-wbuf"
                        self.samples += samples_from(result, workload, "muse", repeat)
                    say(f"repeat {repeat + 1}/{o.repeats} ubifs {side:9}: write "
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


def boot_record(vm: VM) -> BootPhases:
    assert vm.console is not None
    return boot_phases(vm.console.text(), list(vm.console.arrivals), vm.started,
                       vm.boot_seconds, init=GUEST["init"], marker=GUEST["marker"])


def measure_boots(kernel: KernelBuild, rootfs: Rootfs, opts: BenchOptions, config: Config,
                  count: int) -> list[BootPhases]:
    runs = []
    for index in range(count):
        vm = VM(kernel, rootfs, opts.reports / "bench-consoles", name=f"boot{index + 1}",
                smp=config.smp, memory_mb=opts.memory_mb, tcg_threads=config.tcg_threads,
                extra_append=config.append, idle=config.idle)
        try:
            vm.start()
            runs.append(boot_record(vm))
            say(f"boot {index + 1}/{count}: SSH ready after {vm.boot_seconds} s "
                f"{runs[-1].phases}")
        finally:
            vm.close()
    return runs


@dataclass
class ConfigRun:
    config: Config
    guest_cpus: int
    accel: str
    samples: list[Sample]
    figures: list[Figure]
    boot: BootPhases
    profiles: dict[str, str]


def run_config(kernel: KernelBuild, rootfs: Rootfs, opts: BenchOptions,
               config: Config) -> ConfigRun:
    """Every workload in one VM of config; its guest CPU count as the guest reports it."""
    vm = VM(kernel, rootfs, opts.reports / "bench-consoles", name=f"{opts.output}-{config.name}",
            smp=config.smp, memory_mb=opts.memory_mb, tcg_threads=config.tcg_threads,
            extra_append=config.append, idle=config.idle)
    say(f"{config.name}: booting {kernel.release} ({kernel.flavour}) for the benchmark")
    try:
        vm.start()
        boot = boot_record(vm)
        bench = Bench(vm, opts)
        cpus = int(bench.check("nproc").strip())
        if cpus != config.smp:
            raise BenchError(f"{config.name}: the guest has {cpus} CPUs, not {config.smp}")
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
    return ConfigRun(config, cpus, accel, bench.samples, aggregate(bench.samples), boot,
                     bench.profiles)


def run_bench(opts: BenchOptions) -> dict[str, object]:
    started = time.monotonic()
    opts.reports.mkdir(parents=True, exist_ok=True)
    earlier = json.loads(opts.against.read_text()) if opts.against else None
    kernel = build_kernel(opts.request)
    rootfs = build_rootfs()
    primary = suite_config(opts)
    runs = [run_config(kernel, rootfs, opts, config) for config in configs(opts)]
    main = next((r for r in runs if r.config == primary), runs[-1])
    boots = [main.boot, *measure_boots(kernel, rootfs, opts, main.config, opts.boots)]
    boot_times = [b.total for b in boots]
    boot_median = statistics.median(boot_times)
    edit = edit_loop_seconds(opts.reports)
    judged = goals(main.figures, boot_median if main.accel == "tcg" else None, edit)
    result: dict[str, object] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kernel": kernel.release, "base": opts.request.base, "flavour": kernel.flavour,
        "accel": main.accel, "suite_config": main.config.name,
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()
                    if k not in ("reports", "request")},
        "configs": [{"name": r.config.name, "smp": r.config.smp,
                     "tcg_threads": r.config.tcg_threads, "kernel_args": r.config.append,
                     "guest_idle": r.config.idle,
                     "guest_cpus": r.guest_cpus,
                     "figures": [f.to_json() for f in r.figures],
                     "ratios": {f"{f.workload}/{f.metric}": f.ratio for f in r.figures},
                     "samples": [asdict(s) for s in r.samples]} for r in runs],
        "figures": [f.to_json() for f in main.figures],
        "ratios": {f"{f.workload}/{f.metric}": f.ratio for f in main.figures},
        "boot": {"config": main.config.name, "seconds": boot_times, "median": boot_median,
                 "median_phases": median_phases(boots), "runs": [asdict(b) for b in boots]},
        "edit_to_result_seconds": edit,
        "goals": [asdict(g) for g in judged],
        "wall_seconds": round(time.monotonic() - started, 1),
    }
    found = drops(earlier, result) if earlier is not None else []
    result["drops"] = [asdict(d) for d in found]
    out = opts.reports / f"{opts.output}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    for run in runs:
        for tag, text in run.profiles.items():
            (opts.reports / f"{opts.output}-{run.config.name}-profile-{tag}.txt").write_text(text)
    chart = opts.reports / f"{opts.output}.png"
    from harness.tools.bench.chart import draw

    draw(main.figures, chart, title=f"MUSE vs in-kernel, {kernel.release}, {main.accel}, "
                                    f"{main.config.name}, medians of {opts.repeats}")
    print(side_by_side({r.config.name: r.figures for r in runs}))
    print(f"(MUSE's median in parentheses; the suite runs as {main.config.name})")
    phases = ", ".join(f"{k} {v:.2f}" for k, v in median_phases(boots).items())
    print(f"boot to SSH ready ({main.config.name}): median {boot_median:.2f} s of "
          f"{len(boot_times)} ({phases})")
    print("goals:")
    for goal in judged:
        print("  " + goal.line())
    if opts.against is not None:
        print(f"against {opts.against}: " + ("no drop beyond the measured spread" if not found
                                             else f"{len(found)} drops"))
        for drop in found:
            print("  DROP " + drop.line())
    say(f"results in {out} and {chart}")
    return result


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(n) for n in text.split(",") if n.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of CPU counts: {text!r}") from None


def _threads(text: str) -> tuple[str, ...]:
    modes = tuple(m.strip() for m in text.split(",") if m.strip())
    wrong = [m for m in modes if m not in TCG_THREADS]
    if wrong or not modes:
        raise argparse.ArgumentTypeError(f"TCG thread modes are {', '.join(TCG_THREADS)}, "
                                         f"not {text!r}")
    return modes


def _idles(text: str) -> tuple[str, ...]:
    modes = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    if not modes or any(m not in ("halt", "poll") for m in modes):
        raise argparse.ArgumentTypeError(f"guest idle modes are halt, poll, not {text!r}")
    return modes


def _appends(text: str) -> tuple[str, ...]:
    appends = tuple(dict.fromkeys(a.strip() for a in text.split(";")))
    if any(not re.fullmatch(r"[\w.,=:+-]*(?: [\w.,=:+-]+)*", a) for a in appends):
        raise argparse.ArgumentTypeError(f"not kernel command line words: {text!r}")
    return appends


def main(args: argparse.Namespace) -> int:
    if args.against is not None and not args.against.is_file():
        raise BenchError(f"--against {args.against}: no such file")
    read_series(args.base)          # a bad base fails before the last run's page is touched
    reports = args.reports.resolve()
    with reported_run(reports, {"base": args.base, "flavour": args.flavour}):
        result = run_bench(BenchOptions(
            reports=reports, request=kernel_request(args), repeats=args.repeat,
            region=args.region, file_size=args.file_size, random_seconds=args.random_seconds,
            ubifs_options=args.ubifs_options, ubifs_writebufsize=args.ubifs_writebufsize,
            boots=args.boots, profile=args.profile, output=args.output, smps=args.smp,
            tcg_threads=args.tcg_threads, kernel_args=args.kernel_args, idles=args.guest_idle,
            memory_mb=args.memory, against=args.against))
    return 1 if result["drops"] else 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("bench", help="MUSE against nandsim and mtdram in one VM; boot time; "
                                     "reports/bench.json and bench.png")
    add_kernel_opts(p.add_argument)
    add_jobs_opt(p.add_argument)
    add_memory_opt(p.add_argument)
    # Several configurations side by side in one run: each CPU count with each mode.
    p.add_argument("--smp", type=_ints, default=(1, 2),
                   help="guest CPU counts, comma-separated (default 1,2)")
    p.add_argument("--tcg-threads", type=_threads, default=TCG_THREADS,
                   help="TCG thread modes, comma-separated (default multi,single)")
    p.add_argument("--guest-idle", type=_idles, default=("halt", "poll"),
                   help="idle modes of the guest's CPUs, comma-separated (default halt,poll; "
                        "poll only on configurations with a host thread per vCPU, 2 or more)")
    p.add_argument("--kernel-args", type=_appends, default=("",),
                   help="guest kernel command line additions, ';'-separated, each a "
                        "configuration; an empty one is the plain guest (e.g. ';idle=poll')")
    p.add_argument("--against", type=Path,
                   help="an earlier bench.json: flag each ratio that dropped beyond its spread")
    add_reports_opt(p.add_argument)
    p.add_argument("--repeat", type=int, default=5, help="repeats per workload (medians)")
    p.add_argument("--region", default="16MiB", help="raw MTD bytes per run")
    p.add_argument("--file-size", default="8MiB", help="UBIFS file size")
    p.add_argument("--ubifs-options", default=UBIFS_OPTIONS,
                   help="UBIFS mount options, the same on every device")
    p.add_argument("--ubifs-writebufsize", default="64KiB",
                   help="write buffer of a third MUSE NAND for UBIFS (0: none)")
    p.add_argument("--random-seconds", type=float, default=2.0, help="random read phase")
    p.add_argument("--boots", type=int, default=3, help="extra boots for the boot median")
    p.add_argument("--profile", action="store_true",
                   help="run the MUSE servers under cProfile; save the top entries")
    p.add_argument("--output", default="bench", help="file name stem in --reports")
    p.set_defaults(func=main)
