"""Command line of the guest benchmark tools; prints one "BENCH {json}" line per run."""

from __future__ import annotations

import argparse
import json
import sys

from ..muse.errors import ConfigError
from ..muse.geometry import parse_size
from .filespeed import file_speed
from .mtdspeed import mtd_speed
from .serverspeed import server_speed

PREFIX = "BENCH "


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python3 -m guest.bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    mtd = sub.add_parser("mtd", help="raw MTD: erase, write, read throughput; random reads")
    mtd.add_argument("device", help="/dev/mtdN")
    mtd.add_argument("--region", default="16MiB", help="bytes from offset 0 (default 16MiB)")
    mtd.add_argument("--chunk", help="bytes per write/read call (default: one eraseblock)")
    mtd.add_argument("--random-io", default="2KiB", help="random read size (default 2KiB)")
    mtd.add_argument("--random-seconds", type=float, default=2.0,
                     help="duration of the random read phase (default 2)")
    mtd.add_argument("--min-seconds", type=float, default=0.5,
                     help="repeat erase/write/read passes until each took this long")
    mtd.add_argument("--seed", type=int, default=1)
    mtd.add_argument("--label", default="", help="copied into the result")
    fs = sub.add_parser("file", help="file write (+fsync), remount, read on a mounted fs")
    fs.add_argument("directory", help="a directory on the file system under test")
    fs.add_argument("--size", default="8MiB", help="file size (default 8MiB)")
    fs.add_argument("--chunk", default="128KiB", help="bytes per write/read call")
    fs.add_argument("--mountpoint", help="remount this between write and read (drops caches)")
    fs.add_argument("--mount-options", default="defaults", help="for the remount")
    fs.add_argument("--label", default="")
    srv = sub.add_parser("server", help="the MUSE server's own cost per request (no kernel)")
    srv.add_argument("--type", default="nand", choices=("nand", "ram", "nor"))
    srv.add_argument("--size", default="16MiB")
    srv.add_argument("--rounds", type=int, default=2)
    srv.add_argument("--profile", metavar="FILE", help="cProfile the server into FILE")
    srv.add_argument("--label", default="")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "mtd":
            result = mtd_speed(
                args.device,
                region=parse_size(args.region),
                chunk=parse_size(args.chunk) if args.chunk else 0,
                random_io=parse_size(args.random_io),
                random_seconds=args.random_seconds,
                min_seconds=args.min_seconds,
                seed=args.seed,
            )
        elif args.command == "server":
            result = server_speed(
                args.type, size=parse_size(args.size), rounds=args.rounds,
                profile_to=args.profile,
            )
            print(result.pop("profile", ""), file=sys.stderr)
        else:
            result = file_speed(
                args.directory,
                size=parse_size(args.size),
                chunk=parse_size(args.chunk),
                mountpoint=args.mountpoint,
                mount_options=args.mount_options,
            )
    except (ConfigError, OSError, ValueError) as err:
        print(f"bench: error: {err}", file=sys.stderr)
        return 1
    result["label"] = args.label
    print(PREFIX + json.dumps(result, sort_keys=True), flush=True)
    return 0
