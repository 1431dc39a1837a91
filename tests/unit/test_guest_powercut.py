"""Power-cut emulation of the guest MUSE server: oplog, torn ops, live cuts, replay."""

import errno
import itertools
import json
import random
import shutil
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from guest.muse import cli, mtdabi
from guest.muse import protocol as p
from guest.muse.control import Controller
from guest.muse.devices import FlashOps, make_device
from guest.muse.devices.base import Device
from guest.muse.devices.faulty import FaultLayer
from guest.muse.devices.powercut import PowerCutLayer
from guest.muse.devices.torn import TORN_MODES, apply_op, apply_torn, tear
from guest.muse.errors import ConfigError, OpError, PowerCut
from guest.muse.fakekernel import FakeKernel, ServerThread, socket_pair
from guest.muse.faultconfig import FaultConfig
from guest.muse.geometry import Geometry
from guest.muse.injection import Injection, InjectionConfig
from guest.muse.lifecycle import EXIT_POWER_CUT
from guest.muse.oplog import ERASE, HEADER, MARKBAD, PROGRAM, Op, OpLogReader, OpLogWriter, scan
from guest.muse.replay import replay
from guest.muse.session import Session, StopReason
from guest.muse.stats import Stats
from guest.muse.stores import Store, open_store

from .test_guest_cli import Child

PAGE = 512
BLOCK = 4 * PAGE
OOB = 16
GEO_ARGS = ["--type", "nand", "--name", "cut", "--size", "32KiB", "--writesize", "512",
            "--erasesize", "2KiB", "--oobsize", "16", "--oobavail", "6"]  # fmt: skip
FACTORY_BAD = [15]


GEO = Geometry(
    name="cut",
    mtd_type=mtdabi.MTD_NANDFLASH,
    flags=mtdabi.MTD_WRITEABLE,
    size=16 * BLOCK,
    writesize=PAGE,
    erasesize=BLOCK,
    oobsize=OOB,
    oobavail=6,
)


def pattern(length: int, salt: int) -> bytes:
    return random.Random(salt).randbytes(length)


def state(store: Store) -> bytes:
    """All data, then all OOB: the whole media, whatever the image layout."""
    data = b"".join(bytes(chunk) for chunk in store.data(0, store.size))
    return data + b"".join(bytes(store.oob(page)) for page in range(store.npages))


def file_state(path: Path, fmt: str) -> bytes:
    store = open_store(GEO, str(path), fmt)
    try:
        return state(store)
    finally:
        store.close()


def image_bytes(path: Path, fmt: str) -> bytes:
    sidecar = path.with_name(path.name + ".oob")
    return path.read_bytes() + (sidecar.read_bytes() if fmt == "raw" else b"")


def stack(
    image: Path | None,
    fmt: str = "raw+oob",
    *,
    seed: int = 0,
    torn: str = "prefix",
    cut_at: int | None = None,
    oplog: Path | None = None,
    faults: Mapping[str, object] | None = None,
) -> tuple[FlashOps, Device]:
    """The layers a server with these options serves through, on a fresh model."""
    store = open_store(GEO, None if image is None else str(image), fmt)
    device = make_device(GEO, store, factory_bad=FACTORY_BAD)
    cfg = InjectionConfig(
        seed=seed,
        faults=FaultConfig().updated(faults or {}, GEO),
        oplog=None if oplog is None else str(oplog),
        powercut_at=cut_at,
        torn=torn,
    )
    model = {"image_format": fmt, "check_program_once": False, "bad_blocks": FACTORY_BAD}
    return Injection(device, cfg, Stats(), model).ops, device


def mv(data: bytes) -> memoryview:
    return memoryview(data)


