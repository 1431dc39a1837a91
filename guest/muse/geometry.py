"""Device geometry: size parsing, per-type defaults and validation.

Validation has two tiers. kernel_problems() mirrors muse_parse_mtdreq() and
muse_verify_mtdreq() of the v3 series (plus the max_read/max_write check of
muse_process_init_reply()), so a geometry that passes is one the kernel
accepts. server_problems() adds what this server's models need to make sense
(for instance whole pages per eraseblock and room for the NAND bad block
marker). A hostile server may later want to skip the second tier on purpose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import mtdabi
from .errors import ConfigError
from .partitions import KERNEL_MAX_PARTS, Partition, count_parts, parse_parts

U32_MAX = 0xFFFFFFFF
U64_MAX = 0xFFFFFFFFFFFFFFFF
# NAND large-page convention: byte 0 (and 1) of the first page's OOB.
BBM_BYTES = 2

_SIZE = re.compile(r"\s*(0x[0-9a-f]+|\d+)\s*(?:([kmgt])(?:ib)?)?\s*", re.IGNORECASE)
_SHIFT = {"k": 10, "m": 20, "g": 30, "t": 40}


def parse_size(text: str) -> int:
    """'2048', '0x800', '128K', '128KiB', '64MiB', '1G' -> bytes (binary units)."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise ConfigError(
            f"invalid size {text!r}: expected a number with an optional K/KiB, M/MiB, G/GiB "
            "or T/TiB suffix"
        )
    value = int(match.group(1), 0)
    if match.group(2):
        value <<= _SHIFT[match.group(2).lower()]
    return value


@dataclass(frozen=True)
class Geometry:
    """What the server announces in MUSE_INIT (writebufsize 0 = writesize)."""

    name: str
    mtd_type: int
    flags: int
    size: int
    writesize: int
    erasesize: int
    writebufsize: int = 0
    oobsize: int = 0
    oobavail: int = 0
    subpage_shift: int = 0
    parts: str = ""

    @property
    def npages(self) -> int:
        return self.size // self.writesize

    @property
    def nblocks(self) -> int:
        return self.size // self.erasesize

    @property
    def pages_per_block(self) -> int:
        return self.erasesize // self.writesize

    @property
    def subpage_size(self) -> int:
        return self.writesize >> self.subpage_shift

    @property
    def effective_writebufsize(self) -> int:
        return self.writebufsize or self.writesize

    @property
    def is_nand(self) -> bool:
        return mtdabi.is_nand(self.mtd_type)

    def init_params(self) -> dict[str, str | int]:
        """MUSE_INIT key/values; PARTSCMDLINE only when there are partitions."""
        params: dict[str, str | int] = {
            "NAME": self.name,
            "TYPE": self.mtd_type,
            "FLAGS": self.flags,
            "SIZE": self.size,
            "WRITESIZE": self.writesize,
            "WRITEBUFSIZE": self.effective_writebufsize,
            "ERASESIZE": self.erasesize,
            "OOBSIZE": self.oobsize,
            "OOBAVAIL": self.oobavail,
            "SUBPAGESHIFT": self.subpage_shift,
        }
        if self.parts:
            params["PARTSCMDLINE"] = self.parts
        return params

    def partitions(self) -> list[Partition]:
        return parse_parts(self.parts, self.size)

    def kernel_problems(self, max_io: int | None = None) -> list[str]:
        """Reasons the v3 kernel would refuse this geometry (empty: accepted)."""
        problems: list[str] = []
        for field in ("flags", "writesize", "writebufsize", "erasesize", "oobsize", "oobavail"):
            if not 0 <= getattr(self, field) <= U32_MAX:
                problems.append(f"{field.upper()} must fit in 32 bits")
        if not 0 <= self.size <= U64_MAX:
            problems.append("SIZE must fit in 64 bits")
        for field in ("size", "writesize", "erasesize"):
            if getattr(self, field) <= 0:
                problems.append(f"{field.upper()} must not be 0")
        if self.writesize > 0 and self.size % self.writesize:
            problems.append(f"SIZE {self.size} is not a multiple of WRITESIZE {self.writesize}")
        if self.erasesize > 0 and self.size % self.erasesize:
            problems.append(f"SIZE {self.size} is not a multiple of ERASESIZE {self.erasesize}")
        if self.oobsize < self.oobavail:
            problems.append(f"OOBAVAIL {self.oobavail} exceeds OOBSIZE {self.oobsize}")
        if self.oobsize >= self.writesize:
            problems.append(f"OOBSIZE {self.oobsize} must be below WRITESIZE {self.writesize}")
        if self.flags & ~mtdabi.KERNEL_FLAGS:
            problems.append(
                f"FLAGS {self.flags:#x} has bits outside WRITEABLE|BIT_WRITEABLE|NO_ERASE "
                f"({mtdabi.KERNEL_FLAGS:#x})"
            )
        if not 0 <= self.subpage_shift <= 2:
            problems.append(f"SUBPAGESHIFT {self.subpage_shift} must be 0, 1 or 2")
        if self.mtd_type not in mtdabi.KERNEL_TYPES:
            problems.append(
                f"TYPE {self.mtd_type} is not one of RAM, ROM, NORFLASH, NANDFLASH, DATAFLASH, "
                "MLCNANDFLASH"
            )
        if max_io is not None and max(max_io, 4096) < self.effective_writebufsize:
            problems.append(
                f"max_read/max_write {max_io} must be at least WRITEBUFSIZE "
                f"{self.effective_writebufsize}"
            )
        return problems

    def fixed_kernel_problems(self) -> list[str]:
        """What the fix patches (0114, 0115, 0123) make the kernel refuse beyond
        kernel_problems()."""
        problems: list[str] = []
        if self.parts and set(self.name) & set(":;("):
            problems.append(
                f"NAME {self.name!r} may not contain ':', ';' or '(' with PARTSCMDLINE "
                "(it becomes the mtd-id of the partition string)"
            )
        if self.parts and (count := count_parts(self.parts)) > KERNEL_MAX_PARTS:
            problems.append(
                f"PARTSCMDLINE has {count} partitions, more than {KERNEL_MAX_PARTS}"
            )
        if self.writesize > 0 and self.erasesize % self.writesize:
            problems.append(
                f"ERASESIZE {self.erasesize} is not a multiple of WRITESIZE {self.writesize}"
            )
        if self.writebufsize and self.writesize > 0 and self.writebufsize % self.writesize:
            problems.append(
                f"WRITEBUFSIZE {self.writebufsize} is not a multiple of WRITESIZE {self.writesize}"
            )
        if self.writebufsize and self.erasesize % self.writebufsize:
            problems.append(
                f"ERASESIZE {self.erasesize} is not a multiple of WRITEBUFSIZE {self.writebufsize}"
            )
        if 0 <= self.subpage_shift <= 2 and self.writesize % (1 << self.subpage_shift):
            problems.append(
                f"WRITESIZE {self.writesize} is not divisible into "
                f"{1 << self.subpage_shift} subpages"
            )
        known = self.mtd_type in mtdabi.KERNEL_TYPES
        if known and not self.is_nand and (self.oobsize or self.oobavail):
            problems.append("OOBSIZE and OOBAVAIL must be 0 for non-NAND types")
        return problems

    def server_problems(self) -> list[str]:
        """Reasons this server's device models cannot serve the geometry.

        Everything the fixed kernel refuses, and what the models need beyond it.
        """
        problems = self.fixed_kernel_problems()
        name = self.name
        if not name or name != name.strip() or "\0" in name or "\n" in name:
            problems.append(
                f"NAME {name!r} must be non-empty, without NUL, newline or surrounding "
                "whitespace (the kernel strips it)"
            )
        if self.is_nand:
            if self.oobsize < BBM_BYTES:
                problems.append(
                    f"NAND needs OOBSIZE >= {BBM_BYTES} for the bad block marker, got "
                    f"{self.oobsize}"
                )
            elif self.oobavail > self.oobsize - BBM_BYTES:
                problems.append(
                    f"OOBAVAIL {self.oobavail} exceeds OOBSIZE-{BBM_BYTES} = "
                    f"{self.oobsize - BBM_BYTES} (free OOB bytes start after the bad block "
                    "marker)"
                )
        elif self.subpage_shift:
            problems.append("SUBPAGESHIFT must be 0 for non-NAND types")
        if self.parts and self.size > 0:
            try:
                self.partitions()
            except ConfigError as err:
                problems.append(str(err))
        return problems

    def validate(self, max_io: int | None = None) -> None:
        problems = self.kernel_problems(max_io) or self.fixed_kernel_problems()
        if not problems:
            problems = self.server_problems()
        if problems:
            raise ConfigError("invalid geometry: " + "; ".join(problems))


