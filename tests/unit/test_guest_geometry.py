"""Geometry of the guest MUSE server: sizes, defaults, kernel and server rules."""

import dataclasses

import pytest

from guest.muse import mtdabi
from guest.muse.errors import ConfigError
from guest.muse.geometry import Geometry, default_max_io, default_oobavail, parse_size
from guest.muse.partitions import Partition, count_parts, parse_parts

KIB = 1024
MIB = 1024 * KIB

NAND = Geometry(
    name="nand0",
    mtd_type=mtdabi.MTD_NANDFLASH,
    flags=mtdabi.MTD_WRITEABLE,
    size=64 * MIB,
    writesize=2048,
    erasesize=128 * KIB,
    oobsize=64,
    oobavail=32,
)
NOR = Geometry(
    name="nor0",
    mtd_type=mtdabi.MTD_NORFLASH,
    flags=mtdabi.MTD_WRITEABLE | mtdabi.MTD_BIT_WRITEABLE,
    size=16 * MIB,
    writesize=1,
    erasesize=64 * KIB,
    writebufsize=64,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("2048", 2048),
        ("0x800", 2048),
        ("128K", 128 * KIB),
        ("128k", 128 * KIB),
        ("128KiB", 128 * KIB),
        ("64MiB", 64 * MIB),
        ("64m", 64 * MIB),
        ("1G", 1 << 30),
        ("1GiB", 1 << 30),
        (" 4 KiB ", 4 * KIB),
    ],
)
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "K", "12X", "1.5M", "64MB", "-1", "0x", "1KiBB"])
def test_parse_size_rejects(text):
    with pytest.raises(ConfigError, match="invalid size"):
        parse_size(text)


# (geometry change, fragment of the expected error); the tier column tells
# which rule set catches it: "kernel" mirrors muse_verify_mtdreq().
RULES = [
    ("kernel", NAND, {"size": 0}, "SIZE must not be 0"),
    ("kernel", NAND, {"writesize": 0}, "WRITESIZE must not be 0"),
    ("kernel", NAND, {"erasesize": 0}, "ERASESIZE must not be 0"),
    ("kernel", NAND, {"size": 64 * MIB + 1024}, "not a multiple of WRITESIZE"),
    ("kernel", NAND, {"size": 64 * MIB + 2048}, "not a multiple of ERASESIZE"),
    ("kernel", NAND, {"oobavail": 65}, "OOBAVAIL 65 exceeds OOBSIZE 64"),
    ("kernel", NAND, {"oobsize": 2048, "oobavail": 0}, "OOBSIZE 2048 must be below WRITESIZE"),
    ("kernel", NAND, {"flags": mtdabi.MTD_MUSE}, "FLAGS 0x8000"),
    ("kernel", NAND, {"flags": 0x1}, "bits outside"),
    ("kernel", NAND, {"subpage_shift": 3}, "SUBPAGESHIFT 3"),
    ("kernel", NAND, {"mtd_type": mtdabi.MTD_UBIVOLUME}, "TYPE 7"),
    ("kernel", NAND, {"mtd_type": 5}, "TYPE 5"),
    ("kernel", NAND, {"writesize": 1 << 32, "size": 1 << 40, "erasesize": 1 << 33}, "32 bits"),
    ("kernel", NOR, {"size": 1 << 64}, "64 bits"),
    ("server", NAND, {"name": ""}, "NAME ''"),
    ("server", NAND, {"name": " padded"}, "surrounding whitespace"),
    ("server", NAND, {"name": "a\0b"}, "NUL"),
    ("server", NAND, {"name": "a:b", "parts": "-(all)"}, "may not contain ':'"),
    (
        "server",
        NAND,
        {"erasesize": 3 * 2048 * 64, "size": 3 * 2048 * 64 * 4, "writesize": 2048 * 2},
        None,
    ),
    (
        "server",
        NAND,
        {"erasesize": 3 * 1024, "size": 3 * 1024 * 2048},
        "not a multiple of WRITESIZE",
    ),
    ("server", NOR, {"writebufsize": 100, "writesize": 64}, "WRITEBUFSIZE 100 is not a multiple"),
    ("server", NOR, {"writebufsize": 128 * KIB}, "is not a multiple of WRITEBUFSIZE"),
    ("server", NAND, {"oobsize": 1, "oobavail": 0}, "OOBSIZE >= 2"),
    ("server", NAND, {"oobavail": 63}, "OOBAVAIL 63 exceeds OOBSIZE-2"),
    (
        "server",
        NAND,
        {"writesize": 2050, "size": 2050 * 64 * 4, "erasesize": 2050 * 64, "subpage_shift": 2},
        "subpages",
    ),
    (
        "server",
        NOR,
        {"writesize": 512, "writebufsize": 512, "oobsize": 16},
        "must be 0 for non-NAND",
    ),
    ("server", NOR, {"subpage_shift": 1}, "SUBPAGESHIFT must be 0"),
    ("server", NAND, {"parts": "1M(a),junk"}, "expected a size"),
    ("server", NAND, {"parts": "128M(big)"}, "beyond the device size"),
]


