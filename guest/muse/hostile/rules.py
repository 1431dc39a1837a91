"""Hostile rules: MODE[:ARG][,KEY=VALUE...] parsed into what fires when.

Keys:
  op=NAME[+NAME]  init, read, write, erase, isbad, markbad, sync, any, or a
                  number (default: the mode's opcodes)
  nth=N           start at the N-th matching request (default 1, or EVERY)
  every=E         then fire on every E-th matching request
  prob=P          fire with probability P per matching request (drawn from --seed)
  count=C         fire at most C times (default 1; unlimited with every/prob)
  after=PHASE     count requests from "init" (the INIT reply) or "ready" (the
                  server announced the MTDs; the default for most modes)
  follow=1        after the hostile message, send the normal reply as well
A request matches when its opcode is chosen, the phase has begun and the
reply has what the mode rewrites (a READ/WRITE success for soft-error, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..protocol import Opcode
from .modes import ANY, ARG_RANGES, MODES, Mode

OP_NAMES: dict[str, frozenset[int]] = {
    "any": ANY,
    **{
        op.name.removeprefix("MUSE_").lower(): frozenset({op})
        for op in Opcode
        if op.name != "FUSE_INTERRUPT"
    },
}
KEYS = ("op", "nth", "every", "prob", "count", "after", "follow")
PHASES = ("init", "ready")
_BOOLS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


@dataclass(frozen=True)
class Rule:
    mode: Mode
    arg: int | None
    ops: frozenset[int]
    spec: str
    relative: bool = False  # wrong-unique: arg is added to the unique
    nth: int = 1
    every: int | None = None
    prob: float | None = None
    count: int | None = 1
    after: str = "ready"
    follow: bool = False

    @property
    def label(self) -> str:
        """MODE[:ARG] as given, for the fired line and the stats."""
        return self.spec.split(",", 1)[0]


def parse_rule(text: str) -> Rule:
    spec = text.strip()
    head, *options = spec.split(",")
    name, has_arg, arg_text = head.partition(":")
    mode = MODES.get(name.strip())
    if mode is None:
        raise ConfigError(
            f"unknown hostile mode {name.strip()!r}: expected one of {', '.join(MODES)}"
        )
    arg, relative = _parse_arg(mode, arg_text.strip()) if has_arg else (None, False)
    if arg is None and mode.arg_required:
        raise ConfigError(f"hostile mode {mode.name} needs an argument: {mode.usage}")
    values = dict(_split_option(mode, option) for option in options)
    ops = _parse_ops(mode, values["op"]) if "op" in values else mode.ops
    every = _int_option(mode, "every", values.get("every"))
    prob = _prob_option(mode, values.get("prob"))
    nth = _int_option(mode, "nth", values.get("nth")) or every or 1
    count = _int_option(mode, "count", values.get("count"))
    if count is None and every is None and prob is None:
        count = 1
    after = values.get("after", mode.after)
    if after not in PHASES:
        raise ConfigError(f"hostile {mode.name}: after={after!r}, expected init or ready")
    follow = _BOOLS.get(values.get("follow", "0").lower())
    if follow is None:
        raise ConfigError(f"hostile {mode.name}: follow takes 1 or 0")
    if follow and not mode.followable:
        raise ConfigError(f"hostile {mode.name}: follow=1 makes no sense, it sends no message")
    return Rule(mode, arg, ops, spec, relative, nth, every, prob, count, after, follow)


def _parse_arg(mode: Mode, text: str) -> tuple[int, bool]:
    if not mode.arg:
        raise ConfigError(f"hostile mode {mode.name} takes no argument")
    try:
        value = int(text, 0)
    except ValueError:
        raise ConfigError(f"hostile {mode.name}: {text!r} is not an integer") from None
    low, high = ARG_RANGES[mode.arg_kind]
    if not low <= value < high or (mode.arg_kind == "delta" and value == 0):
        nonzero = " (and not 0)" if mode.arg_kind == "delta" else ""
        raise ConfigError(f"hostile {mode.name}: {value} is outside {low}..{high - 1}{nonzero}")
    return value, mode.arg_kind == "unique" and text[:1] in "+-"


def _split_option(mode: Mode, option: str) -> tuple[str, str]:
    key, sep, value = option.partition("=")
    key = key.strip()
    if not sep or key not in KEYS:
        raise ConfigError(
            f"hostile {mode.name}: {option!r} is not KEY=VALUE with KEY one of {', '.join(KEYS)}"
        )
    return key, value.strip()


def _parse_ops(mode: Mode, text: str) -> frozenset[int]:
    ops: set[int] = set()
    for item in text.split("+"):
        item = item.strip().lower()
        if item in OP_NAMES:
            ops |= OP_NAMES[item]
            continue
        try:
            ops.add(int(item, 0))
        except ValueError:
            raise ConfigError(
                f"hostile {mode.name}: op {item!r} is not a number or one of {', '.join(OP_NAMES)}"
            ) from None
    if not ops <= mode.allowed:
        names = ", ".join(sorted(Opcode(op).name for op in mode.allowed))
        raise ConfigError(f"hostile {mode.name}: op={text} is outside what it applies to: {names}")
    return frozenset(ops)


def _int_option(mode: Mode, key: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text, 0)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"hostile {mode.name}: {key}={text!r} must be an integer >= 1")
    return value


def _prob_option(mode: Mode, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value <= 1.0:
        raise ConfigError(f"hostile {mode.name}: prob={text!r} must be in (0, 1]")
    return value