def workload(ops: FlashOps, after_op: Callable[[], None] = lambda: None) -> PowerCut | None:
    """Every op kind, a refused op, a multi-block erase; returns the cut if one happened."""
    steps: list[Callable[[], object]] = [
        lambda: ops.write(0, p.IO_INBAND, mv(pattern(4 * BLOCK, 1))),  # 1: blocks 0-3
        lambda: ops.write(PAGE + 1, p.IO_OOB_AUTO, mv(b"\x00\x11\x22\x33")),  # 2
        lambda: ops.erase(BLOCK, BLOCK),  # 3
        lambda: ops.write(BLOCK, p.IO_INBAND, mv(pattern(2 * PAGE, 2))),  # 4 (weak page 4)
        lambda: ops.write(100, p.IO_INBAND, mv(bytes(PAGE))),  # 5: misaligned, refused
        lambda: ops.erase(0, 2 * BLOCK),  # 6
        lambda: ops.write(0, p.IO_INBAND, mv(pattern(3 * PAGE, 3))),  # 7
        lambda: ops.mark_bad(3 * BLOCK),  # 8
        lambda: ops.write(9 * PAGE, p.IO_OOB_PLACE | p.IO_RAW, mv(pattern(OOB, 4))),  # 9
        lambda: ops.erase(2 * BLOCK, BLOCK),  # 10
        lambda: ops.write(4 * PAGE, p.IO_INBAND, mv(pattern(PAGE, 5))),  # 11
        lambda: ops.write(4 * PAGE, p.IO_INBAND, mv(pattern(PAGE, 6))),  # 12: AND over 11
        lambda: ops.erase(3 * BLOCK, BLOCK),  # 13: a bad block, refused
    ]
    for step in steps:
        try:
            step()
        except OpError:
            pass
        except PowerCut as cut:
            return cut
        after_op()
    return None


FAULTS = {"weak_pages": "4:1"}  # op 4 programs page 4, fails, never reaches page 5
OPS = 13


# -- the oplog


def test_oplog_round_trip(tmp_path):
    path = tmp_path / "ops.log"
    writer = OpLogWriter(str(path), {"seed": 3})
    ops = [
        Op(PROGRAM, 1, 4096, 4, p.IO_INBAND, b"abcd"),
        Op(PROGRAM, 2, 4097, 2, p.IO_OOB_AUTO, b"\0\1"),
        Op(ERASE, 3, 8192, 4096),
        Op(MARKBAD, 4, 8192, torn=True),
    ]
    for op in ops:
        writer.append(op)
    writer.close()
    records = list(OpLogReader(str(path)))
    session = records[0]
    assert not isinstance(session, Op)
    assert (session.number, session.header["seed"], session.header["format"]) == (
        1,
        3,
        "muse-oplog",
    )
    assert records[1:] == ops
    assert [op.describe() for op in ops] == [
        "program 0x1000", "program-oob 0x1001", "erase 0x2000", "markbad 0x2000",
    ]  # fmt: skip
    sessions, end = scan(str(path))
    assert (sessions[0].ops, sessions[0].cut, end) == (4, 4, path.stat().st_size)
    # Record layout: 32-byte head, payload, CRC-32.
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[4:8], "little")
    assert raw[:1] == HEADER and raw[36 + header_len : 37 + header_len] == PROGRAM


def test_a_torn_log_tail_is_dropped_and_the_next_session_appends(tmp_path):
    path = tmp_path / "ops.log"
    writer = OpLogWriter(str(path), {})
    writer.append(Op(ERASE, 1, 0, BLOCK))
    writer.append(Op(PROGRAM, 2, 0, 4, p.IO_INBAND, b"wxyz"))
    writer.close()
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size - 3)  # a crash inside the last record
    reader = OpLogReader(str(path))
    assert [r.number for r in reader if isinstance(r, Op)] == [1]
    assert reader.truncated
    writer = OpLogWriter(str(path), {"seed": 5})
    assert writer.session == 2
    writer.append(Op(ERASE, 1, BLOCK, BLOCK))
    writer.close()
    sessions, _ = scan(str(path))
    assert [(s.number, s.ops, s.header.get("seed")) for s in sessions] == [(1, 1, None), (2, 1, 5)]


