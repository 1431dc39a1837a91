"""Wait for the kernel to register our MTD(s), while the session keeps serving.

The kernel registers asynchronously after the MUSE_INIT reply and reads the
device while doing so (bad block scan, partition parsing), so this runs in a
thread. Our devices are the /sys/class/mtd/mtdN whose muse_pid holds our PID;
if none shows up for a while (a port without muse_pid), entries without a
muse_pid file whose name is one we announced are taken instead.

Done means: without partitions, the master (named NAME) is there; with
partitions, every partition named by PARTSCMDLINE is there (the master too if
CONFIG_MTD_PARTITIONED_MASTER makes it visible), and each /dev/mtdN exists.
With no master name (a hostile raw INIT, whose partitions the kernel may
parse its own way): any of ours, once the set has not changed for `settle`.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("muse")

_MTD_DIR = re.compile(r"mtd(\d+)")


@dataclass(frozen=True)
class MtdEntry:
    index: int
    name: str
    size: int
    dev: str


def _read(path: str) -> str:
    with open(path) as handle:
        return handle.read().strip()


class RegistrationWatcher:
    def __init__(
        self,
        *,
        pid: int,
        master_name: str | None,
        part_names: list[str],
        on_ready: Callable[[list[MtdEntry]], None],
        on_timeout: Callable[[str], None],
        sysfs_root: str = "/sys/class/mtd",
        dev_root: str = "/dev",
        timeout: float = 60.0,
        interval: float = 0.02,
        name_fallback_after: float = 1.0,
        settle: float = 0.5,
    ) -> None:
        self.pid = pid
        self.master_name = master_name
        self.part_names = part_names
        self.on_ready = on_ready
        self.on_timeout = on_timeout
        self.sysfs_root = sysfs_root
        self.dev_root = dev_root
        self.timeout = timeout
        self.interval = interval
        self.name_fallback_after = name_fallback_after
        self.settle = settle
        self._stable: tuple[list[tuple[int, str]], float] = ([], 0.0)
        self.registered = threading.Event()
        self.entries: list[MtdEntry] = []
        self.seen: list[MtdEntry] = []  # ours so far, complete or not
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="muse-registration", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        # Process-directed signals must reach the main thread, whose read() they interrupt.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1})
        started = time.monotonic()
        while not self._stop.is_set():
            waited = time.monotonic() - started
            entries = self.poll(fallback=waited >= self.name_fallback_after)
            if entries is not None:
                self.entries = entries
                self.registered.set()
                self.on_ready(entries)
                return
            if self.timeout and waited >= self.timeout:
                self.on_timeout(self._timeout_message())
                return
            self._stop.wait(self.interval)

    def _timeout_message(self) -> str:
        prefix = f"the kernel did not register the device within {self.timeout:g} s"
        if not self.seen:
            return f"{prefix} (no {self.sysfs_root}/mtd*/muse_pid with pid {self.pid})"
        found = ", ".join(f"mtd{e.index} ({e.name})" for e in self.seen)
        missing = Counter(self.part_names or [self.master_name or "a stable set of MTDs"])
        missing.subtract(e.name for e in self.seen)
        names = ", ".join(sorted(name for name, count in missing.items() if count > 0))
        return f"{prefix}: found {found}; missing {names or 'device nodes in ' + self.dev_root}"

    def poll(self, fallback: bool = False) -> list[MtdEntry] | None:
        """Our entries once registration looks complete, else None."""
        wanted = set(self.part_names) | {self.master_name}
        entries: list[MtdEntry] = []
        try:
            names = os.listdir(self.sysfs_root)
        except OSError:
            return None
        for dirname in names:
            match = _MTD_DIR.fullmatch(dirname)
            if not match:
                continue
            path = os.path.join(self.sysfs_root, dirname)
            try:
                name = _read(os.path.join(path, "name"))
                try:
                    owner: int | None = int(_read(os.path.join(path, "muse_pid")))
                except FileNotFoundError:
                    owner = None
                size = int(_read(os.path.join(path, "size")))
            except (OSError, ValueError):
                continue  # appearing or vanishing right now
            if owner == self.pid or (fallback and owner is None and name in wanted):
                dev = os.path.join(self.dev_root, dirname)
                entries.append(MtdEntry(int(match.group(1)), name, size, dev))
        entries.sort(key=lambda entry: entry.index)
        self.seen = entries
        found = Counter(entry.name for entry in entries)
        if self.master_name is None:
            complete = self._settled(entries)
        elif self.part_names:
            complete = all(found[name] >= count for name, count in Counter(self.part_names).items())
        else:
            complete = found[self.master_name] > 0
        if not complete or not all(os.path.exists(entry.dev) for entry in entries):
            return None
        return entries

    def _settled(self, entries: list[MtdEntry]) -> bool:
        now = time.monotonic()
        key = [(entry.index, entry.name) for entry in entries]
        if key != self._stable[0]:
            self._stable = (key, now)
        return bool(entries) and now - self._stable[1] >= self.settle
