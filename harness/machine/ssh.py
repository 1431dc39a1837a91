"""One SSH connection per VM (paramiko); every guest command is a channel on it.

A fresh connection costs about 2 s under TCG, a channel on an open one a few
milliseconds. Each command runs under the guest's timeout(1), which kills its
whole process group at the deadline; the host waits a grace period longer and
then declares the guest unresponsive.
"""

from __future__ import annotations

import logging
import re
import select
import shlex
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from harness.errors import GuestTimeout, VMError

logging.getLogger("paramiko").setLevel(logging.CRITICAL)
TIMEOUT_EXIT = 124       # timeout(1) exit status when the deadline hit
HOST_GRACE = 20.0        # seconds past the guest deadline before the host gives up
SETUP_TIMEOUT = 60.0     # opening a channel and starting a command


@dataclass
class CommandResult:
    command: str
    exit_status: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    def describe(self) -> str:
        return (f"$ {self.command}\nexit status {self.exit_status} after {self.seconds:.1f} s\n"
                f"--- stdout ---\n{self.stdout}--- stderr ---\n{self.stderr}")


@dataclass
class GuestProcess:
    """A command left running in the guest (a MUSE server, say)."""

    command: str
    channel: paramiko.Channel
    pid: int
    output: bytearray = field(default_factory=bytearray)
    alive: Callable[[], None] = lambda: None   # raises when the VM died or oopsed

    def _pump(self, wait: float) -> bool:
        readable, _, _ = select.select([self.channel], [], [], wait)
        got = False
        while self.channel.recv_ready():
            self.output += self.channel.recv(65536)
            got = True
        while self.channel.recv_stderr_ready():
            self.output += self.channel.recv_stderr(65536)
            got = True
        return got or bool(readable)

    def expect(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until the process printed a line matching pattern."""
        regex = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.text())
            if match:
                return match
            if self.channel.exit_status_ready() and not self.channel.recv_ready():
                self._pump(0)
                match = regex.search(self.text())
                if match:
                    return match
                raise VMError(f"guest process exited with {self.channel.recv_exit_status()} "
                              f"before printing {pattern!r}:\n$ {self.command}\n{self.text()}")
            self.alive()
            if time.monotonic() > deadline:
                raise GuestTimeout(f"guest process did not print {pattern!r} within "
                                   f"{timeout:.0f} s:\n$ {self.command}\n{self.text()}")
            self._pump(0.2)

    def wait(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while not self.channel.exit_status_ready():
            self.alive()
            if time.monotonic() > deadline:
                raise GuestTimeout(f"guest process still running after {timeout:.0f} s:\n"
                                   f"$ {self.command}\n{self.text()}")
            self._pump(0.2)
        self._pump(0)
        return self.channel.recv_exit_status()

    def running(self) -> bool:
        return not self.channel.exit_status_ready()

    def text(self) -> str:
        return self.output.decode(errors="replace")


class GuestSSH:
    def __init__(self, port: int, key: Path, user: str = "root") -> None:
        self.port, self.key, self.user = port, key, user
        self._client: paramiko.SSHClient | None = None

    def try_connect(self, timeout: float) -> bool:
        """One connection attempt; False when the guest does not answer yet."""
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect("127.0.0.1", port=self.port, username=self.user,
                           key_filename=str(self.key), look_for_keys=False, allow_agent=False,
                           timeout=timeout, banner_timeout=timeout, auth_timeout=timeout)
        except (OSError, paramiko.SSHException, EOFError):
            client.close()
            return False
        transport = client.get_transport()
        assert transport is not None
        transport.set_keepalive(15)
        self._client = client
        return True

    def _transport(self) -> paramiko.Transport:
        transport = self._client.get_transport() if self._client else None
        if transport is None or not transport.is_active():
            raise VMError("the SSH connection to the guest is gone")
        return transport

    def _open(self, command: str) -> paramiko.Channel:
        """A channel running command. paramiko waits for the guest's answer to the exec
        request without a deadline, so a wedged guest gets the connection closed on it."""
        transport = self._transport()
        guard = threading.Timer(SETUP_TIMEOUT, transport.close)
        guard.start()
        try:
            channel = transport.open_session(timeout=SETUP_TIMEOUT)
            channel.exec_command(command)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            raise VMError(f"the guest did not start a command within {SETUP_TIMEOUT:.0f} s "
                          f"({exc}):\n$ {command}") from None
        finally:
            guard.cancel()
        return channel

    def run(self, command: str, timeout: float, *, stdin: bytes | None = None,
            alive: Callable[[], None] = lambda: None,
            stream: Callable[[bytes, bool], None] | None = None) -> CommandResult:
        """Run command under sh in the guest; alive() raises when the VM died meanwhile."""
        start = time.monotonic()
        alive()
        channel = self._open(f"timeout -k 5 {int(timeout)} sh -c {shlex.quote(command)}")
        if stdin is not None:
            channel.sendall(stdin)
        channel.shutdown_write()
        out, err = bytearray(), bytearray()
        deadline = start + timeout + HOST_GRACE
        try:
            while True:
                busy = False
                while channel.recv_ready():
                    chunk = channel.recv(65536)
                    out += chunk
                    busy = True
                    if stream:
                        stream(chunk, False)
                while channel.recv_stderr_ready():
                    chunk = channel.recv_stderr(65536)
                    err += chunk
                    busy = True
                    if stream:
                        stream(chunk, True)
                if channel.exit_status_ready() and not busy and not channel.recv_ready() \
                        and not channel.recv_stderr_ready():
                    break
                if busy:
                    continue
                alive()
                if time.monotonic() > deadline:
                    raise GuestTimeout(f"guest command got no answer within {timeout:.0f} s "
                                       f"(+{HOST_GRACE:.0f} s grace); the guest is unresponsive:"
                                       f"\n$ {command}")
                select.select([channel], [], [], 0.25)
            status = channel.recv_exit_status()
            if status == -1:
                # No exit status: the connection dropped under the command.
                alive()
                raise VMError(f"the SSH connection dropped during the command:\n$ {command}")
        finally:
            channel.close()
        result = CommandResult(command, status, out.decode(errors="replace"),
                               err.decode(errors="replace"), time.monotonic() - start)
        if status == TIMEOUT_EXIT and result.seconds >= timeout - 1:
            raise GuestTimeout(f"guest command killed at its timeout of {timeout:.0f} s:\n"
                               + result.describe())
        return result

    def spawn(self, command: str, alive: Callable[[], None] = lambda: None) -> GuestProcess:
        """Start command in the background; its PID is known once it printed it."""
        alive()
        channel = self._open(f"echo HARNESS-PID=$$; exec sh -c {shlex.quote(command)}")
        channel.shutdown_write()
        proc = GuestProcess(command, channel, 0, alive=alive)
        match = proc.expect(r"^HARNESS-PID=(\d+)\r?\n", timeout=30)
        proc.pid = int(match.group(1))
        del proc.output[: match.end()]
        return proc

    def close(self) -> None:
        if self._client:
            self._client.close()
            self._client = None