@dataclass(frozen=True)
class TypeDefaults:
    size: int
    writesize: int
    erasesize: int
    writebufsize: int = 0


MIB = 1 << 20
KIB = 1 << 10
DEFAULTS = {
    mtdabi.MTD_RAM: TypeDefaults(64 * MIB, 1, 128 * KIB),
    mtdabi.MTD_ROM: TypeDefaults(64 * MIB, 1, 128 * KIB),
    mtdabi.MTD_NORFLASH: TypeDefaults(64 * MIB, 1, 64 * KIB, 64),
    mtdabi.MTD_NANDFLASH: TypeDefaults(64 * MIB, 2048, 128 * KIB),
    mtdabi.MTD_MLCNANDFLASH: TypeDefaults(64 * MIB, 4096, 512 * KIB),
    mtdabi.MTD_DATAFLASH: TypeDefaults(8 * MIB, 512, 4 * KIB),
}


def default_oobsize(mtd_type: int, writesize: int) -> int:
    """1/32 of the page for NAND (2048+64, 4096+128, 512+16), none otherwise."""
    return writesize // 32 if mtdabi.is_nand(mtd_type) else 0


def default_oobavail(mtd_type: int, oobsize: int) -> int:
    """Half the OOB is free for clients, the rest stands in for ECC bytes."""
    if not mtdabi.is_nand(mtd_type):
        return 0
    return max(0, min(oobsize // 2, oobsize - BBM_BYTES))


def default_max_io(geometry: Geometry) -> int:
    """128 KiB or one write buffer, rounded up to whole pages.

    Whole pages keep the kernel's max_io-sized chunks of a large request page
    aligned, which NAND programs need.
    """
    want = max(128 * KIB, geometry.effective_writebufsize)
    page = max(1, geometry.writesize)
    return -(-want // page) * page
