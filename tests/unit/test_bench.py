"""Benchmark parsing, medians, ratios, goals and the boot split (no VM)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from harness.kernel.build import BuildRequest
from harness.tools.bench.chart import draw
from harness.tools.bench.run import (
    BenchOptions,
    _appends,
    _idles,
    configs,
    edit_loop_seconds,
    suite_config,
)
from harness.tools.bench.stats import (
    BenchError,
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
    table,
)

RAW = {"erase_MiBps": 10.0, "write_MiBps": 4.0, "read_MiBps": 8.0, "random_read_ops": 500.0}


def test_parse_result_takes_the_one_bench_line() -> None:
    out = "noise\nBENCH {\"read_MiBps\": 3.5}\nmore noise\n"
    assert parse_result(out) == {"read_MiBps": 3.5}


@pytest.mark.parametrize("out", ["", "BENCH {}\nBENCH {}\n", "BENCH {broken", "BENCH [1]"])
def test_parse_result_refuses_missing_duplicate_or_broken_lines(out: str) -> None:
    with pytest.raises(BenchError):
        parse_result(out)


def test_samples_need_every_metric_as_a_positive_number() -> None:
    samples = samples_from(RAW, "nand", "muse", 0)
    assert [(s.metric, s.value) for s in samples] == list(RAW.items())
    missing = {k: v for k, v in RAW.items() if k != "read_MiBps"}
    for broken in ({**RAW, "read_MiBps": 0}, {**RAW, "read_MiBps": "fast"},
                   {**RAW, "read_MiBps": True}, missing):
        with pytest.raises(BenchError, match="read_MiBps"):
            samples_from(broken, "nand", "muse", 0)
    with pytest.raises(BenchError):
        samples_from(RAW, "nor", "muse", 0)


def _samples(workload: str, side: str, metric: str, values: list[float]) -> list[Sample]:
    return [Sample(workload, side, metric, v, i) for i, v in enumerate(values)]


def test_aggregate_medians_spread_and_ratio() -> None:
    samples = (_samples("nand", "muse", "read_MiBps", [5.0, 1.0, 4.0, 100.0, 3.0])
               + _samples("nand", "kernel", "read_MiBps", [8.0, 10.0, 6.0])
               + _samples("ram", "muse", "read_MiBps", [1.0]))   # no peer: no figure
    [figure] = aggregate(samples)
    assert (figure.workload, figure.metric, figure.unit) == ("nand", "read_MiBps", "MiB/s")
    assert figure.muse.median == 4.0 and (figure.muse.low, figure.muse.high) == (1.0, 100.0)
    assert figure.kernel.median == 8.0
    assert figure.ratio == 0.5
    assert "nandsim" in table([figure]) and "0.50" in table([figure])


def test_aggregate_keeps_workload_order_and_units() -> None:
    samples = []
    for workload in ("ubifs", "ram", "nand"):
        for side in ("muse", "kernel"):
            metrics = RAW if workload != "ubifs" else {"write_MiBps": 1.0, "read_MiBps": 2.0}
            samples += samples_from(metrics, workload, side, 0)
    figures = aggregate(samples)
    assert [f.workload for f in figures] == ["nand"] * 4 + ["ram"] * 4 + ["ubifs"] * 2
    assert {f.unit for f in figures if f.metric == "random_read_ops"} == {"ops/s"}
    assert all(f.ratio == 1.0 for f in figures)


def test_goals_judge_ratios_boot_and_edit_loop() -> None:
    samples = (_samples("nand", "muse", "read_MiBps", [6.0]) +
               _samples("nand", "kernel", "read_MiBps", [10.0]) +
               _samples("nand", "muse", "write_MiBps", [11.0]) +
               _samples("nand", "kernel", "write_MiBps", [10.0]) +
               _samples("ubifs", "muse", "write_MiBps", [0.5]) +
               _samples("ubifs", "kernel", "write_MiBps", [10.0]) +
               _samples("ubifs-wbuf", "muse", "write_MiBps", [3.0]) +
               _samples("ubifs-wbuf", "kernel", "write_MiBps", [10.0]))
    read, write, rand, ubifs_w, ubifs_r, wide_w, boot, edit = goals(aggregate(samples), 2.9,
                                                                    80.0)
    assert (wide_w.met, wide_w.aim_met) == (True, True)  # 0.3x
    assert "large wbuf" in wide_w.line()
    assert (read.met, read.aim_met) == (True, False)     # 0.6x: goal met, aim (1.0x) not yet
    assert (write.met, write.aim_met) == (True, True)    # 1.1x
    assert (ubifs_w.met, ubifs_w.aim_met) == (False, False)  # 0.05x
    assert rand.met is None and ubifs_r.met is None      # not measured
    assert (boot.met, boot.aim_met) == (True, True) and "2.90 s" in boot.line()
    assert edit.met is True
    unmeasured = goals([], None, None)
    assert all(g.met is None for g in unmeasured)
    assert "not measured" in unmeasured[0].line()


def test_side_by_side_puts_each_configuration_in_a_column() -> None:
    def run(muse: float) -> list[Figure]:
        return aggregate(_samples("nand", "muse", "read_MiBps", [muse])
                         + _samples("nand", "kernel", "read_MiBps", [10.0]))
    text = side_by_side({"smp2-multi": run(5.0), "smp2-single": run(12.0)})
    head, row = text.splitlines()
    assert "smp2-multi" in head and head.index("smp2-multi") < head.index("smp2-single")
    assert row.startswith("MUSE NAND: read") and "0.50x (5)" in row and "1.20x (12)" in row


def _bench_json(values: list[float]) -> dict[str, object]:
    figures = aggregate(_samples("nand", "muse", "read_MiBps", values)
                        + _samples("nand", "kernel", "read_MiBps", [10.0, 10.0, 10.0]))
    return {"configs": [{"name": "smp2-single", "figures": [f.to_json() for f in figures]}]}


def test_a_drop_beyond_the_spread_is_flagged_and_noise_is_not() -> None:
    before = _bench_json([9.0, 10.0, 11.0])          # ratio 0.9 .. 1.1
    assert drops(before, _bench_json([9.5, 9.0, 8.5])) == []      # overlaps: noise
    [drop] = drops(before, _bench_json([6.0, 7.0, 8.0]))           # 0.6 .. 0.8 < 0.9
    assert (drop.config, drop.figure, drop.before, drop.now) == (
        "smp2-single", "nand/read_MiBps", 1.0, 0.7)
    assert "below the earlier run's whole range" in drop.line()
    assert drops({"configs": []}, before) == []       # nothing to compare with


def test_bench_configurations_and_the_suites_own() -> None:
    opts = BenchOptions(reports=Path("/tmp"), request=BuildRequest())
    # Polling only with more than one vCPU, each on a host thread of its own.
    assert [c.name for c in configs(opts)] == ["smp1-multi", "smp1-single", "smp2-multi",
                                               "smp2-multi+idle=poll", "smp2-single"]
    # make test's guests poll: one VM at a time, "auto" (options.DEFAULT_GUEST_IDLE).
    assert suite_config(opts).name == "smp2-multi+idle=poll"
    assert suite_config(opts) in configs(opts)
    halted = BenchOptions(reports=Path("/tmp"), request=BuildRequest(), idles=("halt",))
    assert suite_config(halted).name == "smp2-multi"
    levers = BenchOptions(reports=Path("/tmp"), request=BuildRequest(), smps=(2,),
                          tcg_threads=("multi",), kernel_args=("", "mitigations=off"),
                          idles=("halt",))
    assert [c.name for c in configs(levers)] == ["smp2-multi", "smp2-multi+mitigations=off"]
    assert suite_config(levers).name == "smp2-multi"


def test_guest_idle_modes_are_checked() -> None:
    assert _idles("halt,poll,halt") == ("halt", "poll")
    with pytest.raises(argparse.ArgumentTypeError, match="guest idle modes are halt, poll"):
        _idles("auto")


def test_kernel_args_are_checked_words() -> None:
    assert _appends(";idle=poll") == ("", "idle=poll")
    with pytest.raises(argparse.ArgumentTypeError, match="not kernel command line words"):
        _appends("idle=poll; rm -rf /")


CONSOLE = (
    "SeaBIOS noise\n"
    "[    0.000000] Linux version 6.1.192+ (muse@harness)\n"
    "[    0.900000] Run /sbin/init as init process\n"
    "[    1.700000] MARK: init started\n"
    "[    2.900000] MARK: sshd started\n"
)


def test_boot_phases_split_at_console_lines() -> None:
    offsets = [CONSOLE.index(s) for s in ("Linux version", "Run /sbin", "MARK: init",
                                          "MARK: sshd")]
    # One console chunk per line, arriving at these seconds after QEMU started (100.0).
    arrivals = [(100.0 + t, o + 1) for t, o in zip((1.0, 2.1, 3.0, 4.2), offsets, strict=True)]
    phases = boot_phases(CONSOLE, arrivals, 100.0, 6.5, init="/sbin/init", marker="MARK:")
    assert phases.phases == {"firmware+loader": 1.0, "kernel": 1.1, "init to sshd": 2.1,
                             "sshd to SSH ready": 2.3}
    assert phases.kernel_time["MARK: sshd started"] == 2.9
    # A line that never came leaves its phase out; the rest still adds up to the total.
    partial = boot_phases("nothing\n", [(100.5, 8)], 100.0, 5.0, init="/x", marker="M:")
    assert partial.phases == {"sshd to SSH ready": 5.0}
    assert median_phases([phases, phases, partial])["sshd to SSH ready"] == 2.3


def test_edit_loop_seconds_reads_the_last_measurement(tmp_path: Path) -> None:
    assert edit_loop_seconds(tmp_path) is None
    (tmp_path / "edit-loop.json").write_text(json.dumps({"seconds": 71.5}))
    assert edit_loop_seconds(tmp_path) == 71.5
    (tmp_path / "edit-loop.json").write_text("[]")
    assert edit_loop_seconds(tmp_path) is None


def test_chart_is_a_png(tmp_path: Path) -> None:
    samples = []
    for side in ("muse", "kernel"):
        samples += samples_from(RAW, "nand", side, 0)
    path = tmp_path / "bench.png"
    draw(aggregate(samples), path, title="test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError):
        draw([], tmp_path / "none.png", title="empty")
