"""Fault injection: a DeviceLayer that makes reads, programs and erases fail.

Reads (in-band only; OOB reads carry no ECC status here): each page a
request touches is one page read. Per page read, in this order, the first
that applies wins:
  grave page past its good reads  garbage data, -EBADMSG
  uncorrectable error             ecc_strength+1 bits flipped in one ECC step,
                                  data returned corrupted, -EBADMSG
  bitflips= event (nandsim)       1..bitflips raw flips; if an ECC step got
                                  more than ecc_strength, as uncorrectable;
                                  else corrected, -EUCLEAN when a step had at
                                  least bitflip_threshold
  correctable bit flip            one bit, corrected: data intact, -EUCLEAN
On a model with an ECC engine (--ecc) the flips of the first three kinds are
sensed by the engine instead (read_disturbed): it corrects them or not, and its
answer is the read's, the layer's ecc_strength and bitflip_threshold aside.
A request reports the worst of its pages (-EBADMSG over -EUCLEAN), and with
-EUCLEAN its corrected bit-flips (last_bitflips: the worst ECC step's, all of
them, the model's own included) for a MUSE 7.35 kernel to judge. RAW reads
bypass the emulated ECC: flipped bits show in the data and nothing is
reported. Random choices are seeded per (seed, page, n-th read of the page).

Programs and erases follow nandsim: a failing weak/chosen page is programmed
and then reports -EIO (pages after it in the request are not programmed); a
failing weak/chosen block is erased and then reports -EIO. A grown-bad block
instead refuses erases and programs without changing anything and reports
bad to ISBAD (NAND), like a worn-out block an on-die table retired.

The control thread changes settings while the request loop runs: both take
`lock` around fault decisions and counters.
"""

from __future__ import annotations

import errno
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence

from ..errors import OpError
from ..faultconfig import FaultConfig
from ..protocol import IO_INBAND, IO_OOB_AUTO, IO_RAW
from ..seeding import draw, rng
from .base import DeviceLayer, FlashOps

# Read counters count page reads hit by a fault, RAW ones (which report nothing) included.
COUNTERS = (
    "corrected",  # correctable flips (-EUCLEAN)
    "corrected_silently",  # bitflips= events below bitflip_threshold
    "uncorrectable",  # bit errors beyond the ECC (-EBADMSG)
    "grave_reads",  # garbage from a grave page (-EBADMSG)
    "bits_flipped",
    "program_failures",
    "erase_failures",
    "grown_bad_refusals",  # erases/programs refused by a grown-bad block
)
_RANK = {0: 0, -errno.EUCLEAN: 1, -errno.EBADMSG: 2}

# A page read's damage: bit positions to flip, or garbage replacing the page.
Damage = list[int] | bytes


