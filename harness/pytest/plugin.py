"""pytest plugin (entry point pytest11): options, fixtures, markers, the test's failure.

Fixtures: kernel_build, guest_rootfs, vm (a TestGuest: the per-worker VM,
bracketed by kmsg markers) and run (vm.run). At a test's end the plugin takes
the TestGuest's Aftermath, hands it to the pool (which decides whether the VM
serves on), saves the console slice and kmemleak report, and fails the test
on the aftermath's problems: a splat, a kmemleak report, a leftover holding
muse, a VM that died. Under CI=true a skipped VM test counts as a failure.
outcomes.py classes each test and retries it; the controller writes run.json
and reproduce.sh before the run and the page after it; every failure's
report ends with the command that reruns just that test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.kernel.build import BuildRequest, KernelBuild, series_of
from harness.kernel.kconfig import load_flavours
from harness.kernel.series import subjects
from harness.machine.rootfs import Rootfs, build_rootfs
from harness.machine.ssh import CommandResult
from harness.options import add_kernel_opts, add_reports_opt, add_vm_opts
from harness.proc import restore_sigint
from harness.pytest import outcomes
from harness.pytest.pool import PoolOptions, VMPool, VMSpec
from harness.pytest.testguest import TestGuest
from harness.report.html import write_page
from harness.report.runinfo import finish_run, rerun_command, start_run
from harness.report.slices import slice_name
from harness.verdict.aftermath import Aftermath
from harness.verdict.fingerprint import fingerprint
from harness.verdict.outcome import FAILED, INFRA, KERNEL_REPORT

POOL_KEY = pytest.StashKey[VMPool]()
RUN_KEY = pytest.StashKey[dict[str, Any]]()
FACTS_KEY = pytest.StashKey[dict[str, object]]()
GUEST_KEY = pytest.StashKey[TestGuest]()
LAST_VM_KEY = pytest.StashKey[str]()    # node id of the session's last VM test


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("muse-harness")
    add_kernel_opts(group.addoption)
    add_vm_opts(group.addoption)
    add_reports_opt(group.addoption)
    group.addoption("--extra-patch", type=Path, action="append", default=[],
                    help="a patch to apply on top of the series (a mutant); repeatable")
    group.addoption("--build-as", default="",
                    help="build directory suffix (default with --extra-patch: extra)")
    group.addoption("--muse-cycles", type=int, default=100,
                    help="connect/disconnect cycles of the teardown soak tests")
    group.addoption("--powercut-cycles", type=int, default=2,
                    help="power-cut torture: live cut cycles on MUSE and on the nandsim control "
                         "(and twice as many replayed cut points)")
    group.addoption("--powercut-seed", type=int, default=1,
                    help="power-cut torture: base seed of workloads and cut points")
    group.addoption("--known-issues", type=Path, default=None,
                    help="tests expected to fail or be flaky (default: "
                         "kernel/series/<base>/known-issues.toml)")
    group.addoption("--peer", action="store_true",
                    help="select the peer tests (marker peer: mtd-utils' suites on MUSE and "
                         "on its in-kernel control); without it they are deselected")
    group.addoption("--flavour-map", default="",
                    help="comma-separated F=G: a test marked for flavour F boots flavour G "
                         "(muse-harness coverage: partmaster=coverage-partmaster)")
    group.addoption("--flavours", default=None,
                    help="comma-separated flavours to run; tests marked for another flavour "
                         "are deselected (make test: default,partmaster, no debug build)")


@pytest.hookimpl(tryfirst=True)       # before junitxml reads its path
def pytest_configure(config: pytest.Config) -> None:
    restore_sigint()
    # Every run leaves a JUnit file in its reports: the page and compare read it.
    if not config.option.xmlpath:
        config.option.xmlpath = str(_reports(config) / "junit.xml")
    config.addinivalue_line("markers", "vm: needs a booted guest")
    config.addinivalue_line("markers", "flavour(name): the kernel flavour the test needs")
    config.addinivalue_line("markers", "kernel_args(text): extra kernel command line for its VM")
    config.addinivalue_line("markers", "parallel_cpus: the guest's CPUs must really run in "
                                       "parallel (a thread per vCPU under TCG)")
    outcomes.configure_retries(config)
    if not hasattr(config, "workerinput"):  # the controller (or the only process) owns the run
        config.stash[RUN_KEY] = start_run(
            _reports(config),
            [sys.executable, "-m", "pytest", *config.invocation_params.args],
            _run_facts(config))


def kernel_request(config: pytest.Config) -> BuildRequest:
    """The kernel the options ask for (a test's flavour marker replaces the flavour)."""
    opt = config.getoption
    src, series = opt("--kernel-src"), opt("--series")
    return BuildRequest(
        base=opt("--base"), flavour=opt("--flavour"),
        kernel_src=Path(src) if src else None, as_posted=opt("--as-posted"),
        extra_patches=tuple(Path(p).resolve() for p in opt("--extra-patch")),
        build_as=opt("--build-as"), series=Path(series).resolve() if series else None,
        series_fixes=opt("--series-fixes"), upto=opt("--upto"), toolchain=opt("--toolchain"))


def _run_facts(config: pytest.Config) -> dict[str, object]:
    """What run.json says of this run; pytest_args rerun one test on the same kernel.
    Computed once a session: it reads and hashes the series."""
    if FACTS_KEY not in config.stash:
        config.stash[FACTS_KEY] = _collect_facts(config)
    return config.stash[FACTS_KEY]


def _collect_facts(config: pytest.Config) -> dict[str, object]:
    opt = config.getoption
    request = kernel_request(config)
    args = [*request.as_args(), f"--smp={opt('--smp')}", f"--memory={opt('--memory')}",
            f"--tcg-threads={opt('--tcg-threads')}", f"--guest-idle={opt('--guest-idle')}"]
    xml = config.option.xmlpath
    series = series_of(request)
    return {"base": opt("--base"), "flavour": opt("--flavour"), "as_posted": opt("--as-posted"),
            "series_id": series.chain_id(), "patches": subjects(series),
            "series_path": str(request.series) if request.series else None,
            "flavours": opt("--flavours"), "python": sys.executable, "pytest_args": args,
            "rootdir": str(config.rootpath),
            "junit": str(Path(xml).resolve()) if xml else None}


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        reports = _reports(config)
        finish_run(reports, run)
        write_page(reports)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _reports(config: pytest.Config) -> Path:
    path = Path(config.getoption("--reports")).resolve()
    (path / "consoles").mkdir(parents=True, exist_ok=True)
    return path


def _pool(config: pytest.Config) -> VMPool:
    if POOL_KEY not in config.stash:
        config.stash[POOL_KEY] = VMPool(PoolOptions(
            kernel=kernel_request(config), smp=config.getoption("--smp"),
            memory_mb=config.getoption("--memory"),
            tcg_threads=config.getoption("--tcg-threads"),
            logdir=_reports(config) / "consoles", worker=_worker(),
            guest_idle=config.getoption("--guest-idle"),
            alone=int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) <= 1))
    return config.stash[POOL_KEY]


