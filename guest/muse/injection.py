"""Serve options for fault injection and power cuts, and their wiring.

The layers go around the model only when one of these options is given, so a
plain server pays nothing: session -> FaultLayer -> PowerCutLayer -> model.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from dataclasses import dataclass, field

from .control import Controller, ControlServer
from .devices.base import Device, FlashOps
from .devices.faulty import FaultLayer
from .devices.powercut import PowerCutLayer
from .devices.torn import TORN_MODES, state_crc32
from .errors import ConfigError
from .faultconfig import PARAMS, FaultConfig, parse_assignments
from .geometry import Geometry
from .oplog import OpLogWriter
from .seeding import rng
from .stats import Stats

log = logging.getLogger("muse")

EPILOG = "fault keys for --fault KEY=VALUE (see guest/muse/FAULTS.md):\n" + "\n".join(
    f"  {name:20} {param.help}" for name, param in PARAMS.items()
)


@dataclass
class InjectionConfig:
    seed: int = 0
    faults: FaultConfig = field(default_factory=FaultConfig)
    control: str | None = None
    oplog: str | None = None
    powercut_at: int | None = None
    torn: str = "prefix"
    powercut_every: tuple[int, int] | None = None

    @property
    def wanted(self) -> bool:
        return (
            self.faults != FaultConfig()
            or self.control is not None
            or self.oplog is not None
            or self.powercut_at is not None
            or self.powercut_every is not None
        )


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("fault injection and power cuts")
    group.add_argument(
        "--seed", type=int, default=0, help="seed of every random fault and torn write (default 0)"
    )
    group.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a fault setting, repeatable (keys below)",
    )
    group.add_argument(
        "--control", metavar="PATH", help="UNIX socket for run-time control (see `ctl --help`)"
    )
    group.add_argument(
        "--oplog", metavar="FILE", help="append every program/erase/markbad to this log"
    )
    cut = group.add_mutually_exclusive_group()
    cut.add_argument("--powercut-at", type=int, metavar="N", help="cut power during op N (exit 7)")
    cut.add_argument(
        "--powercut-random",
        metavar="LO:HI",
        help="cut power during an op drawn from LO..HI by --seed",
    )
    cut.add_argument(
        "--powercut-every",
        metavar="LO:HI",
        help="cut power again and again, LO..HI ops apart (drawn by --seed), and keep "
        "serving: the op at a cut is torn and fails with EROFS (see devices/powercut.py)",
    )
    group.add_argument(
        "--torn",
        choices=TORN_MODES,
        default="prefix",
        help="how the op in flight is torn: a prefix of the page/block, or random bits "
        "(default prefix)",
    )


def _span(option: str, text: str) -> tuple[int, int]:
    low, sep, high = text.partition(":")
    try:
        span = (int(low), int(high))
        if not sep or span[0] > span[1]:
            raise ValueError
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected LO:HI with LO <= HI") from None
    return span


def config_from_args(args: argparse.Namespace, geometry: Geometry) -> InjectionConfig:
    faults = FaultConfig().updated(parse_assignments(args.fault), geometry)
    at = args.powercut_at
    if args.powercut_random is not None:
        at = rng(args.seed, "powercut").randint(*_span("--powercut-random", args.powercut_random))
    every = None
    if args.powercut_every is not None:
        every = _span("--powercut-every", args.powercut_every)
        if every[0] < 1:
            raise ConfigError(f"--powercut-every {args.powercut_every!r}: LO must be at least 1")
        if args.oplog is not None:
            # An oplog session ends at its cut (replay's model); these cuts recur.
            raise ConfigError("--powercut-every takes no --oplog: its cuts do not end the run")
    if at is not None and at < 1:
        raise ConfigError(f"power cut op {at}: ops are numbered from 1")
    return InjectionConfig(args.seed, faults, args.control, args.oplog, at, args.torn, every)


class Injection:
    """The layers and control server of one server process."""

    def __init__(
        self,
        device: Device,
        cfg: InjectionConfig,
        stats: Stats,
        model: dict[str, object],
    ) -> None:
        oplog = None
        if cfg.oplog is not None:
            header = {
                "geometry": dataclasses.asdict(device.geometry),
                **model,
                "seed": cfg.seed,
                "torn": cfg.torn,
                "base_crc32": state_crc32(device.store),
                "pid": os.getpid(),
            }
            oplog = OpLogWriter(cfg.oplog, header)
        self.powercut = PowerCutLayer(
            device,
            seed=cfg.seed,
            torn=cfg.torn,
            oplog=oplog,
            cut_at=cfg.powercut_at,
            every=cfg.powercut_every,
        )
        self.faults = FaultLayer(self.powercut, seed=cfg.seed, config=cfg.faults)
        self.ops: FlashOps = self.faults
        stats.sources["faults"] = self.faults.fault_stats
        stats.sources["powercut"] = self.powercut.powercut_stats
        self.control = None
        if cfg.control is not None:
            self.control = ControlServer(cfg.control, Controller(self.faults, self.powercut, stats))
        if cfg.powercut_at is not None:
            log.info("power cut armed at op %d (seed %d)", cfg.powercut_at, cfg.seed)
        if cfg.powercut_every is not None:
            log.info(
                "power cuts every %d..%d ops, first at op %s (seed %d)",
                *cfg.powercut_every,
                self.powercut.cut_at,
                cfg.seed,
            )
        if oplog is not None:
            log.info("logging ops to %s, session %d", oplog.path, oplog.session)

    def start(self) -> None:
        if self.control is not None:
            self.control.start()

    def stop(self) -> None:
        if self.control is not None:
            self.control.stop()
