"""muse-harness report DIR: rewrite DIR/index.html (and those of its run folders)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import HarnessError
from harness.proc import say
from harness.report.html import PAGE, write_page
from harness.tools.common import Subparsers


def main(args: argparse.Namespace) -> int:
    top: Path = args.dir.resolve()
    if not top.is_dir():
        raise HarnessError(f"{top}: no such reports directory")
    # Inner pages first: the top page links to them.
    inner = sorted({p.parent for p in top.glob("*/**/session-*.json")}, reverse=True)
    for directory in [*inner, top]:
        say(f"wrote {write_page(directory)}")
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("report", help=f"rewrite DIR/{PAGE} from the files of a reports "
                                      "directory")
    p.add_argument("dir", type=Path, nargs="?", default=Path("reports"),
                   help="a reports directory (default: reports)")
    p.set_defaults(func=main)
