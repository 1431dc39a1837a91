"""The hostile engine: the session hands it every reply, it decides what goes out.

Rules are checked in order for each reply; each rule counts the requests it
matches, and the first one that is due fires (one hostile action per reply).
A firing is printed to stderr as
  muse: hostile: fired MODE[:ARG] on opcode NAME unique U
and counted in the stats. The raw INIT payload (rawinit.py) goes through here
too, so it is announced and counted the same way ("raw-init").

Dying modes call os._exit(EXIT_HOSTILE_DEATH) after the before_exit hooks
(the server writes its stats there): no reply, no cleanup, as a crash would.
Rules may be added and cleared from the control thread.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .. import protocol as p
from ..errors import ConfigError
from ..seeding import draw
from .modes import INIT
from .replies import applies, rewrite
from .rules import Rule, parse_rule

EXIT_HOSTILE_DEATH = 8
RAW_INIT = "raw-init"

Send = Callable[[bytes], bool]


@dataclass
class _Armed:
    rule: Rule
    index: int  # keys the seeded draws, stable while the rule lives
    seen: int = 0
    fired: int = 0

    def due(self, seed: int) -> bool:
        rule = self.rule
        if rule.count is not None and self.fired >= rule.count:
            return False
        if self.seen < rule.nth:
            return False
        if rule.every is not None and (self.seen - rule.nth) % rule.every:
            return False
        return rule.prob is None or draw(seed, "hostile", self.index, self.seen) < rule.prob


class HostileEngine:
    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        seed: int = 0,
        init_payload: bytes | None = None,
        exit: Callable[[int], object] = os._exit,
    ) -> None:
        self.seed = seed
        self.init_payload_override = init_payload
        self.before_exit: list[Callable[[], None]] = []
        self.fired: dict[str, int] = {}
        self._exit = exit
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []
        self._indices = 0
        self._after_init = False
        self._ready = False
        for rule in rules:
            self.add(rule)

    # -- configuration
    def add(self, rule: Rule) -> None:
        with self._lock:
            self._armed.append(_Armed(rule, self._indices))
            self._indices += 1

    def clear(self) -> None:
        with self._lock:
            self._armed = []

    def mark_ready(self) -> None:
        """The MTDs are announced: rules with after=ready start counting."""
        self._ready = True

    # -- the session's hooks
    def init_payload(self, unique: int, default: Callable[[], bytes]) -> bytes:
        if self.init_payload_override is None:
            return default()
        self._announce(RAW_INIT, p.Opcode.MUSE_INIT, unique)
        return self.init_payload_override

    def reply(self, opcode: int, data: bytes, send: Send) -> bool | None:
        """Send data or what a due rule makes of it; True if the kernel took a message."""
        armed = self._pick(opcode, data) if self._armed else None
        if opcode == INIT:
            self._after_init = True
        if armed is None:
            return send(data)
        rule = armed.rule
        self._announce(rule.label, opcode, p.OUT_HEADER.unpack_from(data)[2])
        messages = rewrite(rule, data)
        if rule.follow:
            messages.append(data)
        taken: bool | None = None
        for message in messages:
            taken = send(message) or bool(taken)
        if rule.mode.dies:
            self.die()
        return taken

    def _pick(self, opcode: int, data: bytes) -> _Armed | None:
        chosen = None
        with self._lock:
            for armed in self._armed:
                rule = armed.rule
                if opcode not in rule.ops or not self._in_phase(rule, opcode):
                    continue
                if not applies(rule, opcode, data):
                    continue
                armed.seen += 1
                if chosen is None and armed.due(self.seed):
                    armed.fired += 1
                    chosen = armed
        return chosen

    def _in_phase(self, rule: Rule, opcode: int) -> bool:
        if opcode == INIT:
            return True
        return self._ready if rule.after == "ready" else self._after_init

    def _announce(self, label: str, opcode: int, unique: int) -> None:
        name = label.split(":", 1)[0]
        with self._lock:
            self.fired[name] = self.fired.get(name, 0) + 1
        print(
            f"muse: hostile: fired {label} on opcode {p.opcode_name(opcode)} unique {unique}",
            file=sys.stderr,
            flush=True,
        )

    def die(self) -> None:
        for hook in self.before_exit:
            hook()
        sys.stdout.flush()
        sys.stderr.flush()
        self._exit(EXIT_HOSTILE_DEATH)

    # -- stats and control
    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "rules": [
                    {"spec": a.rule.spec, "seen": a.seen, "fired": a.fired} for a in self._armed
                ],
                "fired": dict(sorted(self.fired.items())),
                "fired_total": sum(self.fired.values()),
                "raw_init": self.init_payload_override is not None,
                "ready": self._ready,
            }

    def control(self, request: dict[str, object]) -> dict[str, object]:
        """{"cmd": "hostile"[, "clear": true][, "add": SPEC or [SPEC, ...]]}."""
        add = request.get("add", [])
        specs = [add] if isinstance(add, str) else add
        if not isinstance(specs, list) or not all(isinstance(spec, str) for spec in specs):
            raise ConfigError('hostile: "add" takes a rule string or a list of them')
        rules = [parse_rule(spec) for spec in specs]  # all or nothing
        if request.get("clear"):
            self.clear()
        for rule in rules:
            self.add(rule)
        return {"hostile": self.snapshot()}
