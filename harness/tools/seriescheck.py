"""Is the series bisectable and checkpatch-clean? Build after every patch.

Each step checks out the chain of patches 1..k in the scratch repository
(only changed files are rewritten) and rebuilds incrementally in a build
directory kept for the series check; options that no Kconfig defines yet
(CONFIG_MUSE before the patch that adds it) are allowed. The last step is also built with each extra
flavour (MUSE built in as well as modular).

After each step's build, the files the patch touches are compiled with W=1
and sparse on the tree after the patch and on the tree before it
(kernel/diagnostics.py); a new diagnostic that the patch's message does not
accept fails the check, as 0-day's ">>" lines would flag it.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from harness.errors import HarnessError
from harness.kernel import diagnostics
from harness.kernel.build import BuildRequest, build_lock, make_command, run_make
from harness.kernel.kconfig import configure, flavour
from harness.kernel.series import Series, apply_series, read_series
from harness.kernel.source import Source, get_source
from harness.options import add_jobs_opt, add_kernel_opts
from harness.paths import REPO, cache_dir
from harness.proc import say
from harness.tools.common import Subparsers, kernel_request


@dataclass
class Step:
    patch: str
    flavour: str
    built: bool
    seconds: float
    error: str = ""


@dataclass
class Checkpatch:
    patch: str
    errors: int
    warnings: int
    checks: int
    messages: list[str]


@dataclass
class Delta:
    """The diagnostics a patch adds (W=1 and sparse on the files it touches)."""

    patch: str
    compiled: list[str]
    new: list[str]
    accepted: list[str]


def checkpatch(tree: Path, patch: Path) -> Checkpatch:
    result = subprocess.run(["perl", "scripts/checkpatch.pl", "--strict", "--terse",
                             "--no-color", str(patch)], cwd=tree, capture_output=True,
                            text=True, check=False)
    total = re.search(r"total: (\d+) errors, (\d+) warnings, (\d+) checks", result.stdout)
    if not total and result.returncode == 0 and not result.stdout.strip():
        return Checkpatch(patch.name, 0, 0, 0, [])  # --terse prints nothing when clean
    if not total:
        raise HarnessError(f"checkpatch gave no verdict on {patch.name}:\n{result.stdout}"
                           f"{result.stderr}")
    messages = [ln for ln in result.stdout.splitlines()
                if re.search(r": (ERROR|WARNING|CHECK):", ln)]
    errors, warnings, checks = (int(n) for n in total.groups())
    return Checkpatch(patch.name, errors, warnings, checks, messages)


def _delta(source: Source, series: Series, k: int, text: str, series_sources: list[str],
           builddir: Path, request: BuildRequest, log: Path) -> Delta:
    """Patch k's new diagnostics: its files compiled after it (the tree as built), then
    before it. The next step's checkout rewrites what this one turned back."""
    patch = series.patches[k - 1]
    files = diagnostics.sources_of(diagnostics.touched(text), series_sources)
    compiler = request.compiler()
    tree = apply_series(source, Series(series.base, series.patches[:k], 0))
    make = make_command(tree, builddir, request.jobs, compiler)
    after = diagnostics.collect(make, tree, builddir, files, compiler, log)
    tree = apply_series(source, Series(series.base, series.patches[:k - 1], 0))
    configure(tree, builddir, flavour(request.flavour, request.base).fragments, make, log,
              allow_undefined=True)
    before = diagnostics.collect(make, tree, builddir, files, compiler, log)
    new = diagnostics.new_in(before, after)
    ok = [d.show() for d in new if diagnostics.accepted(text, d)]
    bad = [d.show() for d in new if not diagnostics.accepted(text, d)]
    say(f"  W=1 and sparse on {len(files)} files: {len(bad)} new diagnostics"
        + (f", {len(ok)} accepted by the patch" if ok else ""))
    return Delta(patch.name, files, bad, ok)


def _print_deltas(deltas: list[Delta], toolchain: str, enabled: bool) -> None:
    if not enabled:
        print("new diagnostics: not looked for (--no-diagnostics)")
        return
    total = sum(len(d.new) for d in deltas)
    print(f"new diagnostics (W=1 and sparse, {toolchain}): {total} unaccepted, "
          f"{sum(len(d.accepted) for d in deltas)} accepted by their patch")
    for delta in deltas:
        for line in delta.new:
            print(f"  {delta.patch}\n    {line}")
        for line in delta.accepted:
            print(f"  {delta.patch} (accepted)\n    {line}")


