"""A serve run's hostile settings, and the plan for a raw INIT.

With a raw INIT (--unchecked or any --init-* option) the server models the
device the kernel will believe in: the geometry parsed back from the payload
the way muse_parse_mtdreq() would. When that geometry is beyond the real
models (or the kernel is expected to refuse it) the trivial model serves, so
odd geometry never crashes the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import protocol as p
from ..errors import ConfigError
from ..geometry import BBM_BYTES, U32_MAX, Geometry, default_max_io
from .rawinit import KERNEL_MIN_IO, RawInit, announced_geometry, kernel_verdict, kernel_view
from .rules import Rule

# Reads larger than this get -EINVAL even if the kernel was told it may send them.
SERVER_IO_CAP = 16 << 20
# A memory-backed model larger than this is not attempted: the trivial one serves.
MEMORY_MODEL_CAP = 1 << 30
# Registration wait for raw INIT runs: a refused or broken device must not keep the server.
RAW_REGISTER_TIMEOUT = 10.0


@dataclass
class HostileConfig:
    rules: list[Rule] = field(default_factory=list)
    seed: int = 0
    init_payload: bytes | None = None  # the whole MUSE_INIT reply payload, when raw
    request_max_write: int = 0  # announced max_write the read buffer must fit
    trivial: str = ""  # why the trivial model serves ("": a real one)
    # What registration waits for, when the raw INIT decides it (see RawPlan).
    watch: tuple[str | None, list[str]] | None = None
    control: str | None = None  # a control socket only the hostile engine serves
    verdict: list[str] = field(default_factory=list)

    @property
    def wanted(self) -> bool:
        return bool(self.rules) or self.init_payload is not None or self.control is not None


@dataclass(frozen=True)
class RawPlan:
    payload: bytes
    geometry: Geometry  # what the model serves
    trivial: str
    max_io: int  # the server's IO buffer
    request_max_write: int
    # (master name or None for "any of ours once stable", partition names)
    watch: tuple[str | None, list[str]]
    verdict: list[str]  # why the kernel should refuse it; empty: it should register


def model_problems(geo: Geometry) -> list[str]:
    """What makes the real models misbehave (beyond what the kernel refuses)."""
    problems = []
    if geo.erasesize % geo.writesize:
        problems.append("eraseblocks are not whole pages")
    if geo.is_nand:
        if geo.oobsize < BBM_BYTES or geo.oobavail > geo.oobsize - BBM_BYTES:
            problems.append("no room for the bad block marker in the OOB")
        if geo.writesize % (1 << geo.subpage_shift) or not geo.writesize >> geo.subpage_shift:
            problems.append("pages do not divide into subpages")
    return problems


def refusal_reasons(verdict: list[str], geometry: Geometry) -> list[str]:
    """Why the kernel should refuse a raw INIT: as posted (the verdict) or with the fixes."""
    return verdict + [r for r in geometry.fixed_kernel_problems() if r not in verdict]


def trivial_reason(geo: Geometry, image: str | None) -> str:
    problems = model_problems(geo)
    if problems:
        return "; ".join(problems)
    if image is None and geo.size + geo.npages * geo.oobsize > MEMORY_MODEL_CAP:
        return f"{geo.size} bytes is more than a memory model takes ({MEMORY_MODEL_CAP})"
    return ""


def plan_raw_init(
    raw: RawInit, geometry: Geometry, max_io: int | None, image: str | None
) -> RawPlan:
    announced_io = max_io if max_io is not None else min(default_max_io(geometry), U32_MAX)
    payload = raw.payload(geometry, announced_io)
    view = kernel_view(payload[p.INIT_OUT.size :])
    seen = None if view is None else announced_geometry(view)
    model = seen or geometry
    # The kernel floors both at 4096 whatever was announced.
    read, write = (max(size, KERNEL_MIN_IO) for size in raw.io_sizes(announced_io))
    watch: tuple[str | None, list[str]] = (None, [])
    if seen is not None and not seen.parts:
        watch = (seen.name, [])
    verdict = kernel_verdict(payload)
    refused = "the kernel should refuse this INIT" if verdict else ""
    return RawPlan(
        payload=payload,
        geometry=model,
        trivial=refused or trivial_reason(model, image),
        max_io=min(max(read, write), SERVER_IO_CAP),
        request_max_write=write,
        watch=watch,
        verdict=verdict,
    )


def check_servable(trivial: str, args: dict[str, object]) -> None:
    """Options that need a real model, refused while the trivial one serves."""
    given = [name for name, value in args.items() if value]
    if trivial and given:
        raise ConfigError(f"{', '.join(given)} need a geometry the models serve ({trivial})")
