"""Phase 4: build the kernel out of tree, with ccache and progress, once per cache key.

build_kernel() strings the phases together: source -> series -> kconfig ->
make. The key covers the source version, the exact patch contents and the
config fragments; an unchanged kernel is not rebuilt, a changed patch is
rebuilt incrementally in the same build directory.

The edit loop (a patch of the series changed) is kept short by the shortcuts
of incremental.py: the .config reused, only changed modules rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import BuildError, ConfigError, SeriesError
from harness.kernel.incremental import (
    changed_since,
    config_current,
    head,
    install_modules,
    module_targets,
)
from harness.kernel.kconfig import configure, flavour
from harness.kernel.series import Series, apply_series, load_series, read_series
from harness.kernel.source import Source, get_source
from harness.kernel.testmods import build_testmods, module_sources
from harness.kernel.toolchains import DEFAULT_TOOLCHAIN, toolchain
from harness.options import DEFAULT_BASE
from harness.paths import cache_dir
from harness.proc import file_lock, run_logged, say, sha256_files

# Bump when the way a kernel is built changes, to invalidate cached builds.
BUILD_RECIPE = "1"
# Set by `check` for its pytest run: the kernel in this build directory was just
# built, so a user tree (always handed to make) need not be walked again.
FRESH_BUILD_ENV = "MUSE_HARNESS_FRESH_BUILD"
BUILD_TIMEOUT = 3 * 3600
KBUILD_STEP = re.compile(rb"^\s{2}([A-Z][A-Z0-9_]{1,11})\s+(\S+)")


@dataclass(frozen=True)
class BuildRequest:
    base: str = DEFAULT_BASE
    flavour: str = "default"
    kernel_src: Path | None = None
    as_posted: bool = False
    # Patches applied on top of the series (a mutant); named by build_as.
    extra_patches: tuple[Path, ...] = ()
    build_as: str = ""   # suffix of the build directory (extra patches, a bisect step)
    # A revision of the series from elsewhere: an mbox or a directory with a series
    # file; series_fixes puts the base's fix patches on top of it.
    series: Path | None = None
    series_fixes: bool = False
    upto: int | None = None   # only the first upto patches of the series (bisect)
    toolchain: str = DEFAULT_TOOLCHAIN
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)

    def as_args(self) -> list[str]:
        """The options (harness.options) that ask for this kernel, for a pytest run."""
        args = [f"--base={self.base}", f"--flavour={self.flavour}"]
        if self.kernel_src:
            args.append(f"--kernel-src={self.kernel_src.expanduser().resolve()}")
        if self.as_posted:
            args.append("--as-posted")
        if self.series:
            args.append(f"--series={self.series.expanduser().resolve()}")
        if self.series_fixes:
            args.append("--series-fixes")
        if self.upto is not None:
            args.append(f"--upto={self.upto}")
        args += [f"--extra-patch={p.resolve()}" for p in self.extra_patches]
        if self.build_as:
            args.append(f"--build-as={self.build_as}")
        if self.toolchain != DEFAULT_TOOLCHAIN:
            args.append(f"--toolchain={self.toolchain}")
        return args

    def compiler(self) -> str:
        """The toolchain to build with: the flavour's own where it needs one (a
        clang-only sanitizer), else the one asked for."""
        needs = flavour(self.flavour, self.base).toolchain
        if needs and self.toolchain not in (DEFAULT_TOOLCHAIN, needs):
            raise ConfigError(f"flavour {self.flavour!r} builds only with {needs}, "
                              f"not {self.toolchain}")
        return needs or self.toolchain

    def build_name(self) -> str:
        name = f"{self.base}-{self.flavour}"
        compiler = self.compiler()      # reads flavours.toml: once
        if compiler != DEFAULT_TOOLCHAIN:
            name += f"-{compiler}"
        if self.as_posted:
            name += "-as-posted"
        if self.extra_patches or self.build_as:
            # One directory for all builds of a kind (all mutants, all bisect steps):
            # each rebuilds incrementally over the last, and the flavour's own kernel
            # stays what VMs expect.
            name += f"-{self.build_as or 'extra'}"
        elif self.series:
            name += "-series"       # every revision of a series from elsewhere
        if self.upto is not None and not self.build_as:
            # Every --upto N shares one directory of its own, like a bisect: a step
            # built into the flavour's directory replaced the kernel and modules a
            # running VM of that flavour was using.
            name += "-upto"
        if self.kernel_src:
            path = str(self.kernel_src.expanduser().resolve())
            name += "-user-" + hashlib.sha256(path.encode()).hexdigest()[:8]
        return name


@dataclass(frozen=True)
class KernelBuild:
    """A built kernel: what the VM phase needs, and what reports record."""

    name: str
    base: str
    flavour: str
    builddir: Path
    bzimage: Path
    modules: Path | None      # directory to mount at /lib/modules in the guest
    release: str
    origin: str
    patches: tuple[str, ...]
    rebuilt: bool
    seconds: float
    series_id: str = ""       # Series.chain_id(): the exact patch contents, in order
    compiler: str = ""        # CONFIG_CC_VERSION_TEXT of the build

    def summary(self) -> dict[str, object]:
        data = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}


def make_command(tree: Path, builddir: Path, jobs: int,
                 compiler: str = DEFAULT_TOOLCHAIN) -> list[str]:
    return ["make", "-C", str(tree), f"O={builddir}", "ARCH=x86_64",
            *toolchain(compiler).make_args(), f"-j{jobs}", "KBUILD_BUILD_USER=muse",
            "KBUILD_BUILD_HOST=harness", "KBUILD_BUILD_TIMESTAMP=2021-01-24"]


def run_make(make: list[str], targets: list[str], log: Path, expected: int) -> int:
    """make with a running count of kbuild steps on stderr; returns the step count."""
    env = dict(os.environ, CCACHE_DIR=str(cache_dir("ccache")))
    tty = sys.stderr.isatty()
    steps, last_note, start = 0, time.monotonic(), time.monotonic()
    with log.open("ab") as out:
        out.write(f"$ {' '.join([*make, *targets])}\n".encode())
        proc = subprocess.Popen([*make, *targets], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                out.write(line)
                match = KBUILD_STEP.match(line)
                if not match:
                    continue
                steps += 1
                now = time.monotonic()
                if now - start > BUILD_TIMEOUT:
                    raise BuildError(f"build exceeded {BUILD_TIMEOUT} s; log: {log}")
                of = f"/~{expected}" if expected else ""
                what = f"{match.group(1).decode()} {match.group(2).decode()[-60:]}"
                if tty:
                    print(f"\r\033[K  [{steps}{of}] {what}", end="", file=sys.stderr, flush=True)
                elif now - last_note > 20:
                    say(f"building: {steps}{of} steps, {int(now - start)} s ({what})")
                    last_note = now
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if tty:
                print("\r\033[K", end="", file=sys.stderr, flush=True)
    if rc != 0:
        errors = [ln for ln in log.read_text(errors="replace").splitlines()[-400:]
                  if "error" in ln.lower() or "undefined" in ln]
        raise BuildError(f"make {' '.join(targets)} failed (exit {rc}); full log: {log}\n"
                         + "\n".join(errors[-30:]))
    return steps


def _write_metadata(builddir: Path, data: dict[str, object]) -> None:
    (builddir / "metadata.json").write_text(json.dumps(data, indent=2, default=str) + "\n")


def series_of(request: BuildRequest) -> Series:
    """The patches a request stands for, before any extra patch."""
    series = load_series(request.base, request.series, request.as_posted,
                         request.series_fixes) if request.series \
        else read_series(request.base, request.as_posted)
    if request.upto is not None:
        if not 0 <= request.upto <= len(series.patches):
            raise SeriesError(f"--upto {request.upto}: the series has "
                              f"{len(series.patches)} patches")
        kept = series.patches[:request.upto]
        dropped = len(series.patches) - request.upto
        series = Series(series.base, kept, max(0, series.fixes - dropped),
                        max(0, series.extensions - dropped))
    return series


def _toolchain_key(request: BuildRequest) -> list[str]:
    """A part of the cache keys for a toolchain other than the default, so that gcc
    kernels built before toolchains were a choice stay valid."""
    compiler = request.compiler()
    return [] if compiler == DEFAULT_TOOLCHAIN else [compiler]


def _plan(request: BuildRequest) -> tuple[Source, Series, str]:
    """The source, the patches and the cache key a request stands for."""
    toolchain(request.compiler()).check()
    fl = flavour(request.flavour, request.base)
    # The series first: an unknown base fails here, before a package is installed.
    series = series_of(request) if request.kernel_src is None else None
    source: Source = get_source(request.base, request.kernel_src)
    if source.has_muse:
        series = Series(request.base, (), 0)
    elif series is None:
        series = series_of(request)
    if request.extra_patches:
        series = Series(series.base, (*series.patches, *request.extra_patches), series.fixes)
    key = sha256_files([*fl.fragments, *module_sources()], extra="\0".join(
        [BUILD_RECIPE, source.origin, source.version, series.chain_id(),
         *_toolchain_key(request), *fl.make_vars]))
    return source, series, key


def _up_to_date(builddir: Path, source: Source, key: str) -> bool:
    # The user's tree can change under us at any time: then always let make decide,
    # unless our parent process built it a moment ago.
    stamp = builddir / "build-key"
    fresh = source.has_muse and os.environ.get(FRESH_BUILD_ENV) == str(builddir)
    return ((not source.has_muse or fresh) and stamp.is_file() and stamp.read_text() == key
            and (builddir / "arch/x86/boot/bzImage").is_file())


@contextmanager
def build_lock(busy: str = "another build holds the build lock: waiting for it") -> Iterator[None]:
    """The one lock of a cache root: builds and the scratch tree (apply_series) are
    used by one process at a time."""
    with file_lock(cache_dir("locks") / "build.lock", busy=busy):
        yield


@contextmanager
def series_tree(request: BuildRequest) -> Iterator[Path]:
    """The source tree with the request's series applied, held under the build lock."""
    source = get_source(request.base, request.kernel_src)
    with build_lock("another build holds the build lock: waiting to read the tree"):
        yield apply_series(source, series_of(request))


