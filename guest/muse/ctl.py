"""python3 -m guest.muse ctl: a client for a running server's --control socket.

  ctl --control PATH get
  ctl --control PATH set bitflip_rate=0.01 weak_blocks=3:10,5
  ctl --control PATH clear
  ctl --control PATH stats
  ctl --control PATH powercut 120      cut at op 120
  ctl --control PATH powercut +1       cut at the next op
  ctl --control PATH powercut off
  ctl --control PATH hostile           the hostile rules and what they fired
  ctl --control PATH hostile SPEC...   add rules (MODE[:ARG][,KEY=VALUE], see
                                       `hostile --list`)
  ctl --control PATH hostile off       drop every rule
  ctl --control PATH send '{"cmd": "get"}'

Prints the reply (one JSON object) on stdout. Exit codes: 0 the server
accepted the request; 1 bad arguments or the server refused (the reply says
why); 2 the socket could not be reached.

`python3 -m guest.muse ctl` imports this module and what it needs alone, not
the server's: a test runs ctl dozens of times, and under TCG every module a
guest Python start imports costs it (issue 23).
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from typing import Any

from .cliparser import EXIT_BAD_ARGUMENTS, PROG, Parser
from .errors import ConfigError

EXIT_OK = 0
EXIT_REFUSED = EXIT_BAD_ARGUMENTS
EXIT_UNREACHABLE = 2
COMMANDS = ("get", "set", "clear", "stats", "powercut", "hostile", "send")


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    ctl = sub.add_parser(
        "ctl",
        help="talk to a running server's --control socket",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ctl.add_argument("--control", required=True, metavar="PATH", help="the server's socket")
    ctl.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    ctl.add_argument("action", choices=COMMANDS, metavar="COMMAND", help=", ".join(COMMANDS))
    ctl.add_argument(
        "args",
        nargs="*",
        help="KEY=VALUE for set; N, +K or off for powercut; SPECs or off for hostile",
    )


def request(path: str, message: dict[str, object], timeout: float = 10.0) -> dict[str, object]:
    """Send one request to a control socket and return its reply (OSError if unreachable)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(json.dumps(message).encode() + b"\n")
        with sock.makefile("rb") as replies:
            line = replies.readline()
    if not line:
        raise ConnectionError(f"{path} closed the connection without replying")
    reply = json.loads(line)
    if not isinstance(reply, dict):
        raise ConnectionError(f"{path} sent {line!r}, not a JSON object")
    return reply


def build_request(action: str, args: list[str]) -> dict[str, object]:
    if action == "set":
        if not args:
            raise ConfigError("set needs KEY=VALUE arguments")
        from .faultconfig import parse_assignments  # only set needs it (module doc)

        return {"cmd": "set", "faults": dict(parse_assignments(args))}
    if action == "powercut":
        if len(args) != 1:
            raise ConfigError("powercut needs one argument: N, +K or off")
        text = args[0]
        try:
            if text == "off":
                return {"cmd": "powercut", "at": None}
            if text.startswith("+"):
                return {"cmd": "powercut", "in": int(text[1:])}
            return {"cmd": "powercut", "at": int(text)}
        except ValueError:
            raise ConfigError(f"powercut {text!r}: expected N, +K or off") from None
    if action == "hostile":
        if args == ["off"]:
            return {"cmd": "hostile", "clear": True}
        return {"cmd": "hostile", "add": args} if args else {"cmd": "hostile"}
    if action == "send":
        if len(args) != 1:
            raise ConfigError("send needs one JSON object")
        try:
            message = json.loads(args[0])
        except ValueError as err:
            raise ConfigError(f"send: not JSON: {err}") from None
        if not isinstance(message, dict):
            raise ConfigError("send: the request must be a JSON object")
        return message
    if args:
        raise ConfigError(f"{action} takes no arguments")
    return {"cmd": action}


def run(args: argparse.Namespace) -> int:
    try:
        message = build_request(args.action, args.args)
    except ConfigError as err:
        print(f"muse: error: {err}", file=sys.stderr)
        return EXIT_REFUSED
    try:
        reply = request(args.control, message, args.timeout)
    except (OSError, ValueError) as err:
        print(f"muse: error: cannot talk to {args.control}: {err}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(json.dumps(reply, sort_keys=True))
    return EXIT_OK if reply.get("ok") else EXIT_REFUSED


def main(argv: list[str] | None = None) -> int:
    """`python3 -m guest.muse ctl ...` without the server's command line."""
    parser = Parser(prog=PROG)
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))