def check_series(request: BuildRequest, extra_flavours: tuple[str, ...],
                 report: Path, with_diagnostics: bool = True) -> bool:
    if with_diagnostics and shutil.which("sparse") is None:
        raise HarnessError("sparse is not installed (apt-get install sparse; make series-check "
                           "installs it), or pass --no-diagnostics")
    source = get_source(request.base, request.kernel_src)
    series = read_series(request.base, request.as_posted)
    if not series.patches:
        raise HarnessError(f"the {request.base} series has no patches")
    steps: list[Step] = []
    style: list[Checkpatch] = []
    deltas: list[Delta] = []
    texts = {p.name: p.read_text(errors="replace") for p in series.patches}
    series_sources = [f for p in series.patches for f in diagnostics.touched(texts[p.name])
                      if f.endswith(".c")]
    started = time.monotonic()
    with build_lock():
        for patch in series.patches:
            style.append(checkpatch(source.path, patch))
            say(f"checkpatch {patch.name}: {style[-1].errors} errors, "
                f"{style[-1].warnings} warnings, {style[-1].checks} checks")
        plan = [(k, request.flavour) for k in range(1, len(series.patches) + 1)]
        plan += [(len(series.patches), name) for name in extra_flavours]
        for k, flavour_name in plan:
            patch = series.patches[k - 1]
            prefix = Series(series.base, series.patches[:k], 0)
            # A build directory of its own per flavour, beside the flavour's: every
            # step is incremental, and a VM booting the flavour's kernel meanwhile
            # is not disturbed.
            builddir = cache_dir("build", replace(request, flavour=flavour_name).build_name()
                                 + "-series-check")
            log = builddir / "series-check.log"
            log.write_bytes(b"")
            tree = apply_series(source, prefix)
            make = make_command(tree, builddir, request.jobs, request.compiler())
            begin = time.monotonic()
            say(f"[{k}/{len(series.patches)}] {patch.name} ({flavour_name})")
            try:
                configure(tree, builddir, flavour(flavour_name, request.base).fragments, make, log,
                          allow_undefined=True)
                run_make(make, ["bzImage", "modules"], log, 0)
                steps.append(Step(patch.name, flavour_name, True,
                                  round(time.monotonic() - begin, 1)))
                if with_diagnostics and flavour_name == request.flavour:
                    deltas.append(_delta(source, series, k, texts[patch.name], series_sources,
                                         builddir, request, log))
            except HarnessError as exc:
                steps.append(Step(patch.name, flavour_name, False,
                                  round(time.monotonic() - begin, 1), str(exc)[-3000:]))
                say(f"  FAILED: {str(exc).splitlines()[0]}")
    ok = (all(s.built for s in steps) and all(c.errors == 0 for c in style)
          and not any(d.new for d in deltas))
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({
        "base": request.base, "origin": source.origin, "ok": ok,
        "seconds": round(time.monotonic() - started, 1),
        "toolchain": request.compiler(), "diagnostics": with_diagnostics,
        "builds": [asdict(s) for s in steps], "checkpatch": [asdict(c) for c in style],
        "new_diagnostics": [asdict(d) for d in deltas],
    }, indent=2) + "\n")
    print(f"{'patch':60} {'flavour':10} build   seconds  checkpatch (E/W/C)")
    for step in steps:
        cp = next(c for c in style if c.patch == step.patch)
        print(f"{step.patch[:60]:60} {step.flavour:10} {'ok' if step.built else 'FAILED':7} "
              f"{step.seconds:7.1f}  {cp.errors}/{cp.warnings}/{cp.checks}")
    for cp in style:
        for message in cp.messages:
            print(f"  {message}")
    _print_deltas(deltas, request.compiler(), with_diagnostics)
    say(f"series check {'passed' if ok else 'FAILED'}; report: {report}")
    return ok


def main(args: argparse.Namespace) -> int:
    return 0 if check_series(kernel_request(args), tuple(args.also), args.report,
                             args.diagnostics) else 1


def register(sub: Subparsers) -> None:
    p = sub.add_parser("series-check",
                       help="checkpatch every patch and build after each one (bisectable?)")
    add_kernel_opts(p.add_argument)
    add_jobs_opt(p.add_argument)
    p.add_argument("--also", nargs="*", default=["builtin"],
                   help="extra flavours to build the whole series with")
    p.add_argument("--no-diagnostics", dest="diagnostics", action="store_false",
                   help="skip the W=1 and sparse comparison before and after each patch")
    p.add_argument("--report", type=Path, default=REPO / "reports" / "series-check.json")
    p.set_defaults(func=main)
