"""A NAND ECC engine: extended Hamming (SEC-DED) per ECC step, in the page's OOB.

As a controller, or Linux's software Hamming ECC, does it: every normal
(non-raw) program of an ECC step stores 3 ECC bytes for it, and every normal
read checks the step against them. One flipped bit per step, in the data or
in its ECC bytes, is corrected and counted; two are detected and the step is
uncorrectable (-EBADMSG). Raw reads and writes bypass the engine.

The code: data bit i sits at codeword position pos(i), the i-th number of
3, 5, 6, 7, 9, ... (positive, not a power of two); the syndrome S (13 bits
for 512-byte steps, 12 for 256) is the XOR of the positions of all set bits,
so a single flipped data bit makes the recomputed syndrome name its
position, and a flipped syndrome bit names a power of two. The overall
parity P (over data and S) tells one error from two. Stored little-endian
as S | P << r; the top bits stay 0, so stored ECC is never all 0xFF.

A step whose ECC fails to decode is checked as an erased chunk, as
nand_check_erased_ecc_chunk() does: at most `strength` zero bits in data and
ECC together read back as all 0xFF, counted as corrected.

Each syndrome bit is the parity of the data AND a precomputed mask: a dozen
big-int ANDs and bit counts a step, fast enough for the suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from .errors import ConfigError
from .geometry import BBM_BYTES, Geometry

ECC_BYTES = 3
SCHEMES = ("none", "hamming-256", "hamming-512")


class Uncorrectable(Exception):
    """More flipped bits in a step than its ECC corrects."""


@cache
def _masks(nbits: int) -> tuple[int, tuple[int, ...], dict[int, int]]:
    """(syndrome width r, mask per syndrome bit, position -> data bit index)."""
    r = 1
    while (1 << r) < nbits + r + 1:
        r += 1
    masks = [0] * r
    index_of = {}
    pos = 2
    for i in range(nbits):
        pos += 1
        while pos & (pos - 1) == 0:   # skip powers of two: the syndrome bits' own places
            pos += 1
        index_of[pos] = i
        for k in range(r):
            if pos >> k & 1:
                masks[k] |= 1 << i
    return r, tuple(masks), index_of


@dataclass(frozen=True)
class Hamming:
    """1-bit correction, 2-bit detection per `step` bytes; 3 ECC bytes a step."""

    step: int
    strength: int = 1
    bytes_per_step: int = ECC_BYTES

    def _syndrome(self, value: int) -> int:
        _, masks, _ = _masks(self.step * 8)
        syndrome = 0
        for k, mask in enumerate(masks):
            syndrome |= ((value & mask).bit_count() & 1) << k
        return syndrome

    def encode(self, data: bytes | memoryview) -> bytes:
        value = int.from_bytes(data, "little")
        r = _masks(self.step * 8)[0]
        syndrome = self._syndrome(value)
        parity = (value.bit_count() + syndrome.bit_count()) & 1
        return (syndrome | parity << r).to_bytes(ECC_BYTES, "little")

    def correct(self, data: memoryview, ecc: bytes | memoryview) -> int:
        """Correct data in place against its stored ECC; the number of bits corrected.
        Raises Uncorrectable (data left as read) when the step cannot be corrected."""
        try:
            return self._decode(data, bytes(ecc))
        except Uncorrectable:
            return self._erased(data, bytes(ecc))

    def _decode(self, data: memoryview, ecc: bytes) -> int:
        r, _, index_of = _masks(self.step * 8)
        stored = int.from_bytes(ecc, "little")
        # Bits above the code word are stored as 0: a set one is a flip of its own.
        unused = (stored >> (r + 1)).bit_count()
        stored_syndrome, stored_parity = stored & ((1 << r) - 1), stored >> r & 1
        value = int.from_bytes(data, "little")
        syndrome = self._syndrome(value) ^ stored_syndrome
        parity = (value.bit_count() + stored_syndrome.bit_count() + stored_parity) & 1
        if not syndrome and not parity:
            fixed, flip = 0, None
        elif not parity:
            raise Uncorrectable("two flipped bits")
        elif not syndrome or syndrome & (syndrome - 1) == 0:
            fixed, flip = 1, None   # the parity bit or a syndrome bit flipped
        elif syndrome in index_of:
            fixed, flip = 1, index_of[syndrome]
        else:
            raise Uncorrectable("the syndrome names no bit")
        if fixed + unused > self.strength:
            raise Uncorrectable(f"{fixed + unused} flipped bits")
        if flip is not None:
            data[flip >> 3] ^= 1 << (flip & 7)
        return fixed + unused

    def _erased(self, data: memoryview, ecc: bytes) -> int:
        zeros = (len(data) + len(ecc)) * 8 - int.from_bytes(data, "little").bit_count() \
            - int.from_bytes(ecc, "little").bit_count()
        if zeros > self.strength:
            raise Uncorrectable(f"{zeros} zero bits: neither a code word nor an erased chunk")
        data[:] = b"\xff" * len(data)
        return zeros


def scheme(name: str, geometry: Geometry) -> Hamming | None:
    """--ecc's engine for a geometry (None for "none"); ConfigError says what does not fit."""
    if name == "none":
        return None
    if name not in SCHEMES:
        raise ConfigError(f"--ecc {name!r}: expected one of {', '.join(SCHEMES)}")
    if not geometry.is_nand:
        raise ConfigError(f"--ecc {name} needs a NAND type (nand, mlc-nand)")
    engine = Hamming(int(name.rsplit("-", 1)[1]))
    if geometry.writesize % engine.step or geometry.subpage_size % engine.step:
        raise ConfigError(
            f"--ecc {name}: the {engine.step}-byte ECC step must divide the page "
            f"({geometry.writesize}) and the subpage ({geometry.subpage_size}) bytes"
        )
    need = BBM_BYTES + geometry.oobavail + ecc_bytes(engine, geometry.writesize)
    if need > geometry.oobsize:
        raise ConfigError(
            f"--ecc {name}: the OOB ({geometry.oobsize} bytes) cannot hold the marker "
            f"({BBM_BYTES}), OOBAVAIL ({geometry.oobavail}) and "
            f"{ecc_bytes(engine, geometry.writesize)} ECC bytes; lower --oobavail"
        )
    return engine


def check_ecc(name: str, geometry: Geometry) -> None:
    scheme(name, geometry)


def ecc_bytes(engine: Hamming | None, writesize: int) -> int:
    """ECC bytes a page's OOB holds (at its end, as Linux's large-page layout)."""
    return 0 if engine is None else writesize // engine.step * engine.bytes_per_step
