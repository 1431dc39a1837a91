"""Helpers of the power-cut torture tests: the workload in the guest, figures, artifacts.

The workload and its checker are guest/workloads (run in the guest with
`python3 -m guest.workloads`); this module drives them over SSH, reads the
kernel log after each remount, keeps the figures the closing note quotes, and
on a failure copies the oplog and records to the host with the one command
that reproduces the failing cut.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from guest.contract import NANDSIM_64MIB
from guest.workloads.kernlog import classify
from harness.pytest.testguest import TestGuest

# nandsim's 64 MiB SLC chip cut to 16 MiB (128 blocks of 128 KiB, 2 KiB pages,
# 64 bytes OOB, 512-byte subpages); the MUSE server serves the same geometry.
NANDSIM = f"{NANDSIM_64MIB} overridesize=7"
GEOMETRY = {"size": 16 << 20, "erasesize": 128 << 10, "writesize": 2048, "oobsize": 64,
            "subpagesize": 512}
MUSE_GEOMETRY = "--type nand --size 16MiB --erasesize 128KiB --writesize 2048 --oobsize 64 " \
                "--subpage-shift 2"
WORK = "/tmp/pc"  # records, oplogs, images: off the flash under test
MNT = "/mnt/pc"
VOLUME = "pc"
STEPS = 60  # workload steps per run (about 400 ops on MUSE)
LONG = 900  # seconds for a guest command that may run a whole workload


@dataclass
class Cycle:
    """One cut and the check after it."""

    cycle: int
    seed: int
    cut: int | None = None  # the op (MUSE) or UBI header write (nandsim) the cut hit
    what: str = ""  # what the op was (MUSE: "program 0x..."), or the workload's error
    steps: int = 0
    files: int = 0
    synced_files: int = 0
    synced_bytes: int = 0
    lost: int = 0
    problems: int = 0
    recovery: bool = False  # UBIFS said "recovery needed" at the remount
    warnings: int = 0
    seconds: float = 0.0
    checked: bool = False  # a verdict was folded in


@dataclass
class Figures:
    test: str
    started: float = field(default_factory=time.time)
    cycles: list[Cycle] = field(default_factory=list)
    first_problem: str | None = None

    def totals(self) -> dict[str, Any]:
        checked = [c for c in self.cycles if c.checked]
        return {
            "test": self.test,
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started)),
            "cuts_checked": len(checked),
            "files_verified": sum(c.files for c in checked),
            "synced_files_verified": sum(c.synced_files for c in checked),
            "synced_bytes_verified": sum(c.synced_bytes for c in checked),
            "synced_data_lost": sum(c.lost for c in checked),
            "problems": sum(c.problems for c in checked),
            "recoveries": sum(1 for c in checked if c.recovery),
            "first_problem": self.first_problem,
            "seconds": round(time.time() - self.started, 1),
            "cycles": [asdict(c) for c in self.cycles],
        }

    def save(self, config: pytest.Config) -> dict[str, Any]:
        """Merge this test's figures into <reports>/powercut.json; print the totals."""
        path = Path(config.getoption("--reports")).resolve() / "powercut.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.loads(path.read_text()) if path.exists() else {}
        totals = self.totals()
        data[self.test] = totals
        path.write_text(json.dumps(data, indent=1) + "\n")
        brief = {k: v for k, v in totals.items() if k != "cycles"}
        print(f"powercut figures: {json.dumps(brief)}")
        return totals


