"""Benchmark arithmetic: parse the guest tools' results, take medians, compare, judge goals.

A sample is one measured figure of one device in one repeat. Figures pair the
MUSE device with its in-kernel peer (nandsim for NAND, mtdram for RAM) and
give their medians and the ratio MUSE / in-kernel. Nothing here touches a VM,
so it is unit-tested on its own.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from harness.errors import HarnessError

PREFIX = "BENCH "
# workload -> (MUSE label, in-kernel label, metrics)
WORKLOADS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "nand": ("MUSE NAND", "nandsim",
             ("erase_MiBps", "write_MiBps", "read_MiBps", "random_read_ops")),
    "ram": ("MUSE RAM", "mtdram",
            ("erase_MiBps", "write_MiBps", "read_MiBps", "random_read_ops")),
    "ubifs": ("UBIFS on MUSE NAND", "UBIFS on nandsim", ("write_MiBps", "read_MiBps")),
    # The same nandsim figures against a MUSE NAND with a larger write buffer
    # (WRITEBUFSIZE, UBI's max_write_size): UBIFS then writes several pages a request.
    "ubifs-wbuf": ("UBIFS on MUSE NAND (wide wbuf)", "UBIFS on nandsim",
                   ("write_MiBps", "read_MiBps")),
}
UNITS = {"random_read_ops": "ops/s"}
SIDES = ("muse", "kernel")


class BenchError(HarnessError):
    pass


def parse_result(stdout: str, what: str = "bench") -> dict[str, object]:
    """The JSON of the one 'BENCH {...}' line; a missing or broken line is an error."""
    lines = [ln for ln in stdout.splitlines() if ln.startswith(PREFIX)]
    if len(lines) != 1:
        raise BenchError(f"{what}: expected one '{PREFIX.strip()}' line, got {len(lines)}:\n"
                         f"{stdout[-2000:]}")
    try:
        result = json.loads(lines[0][len(PREFIX):])
    except json.JSONDecodeError as exc:
        raise BenchError(f"{what}: unreadable result {lines[0]!r}: {exc}") from None
    if not isinstance(result, dict):
        raise BenchError(f"{what}: result is not an object: {lines[0]!r}")
    return result


@dataclass(frozen=True)
class Sample:
    workload: str   # a WORKLOADS key
    side: str       # "muse" or "kernel"
    metric: str
    value: float
    repeat: int


def samples_from(result: Mapping[str, object], workload: str, side: str,
                 repeat: int) -> list[Sample]:
    """One Sample per metric of the workload, each required to be a positive number."""
    if workload not in WORKLOADS or side not in SIDES:
        raise BenchError(f"unknown workload/side {workload}/{side}")
    out = []
    for metric in WORKLOADS[workload][2]:
        value = result.get(metric)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise BenchError(f"{workload}/{side} repeat {repeat}: {metric} is {value!r}, "
                             "not a positive number")
        out.append(Sample(workload, side, metric, float(value), repeat))
    return out


@dataclass
class Spread:
    median: float
    low: float
    high: float
    values: list[float]


@dataclass
class Figure:
    workload: str
    metric: str
    unit: str
    muse_label: str
    kernel_label: str
    muse: Spread
    kernel: Spread
    ratio: float    # median MUSE / median in-kernel

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _spread(values: list[float]) -> Spread:
    return Spread(round(statistics.median(values), 3), min(values), max(values), values)


def unit_of(metric: str) -> str:
    return UNITS.get(metric, "MiB/s")


def aggregate(samples: list[Sample]) -> list[Figure]:
    """Figures in WORKLOADS order, for every (workload, metric) both sides measured."""
    figures = []
    for workload, (muse_label, kernel_label, metrics) in WORKLOADS.items():
        for metric in metrics:
            sides = {side: [s.value for s in samples
                            if (s.workload, s.side, s.metric) == (workload, side, metric)]
                     for side in SIDES}
            if not sides["muse"] or not sides["kernel"]:
                continue
            muse, kernel = _spread(sides["muse"]), _spread(sides["kernel"])
            figures.append(Figure(workload, metric, unit_of(metric), muse_label, kernel_label,
                                  muse, kernel, round(muse.median / kernel.median, 3)))
    return figures


@dataclass
class Goal:
    name: str
    target: str
    value: str
    met: bool | None        # None: not measured
    aim: str = ""
    aim_met: bool | None = None

    def line(self) -> str:
        state = {True: "MET", False: "NOT MET", None: "not measured"}[self.met]
        aim = ""
        if self.aim:
            aim = f"; aim {self.aim}: " + {True: "met", False: "not yet", None: "-"}[self.aim_met]
        return f"{self.name:38} goal {self.target:10} now {self.value:16} {state}{aim}"


def _figure(figures: list[Figure], workload: str, metric: str) -> Figure | None:
    return next((f for f in figures if (f.workload, f.metric) == (workload, metric)), None)


def goals(figures: list[Figure], boot_median: float | None,
          edit_seconds: float | None) -> list[Goal]:
    """The goals (issue 8's, raised by issue 23 for the suite's 2-vCPU guests) and
    where the measurements of the suite's configuration stand."""
    out = []
    for workload, metric, what, target, aim in (
            ("nand", "read_MiBps", "sequential read", 0.5, 1.0),
            ("nand", "write_MiBps", "sequential write", 0.5, 1.0),
            ("nand", "random_read_ops", "random 2 KiB read", 0.1, 0.2),
            ("ubifs", "write_MiBps", "UBIFS write", 0.1, 0.2),
            ("ubifs", "read_MiBps", "UBIFS read", 0.1, 0.2),
            ("ubifs-wbuf", "write_MiBps", "UBIFS write, large wbuf", 0.1, 0.2)):
        fig = _figure(figures, workload, metric)
        ratio = fig.ratio if fig else None
        label = "MUSE NAND / nandsim" if workload == "nand" else "UBIFS, MUSE / nandsim"
        out.append(Goal(f"{label}, {what}", f">= {target}x",
                        f"{ratio:.2f}x" if ratio is not None else "-",
                        None if ratio is None else ratio >= target, f">= {aim}x",
                        None if ratio is None else ratio >= aim))
    out.append(Goal("boot to SSH ready (TCG, median)", "<= 5 s",
                    f"{boot_median:.2f} s" if boot_median is not None else "-",
                    None if boot_median is None else boot_median <= 5.0, "<= 3 s",
                    None if boot_median is None else boot_median <= 3.0))
    out.append(Goal("edit-to-result (muse.c change)", "<= 90 s",
                    f"{edit_seconds:.1f} s" if edit_seconds is not None else "-",
                    None if edit_seconds is None else edit_seconds <= 90.0))
    return out


