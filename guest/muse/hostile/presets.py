"""Named hostile setups: `serve --preset NAME` is short for the preset's options.

Most are geometry that passes muse_verify_mtdreq() but that no real driver
would register, aimed at UBI, mtdblock, mtdchar and the partition parsers;
the leak-* ones are INIT replies the kernel refuses on an error path that
leaks. `expect` is what the server should see: "registered" or "rejected"
(exit 3). Options given after --preset override the preset's.
"""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1 << 10
MIB = 1 << 20


@dataclass(frozen=True)
class Preset:
    name: str
    help: str
    args: tuple[str, ...]
    expect: str
    kernel: str


def _nand(size: int, writesize: int, erasesize: int, *extra: str) -> tuple[str, ...]:
    return (
        "--unchecked",
        "--type",
        "nand",
        "--size",
        str(size),
        "--writesize",
        str(writesize),
        "--erasesize",
        str(erasesize),
        *extra,
    )


# 1001 unnamed 4 KiB partitions: past Partition_999 and 1001 levels of newpart() recursion.
_MANY_PARTS = ",".join(["4k"] * 1001)

PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            "nand-writesize-not-pow2",
            "NAND with 1536-byte pages (48 OOB bytes, 64 pages per block)",
            _nand(6 * MIB, 1536, 96 * KIB, "--oobsize", "48", "--oobavail", "24"),
            "registered",
            "MTD core takes it (writesize_shift 0); UBI's io_init() refuses the min. I/O unit",
        ),
        Preset(
            "nand-erasesize-not-multiple",
            "NAND eraseblocks of 1.5 pages (3072 bytes, 2048-byte pages); trivial model",
            _nand(3 * MIB, 2048, 3 * KIB),
            "registered",
            "no kernel check ties erasesize to writesize: UBI's LEB size is not whole pages",
        ),
        Preset(
            "nor-with-oob",
            "NOR with 64-byte pages carrying 16 OOB bytes (8 free)",
            (
                "--unchecked",
                "--type",
                "nor",
                "--size",
                str(4 * MIB),
                "--writesize",
                "64",
                "--writebufsize",
                "64",
                "--erasesize",
                str(64 * KIB),
                "--oobsize",
                "16",
                "--oobavail",
                "8",
            ),
            "registered",
            "OOB requests reach the server for a NOR device (the model answers -EOPNOTSUPP)",
        ),
        Preset(
            "nand-oobavail-over-bbm",
            "NAND whose OOBAVAIL is all of OOBSIZE (64 of 64): no room for the bad block "
            "marker; trivial model",
            _nand(4 * MIB, 2048, 128 * KIB, "--oobsize", "64", "--oobavail", "64"),
            "registered",
            "MTD takes it; OOB_AUTO users (JFFS2 cleanmarkers) overlap the marker bytes",
        ),
        Preset(
            "nand-subpage-zero",
            "NAND with 2-byte pages and SUBPAGESHIFT 2: subpages of 0 bytes; trivial model",
            _nand(
                4 * MIB, 2, 128 * KIB, "--oobsize", "0", "--oobavail", "0", "--subpage-shift", "2"
            ),
            "registered",
            "UBI io_init(): hdrs_min_io_size = 2 >> 2 = 0, then ubi_assert(min_io_size % "
            "hdrs_min_io_size == 0) divides by zero (oops)",
        ),
        Preset(
            "nand-writesize-1",
            "NAND with 1-byte pages and no OOB; trivial model",
            _nand(4 * MIB, 1, 128 * KIB, "--oobsize", "0", "--oobavail", "0"),
            "registered",
            "a NAND without OOB: bad block markers cannot exist, ooboffs arithmetic degenerate",
        ),
        Preset(
            "nand-writebufsize-over-erasesize",
            "NAND whose write buffer (256 KiB) is two eraseblocks (128 KiB)",
            _nand(
                4 * MIB,
                2048,
                128 * KIB,
                "--writebufsize",
                str(256 * KIB),
                "--max-io",
                str(256 * KIB),
            ),
            "registered",
            "UBI's max_write_size exceeds the PEB: UBIFS sizes write buffers beyond a LEB",
        ),
        Preset(
            "huge-size",
            "NAND of 2^64 - 128 KiB bytes; trivial model",
            _nand((1 << 64) - 128 * KIB, 2048, 128 * KIB),
            "registered",
            "mtd->size beyond loff_t: nvmem's int size truncates, seeks past 2^63 fail, UBI's "
            "u32 PEB count wraps",
        ),
        Preset(
            "peb-count-wraps",
            "NAND of 2^32 + 16 eraseblocks; trivial model",
            _nand(((1 << 32) + 16) * 128 * KIB, 2048, 128 * KIB),
            "registered",
            "mtd_div_by_eb() returns u32: UBI sees 16 PEBs on a 512 TiB device",
        ),
        Preset(
            "parts-many-unnamed",
            "NOR of 1024 4 KiB eraseblocks cut into 1001 unnamed 4 KiB partitions",
            (
                "--unchecked",
                "--type",
                "nor",
                "--size",
                str(4 * MIB),
                "--erasesize",
                "4KiB",
                "--parts",
                _MANY_PARTS,
            ),
            "registered",
            "cmdlinepart's newpart() recurses once per partition: ~1000 frames overflow the "
            "16 KiB kernel stack (guard page oops with VMAP_STACK). Partition_1000 needs 14 "
            "bytes of the 13 reserved: in mainline's layout the extra byte lands in a slot "
            "written later (patch 5/8's allocation may differ)",
        ),
        Preset(
            "parts-size-wraps",
            "a partition of 2^64 - 4 KiB at offset 8 KiB: offset + size wraps to 4 KiB",
            _nand(4 * MIB, 2048, 128 * KIB, "--parts", "0xfffffffffffff000@0x2000(wrap)"),
            "registered",
            "parse_cmdline_partitions() and allocate_partition() check offset + size without "
            "overflow: a partition far larger than its master",
        ),
        Preset(
            "name-empty",
            "NAME= (empty), with partitions",
            _nand(4 * MIB, 2048, 128 * KIB, "--parts", "1M(a),-(b)", "--init-param", "NAME="),
            "registered",
            'muse_verify_mtdreq() only wants NAME present: an MTD named "", mtdparts ":1M(a),-(b)"',
        ),
        Preset(
            "name-colon",
            "NAME with ':' and ';' in it, with partitions",
            _nand(4 * MIB, 2048, 128 * KIB, "--name", "a:b;c", "--parts", "1M(a),-(b)"),
            "registered",
            'kasprintf("%s:%s") builds "a:b;c:1M(a),-(b)": cmdlinepart splits it at \';\' and '
            "':' its own way",
        ),
        Preset(
            "leak-mtdparts-bad-geometry",
            "partitions plus WRITESIZE=0: refused after the mtdparts string was built",
            _nand(4 * MIB, 2048, 128 * KIB, "--parts", "1M(a),-(b)", "--init-param", "WRITESIZE=0"),
            "rejected",
            "muse_parse_mtdreq() kasprintf()s pd->mtdparts before muse_verify_mtdreq() fails "
            "and returns without freeing it; muse_process_init_reply() frees only init_ctx: "
            "kmemleak",
        ),
        Preset(
            "leak-mtdparts-small-max-io",
            "partitions plus an 8 KiB write buffer and max_read/max_write 0 (floored to 4096)",
            (
                "--unchecked",
                "--type",
                "nor",
                "--size",
                str(4 * MIB),
                "--erasesize",
                "64KiB",
                "--writebufsize",
                "8KiB",
                "--parts",
                "1M(a),-(b)",
                "--init-max-io",
                "0,0",
            ),
            "rejected",
            "muse_process_init_reply() takes the free_name path (max_write < writebufsize), "
            "which frees the name but not init_ctx->pd.mtdparts: kmemleak",
        ),
    )
}