class Rig:
    """The guest side of the torture tests."""

    def __init__(self, vm: TestGuest) -> None:
        self.vm = vm
        vm.check(f"rm -rf {WORK} && mkdir -p {WORK} {MNT}")

    def mark(self, text: str) -> int:
        """A marker in the kernel log; returns the console offset just past it.

        The console (read by the host) rather than dmesg, whose ring buffer the
        hex dumps of a failing UBI can overrun.
        """
        return self.vm.vm.mark(f"muse-powercut {text}")

    def log_since(self, start: int) -> str:
        end = self.vm.vm.mark("muse-powercut log read")  # all printed before has arrived
        assert self.vm.vm.console is not None
        return self.vm.vm.console.text(start, end)

    def kernel_since(self, start: int) -> dict[str, list[str]]:
        return classify(self.log_since(start).splitlines())

    def json_of(self, command: str, timeout: float = LONG) -> tuple[int, dict[str, Any]]:
        """Run a guest command printing one JSON object last; no object is a failure."""
        result = self.vm.run(command, timeout)
        lines = result.stdout.strip().splitlines()
        try:
            return result.exit_status, json.loads(lines[-1])
        except (IndexError, ValueError):
            raise AssertionError(f"no JSON verdict from the guest:\n{result.describe()}") \
                from None

    def prepare(self, record: str, seed: int, tag: str, control: str | None = None) -> None:
        ctl = f" --control {control}" if control else ""
        self.vm.check(f"python3 -m guest.workloads prepare --root {MNT} --record {record} "
                      f"--seed {seed} --tag {tag}{ctl}", timeout=LONG)

    def run(self, record: str, steps: int = STEPS, control: str | None = None) -> dict[str, Any]:
        ctl = f" --control {control}" if control else ""
        status, summary = self.json_of(f"python3 -m guest.workloads run --root {MNT} "
                                       f"--record {record} --steps {steps}{ctl}")
        assert status == 0, summary
        return summary

    def verify(self, record: str, cut: int | None, cycle: Cycle,
               kernel: dict[str, list[str]]) -> dict[str, Any]:
        cut_arg = f" --cut {cut}" if cut is not None else ""
        _, verdict = self.json_of(f"python3 -m guest.workloads verify --root {MNT} "
                                  f"--record {record}{cut_arg}")
        verdict["kernel"] = kernel
        count(cycle, verdict)
        return verdict

    def save_artifacts(self, config: pytest.Config, name: str) -> Path:
        """Copy the guest's work directory (oplogs, records) to <reports>/powercut/."""
        out = Path(config.getoption("--reports")).resolve() / "powercut" / f"{name}.tar.gz"
        out.parent.mkdir(parents=True, exist_ok=True)
        result = self.vm.run(f"tar czf - -C {WORK} --exclude='*.img' . | base64 -w0", LONG)
        out.write_bytes(base64.b64decode(result.stdout))
        return out


def count(cycle: Cycle, verdict: dict[str, Any]) -> None:
    """Fold a verdict (verify or cutcheck JSON) into a cycle's figures."""
    kernel = verdict.get("kernel") or {"errors": [], "warnings": [], "notices": []}
    cycle.checked = True
    cycle.files = int(verdict.get("files", 0))
    cycle.synced_files = int(verdict.get("synced_files", 0))
    cycle.synced_bytes = int(verdict.get("synced_bytes", 0))
    cycle.lost = len(verdict.get("lost", []))
    cycle.problems = len(verdict.get("problems", [])) + len(kernel["errors"])
    cycle.recovery = any("recovery needed" in line for line in kernel["notices"])
    cycle.warnings = len(kernel["warnings"])


def failures(verdict: dict[str, Any]) -> list[str]:
    """Everything wrong in a verdict: lost synced data, other problems, UBI/UBIFS errors."""
    kernel = verdict.get("kernel") or {}
    return [*(f"lost: {x}" for x in verdict.get("lost", [])),
            *(f"problem: {x}" for x in verdict.get("problems", [])),
            *(f"kernel: {x}" for x in kernel.get("errors", []))]


def repro_command(artifacts: Path, oplog: str, record: str, session: int, cut: int,
                  seed: int, torn: str) -> str:
    return (f"make powercut-repro ART={artifacts} LOG={oplog} REC={record} SESSION={session} "
            f"CUT={cut} SEED={seed} TORN={torn}")
