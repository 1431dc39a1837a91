"""UBIFS power-cut torture on MUSE NAND, with nandsim and UBI's own power-cut emulation as control.

Every cycle runs the seeded workload of guest/workloads (create, append,
rename, replace, delete, fsync about half the steps; what was synced is
recorded in the guest's /tmp, off the flash), cuts the power, restarts,
reattaches UBI, remounts UBIFS (recovery) and checks: every file synced
before the cut intact, nothing in the tree the workload cannot explain, and
no UBI/UBIFS error in the kernel log of the attach and mount (the plugin
fails the test on any kernel splat besides).

- live cuts on MUSE: the server's own power cut (`ctl powercut +K`, K drawn
  from the cycle's seed): the op in flight is torn (prefix or random bits),
  the device drops, the server restarts from its image. State accumulates
  over the cycles, each recovery checked by the next.
- replayed cuts on MUSE: one recorded run (oplog), then many cut points
  rebuilt by `guest.muse replay` and checked by `guest.workloads cutcheck`.
- the control: nandsim with the same geometry and UBI's debugfs
  tst_emulate_power_cut (UBI turns read-only before its N-th EC/VID header
  write; nothing is torn).

`--powercut-cycles N` sets the count (make test: 2; `make torture CYCLES=N`
for many), `--powercut-seed S` the base seed. A failing MUSE cut prints the
`make powercut-repro ...` command that rebuilds and rechecks exactly that cut
from the saved oplog (guest/muse/FAULTS.md, "Power-cut torture").
"""

from __future__ import annotations

import itertools
import json
import random
import re
import time

import pytest

from guest import contract
from harness.pytest.testguest import TestGuest

from .conftest import MuseServers
from .powercut_rig import (
    GEOMETRY,
    LONG,
    MNT,
    MUSE_GEOMETRY,
    NANDSIM,
    VOLUME,
    WORK,
    Cycle,
    Figures,
    Rig,
    count,
    failures,
    repro_command,
)

TORN = ("prefix", "bits")
CUT_LINE = re.compile(r"^muse: power cut at op (\d+) \((.*)\)\s*$", re.M)
MAX_AHEAD = 350  # a cut is armed 1..MAX_AHEAD ops into the workload (~400 ops per run)


def _options(config: pytest.Config) -> tuple[int, int]:
    cycles = int(config.getoption("--powercut-cycles"))
    assert cycles >= 1, "--powercut-cycles must be at least 1"
    return cycles, int(config.getoption("--powercut-seed"))


def _mount(vm: TestGuest, mtd: int, ubi: int, first: bool) -> None:
    make = f" && ubimkvol /dev/ubi{ubi} -N {VOLUME} -m" if first else ""
    vm.check(f"ubiattach -m {mtd} -d {ubi}{make} && mount -t ubifs ubi{ubi}:{VOLUME} {MNT}",
             timeout=LONG)


def _fail(figures: Figures, config: pytest.Config, headline: str, wrong: list[str],
          how: str) -> None:
    figures.first_problem = f"{headline}: {wrong[0]}"
    figures.save(config)
    pytest.fail(f"{headline}\n" + "\n".join(wrong[:20]) + f"\nreproduce: {how}", pytrace=False)


