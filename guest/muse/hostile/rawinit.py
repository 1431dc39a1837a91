"""Raw MUSE_INIT replies: send what the server's own validation would refuse.

RawInit composes the reply payload (muse_init_out + info) from the geometry's
KEY=VALUE list with keys overridden, added or dropped verbatim, or replaces
the info with given bytes; version and max_read/max_write are raw u32s.
Nothing is checked against the kernel's rules, on purpose.

kernel_view() and kernel_verdict() predict what muse_process_init_reply()
makes of a payload (fuse_kv_parse_one, kstrto*, muse_verify_mtdreq, the
max_write floor), so the server can model the device the kernel believes in
and tests can tell which presets the kernel should accept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import protocol as p
from ..errors import ConfigError
from ..geometry import U32_MAX, U64_MAX, Geometry

# The kernel floors max_read/max_write at this (muse_process_init_reply).
KERNEL_MIN_IO = 4096
_KSTRTO = re.compile(rb"\+?[0-9]+\n?")
_U32_KEYS = (
    "TYPE",
    "FLAGS",
    "WRITESIZE",
    "WRITEBUFSIZE",
    "OOBSIZE",
    "OOBAVAIL",
    "ERASESIZE",
    "SUBPAGESHIFT",
)


@dataclass(frozen=True)
class RawInit:
    params: tuple[tuple[str, str | None], ...] = ()  # None: a bare KEY without '='
    drop: tuple[str, ...] = ()
    info: bytes | None = None
    version: tuple[int, int] | None = None
    max_io: tuple[int, int] | None = None  # (max_read, max_write)

    @property
    def active(self) -> bool:
        return bool(self.params or self.drop) or any(
            value is not None for value in (self.info, self.version, self.max_io)
        )

    def info_for(self, geometry: Geometry) -> bytes:
        if self.info is not None:
            return self.info
        params: dict[str, str | None] = {
            key: str(value) for key, value in geometry.init_params().items()
        }
        for key in self.drop:
            params.pop(key, None)
        for key, value in self.params:
            params[key] = value  # an existing key keeps its place
        return b"".join(
            (key if value is None else f"{key}={value}").encode() + b"\0"
            for key, value in params.items()
        )

    def io_sizes(self, max_io: int) -> tuple[int, int]:
        return self.max_io or (max_io, max_io)

    def payload(self, geometry: Geometry, max_io: int) -> bytes:
        major, minor = self.version or (p.FUSE_KERNEL_VERSION, p.MUSE_MINOR)
        read, write = self.io_sizes(max_io)
        return p.INIT_OUT.pack(major, minor, read, write) + self.info_for(geometry)


def parse_param(text: str) -> tuple[str, str | None]:
    key, sep, value = text.partition("=")
    return (key, value) if sep else (key, None)


def parse_raw(text: str) -> bytes:
    """HEX digits (spaces allowed) or @FILE."""
    if text.startswith("@"):
        try:
            with open(text[1:], "rb") as raw:
                return raw.read()
        except OSError as err:
            raise ConfigError(f"--init-raw {text}: {err.strerror}") from None
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"--init-raw {text!r}: expected hex digits or @FILE") from None


def _u32_pair(text: str, sep: str, what: str) -> tuple[int, int]:
    first, found, second = text.partition(sep)
    try:
        pair = (int(first, 0), int(second, 0))
    except ValueError:
        found = ""
    if not found or not all(0 <= value <= U32_MAX for value in pair):
        raise ConfigError(
            f"{what} {text!r}: expected two numbers 0..{U32_MAX} separated by {sep!r}"
        )
    return pair


def parse_version(text: str) -> tuple[int, int]:
    return _u32_pair(text, ".", "--init-version")


def parse_max_io(text: str) -> tuple[int, int]:
    return _u32_pair(text, ",", "--init-max-io")


def kernel_view(info: bytes) -> dict[str, bytes] | None:
    """The key/values muse_parse_mtdreq() sees (last one wins); None if parsing fails."""
    if len(info) > p.MUSE_INIT_INFO_MAX:
        return None  # copy_out_args() refuses the reply
    view: dict[str, bytes] = {}
    for item in info.split(b"\0"):
        if not item:
            continue
        if info[-1] != 0:
            return None  # "info not properly terminated"
        key, _, value = item.partition(b"=")
        key = key.strip()
        if not key:
            return None  # "zero length info key specified"
        view[key.decode("latin-1")] = value.strip()
    return view


def _kstrto(value: bytes, limit: int) -> int | None:
    if not _KSTRTO.fullmatch(value):
        return None
    number = int(value.rstrip(b"\n"))
    return number if number <= limit else None


def announced_geometry(view: dict[str, bytes]) -> Geometry | None:
    """The geometry the kernel would build from the view; None if it fails to parse."""
    numbers: dict[str, int] = {}
    for key in (*_U32_KEYS, "SIZE"):
        if key in view:
            number = _kstrto(view[key], U64_MAX if key == "SIZE" else U32_MAX)
            if number is None:
                return None
            numbers[key] = number
    if "NAME" not in view:
        return None
    return Geometry(
        name=view["NAME"].decode("latin-1"),
        mtd_type=numbers.get("TYPE", 0),
        flags=numbers.get("FLAGS", 0),
        size=numbers.get("SIZE", 0),
        writesize=numbers.get("WRITESIZE", 0),
        erasesize=numbers.get("ERASESIZE", 0),
        writebufsize=numbers.get("WRITEBUFSIZE", 0),
        oobsize=numbers.get("OOBSIZE", 0),
        oobavail=numbers.get("OOBAVAIL", 0),
        subpage_shift=numbers.get("SUBPAGESHIFT", 0),
        parts=view.get("PARTSCMDLINE", b"").decode("latin-1"),
    )


def kernel_verdict(payload: bytes) -> list[str]:
    """Why muse_process_init_reply() would abort on this payload (empty: it registers)."""
    if len(payload) < p.INIT_OUT.size:
        return [f"the reply has {len(payload)} bytes, muse_init_out alone needs {p.INIT_OUT.size}"]
    major, minor, read, write = p.INIT_OUT.unpack_from(payload)
    problems = []
    if major != p.FUSE_KERNEL_VERSION or minor < p.MUSE_MINOR:
        problems.append(f"version {major}.{minor}: the kernel wants 7.34 or later")
    view = kernel_view(payload[p.INIT_OUT.size :])
    geometry = None if view is None else announced_geometry(view)
    if view is None or geometry is None:
        problems.append("the info does not parse (size, termination, key or number)")
    else:
        problems += geometry.kernel_problems(max(min(read, write), KERNEL_MIN_IO))
        problems += ecc_problems(view, geometry)
    return problems


def ecc_problems(view: dict[str, bytes], geometry: Geometry) -> list[str]:
    """Why a MUSE 7.35 kernel (kernel/series/*/0201) refuses the ECC keys; a 7.34 one
    ignores them."""
    strength = _kstrto(view.get("ECCSTRENGTH", b"0"), U32_MAX)
    step = _kstrto(view.get("ECCSTEPSIZE", b"0"), U32_MAX)
    if strength is None or step is None:
        return ["ECCSTRENGTH or ECCSTEPSIZE does not parse"]
    if not strength and not step:
        return []
    if not strength or not step:
        return ["ECCSTRENGTH and ECCSTEPSIZE come both or neither"]
    problems = []
    if not geometry.is_nand:
        problems.append("only a NAND type has ECC")
    if geometry.writesize % step:
        problems.append(f"WRITESIZE {geometry.writesize} is not whole ECC steps of {step}")
    if strength > step * 8 or strength > 0xFFFF:
        problems.append(f"ECCSTRENGTH {strength} exceeds the step's bits (or 65535)")
    return problems