@pytest.mark.parametrize(("tier", "base", "change", "message"), RULES)
def test_validation_rules(tier, base, change, message):
    geometry = dataclasses.replace(base, **change)
    kernel = geometry.kernel_problems()
    server = geometry.server_problems() if not kernel else []
    if message is None:
        assert kernel == [] and server == []
        geometry.validate()
        return
    hits = kernel if tier == "kernel" else server
    assert any(message in problem for problem in hits), (kernel, server)
    if tier == "server":
        assert kernel == []  # the kernel itself would accept it
    with pytest.raises(ConfigError, match="invalid geometry"):
        geometry.validate()


def test_max_io_must_hold_a_write_buffer():
    big = dataclasses.replace(NOR, writebufsize=32 * KIB)
    assert big.kernel_problems(max_io=16 * KIB)
    assert big.kernel_problems(max_io=32 * KIB) == []
    # The kernel raises max_read/max_write to 4096 itself.
    assert dataclasses.replace(NOR, writebufsize=4096).kernel_problems(max_io=512) == []


def test_valid_geometries_pass():
    for geometry in (NAND, NOR, dataclasses.replace(NAND, subpage_shift=2, parts="1M(a)ro,-")):
        geometry.validate(default_max_io(geometry))


def test_derived_values():
    assert (NAND.npages, NAND.nblocks, NAND.pages_per_block) == (32768, 512, 64)
    assert dataclasses.replace(NAND, subpage_shift=2).subpage_size == 512
    assert NAND.effective_writebufsize == 2048
    assert NOR.effective_writebufsize == 64
    assert NAND.is_nand and not NOR.is_nand


def test_init_params_cover_every_key():
    params = dataclasses.replace(NAND, parts="1M(boot)").init_params()
    assert list(params) == [
        "NAME", "TYPE", "FLAGS", "SIZE", "WRITESIZE", "WRITEBUFSIZE", "ERASESIZE",
        "OOBSIZE", "OOBAVAIL", "SUBPAGESHIFT", "PARTSCMDLINE",
    ]  # fmt: skip
    assert params["WRITEBUFSIZE"] == 2048
    assert "PARTSCMDLINE" not in NAND.init_params()


def test_defaults():
    assert default_oobavail(mtdabi.MTD_NANDFLASH, 64) == 32
    assert default_oobavail(mtdabi.MTD_NANDFLASH, 3) == 1
    assert default_oobavail(mtdabi.MTD_NORFLASH, 64) == 0
    odd = dataclasses.replace(NAND, writesize=528, size=528 * 256, erasesize=528 * 16, oobsize=16,
                              oobavail=8)  # fmt: skip
    assert default_max_io(odd) % 528 == 0 and default_max_io(odd) >= 128 * KIB


@pytest.mark.parametrize(
    ("cmdline", "parts"),
    [
        ("1M(boot)ro,-(rest)", [Partition("boot", 0, MIB, read_only=True),
                                Partition("rest", MIB, 63 * MIB)]),
        ("0x100000(a)lk,1m@4M,-", [Partition("a", 0, MIB, locked=True),
                                   Partition("Partition_001", 4 * MIB, MIB),
                                   Partition("Partition_002", 5 * MIB, 59 * MIB)]),
        ("010K(octal)slc", [Partition("octal", 0, 8 * KIB, slc=True)]),
        ("-(with, comma)", [Partition("with, comma", 0, 64 * MIB)]),
        ("", []),
    ],
)  # fmt: skip
def test_parse_parts(cmdline, parts):
    assert parse_parts(cmdline, 64 * MIB) == parts


@pytest.mark.parametrize(
    ("cmdline", "message"),
    [
        ("-(a),1M(b)", "fill-up"),
        ("1M(a", "no closing"),
        ("1M(a)x", "unexpected 'x'"),
        ("1K(tiny)", "minimum"),
        ("nand:1M(a)", "without '<name>:'"),
        ("1M(a);1M(b)", "without '<name>:'"),
        ("65M", "beyond the device"),
        ("1M,", "expected a size"),
    ],
)
def test_parse_parts_errors(cmdline, message):
    with pytest.raises(ConfigError, match=message):
        parse_parts(cmdline, 64 * MIB)


@pytest.mark.parametrize(("cmdline", "count"), [
    ("-", 1),
    ("1M(a),-(b)", 2),
    ("1M(a,b),1M(c(d),-", 3),    # commas inside a name do not count; a name ends at ')'
    ("128k," * 64 + "-", 65),
])
def test_partitions_counted_as_fix_0123_counts_them(cmdline: str, count: int) -> None:
    assert count_parts(cmdline) == count
