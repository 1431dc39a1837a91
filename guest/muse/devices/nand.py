"""SLC and MLC NAND: page programs, OOB areas, bad blocks.

OOB addressing: the kernel sends OOB requests at (page address + ooboffs), so
page = addr // WRITESIZE and the offset into the OOB area is addr % WRITESIZE.
A request longer than what is left of that page's area continues at offset 0
of the next page's area (mtd_check_oob_ops() allows such multi-page reads).

OOB areas:
  OOB_PLACE (and RAW)  all OOBSIZE bytes, byte 0 first.
  OOB_AUTO             the OOBAVAIL free bytes at OOB offsets 2 .. 2+OOBAVAIL.
Bytes 0-1 of a page's OOB are the bad block marker (large-page convention):
a block is bad when byte 0 of its first page's OOB is not 0xFF. The bytes
after the free area stand in for ECC and are kept as written.

Bad block table: built at open from the markers plus the factory list (whose
markers are then written to the store, so they persist in images). MARKBAD
writes the marker too. Erasing a bad block fails with -EIO; like Linux with an
in-memory BBT, a raw OOB write over a marker takes effect at the next open.

ECC (optional, ecc.py): a normal in-band program stores 3 ECC bytes per ECC
step at the end of the page's OOB (OOBAVAIL leaves room for them); a normal
in-band read corrects up to the step's strength, -EUCLEAN when it corrected a
bit (last_bitflips: the worst step's and the total count, which a MUSE 7.35
kernel gets in the read reply), -EBADMSG (with the data as stored) when a step
is beyond it. Raw reads
and writes bypass it, so flipped stored bits are what a read sees.

Programming clears bits (new = old & data). In-band writes must cover whole
subpages (WRITESIZE >> SUBPAGESHIFT), as nand_do_write_ops() requires. With
check_program_once, programming an in-band subpage, or a page's OOB area,
a second time between erases fails with -EIO and changes nothing.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator, Sequence

from ..ecc import Hamming, Uncorrectable, ecc_bytes
from ..errors import OpError
from ..geometry import BBM_BYTES, Geometry
from ..protocol import IO_INBAND, IO_OOB_AUTO
from ..stores import Store
from .base import Device, decode_mode, flip_bits, is_erased, program_and


class NandDevice(Device):
    def __init__(
        self,
        geometry: Geometry,
        store: Store,
        *,
        check_program_once: bool = False,
        factory_bad: Iterable[int] = (),
        ecc: Hamming | None = None,
    ) -> None:
        super().__init__(geometry, store)
        self.ecc = ecc
        self.ecc_geometry = (ecc.strength, ecc.step) if ecc is not None else None
        self._ecc_at = geometry.oobsize - ecc_bytes(ecc, geometry.writesize)
        if ecc is not None and self._ecc_at < BBM_BYTES + geometry.oobavail:
            raise ValueError(
                f"OOB of {geometry.oobsize} bytes has no room for {BBM_BYTES} marker, "
                f"{geometry.oobavail} free and {geometry.oobsize - self._ecc_at} ECC bytes"
            )
        self.ecc_counts = {"corrected_bits": 0, "corrected_reads": 0, "uncorrectable_reads": 0}
        ppb = geometry.pages_per_block
        self._bbt = bytearray(geometry.nblocks)
        for block in range(geometry.nblocks):
            if store.oob(block * ppb)[0] != 0xFF:
                self._bbt[block] = 1
        for block in factory_bad:
            if not 0 <= block < geometry.nblocks:
                raise ValueError(f"bad block {block} is outside 0..{geometry.nblocks - 1}")
            self._set_bad(block)
        self.check_program_once = check_program_once
        # One flag per in-band subpage and per page OOB: programmed since erase.
        self._sub_done = bytearray(geometry.npages << geometry.subpage_shift)
        self._oob_done = bytearray(geometry.npages)
        if check_program_once:
            self._scan_programmed()

    def _scan_programmed(self) -> None:
        """After a reopen, anything not all-0xFF counts as programmed."""
        sub = self.geometry.subpage_size
        for index in range(len(self._sub_done)):
            for chunk in self.store.data(index * sub, sub):
                if not is_erased(chunk):
                    self._sub_done[index] = 1
        for page in range(self.geometry.npages):
            if not is_erased(self.store.oob(page)):
                self._oob_done[page] = 1

    def _set_bad(self, block: int) -> None:
        self._bbt[block] = 1
        marker = self.store.oob(block * self.geometry.pages_per_block)[:BBM_BYTES]
        marker[:] = bytes(BBM_BYTES)

    def bad_blocks(self) -> list[int]:
        return [block for block, bad in enumerate(self._bbt) if bad]

    # -- in-band
    def _program(self, addr: int, data: memoryview, raw: bool) -> int:
        sub = self.geometry.subpage_size
        if addr % sub or len(data) % sub:
            raise OpError(
                errno.EINVAL,
                f"NAND program [{addr:#x}, +{len(data):#x}) is not aligned to the "
                f"{sub}-byte (sub)page",
            )
        if self.check_program_once:
            first, count = addr // sub, len(data) // sub
            done = self._sub_done[first : first + count]
            if any(done):
                index = first + done.index(1)
                raise OpError(
                    errno.EIO,
                    f"subpage {index} (page {index >> self.geometry.subpage_shift}) is already "
                    "programmed since its last erase",
                )
            self._sub_done[first : first + count] = b"\x01" * count
        for dst, src in self._pairs(addr, data):
            program_and(dst, src)
        if self.ecc is not None and not raw:
            self._program_ecc(addr, data)
        return 0

    # -- ECC
    def _steps(self, addr: int, length: int) -> range:
        """Indexes (over the device) of the ECC steps a byte range touches."""
        assert self.ecc is not None
        step = self.ecc.step
        return range(addr // step, (addr + length + step - 1) // step)

    def _ecc_slot(self, index: int) -> memoryview:
        """The stored ECC bytes of step index."""
        assert self.ecc is not None
        per_page = self.geometry.writesize // self.ecc.step
        page, nth = divmod(index, per_page)
        start = self._ecc_at + nth * self.ecc.bytes_per_step
        return self.store.oob(page)[start : start + self.ecc.bytes_per_step]

    def _program_ecc(self, addr: int, data: memoryview) -> None:
        assert self.ecc is not None
        step = self.ecc.step
        for index in self._steps(addr, len(data)):
            offset = index * step - addr
            program_and(self._ecc_slot(index), memoryview(self.ecc.encode(
                data[offset : offset + step])))

    @property
    def plain_reads(self) -> bool:
        # With ECC every read is checked: no zero-copy path (nor for a subclass's read).
        return self.ecc is None and type(self).read is NandDevice.read

    def read(self, addr: int, flags: int, out: memoryview) -> int:
        return self.read_disturbed(addr, flags, out, ())

    def read_disturbed(self, addr: int, flags: int, out: memoryview,
                       flips: Sequence[int]) -> int:
        # With ECC the flipped bits are what the engine senses: it corrects them or not.
        self.last_bitflips = (0, 0)
        if self.ecc is None or (flags != IO_INBAND and decode_mode(flags) != (IO_INBAND, False)):
            return super().read_disturbed(addr, flags, out, flips)
        self._check_range(addr, len(out))
        step = self.ecc.step
        steps = self._steps(addr, len(out))
        first = steps.start * step
        buffer = bytearray(len(steps) * step)
        super().read(first, IO_INBAND, memoryview(buffer))
        flip_bits(memoryview(buffer), first, flips)
        worst, total, uncorrectable = 0, 0, False
        for n, index in enumerate(steps):
            chunk = memoryview(buffer)[n * step : (n + 1) * step]
            try:
                fixed = self.ecc.correct(chunk, self._ecc_slot(index))
            except Uncorrectable:
                uncorrectable = True
                continue
            worst, total = max(worst, fixed), total + fixed
        out[:] = memoryview(buffer)[addr - first : addr - first + len(out)]
        if uncorrectable:
            self.ecc_counts["uncorrectable_reads"] += 1
            return -errno.EBADMSG
        if worst:
            self.ecc_counts["corrected_reads"] += 1
            self.ecc_counts["corrected_bits"] += total
            self.last_bitflips = (worst, total)
            return -errno.EUCLEAN
        return 0

    def stats(self) -> dict[str, object]:
        found = super().stats()
        if self.ecc is not None:
            found["ecc"] = {"step": self.ecc.step, "strength": self.ecc.strength,
                            **self.ecc_counts}
        return found

    def _erase_block(self, block: int) -> None:
        if self._bbt[block]:
            raise OpError(errno.EIO, f"eraseblock {block} is bad")
        super()._erase_block(block)
        ppb = self.geometry.pages_per_block
        shift = self.geometry.subpage_shift
        self._oob_done[block * ppb : (block + 1) * ppb] = bytes(ppb)
        self._sub_done[(block * ppb) << shift : ((block + 1) * ppb) << shift] = bytes(ppb << shift)

    # -- OOB
    def _oob_spans(self, addr: int, area: int, length: int) -> Iterator[tuple[int, int, int]]:
        """(page, start, end) slices of OOB areas covering a request."""
        geo = self.geometry
        base, width = (BBM_BYTES, geo.oobavail) if area == IO_OOB_AUTO else (0, geo.oobsize)
        page, offset = divmod(addr, geo.writesize)
        if offset >= width or page >= geo.npages:
            raise OpError(
                errno.EINVAL,
                f"OOB address {addr:#x}: page {page}, offset {offset} is outside the "
                f"{width}-byte area of a {geo.npages}-page device",
            )
        if (geo.npages - page) * width - offset < length:
            raise OpError(errno.EINVAL, f"OOB request of {length} bytes runs past the device end")
        while length > 0:
            take = min(length, width - offset)
            yield page, base + offset, base + offset + take
            length -= take
            page += 1
            offset = 0

    def oob_spans(self, addr: int, area: int, length: int) -> list[tuple[int, int, int]]:
        """The (page, start, end) OOB slices a request covers; OpError if it is invalid."""
        return list(self._oob_spans(addr, area, length))

    def _read_oob(self, addr: int, area: int, raw: bool, out: memoryview) -> int:
        pos = 0
        for page, start, end in self._oob_spans(addr, area, len(out)):
            out[pos : pos + end - start] = self.store.oob(page)[start:end]
            pos += end - start
        return 0

    def _write_oob(self, addr: int, area: int, raw: bool, data: memoryview) -> int:
        spans = list(self._oob_spans(addr, area, len(data)))
        if self.check_program_once:
            for page, _, _ in spans:
                if self._oob_done[page]:
                    raise OpError(
                        errno.EIO, f"OOB of page {page} is already programmed since its last erase"
                    )
            for page, _, _ in spans:
                self._oob_done[page] = 1
        pos = 0
        for page, start, end in spans:
            program_and(self.store.oob(page)[start:end], data[pos : pos + end - start])
            pos += end - start
        return 0

    # -- bad blocks
    def is_bad(self, addr: int) -> bool:
        self._check_range(addr, 1)
        return bool(self._bbt[addr // self.geometry.erasesize])

    def mark_bad(self, addr: int) -> None:
        self._check_range(addr, 1)
        self._set_bad(addr // self.geometry.erasesize)
