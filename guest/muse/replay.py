"""python3 -m guest.muse replay / oplog: rebuild images from an operation log.

  replay --oplog LOG --image OUT [--cut N] [--seed S] [--torn MODE]
         [--session K] [--base IMAGE] [--image-format FMT]

rebuilds the image session K of the log (default: the last) would have left
had power failed during its op N: ops 1..N-1 applied whole, op N torn exactly
as a live `serve --powercut-at N` with the same seed and mode tears it (the
session's own seed and mode unless overridden). Without --cut, every op of
the session is applied. Geometry and model options come from the log.

Sessions chain: session K starts from the image session K-1 left (including
a live cut it ended with), so earlier sessions are replayed first. Session 1
starts from --base (copied; it must be what that run started from) or from
an erased image with the run's factory bad blocks. Each session's recorded
start CRC is checked, so a replay from the wrong base fails instead of
producing a wrong image. OUT is overwritten.

  oplog LOG [--list]

prints a JSON summary of the log's sessions (ops, live cut, seed, mode), or
with --list one JSON line per op.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from dataclasses import dataclass
from typing import Any

from .devices import make_device
from .devices.base import Device
from .devices.torn import TORN_MODES, apply_op, apply_torn, state_crc32
from .ecc import scheme
from .errors import ConfigError, OpError
from .geometry import Geometry
from .oplog import OpLogReader, Session, scan
from .stores import FORMATS, Store, open_store


@dataclass(frozen=True)
class ReplayResult:
    session: int
    applied: int  # ops applied whole
    torn: int | None  # the op torn at the end, if any


def add_parsers(sub: argparse._SubParsersAction[Any]) -> None:
    replay = sub.add_parser(
        "replay",
        help="rebuild an image at a power-cut point from an --oplog",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("--oplog", required=True, metavar="FILE")
    replay.add_argument("--image", required=True, metavar="OUT", help="image to write")
    replay.add_argument("--image-format", choices=FORMATS, help="default: the run's format")
    replay.add_argument("--cut", type=int, metavar="N", help="tear op N, drop what follows")
    replay.add_argument("--seed", type=int, help="seed of the torn write (default: the run's)")
    replay.add_argument("--torn", choices=TORN_MODES, help="torn-write mode (default: the run's)")
    replay.add_argument("--session", type=int, metavar="K", help="default: the last session")
    replay.add_argument("--base", metavar="IMAGE", help="the image session 1 started from")
    summary = sub.add_parser("oplog", help="summarise an --oplog", description=__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    summary.add_argument("path", metavar="LOG")
    summary.add_argument("--list", action="store_true", help="one JSON line per op")


def replay(
    log_path: str,
    image: str,
    *,
    cut: int | None = None,
    seed: int | None = None,
    torn: str | None = None,
    session: int | None = None,
    base: str | None = None,
    image_format: str | None = None,
) -> ReplayResult:
    sessions, _ = scan(log_path)
    if not sessions:
        raise ConfigError(f"{log_path} holds no session")
    target = session if session is not None else len(sessions)
    if not 1 <= target <= len(sessions):
        raise ConfigError(f"session {target} is not in 1..{len(sessions)}")
    last = sessions[target - 1]
    _check_cut(last, cut)
    geometry = _geometry(sessions[0])
    fmt = image_format or str(sessions[0].header.get("image_format", "raw"))
    if fmt not in FORMATS:
        raise ConfigError(f"unknown image format {fmt!r}")
    _prepare(image, base, fmt, geometry)
    store = open_store(geometry, image, fmt)
    try:
        return _run(log_path, store, geometry, target, cut, seed, torn)
    finally:
        store.close()


def _check_cut(session: Session, cut: int | None) -> None:
    if cut is None:
        return
    limit = session.cut or session.ops
    if not 1 <= cut <= limit:
        raise ConfigError(
            f"--cut {cut}: session {session.number} has ops 1..{limit}"
            + (" (it ended in a live power cut)" if session.cut else "")
        )


def _geometry(session: Session) -> Geometry:
    fields = session.header.get("geometry")
    if not isinstance(fields, dict):
        raise ConfigError("the oplog header has no geometry")
    return Geometry(**fields)


def _prepare(image: str, base: str | None, fmt: str, geometry: Geometry) -> None:
    sidecar = fmt == "raw" and geometry.oobsize > 0
    if base is not None and os.path.abspath(base) == os.path.abspath(image):
        raise ConfigError("--image must not be the --base image: replay overwrites it")
    for path in (image, image + ".oob"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    if base is None:
        return
    try:
        shutil.copyfile(base, image)
        if sidecar:
            shutil.copyfile(base + ".oob", image + ".oob")
    except OSError as err:
        raise ConfigError(f"cannot copy --base {base}: {err}") from err


def _run(
    log_path: str,
    store: Store,
    geometry: Geometry,
    target: int,
    cut: int | None,
    seed: int | None,
    torn: str | None,
) -> ReplayResult:
    device: Device | None = None
    applied = 0
    current = 0
    header: dict[str, object] = {}
    for record in OpLogReader(log_path):
        if isinstance(record, Session):
            if record.number > target:
                break
            current, header = record.number, record.header
            device = _open_session(record, store, geometry)
            continue
        assert device is not None
        if current == target and record.number == cut:
            run_seed = seed if seed is not None else int(str(header.get("seed", 0)))
            apply_torn(device, record, run_seed, torn or str(header.get("torn", "prefix")))
            return ReplayResult(target, applied, record.number)
        if record.torn:
            # The cut that ended this session live: tear it as that run did.
            apply_torn(device, record, int(str(header["seed"])), str(header["torn"]))
            if current == target:
                return ReplayResult(target, applied, record.number)
            continue
        with contextlib.suppress(OpError):  # refused live too, the same way
            apply_op(device, record)
        if current == target:
            applied += 1
    return ReplayResult(target, applied, None)


def _open_session(session: Session, store: Store, geometry: Geometry) -> Device:
    header = session.header
    if _geometry(session) != geometry:
        raise ConfigError(f"session {session.number} has another geometry than session 1")
    bad = header.get("bad_blocks", [])
    device = make_device(
        geometry,
        store,
        check_program_once=bool(header.get("check_program_once")),
        factory_bad=bad if isinstance(bad, list) else [],
        ecc=scheme(str(header.get("ecc", "none")), geometry),
    )
    if state_crc32(store) != header.get("base_crc32"):
        raise ConfigError(
            f"session {session.number} started from another image than the replay has "
            + ("(pass the image it started from with --base)" if session.number == 1 else
               "(something changed the image between the runs)")
        )  # fmt: skip
    return device


def summary(path: str) -> dict[str, object]:
    sessions, end = scan(path)
    return {
        "path": path,
        "bytes": end,
        "sessions": [
            {
                "session": s.number,
                "ops": s.ops,
                "cut": s.cut,
                "seed": s.header.get("seed"),
                "torn": s.header.get("torn"),
                "base_crc32": s.header.get("base_crc32"),
            }
            for s in sessions
        ],
    }


def list_ops(path: str) -> None:
    number = 0
    for record in OpLogReader(path):
        if isinstance(record, Session):
            number = record.number
            continue
        line = {"session": number, "op": record.number, "kind": record.name,
                "addr": record.addr, "length": record.length, "flags": record.flags,
                "torn": record.torn}  # fmt: skip
        print(json.dumps(line))


def run_replay(args: argparse.Namespace) -> int:
    result = replay(
        args.oplog,
        args.image,
        cut=args.cut,
        seed=args.seed,
        torn=args.torn,
        session=args.session,
        base=args.base,
        image_format=args.image_format,
    )
    torn = f", op {result.torn} torn" if result.torn is not None else ""
    print(f"muse: replayed session {result.session}: {result.applied} ops applied{torn}")
    return 0


def run_summary(args: argparse.Namespace) -> int:
    if args.list:
        list_ops(args.path)
    else:
        json.dump(summary(args.path), sys.stdout, indent=1)
        print()
    return 0