def build_kernel(request: BuildRequest) -> KernelBuild:
    builddir = cache_dir("build", request.build_name())
    start = time.monotonic()
    # An up-to-date kernel needs no lock: VMs can boot it while another
    # flavour builds (a rebuild removes the stamp before it touches anything).
    source, series, key = _plan(request)
    if _up_to_date(builddir, source, key):
        return _result(request, builddir, source, series, key, False, start)
    with build_lock():
        source, series, key = _plan(request)
        if _up_to_date(builddir, source, key):
            return _result(request, builddir, source, series, key, False, start)
        _build(request, builddir, source, series, key)
        return _result(request, builddir, source, series, key, True, start)


def _metadata(request: BuildRequest, source: Source, series: Series,
              key: str) -> dict[str, object]:
    return {
        "request": asdict(request), "source": asdict(source), "key": key,
        "patches": [p.name for p in series.patches], "fixes": series.fixes,
        "fragments": [str(f) for f in flavour(request.flavour, request.base).fragments],
        "started": time.time(), "status": "building",
    }


def _build(request: BuildRequest, builddir: Path, source: Source, series: Series,
           key: str) -> None:
    fl = flavour(request.flavour, request.base)
    log = builddir / "build.log"
    stamp = builddir / "build-key"
    metadata = _metadata(request, source, series, key)
    _write_metadata(builddir, metadata)
    stamp.unlink(missing_ok=True)
    log.write_bytes(b"")
    phases: dict[str, object] = {}
    clock = time.monotonic()
    tree = apply_series(source, series)
    commit = head(tree) if not source.has_muse else None
    changed = changed_since(tree, builddir, commit)
    phases["apply_seconds"] = round(time.monotonic() - clock, 1)
    make = [*make_command(tree, builddir, request.jobs, request.compiler()), *fl.make_vars]
    clock = time.monotonic()
    config_key = sha256_files(list(fl.fragments),
                              extra="".join([request.flavour, *_toolchain_key(request)]))
    if config_current(tree, builddir, config_key):
        say(f"configuration unchanged: reusing {builddir / '.config'}")
        phases["config"] = "reused"
    else:
        say(f"configuring {request.flavour} ({', '.join(f.name for f in fl.fragments)})")
        (builddir / "config-key").unlink(missing_ok=True)
        configure(tree, builddir, fl.fragments, make, log)
        (builddir / "config-key").write_text(config_key)
        phases["config"] = "made"
    phases["config_seconds"] = round(time.monotonic() - clock, 1)
    clock = time.monotonic()
    modules = module_targets(builddir, changed) if changed is not None else None
    if modules:
        say(f"only module sources changed ({', '.join(sorted(changed or ()))}): "
            f"building {', '.join(modules)} (log: {log})")
        run_make(make, modules, log, 0)
        phases["make"] = "modules: " + " ".join(modules)
        phases["make_seconds"] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()
        install_modules(builddir, modules, log)
    else:
        counts = cache_dir("build") / f"{request.build_name()}.steps"
        expected = int(counts.read_text()) if counts.is_file() else 0
        say(f"building {source.origin} + {len(series.patches)} patches in {builddir} "
            f"(-j{request.jobs}, log: {log})")
        steps = run_make(make, ["bzImage", "modules"], log, expected)
        if steps > expected:
            counts.write_text(str(steps))
        phases["make"] = "bzImage modules"
        phases["make_seconds"] = round(time.monotonic() - clock, 1)
        clock = time.monotonic()
        modroot = builddir / "modroot"
        shutil.rmtree(modroot, ignore_errors=True)
        run_logged([*make, f"INSTALL_MOD_PATH={modroot}", "INSTALL_MOD_STRIP=1",
                    "modules_install"], log, error=BuildError, what="modules_install")
    build_testmods(make, builddir, log)
    phases["install_seconds"] = round(time.monotonic() - clock, 1)
    if commit:
        (builddir / "built-commit").write_text(commit)
    metadata["phases"] = phases
    _write_metadata(builddir, metadata)
    stamp.write_text(key)