class FaultLayer(DeviceLayer):
    def __init__(self, inner: FlashOps, *, seed: int = 0, config: FaultConfig | None = None):
        super().__init__(inner)
        self.seed = seed
        self.lock = threading.Lock()
        self._updating = threading.Lock()  # concurrent control clients: no lost update
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.config = FaultConfig()
        self._reads = self._programs = self._erases = False
        self._page_reads: dict[int, int] = {}
        self._grave_reads: dict[int, int] = {}
        self._page_programs: dict[int, int] = {}
        self._block_erases: dict[int, int] = {}
        self._grown_erases: dict[int, int] = {}
        self._gone_bad: set[int] = set()
        self._bitflips: tuple[int, int] | None = None     # None: the model's own count
        if config is not None:
            self.configure(config)

    # -- settings (control thread)
    def configure(self, config: FaultConfig, changed: Iterable[str] | None = None) -> None:
        """Switch to config; progress of the changed (default: all) counted faults restarts."""
        keys = set(changed) if changed is not None else None
        with self.lock:
            self.config = config
            # Looked up per request: the fault-free path costs one attribute test.
            self._reads, self._programs, self._erases = (
                config.read_faults,
                config.program_faults,
                config.erase_faults,
            )
            for name, progress in (
                ("grave_pages", self._grave_reads),
                ("weak_pages", self._page_programs),
                ("weak_blocks", self._block_erases),
                ("grown_bad", self._grown_erases),
            ):
                if keys is None or name in keys:
                    progress.clear()
            if keys is None or "grown_bad" in keys:
                self._gone_bad = {block for block, left in config.grown_bad.items() if left == 0}

    def update(self, changes: Mapping[str, object]) -> FaultConfig:
        """Apply KEY: VALUE changes (ConfigError if one is invalid, then none applies)."""
        with self._updating:
            config = self.config.updated(changes, self.geometry)
            self.configure(config, changes)
        return config

    def clear(self) -> None:
        self.configure(FaultConfig())

    def fault_stats(self) -> dict[str, object]:
        with self.lock:
            return {
                "seed": self.seed,
                "config": self.config.to_json(),
                "injected": dict(self.counters),
                "grown_bad_blocks": sorted(self._gone_bad),
            }

    # -- reads
    @property
    def last_bitflips(self) -> tuple[int, int]:
        return self._bitflips if self._bitflips is not None else self.inner.last_bitflips

    def read(self, addr: int, flags: int, out: memoryview) -> int:
        return self.read_disturbed(addr, flags, out, ())

    def read_disturbed(self, addr: int, flags: int, out: memoryview,
                       flips: Sequence[int]) -> int:
        self._bitflips = None
        if not self._reads or not flags & IO_INBAND or not len(out):
            return self.inner.read_disturbed(addr, flags, out, flips)
        raw = bool(flags & IO_RAW)
        if self.ecc_geometry is not None and not raw:
            return self._read_through_engine(addr, flags, out, flips)
        soft = self.inner.read_disturbed(addr, flags, out, flips)
        config = self.config
        size = self.geometry.writesize
        end = addr + len(out)
        worst, total = self.inner.last_bitflips if soft == -errno.EUCLEAN else (0, 0)
        with self.lock:
            for page in range(addr // size, (end - 1) // size + 1):
                effect = self._page_read(config, page)
                if effect is None:
                    continue
                err, damage = effect
                if raw or err == -errno.EBADMSG:
                    _apply(out, addr, page * size, size, damage)
                if not raw and err == -errno.EUCLEAN and isinstance(damage, list):
                    steps = Counter(pos // (config.ecc_step * 8) for pos in damage)
                    worst, total = max(worst, *steps.values()), total + len(damage)
                if not raw and _RANK.get(err, 3) > _RANK.get(soft, 3):
                    soft = err
        self._bitflips = (worst, total)
        return soft

    def _read_through_engine(self, addr: int, flags: int, out: memoryview,
                             flips: Sequence[int]) -> int:
        """The model's engine senses the injected flips; a grave page still reads as
        garbage, -EBADMSG."""
        size = self.geometry.writesize
        sensed = list(flips)
        graves: list[tuple[int, bytes]] = []
        with self.lock:
            for page in range(addr // size, (addr + len(out) - 1) // size + 1):
                effect = self._page_read(self.config, page)
                if effect is None:
                    continue
                damage = effect[1]
                if isinstance(damage, bytes):
                    graves.append((page, damage))
                else:
                    sensed += (page * size * 8 + pos for pos in damage)
        soft = self.inner.read_disturbed(addr, flags, out, sensed)
        for page, garbage in graves:
            _apply(out, addr, page * size, size, garbage)
            soft = -errno.EBADMSG
        return soft

    def _page_read(self, config: FaultConfig, page: int) -> tuple[int, Damage] | None:
        count = self._page_reads.get(page, 0) + 1
        self._page_reads[page] = count
        seed = self.seed
        block = page // self.geometry.pages_per_block
        bits = self.geometry.writesize * 8
        limit = config.grave_pages.get(page)
        if limit is not None:
            done = self._grave_reads.get(page, 0)
            if done >= limit:
                self.counters["grave_reads"] += 1
                return -errno.EBADMSG, rng(seed, "grave", page, count).randbytes(bits // 8)
            self._grave_reads[page] = done + 1
        if (
            page in config.ecc_error_pages
            or block in config.ecc_error_blocks
            or (config.ecc_error_rate and draw(seed, "ecc", page, count) < config.ecc_error_rate)
        ):
            where = rng(seed, "ecc-where", page, count)
            step_bits = config.ecc_step * 8
            first = where.randrange(bits // step_bits) * step_bits
            flips = where.sample(range(first, first + step_bits), config.ecc_strength + 1)
            return self._flipped(-errno.EBADMSG, flips)
        if config.bitflips and draw(seed, "bitflips", page, count) < config.bitflips_prob:
            where = rng(seed, "bitflips-where", page, count)
            flips = where.sample(range(bits), where.randint(1, config.bitflips))
            worst = max(Counter(pos // (config.ecc_step * 8) for pos in flips).values())
            if worst > config.ecc_strength:
                return self._flipped(-errno.EBADMSG, flips)
            if worst < config.bitflip_threshold:
                self.counters["corrected_silently"] += 1
                self.counters["bits_flipped"] += len(flips)
                return 0, flips
            return self._flipped(-errno.EUCLEAN, flips)
        if (
            page in config.bitflip_pages
            or block in config.bitflip_blocks
            or (config.bitflip_rate and draw(seed, "bitflip", page, count) < config.bitflip_rate)
        ):
            where = rng(seed, "bitflip-where", page, count)
            return self._flipped(-errno.EUCLEAN, [where.randrange(bits)])
        return None

    def _flipped(self, err: int, flips: list[int]) -> tuple[int, Damage]:
        self.counters["corrected" if err == -errno.EUCLEAN else "uncorrectable"] += 1
        self.counters["bits_flipped"] += len(flips)
        return err, flips

    # -- programs
    def write(self, addr: int, flags: int, data: memoryview) -> int:
        if not self._programs or not len(data):
            return self.inner.write(addr, flags, data)
        config = self.config
        with self.lock:
            failure = self._program_failure(config, addr, flags, len(data))
        if failure is None:
            return self.inner.write(addr, flags, data)
        done, message = failure
        if done:
            self.inner.write(addr, flags, data[:done])
        raise OpError(errno.EIO, message)

    def _program_failure(
        self, config: FaultConfig, addr: int, flags: int, length: int
    ) -> tuple[int, str] | None:
        """(bytes of the request to program anyway, why) if the program fails."""
        ppb = self.geometry.pages_per_block
        for page, start, end in self._program_units(addr, flags, length):
            block = page // ppb if self.geometry.is_nand else page
            if block in self._gone_bad:
                self.counters["grown_bad_refusals"] += 1
                return start, f"eraseblock {block} has gone bad (injected)"
            if page in config.program_fail_pages or block in config.program_fail_blocks:
                self.counters["program_failures"] += 1
                return end, f"program of page {page} failed (injected)"
            limit = config.weak_pages.get(page)
            if limit is not None:
                done = self._page_programs.get(page, 0)
                if done >= limit:
                    self.counters["program_failures"] += 1
                    return end, f"weak page {page} failed after {limit} programs (injected)"
                self._page_programs[page] = done + 1
        return None

    def _program_units(self, addr: int, flags: int, length: int) -> Iterator[tuple[int, int, int]]:
        """(page, start, end in the request) per NAND page; eraseblocks for other types."""
        geo = self.geometry
        if flags & IO_INBAND:
            unit = geo.writesize if geo.is_nand else geo.erasesize
            for index in range(addr // unit, (addr + length - 1) // unit + 1):
                yield index, max(0, index * unit - addr), min(length, (index + 1) * unit - addr)
            return
        width = geo.oobavail if flags & IO_OOB_AUTO else geo.oobsize
        page, offset = divmod(addr, geo.writesize)
        if offset >= width:
            return  # an invalid request: the model refuses it
        pos = 0
        while pos < length:
            take = min(length - pos, width - offset)
            yield page, pos, pos + take
            pos += take
            page += 1
            offset = 0

    # -- erases and bad blocks
    def erase(self, addr: int, length: int) -> None:
        config = self.config
        size = self.geometry.erasesize
        if (
            not self._erases
            or not length
            or addr % size
            or length % size
            or addr + length > self.geometry.size
        ):
            self.inner.erase(addr, length)
            return
        for block in range(addr // size, (addr + length) // size):
            with self.lock:
                refused = block in self._gone_bad
                if refused:
                    self.counters["grown_bad_refusals"] += 1
            if refused:
                raise OpError(errno.EIO, f"eraseblock {block} has gone bad (injected)")
            self.inner.erase(block * size, size)
            with self.lock:
                why = self._erase_failure(config, block)
            if why:
                raise OpError(errno.EIO, why)

    def _erase_failure(self, config: FaultConfig, block: int) -> str:
        left = config.grown_bad.get(block)
        if left is not None:
            self._grown_erases[block] = self._grown_erases.get(block, 0) + 1
            if self._grown_erases[block] >= left:
                self._gone_bad.add(block)
        why = ""
        limit = config.weak_blocks.get(block)
        if block in config.erase_fail_blocks:
            why = f"erase of eraseblock {block} failed (injected)"
        elif limit is not None:
            done = self._block_erases.get(block, 0)
            if done >= limit:
                why = f"weak eraseblock {block} failed after {limit} erases (injected)"
            else:
                self._block_erases[block] = done + 1
        if why:
            self.counters["erase_failures"] += 1
        return why

    def is_bad(self, addr: int) -> bool:
        bad = self.inner.is_bad(addr)
        if bad or not self.geometry.is_nand:
            return bad
        with self.lock:
            return addr // self.geometry.erasesize in self._gone_bad


def _apply(out: memoryview, addr: int, page_start: int, size: int, damage: Damage) -> None:
    """Damage the part of out (data read from addr) that lies in the page at page_start."""
    lo = max(addr, page_start)
    hi = min(addr + len(out), page_start + size)
    if isinstance(damage, bytes):
        out[lo - addr : hi - addr] = damage[lo - page_start : hi - page_start]
        return
    for pos in damage:
        byte = page_start + pos // 8
        if lo <= byte < hi:
            out[byte - addr] ^= 1 << (pos % 8)
