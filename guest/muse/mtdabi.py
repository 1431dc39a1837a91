"""MTD type numbers and flags from include/uapi/mtd/mtd-abi.h."""

from __future__ import annotations

MTD_RAM = 1
MTD_ROM = 2
MTD_NORFLASH = 3
MTD_NANDFLASH = 4
MTD_DATAFLASH = 6
MTD_UBIVOLUME = 7
MTD_MLCNANDFLASH = 8

MTD_WRITEABLE = 0x400
MTD_BIT_WRITEABLE = 0x800
MTD_NO_ERASE = 0x1000
# The kernel adds this one itself (patch 4/8); a server may not send it.
MTD_MUSE = 0x8000

# What muse_verify_mtdreq() accepts.
KERNEL_TYPES = frozenset(
    {MTD_RAM, MTD_ROM, MTD_NORFLASH, MTD_NANDFLASH, MTD_DATAFLASH, MTD_MLCNANDFLASH}
)
KERNEL_FLAGS = MTD_WRITEABLE | MTD_BIT_WRITEABLE | MTD_NO_ERASE

# CLI names of the device kinds and the MTD type each one reports.
TYPE_BY_NAME = {
    "ram": MTD_RAM,
    "rom": MTD_ROM,
    "nor": MTD_NORFLASH,
    "nand": MTD_NANDFLASH,
    "dataflash": MTD_DATAFLASH,
    "mlc-nand": MTD_MLCNANDFLASH,
}
NAME_BY_TYPE = {value: key for key, value in TYPE_BY_NAME.items()}

FLAG_BY_NAME = {
    "writeable": MTD_WRITEABLE,
    "bit-writeable": MTD_BIT_WRITEABLE,
    "no-erase": MTD_NO_ERASE,
}

# The MTD_CAP_* sets the in-kernel drivers use for each type.
DEFAULT_FLAGS = {
    MTD_RAM: MTD_WRITEABLE | MTD_BIT_WRITEABLE | MTD_NO_ERASE,
    MTD_ROM: 0,
    MTD_NORFLASH: MTD_WRITEABLE | MTD_BIT_WRITEABLE,
    MTD_NANDFLASH: MTD_WRITEABLE,
    MTD_DATAFLASH: MTD_WRITEABLE,
    MTD_MLCNANDFLASH: MTD_WRITEABLE,
}


def is_nand(mtd_type: int) -> bool:
    """mtd_type_is_nand(): only these get _block_isbad/_block_markbad."""
    return mtd_type in (MTD_NANDFLASH, MTD_MLCNANDFLASH)