def compiler_of(builddir: Path) -> str:
    """The compiler kbuild recorded in the build's .config ("" when unknown)."""
    config = builddir / ".config"
    text = config.read_text(errors="replace") if config.is_file() else ""
    match = re.search(r'^CONFIG_CC_VERSION_TEXT="(.*)"$', text, re.M)
    return match.group(1) if match else ""


def _result(request: BuildRequest, builddir: Path, source: Source, series: Series, key: str,
            rebuilt: bool, start: float) -> KernelBuild:
    if not rebuilt:
        say(f"kernel {request.build_name()} is up to date (cache key {key[:12]})")
    release = (builddir / "include/config/kernel.release").read_text().strip()
    modules = builddir / "modroot/lib/modules"
    result = KernelBuild(
        name=request.build_name(), base=request.base, flavour=request.flavour,
        builddir=builddir, bzimage=builddir / "arch/x86/boot/bzImage",
        modules=modules if modules.is_dir() else None, release=release,
        origin=source.origin, patches=tuple(p.name for p in series.patches),
        rebuilt=rebuilt, seconds=round(time.monotonic() - start, 1),
        series_id=series.chain_id(), compiler=compiler_of(builddir))
    if rebuilt:  # keep the start time written before the build
        metadata = json.loads((builddir / "metadata.json").read_text())
        metadata.update(status="done", result=result.summary())
        _write_metadata(builddir, metadata)
    return result