def test_a_corrupt_record_ends_the_log(tmp_path):
    path = tmp_path / "ops.log"
    writer = OpLogWriter(str(path), {})
    writer.append(Op(PROGRAM, 1, 0, 4, p.IO_INBAND, b"wxyz"))
    writer.append(Op(ERASE, 2, 0, BLOCK))
    writer.close()
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"wxyz")] ^= 1
    path.write_bytes(bytes(raw))
    reader = OpLogReader(str(path))
    assert [r for r in reader if isinstance(r, Op)] == []
    assert reader.truncated


def test_not_an_oplog(tmp_path):
    path = tmp_path / "other"
    path.write_bytes(b"E" + bytes(40))
    with pytest.raises(ConfigError, match="not a MUSE oplog"):
        scan(str(path))


# -- torn ops


def test_tear_prefix_and_bits():
    old, new = b"\xff" * 64, bytes(64)
    for seed in range(20):
        torn = tear(old, new, 1, "prefix", random.Random(seed))
        cut = torn.index(b"\xff") if b"\xff" in torn else 64
        assert torn == new[:cut] + old[cut:] and cut < 64
        bits = tear(old, bytes(range(64)), 1, "bits", random.Random(seed))
        assert all(b & o == b and b | n == b for b, o, n in zip(bits, old, range(64), strict=True))
        assert bits not in (old, bytes(range(64)))
    pages = tear(b"\0" * 40, b"\xff" * 40, 10, "prefix", random.Random(1))
    assert pages.count(b"\xff") % 10 == 0 and pages != b"\xff" * 40
    with pytest.raises(ValueError, match="unknown torn-write mode"):
        tear(old, new, 1, "half", random.Random(0))


def torn_pages(op: Op, mode: str, seed: int, before: bytes) -> tuple[list[bytes], list[bytes]]:
    """(pages after a torn op, pages after the whole op) of a fresh device holding before."""
    results = []
    for torn in (True, False):
        device = make_device(GEO, open_store(GEO))
        device.write(0, p.IO_INBAND, mv(before))
        if torn:
            apply_torn(device, op, seed, mode)
        else:
            apply_op(device, op)
        data = state(device.store)
        results.append([data[i : i + PAGE] for i in range(0, 16 * PAGE, PAGE)])
    return results[0], results[1]


@pytest.mark.parametrize("mode", TORN_MODES)
def test_torn_multi_page_program(mode):
    data = pattern(4 * PAGE, 7)
    op = Op(PROGRAM, 9, BLOCK, len(data), p.IO_INBAND, data)
    before = pattern(BLOCK, 8) + b"\xff" * BLOCK
    in_flight = set()
    for seed in range(12):
        torn, whole = torn_pages(op, mode, seed, before)
        old = [before[i : i + PAGE] for i in range(BLOCK, 2 * BLOCK, PAGE)]
        pages = torn[4:8]
        t = next(i for i in range(4) if pages[i] != whole[4 + i])
        in_flight.add(t)
        assert pages[:t] == whole[4 : 4 + t]  # done
        assert pages[t + 1 :] == old[t + 1 :]  # not started
        if mode == "prefix":
            k = next(i for i in range(PAGE) if pages[t][i] != whole[4 + t][i])
            assert pages[t] == whole[4 + t][:k] + old[t][k:]
        else:  # only bits the program clears, and not all of them
            assert all(
                b | w == b and b & o == b
                for b, w, o in zip(pages[t], whole[4 + t], old[t], strict=True)
            )
        assert torn[:4] == whole[:4] and torn[8:] == whole[8:]  # other blocks untouched
    assert len(in_flight) > 1  # the seed picks the page in flight