def table(figures: list[Figure]) -> str:
    rows = [f"{'workload':34} {'MUSE':>10} {'in-kernel':>10} {'unit':6} {'ratio':>6}"]
    for f in figures:
        name = f"{f.muse_label} vs {f.kernel_label}: {f.metric.split('_')[0]}"
        if f.metric == "random_read_ops":
            name = f"{f.muse_label} vs {f.kernel_label}: random read"
        rows.append(f"{name:34} {f.muse.median:10.2f} {f.kernel.median:10.2f} {f.unit:6} "
                    f"{f.ratio:6.2f}")
    return "\n".join(rows)


def side_by_side(configs: dict[str, list[Figure]]) -> str:
    """Ratio MUSE / in-kernel of every figure, one column per configuration of one run."""
    names = list(configs)
    keys = list(dict.fromkeys((f.workload, f.metric) for figs in configs.values()
                              for f in figs))
    width = max([14, *(len(n) for n in names)])
    rows = [f"{'MUSE / in-kernel':34} " + " ".join(f"{n:>{width}}" for n in names)]
    for workload, metric in keys:
        cells = []
        label = ""
        for name in names:
            fig = _figure(configs[name], workload, metric)
            if fig is None:
                cells.append(f"{'-':>{width}}")
                continue
            what = "random read" if metric == "random_read_ops" else metric.split("_")[0]
            label = f"{fig.muse_label}: {what}"
            cells.append(f"{f'{fig.ratio:.2f}x ({fig.muse.median:.3g})':>{width}}")
        rows.append(f"{label:34} " + " ".join(cells))
    return "\n".join(rows)


