"""muse-harness edit-loop: time a change to the muse.c patch until one test's result.

What a kernel developer does: edit a patch of the series, then run
`muse-harness check -k TEST`. Measured here without touching the checkout's
series or any flavour's kernel that VMs boot from: the checkout is copied to
a scratch directory whose flavours.toml gains `editloop` (the fragments of
--flavour), its build directory is seeded from that flavour's, and each repeat
toggles one line of a patch in the copy, then times the whole `check` (patch
applied, module rebuilt, VM booted, test run). Waiting for another build's
lock is reported apart. Results: reports/edit-loop.json (read by `bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.kernel.build import build_lock
from harness.kernel.kconfig import flavour
from harness.options import DEFAULT_BASE, DEFAULT_FLAVOUR, add_reports_opt
from harness.paths import REPO, cache_dir
from harness.proc import run_group, say
from harness.tools.common import Subparsers

FLAVOUR = "editloop"
PATCH = "0007-fuse-Implement-MUSE-MTD-in-userspace.patch"
# A line of muse.c that no fix patch touches; the edit changes code, not a comment
# (ccache would serve a comment-only change from its cache).
OLD = 'MODULE_DESCRIPTION("MTD in userspace");'
NEW = 'MODULE_DESCRIPTION("MTD in userspace (edit loop)");'
TEST = "test_nand_data_reads_back"
TEST_PATH = "tests/integration/test_muse_basic.py"
LOCK_WAIT = re.compile(r"got build\.lock after (\d+) s")
STEP_TIMEOUT = 3 * 3600.0   # a priming build may be a whole kernel build


@dataclass
class EditLoopOptions:
    base: str = DEFAULT_BASE
    flavour: str = "default"
    patch: str = PATCH
    old: str = OLD
    new: str = NEW
    k: str = TEST
    paths: tuple[str, ...] = (TEST_PATH,)
    repeat: int = 2
    reports: Path = REPO / "reports"


def scratch_checkout(opts: EditLoopOptions) -> Path:
    """A copy of the checkout with the editloop flavour; the series is the checkout's."""
    scratch = cache_dir("editloop") / "checkout"
    subprocess.run(["rsync", "-a", "--delete", "--exclude=/.venv", "--exclude=/reports",
                    "--exclude=/.git", "--exclude=__pycache__", f"{REPO}/", f"{scratch}/"],
                   check=True)
    fragments = [f.name for f in flavour(opts.flavour).fragments]
    with (scratch / "kernel/flavours.toml").open("a") as toml:
        toml.write(f'\n[{FLAVOUR}]\ndescription = "scratch copy of {opts.flavour} for '
                   f'muse-harness edit-loop"\nfragments = {json.dumps(fragments)}\n')
    return scratch


def seed_build(opts: EditLoopOptions) -> Path:
    """The editloop build directory, copied from the flavour's once (a full build saved)."""
    target = cache_dir("build") / f"{opts.base}-{FLAVOUR}"
    source = cache_dir("build") / f"{opts.base}-{opts.flavour}"
    if (target / "vmlinux").is_file():
        return target
    if not (source / "vmlinux").is_file():
        raise HarnessError(f"{source} holds no built kernel to start from: "
                           f"run `muse-harness build --flavour {opts.flavour}` first")
    with build_lock("another build holds the build lock: waiting to copy its directory"):
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(["cp", "-a", str(source), str(target)], check=True)
        (target / "build-key").unlink(missing_ok=True)
    return target


def _harness(scratch: Path, args: list[str], log: Path,
             timeout: float = STEP_TIMEOUT) -> tuple[int, str, float]:
    """Run the scratch copy's muse-harness, as a developer would; (exit status, output,
    seconds). Not run_suite(): the time to measure is the whole command's."""
    env = dict(os.environ, PYTHONPATH=str(scratch))
    start = time.monotonic()
    rc = run_group([sys.executable, "-m", "harness.cli", *args], timeout, scratch,
                   f"edit loop: muse-harness {args[0]}", env, log=log)
    return rc, log.read_text(errors="replace"), time.monotonic() - start


def run_edit_loop(opts: EditLoopOptions) -> dict[str, object]:
    scratch = scratch_checkout(opts)
    builddir = seed_build(opts)
    patch = scratch / "kernel/series" / opts.base / opts.patch
    text = patch.read_text()
    if text.count(opts.old) != 1:
        raise HarnessError(f"{patch.name}: {opts.old!r} must occur exactly once")
    logs = opts.reports / "edit-loop"
    logs.mkdir(parents=True, exist_ok=True)
    common = [f"--base={opts.base}", f"--flavour={FLAVOUR}"]
    say(f"priming {builddir.name} with the unedited series")
    rc, out, seconds = _harness(scratch, ["build", *common], logs / "prime.log")
    if rc != 0:
        raise HarnessError(f"priming build failed (exit {rc}); log: {logs / 'prime.log'}")
    samples = []
    try:
        for index in range(opts.repeat):
            edited = index % 2 == 0   # edit, undo, edit, ...: every run is a real change
            patch.write_text(text.replace(opts.old, opts.new) if edited else text)
            log = logs / f"run{index + 1}.log"
            rc, out, seconds = _harness(
                scratch, ["check", *common, "-k", opts.k,
                          f"--reports={logs / f'reports{index + 1}'}", *opts.paths], log)
            waits = [int(m) for m in LOCK_WAIT.findall(out)]
            phases = json.loads((builddir / "metadata.json").read_text()).get("phases", {})
            sample = {"edited": edited, "exit_status": rc, "wall_seconds": round(seconds, 1),
                      "lock_wait_seconds": sum(waits),
                      "seconds": round(seconds - sum(waits), 1), "build": phases,
                      "log": str(log)}
            say(f"run {index + 1}: {'edit' if edited else 'undo'} -> result in "
                f"{sample['seconds']} s (exit {rc}, lock wait {sum(waits)} s, build {phases})")
            if rc != 0:
                raise HarnessError(f"check failed (exit {rc}); log: {log}")
            samples.append(sample)
    finally:
        patch.write_text(text)
    result: dict[str, object] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "change": f"{opts.patch}: {opts.old} <-> {opts.new}",
        "test": f"{' '.join(opts.paths)} -k {opts.k}",
        "samples": samples,
        "seconds": statistics.median(float(str(s["seconds"])) for s in samples),
    }
    (opts.reports / "edit-loop.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def main(args: argparse.Namespace) -> int:
    result = run_edit_loop(EditLoopOptions(
        base=args.base, flavour=args.flavour, k=args.k, paths=tuple(args.paths),
        repeat=args.repeat, reports=args.reports.resolve()))
    print(json.dumps(result, indent=1))
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("edit-loop", help="time an edit of the muse.c patch to one test's "
                                         "result (in a scratch copy); reports/edit-loop.json")
    # Not add_kernel_opts(): the loop edits the checkout's own series (no --kernel-src)
    # and needs the fixes a test expects (no --as-posted).
    p.add_argument("--base", default=DEFAULT_BASE)
    p.add_argument("--flavour", default=DEFAULT_FLAVOUR,
                   help="the flavour the scratch one copies")
    add_reports_opt(p.add_argument)
    p.add_argument("-k", default=TEST, help="the test to run")
    p.add_argument("--repeat", type=int, default=2, help="edit, undo, edit, ...")
    p.add_argument("paths", nargs="*", default=[TEST_PATH])
    p.set_defaults(func=main)
