"""MUSE wire ABI on the FUSE device: opcodes, IO flags and struct layouts.

Every struct is native-endian with no implicit padding ("=" format), as the
kernel copies them verbatim. Field order follows include/uapi/linux/fuse.h of
the v3 series (patch 6/8).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping

FUSE_KERNEL_VERSION = 7
# Team decision for the port: the kernel offers 7.34, muse.c wants >= 34 back.
MUSE_MINOR = 34
# The harness's extension (kernel/series/*/0201-0202): a kernel offering 7.35 takes
# ECCSTRENGTH/ECCSTEPSIZE in MUSE_INIT and bit-flip counts in the read reply.
MUSE_ECC_MINOR = 35
MUSE_INIT_INFO_MAX = 4096
FUSE_MIN_READ_BUFFER = 8192


class Opcode(enum.IntEnum):
    FUSE_INTERRUPT = 36
    MUSE_INIT = 8192
    MUSE_ERASE = 8193
    MUSE_READ = 8194
    MUSE_WRITE = 8195
    MUSE_MARKBAD = 8196
    MUSE_ISBAD = 8197
    MUSE_SYNC = 8198


# IO mode flags of muse_read_in/muse_write_in.
IO_INBAND = 1
IO_OOB_AUTO = 2
IO_OOB_PLACE = 4
IO_RAW = 8
IO_KNOWN = IO_INBAND | IO_OOB_AUTO | IO_OOB_PLACE | IO_RAW

IN_HEADER = struct.Struct("=IIQQIIII")  # len, opcode, unique, nodeid, uid, gid, pid, pad
OUT_HEADER = struct.Struct("=IiQ")  # len, error, unique
# The first 16 bytes of fuse_in_header: enough to know whom to answer.
IN_HEADER_PREFIX = struct.Struct("=IIQ")

INIT_IN = struct.Struct("=II")  # major, minor
INIT_OUT = struct.Struct("=IIII")  # major, minor, max_read, max_write
ERASE_IN = struct.Struct("=QQ")  # addr, len
IO_IN = struct.Struct("=QQII")  # addr, len, flags, padding (read and write)
IO_OUT = struct.Struct("=QII")  # len, soft_error (negative errno as u32), padding
# 7.35's read reply: the padding holds max_bitflips (worst ECC step) and corrected (all).
READ_OUT = struct.Struct("=QIHH")
ADDR_IN = struct.Struct("=Q")  # markbad, isbad
ISBAD_OUT = struct.Struct("=II")  # result, padding
INTERRUPT_IN = struct.Struct("=Q")  # unique of the interrupted request

# sizeof(struct fuse_write_in): the kernel reserves it in the read() size check.
FUSE_WRITE_IN_SIZE = 40


def opcode_name(opcode: int) -> str:
    try:
        return Opcode(opcode).name
    except ValueError:
        return f"OPCODE_{opcode}"


def request_buffer_size(max_write: int) -> int:
    """Smallest read() buffer fuse_dev_do_read() accepts once max_write is set.

    The kernel raises max_write to at least 4096, which 8192 already covers.
    """
    return max(FUSE_MIN_READ_BUFFER, IN_HEADER.size + FUSE_WRITE_IN_SIZE + max_write)


def errno_to_u32(err: int) -> int:
    """soft_error travels as u32 holding a negative errno (e.g. -EUCLEAN)."""
    return (-abs(err)) & 0xFFFFFFFF if err else 0


def u32_to_errno(value: int) -> int:
    return value - (1 << 32) if value & 0x80000000 else value


def encode_init_info(params: Mapping[str, str | int]) -> bytes:
    """NUL-separated KEY=VALUE strings, the last one NUL-terminated too."""
    blob = b"".join(f"{key}={value}".encode() + b"\0" for key, value in params.items())
    if len(blob) > MUSE_INIT_INFO_MAX:
        raise ValueError(
            f"MUSE_INIT parameters take {len(blob)} bytes, the kernel accepts at most "
            f"{MUSE_INIT_INFO_MAX}"
        )
    return blob


def decode_init_info(blob: bytes) -> dict[str, str]:
    """Parse the way fuse_kv_parse_one() does: skip NULs, split at '=', strip."""
    if blob and blob[-1] != 0:
        raise ValueError("info not properly terminated")
    params: dict[str, str] = {}
    for item in blob.split(b"\0"):
        if not item:
            continue
        key, _, value = item.decode().partition("=")
        key = key.strip()
        if not key:
            raise ValueError("zero length info key")
        params[key] = value.strip()
    return params


def pack_request(
    opcode: int, unique: int, payload: bytes = b"", *, pid: int = 0, length: int | None = None
) -> bytes:
    """A kernel->server request, as a fake kernel sends it (length overridable)."""
    total = IN_HEADER.size + len(payload) if length is None else length
    return IN_HEADER.pack(total, opcode, unique, 1, 0, 0, pid, 0) + payload
