"""The harness's own kernel modules (kernel/testmods/), built for each kernel.

They are test aids, not part of the series: race_delay.ko holds one kernel
path for a while so that a test can hit a race window deterministically;
mtd_oob_read.ko makes one in-band plus OOB read as an in-kernel MTD user does.
Each build compiles them against its own build directory and installs them
under lib/modules/<release>/extra/ of its modroot, where the guest's modprobe
finds them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.errors import BuildError
from harness.paths import TESTMODS_DIR
from harness.proc import run_logged


def module_sources() -> list[Path]:
    """The files the test modules are built from (part of a build's cache key)."""
    return sorted(p for p in TESTMODS_DIR.iterdir() if p.is_file())


def build_testmods(make: list[str], builddir: Path, log: Path) -> None:
    # kbuild writes objects next to an external module's sources: build a copy.
    work = builddir / "testmods"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for source in module_sources():
        shutil.copyfile(source, work / source.name)
    run_logged([*make, f"M={work}", "modules"], log, error=BuildError,
               what="the test modules (kernel/testmods)")
    run_logged([*make, f"M={work}", f"INSTALL_MOD_PATH={builddir / 'modroot'}",
                "INSTALL_MOD_STRIP=1", "modules_install"], log, error=BuildError,
               what="modules_install of the test modules")