def ratio_range(fig: Mapping[str, object]) -> tuple[float, float]:
    """The ratio's range over the repeats: worst MUSE over best in-kernel, and back."""
    muse, kernel = fig["muse"], fig["kernel"]
    assert isinstance(muse, Mapping) and isinstance(kernel, Mapping)
    return (float(muse["low"]) / float(kernel["high"]),
            float(muse["high"]) / float(kernel["low"]))


@dataclass
class Drop:
    config: str
    figure: str
    before: float
    now: float
    before_low: float

    def line(self) -> str:
        return (f"{self.config} {self.figure}: {self.now:.2f}x, below the earlier run's "
                f"whole range (ratio {self.before:.2f}x, lowest {self.before_low:.2f}x)")


def drops(before: Mapping[str, object], now: Mapping[str, object]) -> list[Drop]:
    """Figures of a configuration both runs measured whose whole ratio range now lies
    below the earlier run's: a drop beyond the measured spread."""
    def by_config(data: Mapping[str, object]) -> dict[str, dict[str, Mapping[str, object]]]:
        configs = data.get("configs")
        out: dict[str, dict[str, Mapping[str, object]]] = {}
        if isinstance(configs, list):
            for config in configs:
                out[str(config["name"])] = {f"{f['workload']}/{f['metric']}": f
                                            for f in config["figures"]}
        return out

    old, new = by_config(before), by_config(now)
    found = []
    for config, figures in new.items():
        for key, fig in figures.items():
            earlier = old.get(config, {}).get(key)
            if earlier is None:
                continue
            low, _ = ratio_range(earlier)
            if ratio_range(fig)[1] < low:
                found.append(Drop(config, key, float(str(earlier["ratio"])),
                                  float(str(fig["ratio"])), round(low, 3)))
    return found


# -- boot: where the time from QEMU start to SSH ready goes

KTIME = re.compile(r"^\[\s*(\d+\.\d+)\]")


@dataclass
class BootPhases:
    """Seconds since QEMU started at which each step showed on the console (host clock),
    the kernel's own timestamp of it, and the resulting phase lengths."""

    total: float
    seen: dict[str, float] = field(default_factory=dict)
    kernel_time: dict[str, float] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)


# The console lines that end each phase, in boot order.
BOOT_STEPS = (
    ("firmware+loader", "Linux version "),
    ("kernel", "Run {init} as init process"),
    ("init to sshd", "{marker} sshd started"),
)


def boot_phases(text: str, arrivals: list[tuple[float, int]], started: float, total: float,
                *, init: str, marker: str) -> BootPhases:
    """Split total (QEMU start to SSH ready) at the console lines of BOOT_STEPS.

    arrivals are (monotonic time, text size after the chunk) as the console recorded
    them; the last phase, "sshd to SSH ready", runs from the last line seen to total.
    """
    result = BootPhases(total=total)
    previous = 0.0
    for phase, pattern in BOOT_STEPS:
        needle = pattern.format(init=init, marker=marker)
        index = text.find(needle)
        if index < 0:
            continue
        line_start = text.rfind("\n", 0, index) + 1
        when = next((t for t, size in arrivals if size > index), None)
        if when is None:
            continue
        at = round(when - started, 3)
        result.seen[needle] = at
        stamp = KTIME.match(text[line_start:index])
        if stamp:
            result.kernel_time[needle] = float(stamp.group(1))
        result.phases[phase] = round(at - previous, 3)
        previous = at
    result.phases["sshd to SSH ready"] = round(total - previous, 3)
    return result


def median_phases(runs: list[BootPhases]) -> dict[str, float]:
    names = [name for name, _ in BOOT_STEPS] + ["sshd to SSH ready"]
    return {name: round(statistics.median([r.phases[name] for r in runs if name in r.phases]), 3)
            for name in names if any(name in r.phases for r in runs)}
