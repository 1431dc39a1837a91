"""Command line: python3 -m guest.muse serve|ctl|replay|oplog|hostile [options].

Serves one MUSE device on /dev/muse until SIGTERM/SIGINT, then flushes the
image and exits 0. Examples:

  python3 -m guest.muse serve --type nand --size 64MiB --writesize 2048 \\
      --oobsize 64 --erasesize 128KiB --parts '1M(boot)ro,-(rest)' \\
      --image /tmp/nand.img --image-format raw+oob --bad-blocks 3,17 \\
      --stats-json /tmp/stats.json --ready-file /tmp/ready.json
  python3 -m guest.muse serve --type nor --size 16MiB --erasesize 64KiB
  python3 -m guest.muse serve --type nand --dry-run     # print MUSE_INIT and exit

Stdout contract: once the kernel registered the device, one line per MTD
  muse: registered mtdN name=NAME size=BYTES dev=/dev/mtdN
then "muse: ready" (flushed). --ready-file gets, before that line,
  {"pid": PID, "mtd": [{"index": N, "name": ..., "size": ..., "dev": "/dev/mtdN"}]}
Diagnostics go to stderr as "muse: LEVEL: ...".

Signals: SIGTERM/SIGINT stop cleanly (image flushed, --stats-json written);
SIGUSR1 writes --stats-json (or prints the stats to stderr).

Exit codes: 0 clean stop; 1 bad arguments, geometry or image; 2 /dev/muse
missing or not openable (needs CAP_SYS_ADMIN); 3 kernel rejected the device
(see dmesg); 4 FUSE major version mismatch; 5 connection aborted after
registration; 6 device not seen in sysfs within --register-timeout; 7 power
cut (--powercut-at/--powercut-random/ctl powercut): after printing
  muse: power cut at op N (KIND ADDR)
the server stops answering, flushes the image and closes /dev/muse; 8 a
hostile die mode fired (os._exit without replying).

Faults, power cuts, the oplog: guest/muse/FAULTS.md; `ctl --help`,
`replay --help`. Hostile replies and raw MUSE_INIT: guest/muse/HOSTILE.md,
`hostile --list [--json]`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from . import ctl, injection, mtdabi, replay
from .cliparser import PROG, Parser
from .ecc import SCHEMES, check_ecc
from .errors import ConfigError, DeviceUnavailable
from .geometry import (
    DEFAULTS,
    U32_MAX,
    Geometry,
    default_max_io,
    default_oobavail,
    default_oobsize,
    parse_size,
)
from .hostile import options as hostile_options
from .hostile.config import check_servable
from .lifecycle import EXIT_CONFIG, EXIT_NO_DEVICE, EXIT_OK, ServeConfig, Server
from .stores import FORMATS

LAYOUTS = """\
OOB: the kernel addresses OOB at page address + ooboffs; the server maps
  page = addr // WRITESIZE, offset = addr % WRITESIZE into the OOB area
  (OOB_PLACE/RAW: all OOBSIZE bytes; OOB_AUTO: the OOBAVAIL bytes at OOB offset
  2.., after the bad block marker in bytes 0-1). Longer requests continue in
  the next page's area. A block is bad when OOB byte 0 of its first page != 0xFF.
Images: raw = data only, OOB in IMAGE.oob; raw+oob = each page followed by its
  OOB (nanddump --oob / nandwrite --oob layout). Missing files are created
  erased; a size mismatch is refused.