@pytest.mark.parametrize("mode", TORN_MODES)
def test_torn_erase(mode):
    before = pattern(2 * BLOCK, 9)
    op = Op(ERASE, 3, BLOCK, BLOCK)
    for seed in range(8):
        torn, whole = torn_pages(op, mode, seed, before)
        old = [before[i : i + PAGE] for i in range(BLOCK, 2 * BLOCK, PAGE)]
        pages = torn[4:8]
        assert pages != whole[4:8]
        if mode == "prefix":
            k = sum(page == b"\xff" * PAGE for page in pages)
            assert pages == whole[4 : 4 + k] + old[k:]
        else:
            for page, was in zip(pages, old, strict=True):
                assert all(b | o == b for b, o in zip(page, was, strict=True))  # bits only set


def test_torn_erase_prefix_takes_the_oob_along():
    device = make_device(GEO, open_store(GEO))
    for page in range(4, 8):
        device.write(page * PAGE, p.IO_INBAND, mv(bytes(PAGE)))
        device.write(page * PAGE, p.IO_OOB_PLACE, mv(bytes(OOB)))
    for seed in range(6):
        apply_torn(device, Op(ERASE, seed, BLOCK, BLOCK), seed, "prefix")
        for page in range(4, 8):
            erased = bytes(next(device.store.data(page * PAGE, PAGE))) == b"\xff" * PAGE
            assert erased == (bytes(device.store.oob(page)) == b"\xff" * OOB)


@pytest.mark.parametrize("mode", TORN_MODES)
def test_torn_oob_program_and_markbad(mode):
    device = make_device(GEO, open_store(GEO))
    apply_torn(device, Op(PROGRAM, 1, 3 * PAGE, OOB, p.IO_OOB_PLACE, bytes(OOB)), 4, mode)
    oob = bytes(device.store.oob(3))
    assert oob != bytes(OOB) and oob != b"\xff" * OOB
    apply_torn(device, Op(MARKBAD, 2, 5 * BLOCK), 4, mode)
    marker = bytes(device.store.oob(5 * 4)[:2])
    assert marker != b"\0\0"  # the marker was not completely written
    assert bytes(device.store.oob(5 * 4)[2:]) == b"\xff" * (OOB - 2)


def test_a_refused_op_torn_changes_nothing():
    device = make_device(GEO, open_store(GEO))
    before = state(device.store)
    apply_torn(device, Op(PROGRAM, 1, 100, PAGE, p.IO_INBAND, bytes(PAGE)), 0, "bits")
    apply_torn(device, Op(ERASE, 2, 100, BLOCK), 0, "bits")
    apply_torn(device, Op(PROGRAM, 3, 0, 2, p.IO_INBAND | p.IO_OOB_AUTO, b"xx"), 0, "bits")
    assert state(device.store) == before


# -- live power cuts


def test_power_cut_over_the_wire_leaves_the_request_unanswered(tmp_path):
    ops, _ = stack(None, cut_at=3, oplog=tmp_path / "ops.log")
    kernel_sock, server_sock = socket_pair()
    session = Session(server_sock.fileno(), ops)
    thread = ServerThread(session, kernel_sock, server_sock)
    kernel = FakeKernel(kernel_sock)
    kernel.init()
    kernel.write(0, pattern(2 * PAGE, 1))
    kernel.erase(BLOCK, BLOCK)
    assert kernel.read(0, PAGE)[0] == pattern(2 * PAGE, 1)[:PAGE]  # reads take no op number
    kernel.send(p.Opcode.MUSE_WRITE, p.IO_IN.pack(2 * PAGE, PAGE, p.IO_INBAND, 0) + bytes(PAGE))
    kernel.expect_silence()
    thread.thread.join(5)
    assert thread.reason is StopReason.POWER_CUT
    assert session.power_cut is not None
    assert (session.power_cut.op, session.power_cut.what) == (3, "program 0x400")
    thread.close()
    ops.close()
    sessions, _ = scan(str(tmp_path / "ops.log"))  # flushed, with the torn op marked
    assert (sessions[0].ops, sessions[0].cut) == (3, 3)


