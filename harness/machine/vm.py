"""Phase 5: boot the kernel and the root filesystem under QEMU and drive the guest.

The serial console is read by pexpect in a thread into a Console
(console.py): written whole to a log file and scanned for splats as it
streams. Ready means SSH answers. QEMU dies
with us on every path: close() on normal exit and on exceptions (Ctrl-C
included), an atexit hook for VMs left open, and PR_SET_PDEATHSIG when the
harness process itself is killed.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import shlex
import signal
import socket
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pexpect

from harness.errors import VMError
from harness.kernel.build import KernelBuild
from harness.machine.accel import Accel, accel_option, choose_accel, guest_idle
from harness.machine.accel import tcg_threads as tcg_threads_for
from harness.machine.console import Console
from harness.machine.guestcode import compile_for_guest
from harness.machine.qemu import x86_64
from harness.machine.rootfs import GUEST, Rootfs
from harness.machine.ssh import CommandResult, GuestProcess, GuestSSH
from harness.options import DEFAULT_TCG_THREADS
from harness.paths import REPO
from harness.verdict.splats import Kind, Splat

TCG_FACTOR = 4.0
FATAL = (Kind.OOPS, Kind.GPF, Kind.PANIC)
PR_SET_PDEATHSIG = 1
SSHD_MARKER = f"{GUEST['marker']} sshd started"   # printed by the guest's init
_LIVE: set[VM] = set()


@dataclass(frozen=True)
class Timeouts:
    """Seconds under KVM; scaled() stretches them for TCG."""

    boot: float = 30.0
    command: float = 60.0
    silence: float = 15.0   # no console output during boot
    shutdown: float = 10.0

    def scaled(self, accel: str) -> Timeouts:
        if accel == "kvm":
            return self
        return replace(self, boot=self.boot * TCG_FACTOR, command=self.command * TCG_FACTOR,
                       silence=self.silence * TCG_FACTOR)


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class VM:
    def __init__(self, kernel: KernelBuild, rootfs: Rootfs, workdir: Path, *, name: str = "vm",
                 smp: int = 2, memory_mb: int = 1024, timeouts: Timeouts | None = None,
                 extra_append: str = "", parallel: bool = False,
                 tcg_threads: str = DEFAULT_TCG_THREADS, idle: str = "halt",
                 alone: bool = True) -> None:
        """tcg_threads: TCG's thread mode ("multi" or "single", accel.tcg_threads());
        parallel: the guest's CPUs must really run at the same time (races), so
        "multi" whatever tcg_threads says; idle: what an idle guest CPU does
        ("auto", "halt" or "poll", accel.guest_idle(); "auto" polls when alone,
        no other VM of ours beside it)."""
        self.kernel, self.rootfs, self.name = kernel, rootfs, name
        self.workdir = workdir
        self.smp, self.memory_mb, self.extra_append = smp, memory_mb, extra_append
        self.tcg_threads = tcg_threads_for(tcg_threads, parallel)
        guest_idle(idle, "tcg", alone)    # a bad mode fails here, before any boot
        self.idle_preferred, self.alone = idle, alone
        self.idle = "halt"       # what the guest's CPUs do when idle, once started
        self.base_timeouts = timeouts or Timeouts()
        self.timeouts = self.base_timeouts
        self.accel = Accel("tcg", "not started")
        self.boot_seconds = 0.0
        self.started = 0.0   # monotonic time of the last QEMU start
        self.console: Console | None = None
        self.ssh: GuestSSH | None = None
        self._child: pexpect.spawn[bytes] | None = None
        self._reader: threading.Thread | None = None
        self.boots = 0

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> None:
        self.accel = choose_accel(self.kernel.bzimage)
        self.idle = guest_idle(self.idle_preferred, self.accel.name, self.alone,
                               self.tcg_threads)
        self.timeouts = self.base_timeouts.scaled(self.accel.name)
        for attempt in range(3):
            try:
                self._launch()
                self._wait_ready()
                return
            except VMError as exc:
                self.close()
                # A port taken between free_port() and QEMU's bind: try another.
                if "host forwarding" not in str(exc) or attempt == 2:
                    raise
            except BaseException:
                self.close()
                raise

    def _launch(self) -> None:
        self.boots += 1
        compile_for_guest()
        port = free_port()
        shares = [x86_64.Share(GUEST["harness_tag"], REPO)]
        if self.kernel.modules:
            shares.append(x86_64.Share(GUEST["modules_tag"], self.kernel.modules))
        cmd = x86_64.command(
            kernel=self.kernel.bzimage, rootfs=self.rootfs.image, ssh_port=port,
            append=x86_64.append_line(init=GUEST["init"], extra=self.extra_append,
                                      idle=self.idle),
            accel=self.accel.name, memory_mb=self.memory_mb, smp=self.smp,
            shares=tuple(shares), accel_option=accel_option(self.accel.name, self.tcg_threads))
        self.workdir.mkdir(parents=True, exist_ok=True)
        suffix = f"-boot{self.boots}" if self.boots > 1 else ""
        self.console = Console(self.workdir / f"{self.name}{suffix}-console.log")
        (self.workdir / f"{self.name}{suffix}-qemu.cmd").write_text(shlex.join(cmd) + "\n")
        self._started = self.started = time.monotonic()
        self._child = pexpect.spawn(cmd[0], cmd[1:], timeout=None, echo=False,
                                    preexec_fn=_die_with_parent)
        _LIVE.add(self)
        self._reader = threading.Thread(target=self._read_console, args=(self._child,),
                                        name=f"{self.name}-console", daemon=True)
        self._reader.start()
        self.ssh = GuestSSH(port, self.rootfs.ssh_key)

    def _read_console(self, child: pexpect.spawn[bytes]) -> None:
        assert self.console is not None
        console = self.console
        while True:
            try:
                data = child.read_nonblocking(65536, timeout=1.0)
            except pexpect.TIMEOUT:
                continue
            except (pexpect.EOF, OSError, ValueError):
                return
            console.feed(data if isinstance(data, bytes) else data.encode())

    def _connect_once(self) -> bool:
        """One SSH attempt, sized by whether init said sshd listens.

        An attempt made before the guest's network is up hangs in QEMU's user
        network until its own timeout, seconds after sshd started listening; so
        until init's marker shows, attempts are short, and after it one may
        take the time a slow TCG handshake needs (so may all attempts once the
        boot took long: an init without the marker still gets in).
        """
        assert self.console is not None and self.ssh is not None
        listening = self.console.wait_for(SSHD_MARKER, 0, 0) is not None
        late = time.monotonic() - self._started > self.timeouts.boot / 4
        return self.ssh.try_connect(timeout=30 if listening or late else 1.5)

    def _wait_ready(self) -> None:
        assert self.console is not None and self.ssh is not None
        deadline = self._started + self.timeouts.boot
        while not self._connect_once():
            self.check_alive()
            now = time.monotonic()
            if now - self.console.last_output > self.timeouts.silence:
                raise VMError(f"{self.name}: console silent for {self.timeouts.silence:.0f} s "
                              f"during boot ({self.accel.name}); console tail:\n"
                              f"{self.console.tail()}")
            if now > deadline:
                raise VMError(f"{self.name}: SSH not ready after {self.timeouts.boot:.0f} s "
                              f"({self.accel.name}); console tail:\n{self.console.tail()}")
            if self.console.wait_for(SSHD_MARKER, 0, 0.3) is not None:
                time.sleep(0.1)
        self.boot_seconds = round(time.monotonic() - self._started, 2)

    def running(self) -> bool:
        return self._child is not None and self._child.isalive()

    @property
    def qemu_pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def fatal_splat(self) -> Splat | None:
        """An Oops, GPF or panic on the console: the guest kernel is not to be trusted."""
        if self.console is None:
            return None
        seen = [*self.console.splats, self.console.pending]
        return next((s for s in seen if s is not None and s.kind in FATAL), None)

    def check_alive(self) -> None:
        """Raise VMError with the console tail when QEMU is gone or its kernel oopsed."""
        if self.running():
            fatal = self.fatal_splat()
            if fatal is None:
                return
            raise VMError(f"{self.name}: kernel {fatal.kind.name} on the console, the guest "
                          f"is not usable: {fatal.title}\n{fatal.text[-3000:]}")
        tail = self.console.tail() if self.console else ""
        if self._reader:
            self._reader.join(timeout=2)
            tail = self.console.tail() if self.console else tail
        status = self._child.exitstatus if self._child else None
        signal = self._child.signalstatus if self._child else None
        how = f"killed by signal {signal}" if signal else f"status {status}"
        raise VMError(f"{self.name}: QEMU exited ({how}); console tail:\n{tail}")

    def close(self) -> None:
        if self.ssh:
            self.ssh.close()
        if self._child is not None:
            if self._child.isalive():
                with contextlib.suppress(OSError):
                    self._child.kill(signal.SIGKILL)
            with contextlib.suppress(OSError, pexpect.ExceptionPexpect):
                self._child.close(force=True)
        if self._reader:
            self._reader.join(timeout=5)
        if self.console:
            self.console.close()
        _LIVE.discard(self)

    def __enter__(self) -> VM:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- guest access -------------------------------------------------------------
    def run(self, command: str, timeout: float | None = None, *, stdin: bytes | None = None,
            stream: bool = False) -> CommandResult:
        assert self.ssh is not None
        printer = None
        if stream:
            import sys

            def printer(chunk: bytes, is_err: bool) -> None:
                out = sys.stderr.buffer if is_err else sys.stdout.buffer
                out.write(chunk)
                out.flush()
        return self.ssh.run(command, timeout or self.timeouts.command, stdin=stdin,
                            alive=self.check_alive, stream=printer)

    def spawn(self, command: str) -> GuestProcess:
        assert self.ssh is not None
        return self.ssh.spawn(command, alive=self.check_alive)

    def mark(self, text: str, timeout: float = 30.0) -> int:
        """Write a marker line to the guest's kmsg; return the console offset past it."""
        assert self.console is not None
        line = f"{GUEST['marker']} {text}"
        start = self.console.size
        self.run(f"echo '{line}' > /dev/kmsg", timeout=timeout)
        offset = self.console.wait_for(line, start, timeout)
        if offset is None:
            self.check_alive()
            raise VMError(f"{self.name}: marker {line!r} never reached the console")
        return offset


@atexit.register
def _kill_leftovers() -> None:
    for vm in list(_LIVE):
        vm.close()
