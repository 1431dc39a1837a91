"""Run a server process: open the device, serve, announce, shut down cleanly.

Exit codes (EXIT_*): 0 clean stop on SIGTERM/SIGINT; 1 bad configuration or
image; 2 /dev/muse missing or not openable; 3 the kernel rejected the device
(connection aborted or closed before registration); 4 the kernel speaks
another FUSE major version; 5 connection aborted after registration; 6 the
device did not appear in sysfs within --register-timeout; 7 emulated power cut
(the line "muse: power cut at op N (KIND ADDR)" is printed first); 8 a hostile
die mode fired (os._exit, no cleanup).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import TextIO

from ..contract import READY_LINE, RegisteredMtd
from .cliparser import EXIT_BAD_ARGUMENTS
from .control import Commands, ControlServer
from .devices import Device, FlashOps, make_device
from .devices.trivial import TrivialDevice
from .ecc import scheme
from .errors import DeviceUnavailable
from .geometry import Geometry
from .hostile.config import HostileConfig, refusal_reasons
from .hostile.engine import EXIT_HOSTILE_DEATH, HostileEngine
from .injection import Injection, InjectionConfig
from .registration import MtdEntry, RegistrationWatcher
from .session import Session, StopReason
from .stats import Stats
from .stores import open_store

log = logging.getLogger("muse")

EXIT_OK = 0
EXIT_CONFIG = EXIT_BAD_ARGUMENTS       # also a bad geometry or image
EXIT_NO_DEVICE = 2
EXIT_REJECTED = 3
EXIT_PROTOCOL = 4
EXIT_ABORTED = 5
EXIT_NOT_REGISTERED = 6
EXIT_POWER_CUT = 7
EXIT_DIED = EXIT_HOSTILE_DEATH


@dataclass
class ServeConfig:
    geometry: Geometry
    image: str | None = None
    image_format: str = "raw"
    bad_blocks: list[int] = field(default_factory=list)
    check_program_once: bool = False
    ecc: str = "none"            # the NAND model's ECC engine (ecc.SCHEMES)
    stats_json: str | None = None
    ready_file: str | None = None
    device_path: str = "/dev/muse"
    fd: int | None = None
    max_io: int | None = None
    sysfs_root: str = "/sys/class/mtd"
    dev_root: str = "/dev"
    register_timeout: float = 60.0
    injection: InjectionConfig = field(default_factory=InjectionConfig)
    hostile: HostileConfig = field(default_factory=HostileConfig)


def open_device(path: str) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as err:
        if err.errno in (errno.EPERM, errno.EACCES):
            why = "permission denied: opening it needs CAP_SYS_ADMIN (run as root)"
        elif err.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            why = "not found: is the muse module loaded (modprobe muse) and devtmpfs mounted?"
        else:
            why = err.strerror or str(err)
        raise DeviceUnavailable(f"cannot open {path}: {why}") from err


def write_ready_file(path: str, entries: list[MtdEntry]) -> None:
    doc = {
        "pid": os.getpid(),
        "mtd": [{"index": e.index, "name": e.name, "size": e.size, "dev": e.dev} for e in entries],
    }
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as out:
        json.dump(doc, out)
        out.write("\n")
    os.replace(tmp, path)


class Server:
    """Owns store, model, session and watcher for one process lifetime."""

    def __init__(self, cfg: ServeConfig, out: TextIO = sys.stdout) -> None:
        self.cfg = cfg
        self.out = out
        self.stats = Stats()
        self.not_registered = ""
        self.engine: HostileEngine | None = None
        self._main_thread = threading.main_thread().ident

    def run(self) -> int:
        """Raises ConfigError (exit 1) and DeviceUnavailable (exit 2) before serving."""
        cfg = self.cfg
        geo = cfg.geometry
        hostile = cfg.hostile
        engine = self._hostile_engine()
        # Geometry beyond the models (hostile runs) gets the trivial one: no store.
        store = None if hostile.trivial else open_store(geo, cfg.image, cfg.image_format)
        injection: Injection | None = None
        control: ControlServer | None = None
        try:
            model: FlashOps
            ops: FlashOps
            if store is None:
                model = ops = TrivialDevice(geo, hostile.trivial)
            else:
                device = make_device(
                    geo, store, check_program_once=cfg.check_program_once,
                    factory_bad=cfg.bad_blocks, ecc=scheme(cfg.ecc, geo),
                )  # fmt: skip
                model = ops = device
                if cfg.injection.wanted:
                    injection = self._injection(device, engine)
                    ops = injection.ops
                    injection.start()
            control = self._hostile_control(engine)
            fd = cfg.fd if cfg.fd is not None else open_device(cfg.device_path)
        except BaseException:
            if control is not None:
                control.stop()
            if injection is not None:
                injection.stop()
                ops.close()
            if store is not None:
                store.close()
            raise
        self.stats.sources["device"] = model.stats
        if store is not None:
            self.stats.sources["store"] = store.info
        master, parts = hostile.watch or (geo.name, [part.name for part in geo.partitions()])
        watcher = RegistrationWatcher(
            pid=os.getpid(),
            master_name=master,
            part_names=parts,
            on_ready=self._announce,
            on_timeout=self._registration_timeout,
            sysfs_root=cfg.sysfs_root,
            dev_root=cfg.dev_root,
            timeout=cfg.register_timeout,
        )
        session = Session(fd, ops, max_io=cfg.max_io, stats=self.stats, on_init=watcher.start,
                          hostile=engine, request_max_write=hostile.request_max_write)  # fmt: skip
        log.info(
            "serving %s (%d bytes) on %s, pid %d", geo.name, geo.size, cfg.device_path, os.getpid()
        )
        saved = self._install_signals(session)
        try:
            reason = session.serve()
        finally:
            watcher.stop()
            if control is not None:
                control.stop()
            if injection is not None:
                injection.stop()
            for signum, handler in saved.items():
                signal.signal(signum, handler)
            ops.close()  # flushes the image (and the oplog)
            if cfg.stats_json:
                self.stats.write_json(cfg.stats_json)
            os.close(fd)
        return self._exit_code(reason, session, watcher.registered.is_set())

    def _injection(self, device: Device, engine: HostileEngine | None) -> Injection:
        cfg = self.cfg
        model = {
            "image_format": cfg.image_format,
            "check_program_once": cfg.check_program_once,
            "bad_blocks": cfg.bad_blocks,
            "ecc": cfg.ecc,
        }
        injection = Injection(device, cfg.injection, self.stats, model)
        if engine is not None and injection.control is not None:
            injection.control.controller.register("hostile", engine.control)
        return injection

    def _hostile_engine(self) -> HostileEngine | None:
        """Wanted for hostile options, and for any control socket (rules may come later)."""
        hostile = self.cfg.hostile
        if not (hostile.wanted or self.cfg.injection.control):
            return None
        engine = HostileEngine(hostile.rules, seed=hostile.seed, init_payload=hostile.init_payload)
        engine.before_exit.append(self._write_stats)
        self.stats.sources["hostile"] = engine.snapshot
        self.engine = engine
        return engine

    def _hostile_control(self, engine: HostileEngine | None) -> ControlServer | None:
        """The control socket of a run without fault layers (the trivial model's)."""
        if engine is None or self.cfg.hostile.control is None:
            return None
        commands = Commands(self.stats)
        commands.register("hostile", engine.control)
        server = ControlServer(self.cfg.hostile.control, commands)
        server.start()
        return server

    def _write_stats(self) -> None:
        if self.cfg.stats_json:
            self.stats.write_json(self.cfg.stats_json)

    def _install_signals(self, session: Session) -> dict[int, signal._HANDLER]:
        def stop(signum: int, frame: FrameType | None) -> None:
            session.request_stop()

        def dump(signum: int, frame: FrameType | None) -> None:
            self.dump_stats()

        saved: dict[int, signal._HANDLER] = {}
        for signum, handler in (
            (signal.SIGTERM, stop),
            (signal.SIGINT, stop),
            (signal.SIGUSR1, dump),
        ):
            saved[signum] = signal.signal(signum, handler)
        return saved

    def dump_stats(self) -> None:
        if self.cfg.stats_json:
            self.stats.write_json(self.cfg.stats_json)
        else:
            print(json.dumps(self.stats.snapshot(), sort_keys=True), file=sys.stderr, flush=True)

    def _announce(self, entries: list[MtdEntry]) -> None:
        if self.engine is not None:
            self.engine.mark_ready()
        if self.cfg.ready_file:
            write_ready_file(self.cfg.ready_file, entries)
        for e in entries:
            print(RegisteredMtd(e.index, e.name, e.size, e.dev).line(), file=self.out)
        print(READY_LINE, file=self.out, flush=True)

    def _registration_timeout(self, message: str) -> None:
        self.not_registered = message
        if self._main_thread is not None:
            signal.pthread_kill(self._main_thread, signal.SIGTERM)

    def _exit_code(self, reason: StopReason, session: Session, registered: bool) -> int:
        if reason is StopReason.POWER_CUT and session.power_cut is not None:
            cut = session.power_cut
            print(f"muse: power cut at op {cut.op} ({cut.what})", file=self.out, flush=True)
            return EXIT_POWER_CUT
        if reason is StopReason.PROTOCOL:
            log.error("%s", session.protocol_error)
            return EXIT_PROTOCOL
        if reason in (StopReason.ABORTED, StopReason.CLOSED):
            if registered:
                log.error("connection aborted by the kernel")
                return EXIT_ABORTED
            why = "; ".join(refusal_reasons(self.cfg.hostile.verdict, self.cfg.geometry))
            log.error(
                "kernel rejected the device (see dmesg)%s",
                f"; the server's own check says why: {why}" if why else "",
            )
            return EXIT_REJECTED
        if self.not_registered:
            log.error("%s", self.not_registered)
            return EXIT_NOT_REGISTERED
        return EXIT_OK