def test_a_cut_armed_at_run_time():
    ops, _ = stack(None)
    assert isinstance(ops, FaultLayer) and isinstance(ops.inner, PowerCutLayer)
    controller = Controller(ops, ops.inner, Stats())
    kernel_sock, server_sock = socket_pair()
    session = Session(server_sock.fileno(), ops)
    thread = ServerThread(session, kernel_sock, server_sock)
    kernel = FakeKernel(kernel_sock)
    kernel.init()
    kernel.erase(0, BLOCK)
    assert controller.handle({"cmd": "powercut", "in": 2})["ok"] is True
    kernel.erase(BLOCK, BLOCK)
    kernel.send(p.Opcode.MUSE_ERASE, p.ERASE_IN.pack(2 * BLOCK, BLOCK))
    kernel.expect_silence()
    thread.thread.join(5)
    assert thread.reason is StopReason.POWER_CUT
    assert session.power_cut is not None and session.power_cut.what == "erase 0x1000"
    cut_state = controller.powercut.powercut_stats()
    assert cut_state["cut"] == {"op": 3, "what": "erase 0x1000"}
    thread.close()
    ops.close()


@pytest.mark.parametrize(("mode", "fmt"), [("prefix", "raw+oob"), ("bits", "raw")])
def test_cut_state_is_what_a_restart_serves(tmp_path, mode, fmt):
    image = tmp_path / "nand.img"
    ops, device = stack(image, fmt, seed=4, torn=mode, cut_at=8, faults=FAULTS)
    cut = workload(ops)
    assert cut is not None and (cut.op, cut.what) == (8, "markbad 0x1800")
    at_cut = state(device.store)
    ops.close()
    assert file_state(image, fmt) == at_cut
    restarted = make_device(GEO, open_store(GEO, str(image), fmt))
    assert state(restarted.store) == at_cut
    restarted.close()


def snapshots(tmp_path: Path, mode: str, fmt: str) -> tuple[Path, list[bytes]]:
    """Record the workload without a cut; media state after each op (index = ops done)."""
    log = tmp_path / "record.log"
    ops, device = stack(tmp_path / "record.img", fmt, seed=21, torn=mode, oplog=log, faults=FAULTS)
    seen = [state(device.store)]
    assert workload(ops, lambda: seen.append(state(device.store))) is None
    ops.close()
    return log, seen  # every workload step is one op


@pytest.mark.parametrize(("mode", "fmt"), [("prefix", "raw+oob"), ("bits", "raw")])
def test_replay_equals_live_cut_at_every_op(tmp_path, mode, fmt):
    log, seen = snapshots(tmp_path, mode, fmt)
    assert scan(str(log))[0][0].ops == len(seen) - 1 == OPS
    torn_somewhere = 0
    for n in range(1, OPS + 1):
        live = tmp_path / f"live{n}.img"
        ops, _ = stack(live, fmt, seed=21, torn=mode, cut_at=n, faults=FAULTS)
        cut = workload(ops)
        ops.close()
        assert cut is not None and cut.op == n
        out = tmp_path / f"replay{n}.img"
        result = replay(str(log), str(out), cut=n, seed=21, torn=mode)
        assert (result.applied, result.torn) == (n - 1, n)
        assert image_bytes(out, fmt) == image_bytes(live, fmt)  # byte for byte, OOB included
        # Ops before n applied, op n partly, nothing after: every bit is as before or as after.
        states = (file_state(live, fmt), seen[n - 1], seen[n])
        got, before, after = (int.from_bytes(s, "little") for s in states)
        assert (got ^ before) & ~(after ^ before) == 0
        torn_somewhere += got not in (before, after)
    assert torn_somewhere >= 8  # refused ops (5, 13) and unlucky tears aside


def test_replay_with_another_seed_tears_differently(tmp_path):
    log, _ = snapshots(tmp_path, "bits", "raw+oob")
    images = set()
    for seed in range(3):
        replay(str(log), str(tmp_path / "out.img"), cut=1, seed=seed)
        images.add((tmp_path / "out.img").read_bytes())
    assert len(images) == 3


