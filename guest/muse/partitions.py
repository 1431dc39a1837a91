"""PARTSCMDLINE: the partition list the kernel hands to cmdlinepart.

The server sends it without the "<mtd-id>:" prefix (muse.c prepends NAME).
Parsing mirrors drivers/mtd/parsers/cmdlinepart.c closely enough to know the
partition names (the registration watcher waits for them) and to refuse lists
the kernel would reject, with a readable message instead of a dmesg line.

    <partdef> := <size>[@<offset>][(<name>)][ro][lk][slc]
    <size>    := memparse number (0x.. hex, 0.. octal, K/M/G/T/P/E suffix) or "-"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ConfigError

_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")
_SHIFT = {"k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}
# cmdlinepart refuses partitions smaller than PAGE_SIZE.
MIN_PART_SIZE = 4096


@dataclass(frozen=True)
class Partition:
    name: str
    offset: int
    size: int
    read_only: bool = False
    locked: bool = False
    slc: bool = False


def _memparse(text: str, pos: int) -> tuple[int, int]:
    match = _NUMBER.match(text, pos)
    if not match:
        raise ConfigError(f"partition list {text!r}: expected a size at position {pos}")
    value = _base0(match.group())
    pos = match.end()
    if pos < len(text) and text[pos].lower() in _SHIFT:
        value <<= _SHIFT[text[pos].lower()]
        pos += 1
    return value, pos


def _base0(digits: str) -> int:
    """simple_strtoull(.., 0): 0x is hex, a leading 0 is octal, else decimal."""
    if digits[:2] in ("0x", "0X"):
        return int(digits, 16)
    return int(digits, 8) if digits.startswith("0") else int(digits)


# Fix 0123: the kernel takes at most this many partitions, as cmdlinepart's
# parser recurses once per partition on the kernel stack.
KERNEL_MAX_PARTS = 64


def count_parts(cmdline: str) -> int:
    """Partitions in a PARTSCMDLINE as fix 0123 counts them: commas outside names."""
    count, in_name = 1, False
    for char in cmdline:
        if in_name:
            in_name = char != ")"
        elif char == "(":
            in_name = True
        elif char == ",":
            count += 1
    return count


def parse_parts(cmdline: str, device_size: int) -> list[Partition]:
    """Partitions in order; unnamed ones get cmdlinepart's Partition_%03d names."""
    if not cmdline:
        return []
    if ":" in cmdline or ";" in cmdline:
        raise ConfigError(
            f"partition list {cmdline!r}: give only the partitions, without '<name>:' and ';'"
        )
    parts: list[Partition] = []
    pos = 0
    offset = 0
    while True:
        start = pos
        fill_up = cmdline.startswith("-", pos)
        size = 0
        if fill_up:
            pos += 1
        else:
            size, pos = _memparse(cmdline, pos)
        if cmdline.startswith("@", pos):
            offset, pos = _memparse(cmdline, pos + 1)
        name = f"Partition_{len(parts):03d}"
        if cmdline.startswith("(", pos):
            close = cmdline.find(")", pos)
            if close < 0:
                raise ConfigError(
                    f"partition list {cmdline!r}: no closing ')' after position {pos}"
                )
            name = cmdline[pos + 1 : close]
            pos = close + 1
        flags = {}
        for flag in ("ro", "lk", "slc"):
            flags[flag] = cmdline.startswith(flag, pos)
            if flags[flag]:
                pos += len(flag)
        if fill_up:
            size = device_size - offset
        if size < MIN_PART_SIZE:
            raise ConfigError(
                f"partition {cmdline[start:pos]!r}: size {size} is below the kernel's minimum "
                f"of {MIN_PART_SIZE} bytes"
            )
        if offset + size > device_size:
            raise ConfigError(
                f"partition {cmdline[start:pos]!r}: ends at {offset + size}, beyond the device "
                f"size {device_size}"
            )
        parts.append(Partition(name, offset, size, flags["ro"], flags["lk"], flags["slc"]))
        offset += size
        if pos == len(cmdline):
            return parts
        if cmdline[pos] != ",":
            raise ConfigError(
                f"partition list {cmdline!r}: unexpected {cmdline[pos]!r} at position {pos}"
            )
        if fill_up:
            raise ConfigError(
                f"partition list {cmdline!r}: no partition may follow a '-' (fill-up) partition"
            )
        pos += 1