def _flavour_of(item: pytest.Item) -> str:
    marker = item.get_closest_marker("flavour")
    return str(marker.args[0]) if marker else str(item.config.getoption("--flavour"))


def _built_flavour(config: pytest.Config, flavour: str) -> str:
    """The flavour a test boots: its own, or what --flavour-map puts in its place."""
    given = str(config.getoption("--flavour-map"))
    pairs = (pair.partition("=") for pair in given.split(",") if pair)
    mapped: dict[str, str] = {name.strip(): to.strip() for name, _, to in pairs}
    return mapped.get(flavour, flavour)


def _kernel_args_of(item: pytest.Item) -> str:
    marker = item.get_closest_marker("kernel_args")
    return str(marker.args[0]) if marker else ""


def _spec_of(item: pytest.Item) -> VMSpec:
    return VMSpec(_built_flavour(item.config, _flavour_of(item)), _kernel_args_of(item),
                  item.get_closest_marker("parallel_cpus") is not None)


def _deselect(config: pytest.Config, items: list[pytest.Item],
              drop: Callable[[pytest.Item], bool]) -> None:
    """Report the items drop() picks as deselected and remove them from items."""
    dropped = [it for it in items if drop(it)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [it for it in items if not drop(it)]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The peer run takes its own time budget (muse-harness peer): only its few quick
    # cases are part of every run.
    if not config.getoption("--peer"):
        _deselect(config, items, lambda it: bool(it.get_closest_marker("peer"))
                  and not it.get_closest_marker("peer_quick"))
    wanted = config.getoption("--flavours")
    if not wanted:
        # Tests of an opt-in flavour (flavours.toml) run only when it is named.
        opt_in = {name for name, f in load_flavours().items() if f.opt_in}
        opt_in.discard(str(config.getoption("--flavour")))
        _deselect(config, items, lambda it: _flavour_of(it) in opt_in)
    else:
        allowed = {name.strip() for name in wanted.split(",")}
        _deselect(config, items, lambda it: _flavour_of(it) not in allowed)
    outcomes.mark_known(config, items, _flavour_of)
    # Tests of one VM spec run back to back, so a worker boots each one once.
    default = config.getoption("--flavour")

    def order(it: pytest.Item) -> tuple[str, str, bool]:
        spec = _spec_of(it)
        return ("" if spec.flavour == default else spec.flavour, spec.kernel_args,
                spec.parallel)

    items.sort(key=order)
    for item in items:
        if "vm" in getattr(item, "fixturenames", ()) or "run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.vm)
            config.stash[LAST_VM_KEY] = item.nodeid


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item,
                            nextitem: pytest.Item | None) -> Generator[None, object, object]:
    """After the last VM test (its fixtures torn down), its VM goes: a guest whose idle
    CPUs poll would otherwise keep the host's cores busy under the remaining tests.
    Not under xdist: a worker's share of the tests need not end with the last one."""
    try:
        return (yield)
    finally:
        pool = item.config.stash.get(POOL_KEY, None)
        if pool is not None and pool.options.alone \
                and item.nodeid == item.config.stash.get(LAST_VM_KEY, None):
            pool.retire("no VM test left")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build every kernel the selected VM tests need now, with progress on the terminal:
    built inside the first test of its flavour, a kernel left that test's line still
    for minutes and made its duration mostly the build."""
    config = session.config
    if config.option.collectonly:
        return
    flavours = list(dict.fromkeys(_spec_of(item).flavour for item in session.items
                                  if item.get_closest_marker("vm")))
    if not flavours:
        return
    capture = config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        _pool(config).prepare(flavours)


@pytest.fixture(scope="session")
def kernel_build(pytestconfig: pytest.Config) -> KernelBuild:
    pool = _pool(pytestconfig)
    return pool.kernel(pool.options.kernel.flavour)


@pytest.fixture(scope="session")
def guest_rootfs(pytestconfig: pytest.Config) -> Rootfs:
    pool = _pool(pytestconfig)
    if pool.rootfs is None:
        pool.rootfs = build_rootfs()
    return pool.rootfs


@pytest.fixture
def vm(request: pytest.FixtureRequest) -> Iterator[TestGuest]:
    pool = _pool(request.config)
    flavour = _flavour_of(request.node)
    # In the JUnit file: which kernel the test ran on (muse-harness matrix reads it).
    request.node.user_properties += [("base", pool.options.kernel.base), ("flavour", flavour)]
    machine = pool.get(_spec_of(request.node))
    guest = TestGuest(machine, re.sub(r"\s+", "_", request.node.nodeid), kmemleak=pool.kmemleak,
                      gcov=pool.gcov)
    request.node.stash[GUEST_KEY] = guest
    yield guest


@pytest.fixture
def run(vm: TestGuest) -> Callable[..., CommandResult]:
    return vm.run


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    failure: BaseException | None = None
    try:
        return (yield)
    except BaseException as exc:
        failure = exc
        raise
    finally:
        guest = item.stash.get(GUEST_KEY, None)
        if guest is not None:
            aftermath = guest.finish()
            item.user_properties += guest.ledger.properties()
            if guest.gcov:
                _save_gcov(item, guest)
            _pool(item.config).release(aftermath, failure is not None)
            item.stash[outcomes.REPORTED_KEY] = aftermath.kernel_reported
            _judge(item, aftermath, failure)


def _save_gcov(item: pytest.Item, guest: TestGuest) -> None:
    """reports/coverage/gcda/<test>.tar: the counters of the coverage flavour's run."""
    folder = _reports(item.config) / "coverage" / "gcda"
    folder.mkdir(parents=True, exist_ok=True)
    attempt = int(getattr(item, "execution_count", 1) or 1)
    name = Path(slice_name(item.nodeid, attempt)).with_suffix(".tar").name
    if guest.gcov_data:
        (folder / name).write_bytes(guest.gcov_data)
        # The node id beside it: tests.json names tests as pytest does.
        (folder / name).with_suffix(".test").write_text(item.nodeid + "\n")
    else:
        item.add_report_section("call", "gcov", guest.gcov_error)