"""


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"muse: {record.levelname.lower()}: {record.getMessage()}" + (
            "\n" + self.formatException(record.exc_info) if record.exc_info else ""
        )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="serve one MUSE device",
        description=__doc__,
        epilog=LAYOUTS + "\n" + injection.EPILOG + "\n\n" + hostile_options.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    geo = serve.add_argument_group("geometry (sizes take K/KiB, M/MiB, G/GiB suffixes)")
    geo.add_argument(
        "--type",
        choices=sorted(mtdabi.TYPE_BY_NAME),
        default="nand",
        help="device model and MTD type (default: nand)",
    )
    geo.add_argument("--name", help="MTD name (default: muse-PID)")
    geo.add_argument("--size", help="total size (default per type, nand: 64MiB)")
    geo.add_argument("--writesize", help="page size (nand: 2048, nor/ram: 1)")
    geo.add_argument("--erasesize", help="eraseblock size (nand: 128KiB, nor: 64KiB)")
    geo.add_argument("--writebufsize", help="write buffer size (default: writesize; nor: 64)")
    geo.add_argument("--oobsize", help="OOB bytes per page (nand default: writesize/32)")
    geo.add_argument(
        "--oobavail", help="free OOB bytes for OOB_AUTO (default: oobsize/2, at most oobsize-2)"
    )
    geo.add_argument("--subpage-shift", type=int, default=0, help="NAND subpage shift 0..2")
    geo.add_argument(
        "--flags",
        help="MTD flags: a number or names from "
        f"{','.join(mtdabi.FLAG_BY_NAME)} (default per type)",
    )
    geo.add_argument(
        "--parts",
        default="",
        metavar="PARTS",
        help="PARTSCMDLINE without the 'name:' prefix, e.g. '1M(boot)ro,-(rest)'",
    )
    store = serve.add_argument_group("backing store and models")
    store.add_argument("--image", metavar="FILE", help="mmap'ed image file (default: memory)")
    store.add_argument(
        "--image-format",
        choices=FORMATS,
        default="raw",
        help="raw: data only, OOB in FILE.oob; raw+oob: nanddump --oob layout (default: raw)",
    )
    store.add_argument(
        "--bad-blocks",
        default="",
        metavar="LIST",
        help="factory bad eraseblocks, e.g. 3,17,40-42 (NAND only)",
    )
    store.add_argument(
        "--check-program-once",
        action="store_true",
        help="NAND: fail (-EIO) a second program of a (sub)page before erase",
    )
    store.add_argument(
        "--ecc",
        choices=SCHEMES,
        default="none",
        help="NAND ECC engine: Hamming, 1 bit corrected per 256- or 512-byte step, 3 ECC "
        "bytes a step at the end of the OOB (default: none)",
    )
    run = serve.add_argument_group("process")
    run.add_argument(
        "--stats-json", metavar="FILE", help="write stats JSON here on SIGUSR1 and at exit"
    )
    run.add_argument("--ready-file", metavar="FILE", help="write the registered MTDs as JSON")
    run.add_argument("--device", default="/dev/muse", help="MUSE device (default: /dev/muse)")
    run.add_argument("--max-io", help="max_read/max_write announced (default: 128KiB)")
    run.add_argument(
        "--register-timeout",
        type=float,
        metavar="SECONDS",
        help="give up (exit 6) if the MTD is not in sysfs by then; 0 waits forever "
        "(default 60, 10 with a raw INIT)",
    )
    run.add_argument(
        "--dry-run", action="store_true", help="print the MUSE_INIT parameters and exit"
    )
    run.add_argument("-v", "--verbose", action="count", default=0, help="-v info, -vv debug")
    # Test hooks: serve an inherited fd (a socket), fake sysfs and /dev roots.
    run.add_argument("--fd", type=int, help=argparse.SUPPRESS)
    run.add_argument("--sysfs-root", default="/sys/class/mtd", help=argparse.SUPPRESS)
    run.add_argument("--dev-root", default="/dev", help=argparse.SUPPRESS)
    injection.add_serve_arguments(serve)
    hostile_options.add_serve_arguments(serve)
    ctl.add_parser(sub)
    hostile_options.add_parser(sub)
    replay.add_parsers(sub)
    return parser


def parse_flags(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        pass
    flags = 0
    for name in filter(None, (part.strip() for part in text.split(","))):
        if name not in mtdabi.FLAG_BY_NAME:
            raise ConfigError(
                f"unknown MTD flag {name!r}: expected a number or {', '.join(mtdabi.FLAG_BY_NAME)}"
            )
        flags |= mtdabi.FLAG_BY_NAME[name]
    return flags


def parse_block_list(text: str, nblocks: int) -> list[int]:
    blocks: list[int] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        first, _, last = item.partition("-")
        try:
            span = range(int(first), int(last or first) + 1)
        except ValueError:
            raise ConfigError(f"bad block list: {item!r} is not N or N-M") from None
        if not span or span.start < 0 or span.stop > nblocks:
            raise ConfigError(f"bad block list: {item!r} is outside eraseblocks 0..{nblocks - 1}")
        blocks.extend(span)
    return sorted(set(blocks))


def build_geometry(args: argparse.Namespace) -> Geometry:
    mtd_type = mtdabi.TYPE_BY_NAME[args.type]
    base = DEFAULTS[mtd_type]

    def size_of(value: str | None, default: int) -> int:
        return parse_size(value) if value is not None else default

    writesize = size_of(args.writesize, base.writesize)
    oobsize = size_of(args.oobsize, default_oobsize(mtd_type, writesize))
    return Geometry(
        name=args.name if args.name is not None else f"muse-{os.getpid()}",
        mtd_type=mtd_type,
        flags=parse_flags(args.flags) if args.flags is not None else mtdabi.DEFAULT_FLAGS[mtd_type],
        size=size_of(args.size, base.size),
        writesize=writesize,
        erasesize=size_of(args.erasesize, base.erasesize),
        writebufsize=size_of(args.writebufsize, base.writebufsize),
        oobsize=oobsize,
        oobavail=size_of(args.oobavail, default_oobavail(mtd_type, oobsize)),
        subpage_shift=args.subpage_shift,
        parts=args.parts,
    )


def build_config(args: argparse.Namespace) -> ServeConfig:
    geometry = build_geometry(args)
    max_io = parse_size(args.max_io) if args.max_io is not None else None
    if max_io is not None and max_io > U32_MAX:
        raise ConfigError(f"--max-io {max_io} must fit in 32 bits")
    if not args.unchecked:
        geometry.validate(max_io if max_io is not None else default_max_io(geometry))
        if max_io is not None and geometry.is_nand and max_io % geometry.subpage_size:
            raise ConfigError(
                f"--max-io {max_io} must be a multiple of the {geometry.subpage_size}-byte "
                "subpage, or large NAND writes split mid-page"
            )
    hostile, plan = hostile_options.config_from_args(args, geometry, max_io)
    if plan is not None:
        # A raw INIT: serve what the kernel will believe in, with buffers for what it was told.
        geometry, max_io = plan.geometry, plan.max_io
    if hostile.trivial:
        # Model-bound options are moot when the kernel should refuse the device anyway.
        check_servable("" if hostile.verdict else hostile.trivial, {
            "--image": args.image, "--bad-blocks": args.bad_blocks, "--fault": args.fault,
            "--check-program-once": args.check_program_once, "--oplog": args.oplog,
            "--powercut-at/--powercut-random": args.powercut_at or args.powercut_random,
        })  # fmt: skip
        hostile.control = args.control
        inject = injection.InjectionConfig(seed=args.seed)
    else:
        inject = injection.config_from_args(args, geometry)
    bad_blocks = parse_block_list(args.bad_blocks, geometry.nblocks) if args.bad_blocks else []
    if bad_blocks and not geometry.is_nand:
        raise ConfigError("--bad-blocks needs a NAND type (nand, mlc-nand)")
    if args.check_program_once and not geometry.is_nand:
        raise ConfigError("--check-program-once needs a NAND type (nand, mlc-nand)")
    check_ecc(args.ecc, geometry)
    return ServeConfig(
        injection=inject,
        hostile=hostile,
        geometry=geometry,
        image=args.image,
        image_format=args.image_format,
        bad_blocks=bad_blocks,
        check_program_once=args.check_program_once,
        ecc=args.ecc,
        stats_json=args.stats_json,
        ready_file=args.ready_file,
        device_path=args.device,
        fd=args.fd,
        max_io=max_io,
        sysfs_root=args.sysfs_root,
        dev_root=args.dev_root,
        register_timeout=60.0 if args.register_timeout is None else args.register_timeout,
    )


def _setup_logging(verbose: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    logger = logging.getLogger("muse")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "ctl":
        return ctl.run(args)
    if args.command == "hostile":
        return hostile_options.run(args)
    if args.command not in ("serve", "replay", "oplog"):
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    _setup_logging(getattr(args, "verbose", 0))
    log = logging.getLogger("muse")
    try:
        if args.command == "replay":
            return replay.run_replay(args)
        if args.command == "oplog":
            return replay.run_summary(args)
        cfg = build_config(args)
        if args.dry_run and cfg.hostile.init_payload is not None:
            print(hostile_options.describe_raw_init(cfg))
            return EXIT_OK
        if args.dry_run:
            for key, value in cfg.geometry.init_params().items():
                print(f"{key}={value}")
            max_io = cfg.max_io or default_max_io(cfg.geometry)
            print(f"max_read={max_io}\nmax_write={max_io}")
            return EXIT_OK
        return Server(cfg).run()
    except ConfigError as err:
        log.error("%s", err)
        return EXIT_CONFIG
    except DeviceUnavailable as err:
        log.error("%s", err)
        return EXIT_NO_DEVICE
