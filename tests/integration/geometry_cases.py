"""Invalid MUSE_INIT geometries: one case per rule of the kernel's parameter check.

The rules are those of muse_parse_mtdreq() and muse_verify_mtdreq() with the
fix patches applied (0114, 0115 and 0123 add the last seven). Each case changes the
valid BASE geometry so that it breaks its rule; `why` matches the reason the
server gives (its own model of the check) when the kernel refuses the device.
Shared by the host-only check of the table (tests/unit/test_geometry_cases.py)
and the VM test (test_geometry.py).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

BASE = "--type nand --size 8MiB --writesize 2048 --oobsize 64 --erasesize 128KiB"


@dataclass(frozen=True)
class Case:
    id: str
    rule: str  # the kernel's rule, as in muse_verify_mtdreq()
    args: tuple[str, ...]  # added to BASE, with --unchecked
    why: str  # a substring of the server's reason
    fixed_only: bool = False  # refused only with the fix patches

    @property
    def argv(self) -> list[str]:
        return [*shlex.split(BASE), "--unchecked", *self.args]

    @property
    def command(self) -> str:
        return f"{BASE} --unchecked {shlex.join(self.args)}"


def _set(*pairs: str) -> tuple[str, ...]:
    return tuple(arg for pair in pairs for arg in ("--init-param", pair))


CASES = [
    Case("no-name", "a NAME is given", ("--init-drop", "NAME"), "does not parse"),
    Case("non-numeric", "numbers parse (kstrto*)", _set("SIZE=lots"), "does not parse"),
    Case("size-zero", "SIZE != 0", _set("SIZE=0"), "SIZE must not be 0"),
    Case("writesize-zero", "WRITESIZE != 0", _set("WRITESIZE=0", "OOBSIZE=0", "OOBAVAIL=0"),
         "WRITESIZE must not be 0"),
    Case("erasesize-zero", "ERASESIZE != 0", _set("ERASESIZE=0"), "ERASESIZE must not be 0"),
    # With whole pages per eraseblock, a size of whole eraseblocks is whole pages: this
    # case is the only one that breaks two rules (the first is the one checked first).
    Case("size-not-pages", "SIZE % WRITESIZE == 0", _set("SIZE=8389632"),
         "SIZE 8389632 is not a multiple of WRITESIZE"),
    Case("size-not-blocks", "SIZE % ERASESIZE == 0", _set("SIZE=8390656"),
         "SIZE 8390656 is not a multiple of ERASESIZE"),
    Case("oobavail-over-oobsize", "OOBAVAIL <= OOBSIZE", _set("OOBAVAIL=65"),
         "OOBAVAIL 65 exceeds OOBSIZE 64"),
    Case("oobsize-page", "OOBSIZE < WRITESIZE", _set("OOBSIZE=2048"),
         "OOBSIZE 2048 must be below WRITESIZE"),
    Case("unknown-flags", "FLAGS within WRITEABLE|BIT_WRITEABLE|NO_ERASE",
         _set("FLAGS=33792"), "FLAGS 0x8400 has bits outside"),
    Case("subpage-shift", "SUBPAGESHIFT <= 2", _set("SUBPAGESHIFT=3"),
         "SUBPAGESHIFT 3 must be 0, 1 or 2"),
    Case("unknown-type", "a known TYPE", _set("TYPE=5"), "TYPE 5 is not one of"),
    Case("name-breaks-parts", "no ':', ';' or '(' in NAME with PARTSCMDLINE",
         ("--name", "a:b", "--parts", "1M(a),-(b)"), "may not contain ':', ';' or '('",
         fixed_only=True),
    Case("block-not-pages", "ERASESIZE % WRITESIZE == 0",
         _set("ERASESIZE=3072", "SIZE=6291456"),
         "ERASESIZE 3072 is not a multiple of WRITESIZE 2048", fixed_only=True),
    Case("wbuf-not-pages", "WRITEBUFSIZE % WRITESIZE == 0", _set("WRITEBUFSIZE=3072"),
         "WRITEBUFSIZE 3072 is not a multiple of WRITESIZE", fixed_only=True),
    Case("block-not-wbufs", "ERASESIZE % WRITEBUFSIZE == 0", _set("WRITEBUFSIZE=6144"),
         "ERASESIZE 131072 is not a multiple of WRITEBUFSIZE 6144", fixed_only=True),
    Case("page-not-subpages", "WRITESIZE % (1 << SUBPAGESHIFT) == 0",
         _set("WRITESIZE=2", "WRITEBUFSIZE=2", "OOBSIZE=0", "OOBAVAIL=0", "SUBPAGESHIFT=2"),
         "WRITESIZE 2 is not divisible into 4 subpages", fixed_only=True),
    Case("oob-not-nand", "no OOB on a non-NAND TYPE", _set("TYPE=3"),
         "OOBSIZE and OOBAVAIL must be 0 for non-NAND", fixed_only=True),
    Case("too-many-parts", "at most 64 partitions in PARTSCMDLINE",
         ("--size", "16MiB", "--parts", "128k," * 64 + "-"),
         "PARTSCMDLINE has 65 partitions, more than 64", fixed_only=True),
]