class KernelReport(AssertionError):
    """The kernel reported a problem during a test that also failed on its own."""


def _judge(item: pytest.Item, aftermath: Aftermath, failure: BaseException | None) -> None:
    """Keep the test's console slice and kmemleak report; fail it on its problems."""
    attempt = int(getattr(item, "execution_count", 1) or 1)
    path = _reports(item.config) / "consoles" / slice_name(item.nodeid, attempt)
    path.write_text(aftermath.console)
    saved = [str(path)]
    problems = aftermath.problems()
    if aftermath.splats:
        item.user_properties.append(("splats", "; ".join(s.title for s in aftermath.splats)))
        prints = [fingerprint(s) for s in aftermath.splats]
        item.user_properties.append(("fingerprints", "; ".join(
            f"{p.digest} {p.title}" for p in prints)))
    if aftermath.foreign:
        item.user_properties.append(("foreign_splats", "; ".join(
            s.title for s in aftermath.foreign)))
    if failure is not None or problems:
        item.add_report_section("call", "guest console", aftermath.console)
    if aftermath.kmemleak_text:
        leak_path = path.with_suffix(".kmemleak.txt")
        leak_path.write_text(aftermath.kmemleak_text)
        saved.append(str(leak_path))
        item.add_report_section("call", "kmemleak", aftermath.kmemleak_text)
    if aftermath.pinned:
        item.add_report_section("call", "muse references", aftermath.pinned.details)
    if not problems:
        return
    # The message says "kernel report: " when the kernel spoke: such a failure is
    # not retried (outcomes.configure_retries).
    prefix = KERNEL_REPORT if aftermath.kernel_reported else ""
    message = f"{prefix}{'; '.join(problems)}; saved: {', '.join(saved)}"
    if failure is None:
        pytest.fail(message, pytrace=False)
    if prefix:
        raise KernelReport(message) from failure


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item,
                              call: pytest.CallInfo[None]) -> Generator[None, object, object]:
    report = yield
    assert isinstance(report, pytest.TestReport)
    # A known issue that failed as listed is reported as skipped with wasxfail: it ran,
    # so it is no skip (its class is known-failure).
    if report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker("vm") \
            and os.environ.get("CI") == "true":
        report.outcome = "failed"
        report.longrepr = f"VM test skipped under CI=true, which counts as a failure: " \
                          f"{report.longrepr}"
    outcomes.record(item, call, report)
    final = report.when == "teardown" and dict(report.user_properties).get("outcome") in (
        FAILED, INFRA)
    if report.failed or final:
        # A failure's report ends with the one command that reruns just this test.
        facts = {**_run_facts(item.config), "cwd": os.getcwd()}
        command = rerun_command(facts, item.nodeid, _flavour_of(item))
        if report.failed:
            report.sections.append(("rerun just this test", command))
        if final:
            report.user_properties.append(("rerun", command))
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    pool = session.config.stash.get(POOL_KEY, None)
    if pool is None:
        return
    pool.close()
    data = {
        "worker": _worker(), "accel": pool.accel, "accel_reason": pool.accel_reason,
        "guest_idle": pool.idle,
        "boot_seconds": pool.boot_times, "vm_retired": pool.retired, "finished": time.time(),
        "kernels": {name: k.summary() for name, k in pool.kernels.items()},
        "rootfs": str(pool.rootfs.image) if pool.rootfs else None,
    }
    (_reports(session.config) / f"session-{_worker()}.json").write_text(
        json.dumps(data, indent=2) + "\n")
