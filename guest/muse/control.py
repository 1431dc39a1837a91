"""The control channel: a UNIX stream socket speaking one JSON object per line.

Each request line gets one reply line, {"ok": true, ...} or
{"ok": false, "error": "..."}. Commands:
  {"cmd": "get"}                       seed, fault settings, power-cut state
  {"cmd": "set", "faults": {K: V}}     change fault settings (faultconfig.py
                                       syntax; values may be strings or JSON)
  {"cmd": "clear"}                     no faults, no armed power cut
  {"cmd": "stats"}                     the stats JSON of --stats-json
  {"cmd": "powercut", "at": N}         cut at op N (null disarms)
  {"cmd": "powercut", "in": K}         cut at the K-th op from now (1: the next)
  {"cmd": "hostile", ...}              hostile reply rules (hostile/engine.py)
Served by a thread (per connection), so the request loop never waits for a
client; the layers' locks guard what both touch.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import socketserver
import stat
import threading
from collections.abc import Callable

from .devices.faulty import FaultLayer
from .devices.powercut import PowerCutLayer
from .errors import ConfigError
from .stats import Stats

Reply = dict[str, object]
Command = Callable[[dict[str, object]], Reply]


class Commands:
    """The JSON-lines protocol over a table of named commands; "stats" is always there."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats
        self._commands: dict[str, Command] = {"stats": self._stats}

    def register(self, name: str, command: Command) -> None:
        self._commands[name] = command

    def handle_line(self, line: str) -> str:
        try:
            request = json.loads(line)
        except ValueError as err:
            return json.dumps({"ok": False, "error": f"not JSON: {err}"})
        return json.dumps(self.handle(request), sort_keys=True)

    def handle(self, request: object) -> Reply:
        if not isinstance(request, dict):
            return {"ok": False, "error": "a request is a JSON object with a 'cmd' key"}
        command = self._commands.get(str(request.get("cmd")))
        if command is None:
            return {
                "ok": False,
                "error": f"unknown cmd {request.get('cmd')!r}: expected one of "
                + ", ".join(self._commands),
            }
        try:
            return {"ok": True, **command(request)}
        except ConfigError as err:
            return {"ok": False, "error": str(err)}

    def _stats(self, request: dict[str, object]) -> Reply:
        return {"stats": self.stats.snapshot()}


class Controller(Commands):
    """Executes control requests against the fault and power-cut layers."""

    def __init__(self, faults: FaultLayer, powercut: PowerCutLayer, stats: Stats) -> None:
        super().__init__(stats)
        self.faults = faults
        self.powercut = powercut
        for name, command in (
            ("get", self._get),
            ("set", self._set),
            ("clear", self._clear),
            ("powercut", self._powercut),
        ):
            self.register(name, command)

    def _get(self, request: dict[str, object]) -> Reply:
        faults = self.faults.fault_stats()
        return {
            "seed": faults["seed"],
            "faults": faults["config"],
            "powercut": self.powercut.powercut_stats(),
        }

    def _set(self, request: dict[str, object]) -> Reply:
        changes = request.get("faults")
        if not isinstance(changes, dict):
            raise ConfigError('set needs "faults": {KEY: VALUE, ...}')
        return {"faults": self.faults.update(changes).to_json()}

    def _clear(self, request: dict[str, object]) -> Reply:
        self.faults.clear()
        self.powercut.arm(None)
        return self._get(request)

    def _powercut(self, request: dict[str, object]) -> Reply:
        if "in" in request:
            ahead = request["in"]
            if not isinstance(ahead, int) or isinstance(ahead, bool) or ahead < 1:
                raise ConfigError('"in" must be a number of ops >= 1')
            at: int | None = self.powercut.ops + ahead
        else:
            value = request.get("at")
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise ConfigError('"at" must be an op number or null')
            at = value
        self.powercut.arm(at)
        return {"powercut": self.powercut.powercut_stats()}


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        for raw in self.rfile:
            line = raw.decode(errors="replace").strip()
            if line:
                self.wfile.write(self.server.controller.handle_line(line).encode() + b"\n")
                self.wfile.flush()


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, controller: Commands) -> None:
        self.controller = controller
        super().__init__(path, _Handler)


class ControlServer:
    def __init__(self, path: str, controller: Commands) -> None:
        self.path = path
        self.controller = controller
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind (replacing a stale socket, never another file) and serve in a thread."""
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                raise ConfigError(f"--control {self.path} exists and is not a socket")
            if _listening(self.path):
                raise ConfigError(f"--control {self.path}: another server is listening there")
            os.unlink(self.path)
        try:
            self._server = _Server(self.path, self.controller)
        except OSError as err:
            raise ConfigError(f"cannot listen on --control {self.path}: {err.strerror}") from err
        self._thread = threading.Thread(target=self._serve, name="muse-control", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        # Signals must reach the main thread's blocking read; per-connection threads inherit this.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGUSR1})
        assert self._server is not None
        self._server.serve_forever(poll_interval=0.05)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._server = None


def _listening(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True