def test_replay_without_cut_rebuilds_the_whole_run(tmp_path):
    log, seen = snapshots(tmp_path, "prefix", "raw+oob")
    result = replay(str(log), str(tmp_path / "all.img"))
    assert (result.applied, result.torn) == (OPS, None)
    assert file_state(tmp_path / "all.img", "raw+oob") == seen[-1]
    # Another layout than the run's, same media.
    replay(str(log), str(tmp_path / "all.raw"), image_format="raw")
    assert file_state(tmp_path / "all.raw", "raw") == seen[-1]


def test_sessions_chain_through_a_live_cut(tmp_path):
    image, log = tmp_path / "nand.img", tmp_path / "ops.log"
    ops, _ = stack(image, seed=2, torn="bits", cut_at=6, oplog=log)
    assert workload(ops) is not None
    ops.close()
    cut_image = image.read_bytes()
    # The next run starts from the cut image and logs session 2.
    ops, _ = stack(image, seed=3, oplog=log)
    ops.erase(2 * BLOCK, BLOCK)
    ops.write(2 * BLOCK, p.IO_INBAND, mv(pattern(PAGE, 11)))
    ops.close()
    sessions, _ = scan(str(log))
    assert [(s.ops, s.cut) for s in sessions] == [(6, 6), (2, None)]
    replay(str(log), str(tmp_path / "s1.img"), session=1)
    assert (tmp_path / "s1.img").read_bytes() == cut_image
    replay(str(log), str(tmp_path / "s2.img"))
    assert (tmp_path / "s2.img").read_bytes() == image.read_bytes()
    with pytest.raises(ConfigError, match=r"session 1 has ops 1\.\.6"):
        replay(str(log), str(tmp_path / "x.img"), session=1, cut=7)


def test_replay_needs_the_base_the_run_started_from(tmp_path):
    base, image, log = tmp_path / "base.img", tmp_path / "nand.img", tmp_path / "ops.log"
    ops, _ = stack(base)
    ops.write(0, p.IO_INBAND, mv(pattern(BLOCK, 12)))
    ops.close()
    shutil.copyfile(base, image)
    ops, _ = stack(image, oplog=log)
    ops.erase(0, BLOCK)
    ops.close()
    with pytest.raises(ConfigError, match="pass the image it started from with --base"):
        replay(str(log), str(tmp_path / "out.img"))
    replay(str(log), str(tmp_path / "out.img"), base=str(base))
    assert (tmp_path / "out.img").read_bytes() == image.read_bytes()
    assert base.read_bytes() != image.read_bytes()  # the base was copied, not changed
    with pytest.raises(ConfigError, match="must not be the --base"):
        replay(str(log), str(base), base=str(base))
    with pytest.raises(ConfigError, match=r"session 2 is not in 1\.\.1"):
        replay(str(log), str(tmp_path / "out.img"), session=2)
    with pytest.raises(ConfigError, match=r"ops 1\.\.1"):
        replay(str(log), str(tmp_path / "out.img"), cut=2)


def test_powercut_random_is_seeded(capsys):
    def cut_at(*args: str) -> int | None:
        parsed = cli.build_parser().parse_args(["serve", *GEO_ARGS, *args])
        return cli.build_config(parsed).injection.powercut_at

    picks = {seed: cut_at("--powercut-random", "10:20", "--seed", str(seed)) for seed in range(8)}
    assert all(10 <= at <= 20 for at in picks.values() if at is not None)
    assert cut_at("--powercut-random", "10:20", "--seed", "3") == picks[3]
    assert len(set(picks.values())) > 1
    assert cut_at("--powercut-at", "5") == 5
    assert cut_at() is None
    for bad, message in (("20:10", "LO <= HI"), ("7", "LO:HI"), ("a:b", "LO:HI")):
        assert cli.main(["serve", "--dry-run", *GEO_ARGS, "--powercut-random", bad]) == 1
        assert message in capsys.readouterr().err
    assert cli.main(["serve", "--dry-run", *GEO_ARGS, "--powercut-at", "0"]) == 1
    assert "numbered from 1" in capsys.readouterr().err
    assert cli.main(["serve", "--dry-run", *GEO_ARGS, "--fault", "bogus=1"]) == 1
    assert "unknown fault 'bogus'" in capsys.readouterr().err