def test_ubifs_survives_live_power_cuts_on_muse(vm: TestGuest, muse: MuseServers,
                                                pytestconfig: pytest.Config) -> None:
    cycles, base = _options(pytestconfig)
    rig, figures = Rig(vm), Figures("muse-live")
    oplog, image, ctl = f"{WORK}/muse.oplog", f"{WORK}/muse.img", f"{WORK}/ctl"
    pending: tuple[str, Cycle, str] | None = None  # record, cycle and torn mode to check
    for k in range(1, cycles + 2):
        started = time.monotonic()
        seed = base * 1000 + k
        draw = random.Random(seed)
        torn = draw.choice(TORN)
        server = muse.start(f"{MUSE_GEOMETRY} --image {image} --image-format raw+oob "
                            f"--oplog {oplog} --control {ctl} --seed {seed} --torn {torn} "
                            f"--name musepc")
        marker = rig.mark(f"muse cycle {k}")
        _mount(vm, server.mtd.index, 4, first=k == 1)
        if pending is not None:
            record, done, done_torn = pending
            verdict = rig.verify(record, done.cut, done, rig.kernel_since(marker))
            wrong = failures(verdict)
            if wrong:
                art = rig.save_artifacts(pytestconfig, "muse-live")
                assert done.cut is not None
                _fail(figures, pytestconfig,
                      f"cycle {done.cycle}: power cut at op {done.cut} ({done.what}), seed "
                      f"{done.seed}, torn {done_torn}: the remount found", wrong,
                      repro_command(art, "muse.oplog", f"rec-{done.cycle}", done.cycle,
                                    done.cut, done.seed, done_torn))
        if k == cycles + 1:
            break
        cycle = Cycle(k, seed)
        figures.cycles.append(cycle)
        record = f"{WORK}/rec-{k}"
        rig.prepare(record, seed, f"c{k}", ctl)
        vm.check(f"python3 -m guest.muse ctl --control {ctl} powercut "
                 f"+{draw.randint(1, MAX_AHEAD)}")
        for attempt in range(5):
            if attempt == 4:  # the workload did not reach the armed op: cut the next one
                vm.check(f"python3 -m guest.muse ctl --control {ctl} powercut +1")
            summary = rig.run(record, control=ctl)
            cycle.steps = int(summary["steps"])
            if summary["error"]:
                break
        assert summary["error"], f"the workload ran on after the power cut: {summary}"
        status = server.proc.wait(120)
        muse.running.remove(server)
        cut = CUT_LINE.search(server.proc.text())
        assert status == 7 and cut, f"server exit {status}, no cut:\n{server.proc.text()}"
        cycle.cut, cycle.what = int(cut.group(1)), cut.group(2)
        vm.check(f"umount {MNT} && ubidetach -d 4", timeout=LONG)
        pending = (record, cycle, torn)
        cycle.seconds = round(time.monotonic() - started, 1)
    vm.check(f"umount {MNT} && ubidetach -d 4", timeout=LONG)
    assert muse.stop(server) == 0
    totals = figures.save(pytestconfig)
    assert totals["cuts_checked"] == cycles and totals["synced_data_lost"] == 0


def test_ubifs_survives_replayed_cuts_on_muse(vm: TestGuest, muse: MuseServers,
                                              pytestconfig: pytest.Config) -> None:
    cycles, base = _options(pytestconfig)
    rig, figures = Rig(vm), Figures("muse-replay")
    seed = base * 1000 + 500
    oplog, record, ctl = f"{WORK}/rec.oplog", f"{WORK}/rec-r", f"{WORK}/ctl"
    server = muse.start(f"{MUSE_GEOMETRY} --image {WORK}/rec.img --image-format raw+oob "
                        f"--oplog {oplog} --control {ctl} --seed {seed} --name musepc")
    _mount(vm, server.mtd.index, 4, first=True)
    rig.prepare(record, seed, "r", ctl)
    _, state = rig.json_of(f"python3 -m guest.muse ctl --control {ctl} get")
    first = int(state["powercut"]["ops"]) + 1  # the workload's first op
    summary = rig.run(record, control=ctl)
    assert summary["error"] is None, summary
    vm.check(f"umount {MNT} && ubidetach -d 4", timeout=LONG)
    _, state = rig.json_of(f"python3 -m guest.muse ctl --control {ctl} get")
    last = int(state["powercut"]["ops"])  # the recorded run's last op
    assert muse.stop(server) == 0
    assert last > first + 100, f"the workload made only {last - first} ops"
    draw = random.Random(seed)
    points = sorted(draw.sample(range(first, last + 1), 2 * cycles))
    for j, cut in enumerate(points):
        torn, cut_seed = TORN[j % 2], seed * 100 + j
        cycle = Cycle(j + 1, cut_seed, cut, f"torn {torn}", steps=int(summary["steps"]))
        figures.cycles.append(cycle)
        _, verdict = rig.json_of(
            f"python3 -m guest.workloads cutcheck --oplog {oplog} --record {record} "
            f"--cut {cut} --seed {cut_seed} --torn {torn}")
        count(cycle, verdict)
        cycle.seconds = float(verdict.get("seconds", 0))
        wrong = failures(verdict)
        if wrong or not verdict.get("ok"):
            art = rig.save_artifacts(pytestconfig, "muse-replay")
            _fail(figures, pytestconfig,
                  f"replayed cut at op {cut} of {first}..{last}, seed {cut_seed}, torn {torn}: "
                  "the remount found", wrong or [str(verdict)],
                  repro_command(art, "rec.oplog", "rec-r", 1, cut, cut_seed, torn))
    _a_lying_device_is_caught(rig, oplog, record, first)
    totals = figures.save(pytestconfig)
    assert totals["cuts_checked"] == 2 * cycles and totals["synced_data_lost"] == 0


