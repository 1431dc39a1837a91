"""The argument parser of every `python3 -m guest.muse` command.

Bad arguments exit 1: 2 means "/dev/muse unavailable" to serve and "socket
unreachable" to ctl. Light on imports: ctl's client starts with this alone.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

PROG = "python3 -m guest.muse"
EXIT_BAD_ARGUMENTS = 1


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_ARGUMENTS, f"muse: error: {message}\n")