def test_powercut_every_tears_fails_and_serves_on():
    """Recurring cuts: each cut op is torn and fails with EROFS, the next cut comes
    LO..HI ops later, and the ops between them are applied whole."""
    store = open_store(GEO, None, "raw+oob")
    device = make_device(GEO, store, factory_bad=FACTORY_BAD)
    layer = PowerCutLayer(device, seed=5, every=(3, 6))
    first = layer.cut_at
    assert first is not None and 3 <= first <= 6
    cuts: list[int] = []
    for n in range(1, 41):
        block = n % 8
        try:
            layer.erase(block * BLOCK, BLOCK)
        except OpError as err:
            assert err.errno == errno.EROFS and f"op {n} " in err.message
            cuts.append(n)
    assert cuts[0] == first
    assert all(3 <= b - a <= 6 for a, b in itertools.pairwise(cuts)), cuts
    stats = layer.powercut_stats()
    assert stats["cuts"] == len(cuts) >= 40 // 6 and stats["ops"] == 40
    assert stats["every"] == [3, 6] and stats["armed_at"] == layer.cut_at
    assert layer.cut_at is not None and layer.cut_at > 40
    # A cut program is torn (prefix mode: the start of the page, not all of it), and
    # the program after it lands whole: power is back at once.
    layer = PowerCutLayer(make_device(GEO, open_store(GEO, None, "raw+oob")), seed=5, every=(1, 1))
    with pytest.raises(OpError):
        layer.write(0, p.IO_INBAND, mv(bytes(PAGE)))
    torn = state(layer.device.store)[:PAGE]
    assert torn not in (bytes(PAGE), b"\xff" * PAGE), "the cut op must land torn"
    layer.every = (9, 9)
    layer.cut_at = None
    layer.write(PAGE, p.IO_INBAND, mv(bytes(PAGE)))
    assert state(layer.device.store)[PAGE : 2 * PAGE] == bytes(PAGE)


def test_powercut_every_options(capsys):
    def every(*args: str) -> tuple[int, int] | None:
        parsed = cli.build_parser().parse_args(["serve", *GEO_ARGS, *args])
        return cli.build_config(parsed).injection.powercut_every

    assert every("--powercut-every", "200:2000") == (200, 2000)
    assert every() is None
    for bad, message in (("9:3", "LO <= HI"), ("0:3", "at least 1"), ("x", "LO:HI")):
        assert cli.main(["serve", "--dry-run", *GEO_ARGS, "--powercut-every", bad]) == 1
        assert message in capsys.readouterr().err
    assert (
        cli.main(
            ["serve", "--dry-run", *GEO_ARGS, "--powercut-every", "3:4", "--oplog", "/tmp/never"]
        )
        == 1
    )
    assert "no --oplog" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: one cut option
        cli.main(["serve", "--dry-run", *GEO_ARGS, "--powercut-every", "3:4", "--powercut-at", "5"])
    assert "not allowed with" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="1 <= LO <= HI"):
        PowerCutLayer(make_device(GEO, open_store(GEO, None, "raw+oob")), every=(5, 2))


# -- the whole process


