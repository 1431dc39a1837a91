"""Fault settings: what to inject, parsed from KEY=VALUE text or JSON.

The same parser serves `serve --fault KEY=VALUE` and the control channel's
{"cmd": "set", "faults": {KEY: VALUE}}, so a setting reads the same in both.
Page and block numbers are absolute on the device (not per partition), like
nandsim's. Value syntax:
  rate     a probability 0..1 per page read, e.g. 0.01
  count    a non-negative integer
  pages, blocks
           a list: 3,17,40-42 (text), or a JSON list of numbers
  page:count, block:count
           N[:COUNT],...: 113:2,140 (COUNT omitted: the key's default), or a
           JSON object {"113": 2}
An empty value clears a list or map. The keys are in PARAMS (and FAULTS.md).

nandsim's fault parameters map like this (FAULTS.md has the full table):
  badblocks=LIST       serve --bad-blocks LIST
  weakblocks=B:N       weak_blocks=B:N     (same default N=3, same semantics)
  weakpages=P:N        weak_pages=P:N
  gravepages=P:N       grave_pages=P:N
  bitflips=N           bitflips=N          (bitflips_prob 64/65536 as nandsim)
  bch=N                ecc_strength=N ecc_step=512 (default: 1 bit / 256 bytes,
                       nandsim's software Hamming ECC)
  bbt=0                the OOB marker (bbt=1/2, an on-flash BBT: none here)
  rptwear=N            erase_counts in the stats JSON (no periodic report)
  overridesize=N       serve --size / --erasesize
  cache_file=FILE      serve --image FILE (persistent, unlike nandsim's)
  parts=A,B,...        serve --parts (cmdlinepart syntax)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .errors import ConfigError
from .geometry import Geometry

# nandsim's default cycles when weakblocks/weakpages/gravepages omit ":N".
NANDSIM_DEFAULT_CYCLES = 3


@dataclass(frozen=True)
class Param:
    kind: str  # rate, count, pages, blocks, page-map, block-map
    nand_only: bool
    help: str
    map_default: int = 0


PARAMS: dict[str, Param] = {
    "bitflip_rate": Param(
        "rate", True, "correctable bit flip per page read: -EUCLEAN, data corrected"
    ),
    "bitflip_pages": Param("pages", True, "pages whose every read has a correctable flip"),
    "bitflip_blocks": Param("blocks", True, "blocks whose every page read has a correctable flip"),
    "ecc_error_rate": Param(
        "rate", True, "uncorrectable error per page read: -EBADMSG, data corrupted"
    ),
    "ecc_error_pages": Param("pages", True, "pages whose every read is uncorrectable"),
    "ecc_error_blocks": Param("blocks", True, "blocks whose every page read is uncorrectable"),
    "bitflips": Param(
        "count", True, "nandsim bitflips=: up to N random raw bit flips per page read"
    ),
    "bitflips_prob": Param(
        "rate", True, "chance of a bitflips= event per page read (nandsim: 64/65536)"
    ),
    "ecc_strength": Param("count", True, "bits the emulated ECC corrects per ecc_step"),
    "ecc_step": Param("count", True, "bytes per ECC step (divides WRITESIZE)"),
    "bitflip_threshold": Param(
        "count", True, "corrected flips per step from which -EUCLEAN is reported"
    ),
    "grave_pages": Param(
        "page-map",
        True,
        "page:N: after N good reads the page reads as garbage with -EBADMSG",
        NANDSIM_DEFAULT_CYCLES,
    ),
    "weak_pages": Param(
        "page-map",
        True,
        "page:N: after N programs every program of the page fails with -EIO",
        NANDSIM_DEFAULT_CYCLES,
    ),
    "program_fail_pages": Param("pages", True, "pages whose every program fails with -EIO"),
    "program_fail_blocks": Param("blocks", False, "blocks whose every program fails with -EIO"),
    "weak_blocks": Param(
        "block-map",
        False,
        "block:N: after N erases every erase of the block fails with -EIO",
        NANDSIM_DEFAULT_CYCLES,
    ),
    "erase_fail_blocks": Param("blocks", False, "blocks whose every erase fails with -EIO"),
    "grown_bad": Param(
        "block-map",
        False,
        "block:N: bad after N more erases: ISBAD 1, erases/programs fail, change nothing",
    ),
}


@dataclass(frozen=True)
class FaultConfig:
    """The current fault settings; replaced whole on every change."""

    bitflip_rate: float = 0.0
    bitflip_pages: frozenset[int] = frozenset()
    bitflip_blocks: frozenset[int] = frozenset()
    ecc_error_rate: float = 0.0
    ecc_error_pages: frozenset[int] = frozenset()
    ecc_error_blocks: frozenset[int] = frozenset()
    bitflips: int = 0
    bitflips_prob: float = 64 / 65536
    # nandsim's default software Hamming ECC: 1 bit per 256 bytes.
    ecc_strength: int = 1
    ecc_step: int = 256
    bitflip_threshold: int = 1
    grave_pages: Mapping[int, int] = field(default_factory=dict)
    weak_pages: Mapping[int, int] = field(default_factory=dict)
    program_fail_pages: frozenset[int] = frozenset()
    program_fail_blocks: frozenset[int] = frozenset()
    weak_blocks: Mapping[int, int] = field(default_factory=dict)
    erase_fail_blocks: frozenset[int] = frozenset()
    grown_bad: Mapping[int, int] = field(default_factory=dict)

    @property
    def read_faults(self) -> bool:
        return bool(
            self.bitflip_rate
            or self.bitflip_pages
            or self.bitflip_blocks
            or self.ecc_error_rate
            or self.ecc_error_pages
            or self.ecc_error_blocks
            or self.bitflips
            or self.grave_pages
        )

    @property
    def program_faults(self) -> bool:
        return bool(
            self.weak_pages or self.program_fail_pages or self.program_fail_blocks or self.grown_bad
        )

    @property
    def erase_faults(self) -> bool:
        return bool(self.weak_blocks or self.erase_fail_blocks or self.grown_bad)

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {}
        for name, param in PARAMS.items():
            value = getattr(self, name)
            if param.kind in ("pages", "blocks"):
                doc[name] = sorted(value)
            elif param.kind.endswith("-map"):
                doc[name] = {str(key): count for key, count in sorted(value.items())}
            else:
                doc[name] = value
        return doc

    def updated(self, changes: Mapping[str, object], geometry: Geometry) -> FaultConfig:
        """A copy with changes applied; ConfigError names the first bad one."""
        values: dict[str, object] = {}
        for name, raw in changes.items():
            param = PARAMS.get(name)
            if param is None:
                raise ConfigError(f"unknown fault {name!r}: expected one of {', '.join(PARAMS)}")
            try:
                values[name] = _convert(param, raw, geometry)
            except ConfigError as err:
                raise ConfigError(f"fault {name}: {err}") from None
            if param.nand_only and not geometry.is_nand and values[name]:
                raise ConfigError(f"fault {name} needs a NAND type (nand, mlc-nand)")
        new = dataclasses.replace(self, **values)  # type: ignore[arg-type]
        if geometry.is_nand and (new.ecc_step <= 0 or geometry.writesize % new.ecc_step):
            raise ConfigError(
                f"fault ecc_step: {new.ecc_step} must divide WRITESIZE {geometry.writesize}"
            )
        if new.bitflip_threshold < 1:
            raise ConfigError("fault bitflip_threshold: must be at least 1")
        return new


def parse_assignments(items: Iterable[str]) -> dict[str, str]:
    """['a=1', 'b=2,3'] -> {'a': '1', 'b': '2,3'}."""
    changes: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"fault setting {item!r} is not KEY=VALUE")
        changes[key.strip()] = value.strip()
    return changes


def _convert(param: Param, raw: object, geometry: Geometry) -> object:
    limit = geometry.npages if param.kind.startswith("page") else geometry.nblocks
    unit = "page" if param.kind.startswith("page") else "block"
    if param.kind == "rate":
        value = _number(raw, float)
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{value} is not a probability in 0..1")
        return value
    if param.kind == "count":
        count = _number(raw, int)
        if count < 0:
            raise ConfigError(f"{count} is negative")
        return count
    if param.kind in ("pages", "blocks"):
        return frozenset(_check(n, limit, unit) for n in _numbers(raw))
    return {_check(n, limit, unit): count for n, count in _pairs(raw, param.map_default).items()}


def _number(raw: object, kind: type[int] | type[float]) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise ConfigError(f"{raw!r} is not a number")
    if isinstance(raw, float) and kind is int:
        if not raw.is_integer():
            raise ConfigError(f"{raw!r} is not an integer")
        return int(raw)
    try:
        return kind(raw.strip() if isinstance(raw, str) else raw)
    except ValueError:
        raise ConfigError(f"{raw!r} is not a{'n integer' if kind is int else ' number'}") from None


def _numbers(raw: object) -> list[int]:
    if isinstance(raw, list):
        return [int(_number(item, int)) for item in raw]
    if isinstance(raw, int) and not isinstance(raw, bool):
        return [raw]
    if not isinstance(raw, str):
        raise ConfigError(f"{raw!r} is not a list like 3,17,40-42")
    numbers: list[int] = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        first, _, last = item.partition("-")
        try:
            span = range(int(first), int(last or first) + 1)
        except ValueError:
            raise ConfigError(f"{item!r} is not N or N-M") from None
        if not span:
            raise ConfigError(f"{item!r} is an empty range")
        numbers.extend(span)
    return numbers


def _pairs(raw: object, default: int) -> dict[int, int]:
    if isinstance(raw, dict):
        items = [(key, value) for key, value in raw.items()]
    elif isinstance(raw, str):
        items = []
        for item in filter(None, (part.strip() for part in raw.split(","))):
            number, sep, count = item.partition(":")
            items.append((number, count if sep else default))
    elif isinstance(raw, list):
        return _pairs(",".join(str(item) for item in raw), default)
    else:
        raise ConfigError(f"{raw!r} is not a list like 113:2,140")
    pairs: dict[int, int] = {}
    for number, count in items:
        cycles = int(_number(count, int))
        if cycles < 0:
            raise ConfigError(f"count {cycles} is negative")
        pairs[int(_number(number, int))] = cycles
    return pairs


def _check(number: int, limit: int, unit: str) -> int:
    if not 0 <= number < limit:
        raise ConfigError(f"{unit} {number} is outside 0..{limit - 1}")
    return number
