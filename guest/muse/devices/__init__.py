"""Device models (RAM/ROM/DataFlash, NOR, NAND/MLC NAND) and their factory."""

from __future__ import annotations

from collections.abc import Iterable

from .. import mtdabi
from ..ecc import Hamming
from ..geometry import Geometry
from ..stores import Store
from .base import Device, DeviceLayer, FlashOps
from .nand import NandDevice
from .nor import NorDevice
from .ram import RamDevice

__all__ = [
    "Device",
    "DeviceLayer",
    "FlashOps",
    "NandDevice",
    "NorDevice",
    "RamDevice",
    "make_device",
]


def make_device(
    geometry: Geometry,
    store: Store,
    *,
    check_program_once: bool = False,
    factory_bad: Iterable[int] = (),
    ecc: Hamming | None = None,
) -> Device:
    """The model that matches geometry.mtd_type."""
    if geometry.is_nand:
        return NandDevice(
            geometry, store, check_program_once=check_program_once, factory_bad=factory_bad,
            ecc=ecc,
        )
    if geometry.mtd_type == mtdabi.MTD_NORFLASH:
        return NorDevice(geometry, store)
    return RamDevice(geometry, store)