def test_process_power_cut_restart_and_replay(tmp_path, capsys):
    def run_cli(*args: str) -> str:
        code = cli.main(list(args))
        out, err = capsys.readouterr()
        assert code == 0, err
        return str(out)

    image, log, stats = tmp_path / "nand.img", tmp_path / "ops.log", tmp_path / "stats.json"
    control = tmp_path / "ctl.sock"
    child = Child(
        tmp_path, *GEO_ARGS, "--image", str(image), "--oplog", str(log), "--seed", "9",
        "--torn", "bits", "--powercut-at", "3", "--stats-json", str(stats),
        "--fault", "bitflip_pages=1", "--control", str(control),
    )  # fmt: skip
    kernel = child.kernel
    kernel.init()
    assert kernel.write(0, pattern(2 * PAGE, 1)) == 0  # op 1
    assert kernel.read(PAGE, PAGE) == (pattern(2 * PAGE, 1)[PAGE:], -errno.EUCLEAN)
    kernel.erase(BLOCK, BLOCK)  # op 2
    assert json.loads(run_cli("ctl", "--control", str(control), "get"))["powercut"]["armed_at"] == 3
    kernel.send(
        p.Opcode.MUSE_WRITE, p.IO_IN.pack(4 * PAGE, 2 * PAGE, p.IO_INBAND, 0) + bytes(2 * PAGE)
    )
    kernel.sock.settimeout(10)
    assert kernel.sock.recv(1 << 16) == b""  # no reply, then the fd is closed
    code, err = child.finish()
    assert code == EXIT_POWER_CUT == 7, err
    assert child.proc.stdout is not None
    assert child.proc.stdout.read().decode().splitlines() == [
        "muse: power cut at op 3 (program 0x800)"
    ]
    assert not control.exists()
    snap = json.loads(stats.read_text())
    assert snap["powercut"]["cut"] == {"op": 3, "what": "program 0x800"}
    assert snap["faults"]["injected"]["corrected"] == 1
    summary = json.loads(run_cli("oplog", str(log)))
    assert [(s["ops"], s["cut"], s["seed"]) for s in summary["sessions"]] == [(3, 3, 9)]
    listing = [json.loads(line) for line in run_cli("oplog", str(log), "--list").splitlines()]
    assert [(op["op"], op["kind"], op["torn"]) for op in listing] == [
        (1, "program", False), (2, "erase", False), (3, "program", True),
    ]  # fmt: skip
    out = tmp_path / "replay.img"
    assert "op 3 torn" in run_cli("replay", "--oplog", str(log), "--image", str(out), "--cut", "3")
    assert image_bytes(out, "raw") == image_bytes(image, "raw")
    cut_state = file_state(image, "raw")
    torn = cut_state[4 * PAGE : 6 * PAGE]
    assert torn != bytes(2 * PAGE) and torn != b"\xff" * 2 * PAGE

    # Restart from the image: it serves the cut state, and logs session 2.
    restart_dir = tmp_path / "restart"
    restart_dir.mkdir()
    child = Child(restart_dir, *GEO_ARGS, "--image", str(image), "--oplog", str(log))
    kernel = child.kernel
    kernel.init()
    assert kernel.read(0, 16 * PAGE)[0] == cut_state[: 16 * PAGE]
    assert kernel.read(4 * PAGE, OOB, p.IO_OOB_PLACE)[0] == cut_state[GEO.size + 4 * OOB :][:OOB]
    kernel.erase(2 * BLOCK, BLOCK)
    child.proc.send_signal(signal.SIGTERM)
    code, err = child.finish()
    assert code == 0, err
    assert "session 2: 1 ops applied" in run_cli("replay", "--oplog", str(log), "--image", str(out))
    assert image_bytes(out, "raw") == image_bytes(image, "raw")


def test_replay_cli_errors_exit_1(tmp_path, capsys):
    assert (
        cli.main(["replay", "--oplog", str(tmp_path / "none"), "--image", str(tmp_path / "o")]) == 1
    )
    assert "cannot read oplog" in capsys.readouterr().err
    log = tmp_path / "ops.log"
    OpLogWriter(str(log), {}).close()
    assert cli.main(["replay", "--oplog", str(log), "--image", str(tmp_path / "o")]) == 1
    assert "no geometry" in capsys.readouterr().err
