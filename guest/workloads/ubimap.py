"""Where UBI keeps what: the LEB -> PEB map read from a MUSE NAND image.

  python3 -m guest.workloads.ubimap IMAGE --writesize W --oobsize O --erasesize E

prints {"pebs": N, "lebs": {"VOL:LEB": PEB}, "ec": {PEB: EC}, "empty": [PEB...]}
for a raw+oob image (each page followed by its OOB). A PEB holds a LEB when
its VID header (at the offset the EC header names) has the UBI magic and a
good CRC; of two PEBs claiming one LEB the higher sequence number wins (as in
UBI's attach). The fault tests use it to aim faults at blocks holding data
and to see where UBI moved them.
"""

from __future__ import annotations

import argparse
import json
import mmap
import struct
import sys
import zlib

EC_MAGIC, VID_MAGIC = b"UBI#", b"UBI!"
HDR_SIZE = 64
_EC = struct.Struct(">4sB3xQIII32xI")  # magic, version, ec, vid_hdr_offset, data_offset, seq, crc
_VID = struct.Struct(">4sBBBBII4xIIII4xQ12xI")  # ..., vol_id, lnum, ..., sqnum, hdr_crc


def ubi_crc(data: bytes) -> int:
    """crc32_le seeded with 0xFFFFFFFF and no final inversion, as UBI computes it."""
    return zlib.crc32(data) ^ 0xFFFFFFFF


def _read(image: bytes | mmap.mmap, addr: int, length: int, writesize: int, oobsize: int) -> bytes:
    """length in-band bytes at flash address addr of a raw+oob image."""
    out = bytearray()
    while length > 0:
        page, offset = divmod(addr, writesize)
        take = min(length, writesize - offset)
        start = page * (writesize + oobsize) + offset
        out += image[start:start + take]
        addr, length = addr + take, length - take
    return bytes(out)


def ubimap(image: bytes | mmap.mmap, writesize: int, oobsize: int,
           erasesize: int) -> dict[str, object]:
    pebs = len(image) // (erasesize // writesize * (writesize + oobsize))
    lebs: dict[str, tuple[int, int]] = {}  # "vol:leb" -> (sqnum, peb)
    ecs: dict[int, int] = {}
    empty = []
    for peb in range(pebs):
        base = peb * erasesize
        ec_raw = _read(image, base, HDR_SIZE, writesize, oobsize)
        magic, _, ec, vid_offset, _, _, crc = _EC.unpack(ec_raw)
        if magic != EC_MAGIC or ubi_crc(ec_raw[:-4]) != crc:
            continue
        ecs[peb] = ec
        vid_raw = _read(image, base + vid_offset, HDR_SIZE, writesize, oobsize)
        fields = _VID.unpack(vid_raw)
        if fields[0] != VID_MAGIC or ubi_crc(vid_raw[:-4]) != fields[-1]:
            empty.append(peb)
            continue
        key, sqnum = f"{fields[5]}:{fields[6]}", fields[-2]
        if key not in lebs or lebs[key][0] < sqnum:
            lebs[key] = (sqnum, peb)
    return {"pebs": pebs, "lebs": {k: v[1] for k, v in sorted(lebs.items())}, "ec": ecs,
            "empty": empty}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m guest.workloads.ubimap",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image")
    parser.add_argument("--writesize", type=int, default=2048)
    parser.add_argument("--oobsize", type=int, default=64)
    parser.add_argument("--erasesize", type=int, default=128 << 10)
    args = parser.parse_args(argv)
    with open(args.image, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        print(json.dumps(ubimap(m, args.writesize, args.oobsize, args.erasesize)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
