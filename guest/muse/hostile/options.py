"""Hostile options of `serve`, the `hostile` command, and their HostileConfig."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import protocol as p
from ..errors import ConfigError
from ..geometry import Geometry
from . import rawinit
from .catalogue import render
from .config import (
    RAW_REGISTER_TIMEOUT,
    HostileConfig,
    RawPlan,
    plan_raw_init,
    refusal_reasons,
)
from .presets import PRESETS
from .rules import parse_rule

if TYPE_CHECKING:
    from ..lifecycle import ServeConfig

log = logging.getLogger("muse")

EPILOG = """\
hostile rules, --hostile MODE[:ARG][,KEY=VALUE...] (see `hostile --list`):
  --hostile soft-error:-100000                first READ/WRITE after registration
  --hostile nopayload,every=2,count=5         READs 2, 4, 6, 8, 10
  --hostile isbad:2,op=isbad,prob=0.1         seeded by --seed
  --hostile badlen,after=init,follow=1        refused reply, then the real one
  --preset nand-subpage-zero                  `hostile --list` shows them all
"""


class _PresetAction(argparse.Action):
    """--preset NAME: parse the preset's options in place, so later ones override them."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        preset = PRESETS.get(str(values))
        if preset is None:
            parser.error(f"unknown preset {values!r}: expected one of {', '.join(PRESETS)}")
        parser.parse_args(list(preset.args), namespace)


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "hostile server (kernel robustness tests; `hostile --list` has every mode and preset)"
    )
    group.add_argument("--unchecked", action="store_true", help="skip all geometry validation")
    group.add_argument(
        "--init-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="add or override a MUSE_INIT key verbatim; repeatable",
    )
    group.add_argument(
        "--init-drop",
        action="append",
        default=[],
        metavar="KEY",
        help="leave KEY out of MUSE_INIT; repeatable",
    )
    group.add_argument("--init-raw", metavar="HEX|@FILE", help="the MUSE_INIT info, verbatim")
    group.add_argument("--init-version", metavar="MAJOR.MINOR", help="FUSE version to reply")
    group.add_argument("--init-max-io", metavar="READ,WRITE", help="raw max_read,max_write")
    group.add_argument(
        "--hostile",
        action="append",
        default=[],
        metavar="MODE[:ARG][,K=V]",
        help="a hostile reply rule; repeatable",
    )
    group.add_argument(
        "--preset",
        action=_PresetAction,
        metavar="NAME",
        help="a named hostile setup (its options, overridable after it)",
    )


def add_parser(sub: argparse._SubParsersAction[Any]) -> None:
    hostile = sub.add_parser(
        "hostile",
        help="list the hostile modes and presets",
        description="List every hostile reply mode and preset, one per line or as JSON.",
    )
    hostile.add_argument("--list", action="store_true", help="print the catalogue")
    hostile.add_argument("--json", action="store_true", help="machine-readable catalogue")


def run(args: argparse.Namespace) -> int:
    print(render(args.json))
    return 0


def raw_init_from_args(args: argparse.Namespace) -> rawinit.RawInit:
    if args.init_raw is not None and (args.init_param or args.init_drop):
        raise ConfigError("--init-raw replaces the whole info: no --init-param/--init-drop with it")
    return rawinit.RawInit(
        params=tuple(rawinit.parse_param(item) for item in args.init_param),
        drop=tuple(args.init_drop),
        info=None if args.init_raw is None else rawinit.parse_raw(args.init_raw),
        version=None if args.init_version is None else rawinit.parse_version(args.init_version),
        max_io=None if args.init_max_io is None else rawinit.parse_max_io(args.init_max_io),
    )


def config_from_args(
    args: argparse.Namespace, geometry: Geometry, max_io: int | None
) -> tuple[HostileConfig, RawPlan | None]:
    """The hostile settings, and the raw INIT plan when the INIT is raw."""
    cfg = HostileConfig(rules=[parse_rule(spec) for spec in args.hostile], seed=args.seed)
    raw = raw_init_from_args(args)
    if not (args.unchecked or raw.active):
        return cfg, None
    plan = plan_raw_init(raw, geometry, max_io, args.image)
    cfg.init_payload = plan.payload
    cfg.request_max_write = plan.request_max_write
    cfg.trivial = plan.trivial
    cfg.watch = plan.watch
    cfg.verdict = plan.verdict
    if args.register_timeout is None:
        args.register_timeout = RAW_REGISTER_TIMEOUT
    if plan.trivial:
        log.info("raw MUSE_INIT: the trivial model serves (%s)", plan.trivial)
    if plan.verdict:
        log.info("raw MUSE_INIT: the kernel should refuse it: %s", "; ".join(plan.verdict))
    return cfg, plan


def describe_raw_init(cfg: ServeConfig) -> str:
    """--dry-run of a raw INIT: the info items as the kernel splits them, then the rest."""
    payload = cfg.hostile.init_payload or b""
    major, minor, read, write = p.INIT_OUT.unpack_from(payload)
    info = payload[p.INIT_OUT.size :]
    *items, tail = info.split(b"\0")
    lines = [item.decode(errors="backslashreplace") for item in items if item]
    if tail:
        lines.append(tail.decode(errors="backslashreplace") + "  (unterminated)")
    verdict = cfg.hostile.verdict
    fixed = refusal_reasons(verdict, cfg.geometry)
    lines += [
        f"max_read={read}",
        f"max_write={write}",
        f"version={major}.{minor}",
        f"info_bytes={len(info)}",
        f"model={'trivial (' + cfg.hostile.trivial + ')' if cfg.hostile.trivial else 'real'}",
        "kernel=" + ("refuses: " + "; ".join(verdict) if verdict else "accepts"),
        "fixed kernel=" + ("refuses: " + "; ".join(fixed) if fixed else "accepts"),
    ]
    return "\n".join(lines)
