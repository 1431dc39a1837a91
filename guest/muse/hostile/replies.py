"""What a hostile rule sends instead of a reply: byte-exact rewrites.

Every function takes the reply the server would have sent (fuse_out_header
plus payload) and returns the messages to write, in order; [] sends nothing.
Offsets follow the wire ABI: the header is len(u32) error(s32) unique(u64);
muse_read_out/muse_write_out start with len(u64) soft_error(u32); muse_isbad_out
with result(u32).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from .. import protocol as p
from .modes import IO, ISBAD, READ
from .rules import Rule

HDR = p.OUT_HEADER.size
IO_REPLY = HDR + p.IO_OUT.size
LONG_FILL = 0xA5
U32 = (1 << 32) - 1
U64 = (1 << 64) - 1
_U32_AT = struct.Struct("=I")
_U64_AT = struct.Struct("=Q")


def applies(rule: Rule, opcode: int, reply: bytes) -> bool:
    """Does the reply have what the rule rewrites?"""
    needs = rule.mode.needs
    if rule.mode.name == "short" and rule.arg is None:
        return len(reply) > HDR
    if not needs:
        return True
    error = p.OUT_HEADER.unpack_from(reply)[1] if len(reply) >= HDR else -1
    if error:
        return False
    if needs == "io":
        return opcode in IO and len(reply) >= IO_REPLY
    if needs == "read":
        return opcode == READ and len(reply) >= IO_REPLY
    return opcode == ISBAD and len(reply) == HDR + p.ISBAD_OUT.size


def rewrite(rule: Rule, reply: bytes) -> list[bytes]:
    return _REWRITES[rule.mode.name](rule, reply)


def _sized(out: bytearray) -> bytes:
    """Make the header's len field tell the truth about the message, if it is whole."""
    if len(out) >= _U32_AT.size:
        _U32_AT.pack_into(out, 0, len(out))
    return bytes(out)


def _short(rule: Rule, reply: bytes) -> list[bytes]:
    cut = len(reply) - HDR if rule.arg is None else rule.arg
    return [_sized(bytearray(reply[: max(0, len(reply) - cut)]))]


def _long(rule: Rule, reply: bytes) -> list[bytes]:
    extra = 16 if rule.arg is None else rule.arg
    return [_sized(bytearray(reply) + bytes([LONG_FILL]) * extra)]


def _nopayload(rule: Rule, reply: bytes) -> list[bytes]:
    return [_sized(bytearray(reply[:IO_REPLY]))]


def _badlen(rule: Rule, reply: bytes) -> list[bytes]:
    out = bytearray(reply)
    _U32_AT.pack_into(out, 0, (len(reply) + (16 if rule.arg is None else rule.arg)) & U32)
    return [bytes(out)]


@dataclass(frozen=True)
class _Field:
    """A reply field some modes set: where it is and its new value from (old, ARG)."""

    at: struct.Struct
    offset: int
    value: Callable[[int, int], int]
    default_arg: int = 0


_FIELDS = {
    "soft-error": _Field(_U32_AT, HDR + 8, lambda old, arg: arg & U32),
    "isbad": _Field(_U32_AT, HDR, lambda old, arg: arg & U32),
    "io-len": _Field(_U64_AT, HDR, lambda old, arg: arg),
    "io-len-short": _Field(_U64_AT, HDR, lambda old, k: max(0, old - k), 1),
    "io-len-long": _Field(_U64_AT, HDR, lambda old, k: (old + k) & U64, 1),
}


def _set_field(rule: Rule, reply: bytes) -> list[bytes]:
    field = _FIELDS[rule.mode.name]
    out = bytearray(reply)
    old = field.at.unpack_from(out, field.offset)[0]
    arg = field.default_arg if rule.arg is None else rule.arg
    field.at.pack_into(out, field.offset, field.value(old, arg))
    return [bytes(out)]


def _error(rule: Rule, reply: bytes) -> list[bytes]:
    unique = p.OUT_HEADER.unpack_from(reply)[2]
    assert rule.arg is not None
    return [p.OUT_HEADER.pack(HDR, rule.arg, unique)]


def _nothing(rule: Rule, reply: bytes) -> list[bytes]:
    return []


def _unchanged(rule: Rule, reply: bytes) -> list[bytes]:
    return [reply]


def _wrong_unique(rule: Rule, reply: bytes) -> list[bytes]:
    out = bytearray(reply)
    unique = p.OUT_HEADER.unpack_from(out)[2]
    if rule.arg is None:
        unique += 1 << 32
    else:
        unique = unique + rule.arg if rule.relative else rule.arg
    _U64_AT.pack_into(out, 8, unique & U64)
    return [bytes(out)]


def _dup(rule: Rule, reply: bytes) -> list[bytes]:
    return [reply, reply]


_REWRITES: dict[str, Callable[[Rule, bytes], list[bytes]]] = {
    "short": _short,
    "long": _long,
    "nopayload": _nopayload,
    "badlen": _badlen,
    **{name: _set_field for name in _FIELDS},
    "error": _error,
    "swallow": _nothing,
    "die": _nothing,
    "die-after-init": _unchanged,
    "die-in-registration": _nothing,
    "wrong-unique": _wrong_unique,
    "dup": _dup,
}