def _a_lying_device_is_caught(rig: Rig, oplog: str, record: str, first: int) -> None:
    """The check must be able to fail: lose the ops of a fsync the device acknowledged.

    A create of at least a page, then its fsync: the step began at op B, the fsync
    returned by op M. Cut just after M, but replay only to B+1 (cutcheck --lose): the
    synced file never reached the flash, and the check must say its data is lost.
    """
    events = [json.loads(line) for line in
              rig.vm.check(f"cat {record}/events.jsonl").stdout.splitlines()]
    def untouched(at: int, ino: int, cut: int) -> bool:
        """No step begun before the cut may remove or rename the file (that voids it)."""
        return not any(ev.get("before", cut) < cut and ev["ev"] in ("rename", "delete")
                       and ino in (ev["ino"], ev.get("victim")) for ev in events[at:])

    pairs = [(ev, nxt) for i, (ev, nxt) in enumerate(itertools.pairwise(events))
             if ev["ev"] == "create" and ev["len"] >= 4096 and ev["before"] >= first
             and nxt["ev"] == "durable" and ev["ino"] in nxt["inos"]
             and untouched(i + 2, ev["ino"], nxt["after"] + 1)]
    assert pairs, "the recorded workload synced no new file of a page or more"
    create, synced = pairs[0]
    cut, lose = synced["after"] + 1, synced["after"] - create["before"]
    status, verdict = rig.json_of(f"python3 -m guest.workloads cutcheck --oplog {oplog} "
                                  f"--record {record} --cut {cut} --lose {lose}")
    assert status == 1 and not verdict["ok"], f"a lost fsync went unnoticed: {verdict}"
    assert any(f"inode {create['ino']} " in lost for lost in verdict["lost"]), verdict


def test_ubifs_survives_ubi_power_cut_emulation_on_nandsim(vm: TestGuest,
                                                           pytestconfig: pytest.Config) -> None:
    cycles, base = _options(pytestconfig)
    rig, figures = Rig(vm), Figures("nandsim-control")
    vm.check(NANDSIM)
    try:
        mtd = contract.mtd_index(vm.check("cat /proc/mtd").stdout, contract.NANDSIM_NAME)
        assert mtd is not None, "nandsim registered no MTD"
        assert contract.parse_geometry(vm.check(contract.geometry_command(mtd)).stdout) \
            == GEOMETRY
        dbg = "/sys/kernel/debug/ubi/ubi5"
        pending: tuple[str, Cycle] | None = None
        for k in range(1, cycles + 2):
            started = time.monotonic()
            seed = base * 1000 + 700 + k
            draw = random.Random(seed)
            marker = rig.mark(f"nandsim cycle {k}")
            _mount(vm, mtd, 5, first=k == 1)
            if pending is not None:
                record, done = pending
                verdict = rig.verify(record, None, done, rig.kernel_since(marker))
                wrong = failures(verdict)
                if wrong:
                    _fail(figures, pytestconfig,
                          f"nandsim cycle {done.cycle}: UBI power cut before header write "
                          f"{done.cut}, seed {done.seed}: the remount found", wrong,
                          f".venv/bin/python -m pytest tests/integration/test_powercut.py "
                          f"-k nandsim --powercut-seed {base} --powercut-cycles {done.cycle}"
                          " (UBI's cut is not torn: the same seed cuts at the same header "
                          "write)")
            if k == cycles + 1:
                break
            cycle = Cycle(k, seed)
            figures.cycles.append(cycle)
            record = f"{WORK}/rec-n{k}"
            rig.prepare(record, seed, f"n{k}")
            # UBI counts header writes from the first one after arming; min == max makes
            # the cut a function of the seed, not of the kernel's random state.
            writes = draw.randint(1, 16)
            vm.check(f"echo {writes} > {dbg}/tst_emulate_power_cut_min && "
                     f"echo {writes} > {dbg}/tst_emulate_power_cut_max && "
                     f"echo 3 > {dbg}/tst_emulate_power_cut")
            cut_marker = rig.mark(f"nandsim cut {k}")
            for _ in range(4):
                summary = rig.run(record)
                cycle.steps = int(summary["steps"])
                if summary["error"]:
                    break
            assert summary["error"], f"no emulated power cut after {cycle.steps} steps"
            assert "emulating a power cut" in rig.log_since(cut_marker), \
                f"the workload failed without UBI's power cut: {summary['error']}"
            cycle.cut, cycle.what = writes, str(summary["error"])
            vm.check(f"umount {MNT} && ubidetach -d 5", timeout=LONG)
            pending = (record, cycle)
            cycle.seconds = round(time.monotonic() - started, 1)
        vm.check(f"umount {MNT} && ubidetach -d 5", timeout=LONG)
    finally:
        vm.run(f"umount {MNT}; ubidetach -d 5; rmmod nandsim", timeout=LONG)
    totals = figures.save(pytestconfig)
    assert totals["cuts_checked"] == cycles and totals["synced_data_lost"] == 0
