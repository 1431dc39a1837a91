"""Fault injection of the guest MUSE server: settings, every fault kind, control channel."""

import dataclasses
import errno
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from guest.muse import cli
from guest.muse import protocol as p
from guest.muse.control import Controller, ControlServer
from guest.muse.ctl import request
from guest.muse.devices import NandDevice, make_device
from guest.muse.devices.faulty import FaultLayer
from guest.muse.devices.powercut import PowerCutLayer
from guest.muse.ecc import scheme
from guest.muse.errors import ConfigError, OpError
from guest.muse.fakekernel import FakeKernel, ReplyError, ServerThread, socket_pair
from guest.muse.faultconfig import FaultConfig, parse_assignments
from guest.muse.geometry import Geometry
from guest.muse.session import Session
from guest.muse.stats import Stats
from guest.muse.stores import open_store

from .test_guest_devices import NAND, NOR

PAGE = NAND.writesize
BLOCK = NAND.erasesize
EUCLEAN, EBADMSG = -errno.EUCLEAN, -errno.EBADMSG


def layer(geometry: Geometry = NAND, seed: int = 0, **faults: object) -> FaultLayer:
    device = make_device(geometry, open_store(geometry))
    config = FaultConfig().updated(faults, geometry)
    return FaultLayer(PowerCutLayer(device), seed=seed, config=config)


def pattern(length: int, salt: int = 0) -> bytes:
    return bytes((i * 7 + salt) & 0xFF for i in range(length))


def differing_bits(a: bytes, b: bytes) -> list[int]:
    diff = int.from_bytes(a, "little") ^ int.from_bytes(b, "little")
    return [bit for bit in range(diff.bit_length()) if diff >> bit & 1]


Serve = Callable[..., tuple[FakeKernel, FaultLayer]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """serve(geometry=NAND, seed=0, **faults) -> (FakeKernel, FaultLayer), data pre-written."""
    threads: list[ServerThread] = []

    def _serve(geometry: Geometry = NAND, seed: int = 0, **faults: object):
        faulty = layer(geometry, seed, **faults)
        if geometry.is_nand:
            faulty.inner.write(0, p.IO_INBAND, memoryview(pattern(8 * BLOCK)))
        kernel_sock, server_sock = socket_pair()
        thread = ServerThread(Session(server_sock.fileno(), faulty), kernel_sock, server_sock)
        threads.append(thread)
        kernel = FakeKernel(kernel_sock)
        kernel.init()
        return kernel, faulty

    yield _serve
    for thread in threads:
        thread.close()


def ask(path: str, message: object) -> Any:
    """A control request; the reply typed loosely for nested indexing."""
    return request(path, message)  # type: ignore[arg-type]


def fails(err: int, call: Callable[..., object], *args: object) -> None:
    with pytest.raises(ReplyError) as info:
        call(*args)
    assert info.value.errno == err


# -- settings


def test_settings_parse_from_text_and_json():
    config = FaultConfig().updated(
        parse_assignments(["weak_blocks=3:10,5", "bitflip_pages=1,4-6", "bitflip_rate=0.5"]), NAND
    )
    assert config.weak_blocks == {3: 10, 5: 3}  # nandsim's default of 3 cycles
    assert config.bitflip_pages == {1, 4, 5, 6}
    assert config.bitflip_rate == 0.5
    doc = config.to_json()
    assert doc["weak_blocks"] == {"3": 10, "5": 3}
    assert doc["bitflip_pages"] == [1, 4, 5, 6]
    assert FaultConfig().updated(doc, NAND) == config  # JSON values round-trip
    assert FaultConfig().updated({"grown_bad": [7], "grave_pages": {"2": 0}}, NAND) == FaultConfig(
        grown_bad={7: 0}, grave_pages={2: 0}
    )
    cleared = config.updated({"bitflip_pages": "", "weak_blocks": ""}, NAND)
    assert not cleared.bitflip_pages and not cleared.weak_blocks


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"bit_flips": "1"}, "unknown fault 'bit_flips'"),
        ({"bitflip_rate": "1.5"}, "not a probability"),
        ({"bitflip_rate": "often"}, "not a number"),
        ({"bitflips": "2.5"}, "not an integer"),
        ({"bitflips": -1}, "negative"),
        ({"bitflip_pages": "64"}, "page 64 is outside 0..63"),
        ({"weak_blocks": "16:1"}, "block 16 is outside 0..15"),
        ({"weak_blocks": "3:-1"}, "negative"),
        ({"erase_fail_blocks": "5-3"}, "empty range"),
        ({"erase_fail_blocks": "a"}, "is not N or N-M"),
        ({"ecc_step": "300"}, "must divide WRITESIZE 512"),
        ({"bitflip_threshold": "0"}, "at least 1"),
        ({"grave_pages": 1.5}, "not a list"),
    ],
)
def test_invalid_settings_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        FaultConfig().updated(changes, NAND)


def test_read_faults_need_nand():
    with pytest.raises(ConfigError, match="bitflip_rate needs a NAND type"):
        FaultConfig().updated({"bitflip_rate": "0.1"}, NOR)
    assert FaultConfig().updated({"weak_blocks": "1:2"}, NOR).weak_blocks == {1: 2}


def test_parse_assignments_needs_key_value():
    assert parse_assignments([" a = 1 "]) == {"a": "1"}
    with pytest.raises(ConfigError, match="not KEY=VALUE"):
        parse_assignments(["bitflips"])


def test_a_refused_update_changes_nothing():
    faulty = layer(bitflip_pages="1")
    with pytest.raises(ConfigError):
        faulty.update({"bitflip_pages": "2", "bitflip_rate": "2"})
    assert faulty.config.bitflip_pages == {1}


# -- reads


def test_correctable_flip_on_a_chosen_page(serve):
    kernel, faulty = serve(bitflip_pages="1")
    expected = pattern(8 * BLOCK)
    assert kernel.read(0, PAGE) == (expected[:PAGE], 0)
    assert kernel.read(PAGE, PAGE) == (expected[PAGE : 2 * PAGE], EUCLEAN)
    assert kernel.read(0, 3 * PAGE) == (expected[: 3 * PAGE], EUCLEAN)
    # Raw reads bypass the ECC: the flipped bit shows, nothing is reported.
    data, soft = kernel.read(PAGE, PAGE, p.IO_INBAND | p.IO_RAW)
    assert soft == 0
    assert len(differing_bits(data, expected[PAGE : 2 * PAGE])) == 1
    counters = faulty.fault_stats()["injected"]
    assert counters["corrected"] == 3 and counters["bits_flipped"] == 3


def test_correctable_flips_on_a_chosen_block(serve):
    kernel, _ = serve(bitflip_blocks="2")
    softs = [kernel.read(page * PAGE, 16)[1] for page in range(16)]
    assert softs == [0] * 8 + [EUCLEAN] * 4 + [0] * 4


def test_uncorrectable_error_corrupts_one_ecc_step(serve):
    kernel, faulty = serve(ecc_error_pages="2", ecc_strength="2", ecc_step="128")
    expected = pattern(8 * BLOCK)[2 * PAGE : 3 * PAGE]
    data, soft = kernel.read(2 * PAGE, PAGE)
    assert soft == EBADMSG
    flips = differing_bits(data, expected)
    assert len(flips) == 3  # ecc_strength + 1
    assert len({bit // (128 * 8) for bit in flips}) == 1
    # The worst page decides: -EBADMSG beats -EUCLEAN in one request.
    faulty.update({"bitflip_pages": "1"})
    assert kernel.read(PAGE, 2 * PAGE)[1] == EBADMSG
    assert faulty.fault_stats()["injected"]["uncorrectable"] == 2


def test_a_partial_read_gets_its_window_of_the_damage():
    whole, part = layer(seed=3, ecc_error_pages="2"), layer(seed=3, ecc_error_pages="2")
    for faulty in (whole, part):
        faulty.inner.write(2 * PAGE, p.IO_INBAND, memoryview(pattern(PAGE)))
    full = bytearray(PAGE)
    assert whole.read(2 * PAGE, p.IO_INBAND, memoryview(full)) == EBADMSG
    window = bytearray(200)
    assert part.read(2 * PAGE + 100, p.IO_INBAND, memoryview(window)) == EBADMSG
    assert window == full[100:300]


def test_oob_reads_carry_no_injected_faults(serve):
    kernel, _ = serve(ecc_error_pages="0-63")
    assert kernel.read(0, 16, p.IO_OOB_PLACE) == (b"\xff" * 16, 0)


def test_rates(serve):
    kernel, faulty = serve(bitflip_rate="1")
    assert {kernel.read(page * PAGE, PAGE)[1] for page in range(16)} == {EUCLEAN}
    faulty.update({"bitflip_rate": "0", "ecc_error_rate": "0.25"})
    softs = [kernel.read(page % 16 * PAGE, PAGE)[1] for page in range(400)]
    assert set(softs) == {0, EBADMSG}
    assert 60 <= softs.count(EBADMSG) <= 140
    assert faulty.fault_stats()["injected"]["uncorrectable"] == softs.count(EBADMSG)


def test_nandsim_bitflips_within_ecc_strength_are_corrected(serve):
    kernel, faulty = serve(bitflips="1", bitflips_prob="1")
    expected = pattern(PAGE)
    assert kernel.read(0, PAGE) == (expected, EUCLEAN)
    data, soft = kernel.read(0, PAGE, p.IO_INBAND | p.IO_RAW)
    assert soft == 0 and len(differing_bits(data, expected)) == 1
    # Eight flips in a 512-byte step that corrects eight, reported from nine only.
    faulty.update({"bitflips": "8", "ecc_strength": "8", "ecc_step": "512"})
    assert kernel.read(0, PAGE) == (expected, EUCLEAN)
    faulty.update({"bitflip_threshold": "9"})
    assert kernel.read(0, PAGE) == (expected, 0)
    counters = faulty.fault_stats()["injected"]
    assert counters["corrected"] == 3 and counters["corrected_silently"] == 1  # RAW included


def test_injected_flips_are_counted_for_the_kernel():
    faulty = layer(bitflip_pages="1")
    faulty.inner.write(0, p.IO_INBAND, memoryview(pattern(4 * PAGE)))
    out = memoryview(bytearray(3 * PAGE))
    assert faulty.read(0, p.IO_INBAND, out) == EUCLEAN and faulty.last_bitflips == (1, 1)
    assert faulty.read(0, p.IO_INBAND, out[:PAGE]) == 0 and faulty.last_bitflips == (0, 0)
    # nandsim's bitflips= events: the worst step's flips and all of them.
    faulty.update({"bitflip_pages": "", "bitflips": "8", "bitflips_prob": "1",
                   "ecc_strength": "8", "ecc_step": "512"})
    for _ in range(5):
        assert faulty.read(0, p.IO_INBAND, out[:PAGE]) == EUCLEAN
        worst, total = faulty.last_bitflips
        assert 1 <= worst <= total <= 8, faulty.last_bitflips
    # Without read faults the model's own count comes through.
    faulty.clear()
    faulty.read(0, p.IO_INBAND, out[:PAGE])
    assert faulty.last_bitflips == faulty.inner.last_bitflips == (0, 0)


def _over_an_engine(**faults: object) -> tuple[FaultLayer, NandDevice]:
    """A fault layer on a NAND model whose engine corrects 1 bit per 256 bytes."""
    geometry = dataclasses.replace(NAND, oobavail=8)
    device = make_device(geometry, open_store(geometry), ecc=scheme("hamming-256", geometry))
    assert isinstance(device, NandDevice)
    faulty = FaultLayer(PowerCutLayer(device), config=FaultConfig().updated(faults, geometry))
    faulty.write(0, p.IO_INBAND, memoryview(pattern(4 * PAGE)))
    return faulty, device


def test_with_an_engine_the_engine_senses_the_flips():
    faulty, engine = _over_an_engine(bitflip_pages="1")
    out = memoryview(bytearray(PAGE))
    assert faulty.read(PAGE, p.IO_INBAND, out) == EUCLEAN and bytes(out) == pattern(4 * PAGE)[
        PAGE:2 * PAGE]
    assert faulty.last_bitflips == (1, 1)
    assert engine.ecc_counts["corrected_bits"] == 1, "the engine corrected it"
    assert faulty.read(PAGE, p.IO_INBAND | p.IO_RAW, out) == 0
    assert len(differing_bits(bytes(out), pattern(4 * PAGE)[PAGE:2 * PAGE])) == 1
    # Two flips in one 256-byte step are beyond the engine: it says so, data as sensed.
    faulty.update({"bitflip_pages": "", "ecc_error_pages": "2"})
    assert faulty.read(2 * PAGE, p.IO_INBAND, out) == EBADMSG
    flips = differing_bits(bytes(out), pattern(4 * PAGE)[2 * PAGE:3 * PAGE])
    assert len(flips) == 2 and flips[0] // 2048 == flips[1] // 2048
    assert engine.ecc_counts["uncorrectable_reads"] == 1


def test_with_an_engine_a_grave_page_is_still_garbage():
    faulty, _ = _over_an_engine(grave_pages="3:0")
    out = memoryview(bytearray(PAGE))
    assert faulty.read(3 * PAGE, p.IO_INBAND, out) == EBADMSG
    assert bytes(out) != pattern(4 * PAGE)[3 * PAGE:]


def test_nandsim_bitflips_beyond_ecc_strength_are_uncorrectable(serve):
    kernel, faulty = serve(bitflips="4", bitflips_prob="1", ecc_strength="0")
    expected = pattern(PAGE)
    for _ in range(10):
        data, soft = kernel.read(0, PAGE)
        assert soft == EBADMSG
        assert 1 <= len(differing_bits(data, expected)) <= 4
    assert faulty.fault_stats()["injected"]["uncorrectable"] == 10


def test_grave_page_returns_garbage_after_its_good_reads(serve):
    kernel, faulty = serve(grave_pages="3:2")
    expected = pattern(8 * BLOCK)[3 * PAGE : 4 * PAGE]
    assert kernel.read(3 * PAGE, PAGE) == (expected, 0)
    assert kernel.read(3 * PAGE, PAGE) == (expected, 0)
    first, soft = kernel.read(3 * PAGE, PAGE)
    second, soft2 = kernel.read(3 * PAGE, PAGE)
    assert soft == soft2 == EBADMSG
    assert len(differing_bits(first, expected)) > 1000  # garbage, not a few flips
    assert first != second
    assert kernel.read(2 * PAGE, PAGE)[1] == 0
    assert faulty.fault_stats()["injected"]["grave_reads"] == 2
    faulty.update({"grave_pages": "3"})  # setting it again restarts the count
    assert kernel.read(3 * PAGE, PAGE) == (expected, 0)


def read_trace(seed: int) -> list[tuple[bytes, int]]:
    faulty = layer(seed=seed, bitflip_rate=0.3, ecc_error_rate=0.2, bitflips=4, bitflips_prob=0.3)
    faulty.inner.write(0, p.IO_INBAND, memoryview(pattern(4 * BLOCK)))
    trace = []
    for step in range(60):
        out = bytearray(PAGE)
        raw = p.IO_RAW if step % 3 == 0 else 0
        soft = faulty.read(step % 16 * PAGE, p.IO_INBAND | raw, memoryview(out))
        trace.append((bytes(out), soft))
    return trace


def test_same_seed_same_faults_other_seed_other_faults():
    first = read_trace(1)
    assert read_trace(1) == first
    assert read_trace(2) != first
    assert {soft for _, soft in first} == {0, EUCLEAN, EBADMSG}


# -- programs and erases


def test_weak_block_fails_after_its_erases_like_nandsim(serve):
    kernel, faulty = serve(weak_blocks="5:2")
    kernel.erase(5 * BLOCK, BLOCK)
    kernel.erase(5 * BLOCK, BLOCK)
    kernel.write(5 * BLOCK, b"\0" * PAGE)
    fails(errno.EIO, kernel.erase, 5 * BLOCK, BLOCK)
    assert kernel.read(5 * BLOCK, PAGE)[0] == b"\xff" * PAGE  # erased, then reported failed
    fails(errno.EIO, kernel.erase, 5 * BLOCK, BLOCK)
    kernel.erase(6 * BLOCK, BLOCK)
    assert faulty.fault_stats()["injected"]["erase_failures"] == 2


def test_erase_failure_stops_a_multi_block_erase(serve):
    kernel, _ = serve(erase_fail_blocks="2")
    fails(errno.EIO, kernel.erase, 0, 4 * BLOCK)
    data = pattern(8 * BLOCK)
    assert kernel.read(0, 3 * BLOCK)[0] == b"\xff" * 3 * BLOCK
    assert kernel.read(3 * BLOCK, BLOCK)[0] == data[3 * BLOCK : 4 * BLOCK]


def test_weak_page_fails_after_its_programs(serve):
    kernel, faulty = serve(weak_pages="40:1")
    kernel.erase(10 * BLOCK, BLOCK)
    assert kernel.write(40 * PAGE, b"\x0f" * PAGE) == 0
    kernel.erase(10 * BLOCK, BLOCK)
    fails(errno.EIO, kernel.write, 40 * PAGE, b"\x3c" * PAGE)
    assert kernel.read(40 * PAGE, PAGE)[0] == b"\x3c" * PAGE  # programmed, then reported failed
    assert faulty.fault_stats()["injected"]["program_failures"] == 1


def test_program_failure_stops_a_multi_page_write(serve):
    kernel, _ = serve(program_fail_pages="42")
    kernel.erase(10 * BLOCK, BLOCK)
    fails(errno.EIO, kernel.write, 40 * PAGE, b"\0" * 4 * PAGE)
    assert kernel.read(40 * PAGE, 3 * PAGE)[0] == b"\0" * 3 * PAGE
    assert kernel.read(43 * PAGE, PAGE)[0] == b"\xff" * PAGE


def test_program_failure_on_a_block_covers_oob(serve):
    kernel, _ = serve(program_fail_blocks="11")
    fails(errno.EIO, kernel.write, 44 * PAGE + 1, b"\0\0", p.IO_OOB_AUTO)
    fails(errno.EIO, kernel.write, 45 * PAGE, b"\0" * PAGE)
    kernel.write(48 * PAGE, b"\0" * PAGE)


def test_grown_bad_block(serve):
    kernel, faulty = serve(grown_bad="6:1,7")
    assert kernel.isbad(7 * BLOCK) == 1  # :0, bad right away
    assert kernel.isbad(6 * BLOCK) == 0
    kernel.erase(6 * BLOCK, BLOCK)
    assert kernel.isbad(6 * BLOCK + 100) == 1
    fails(errno.EIO, kernel.write, 6 * BLOCK, b"\0" * PAGE)
    fails(errno.EIO, kernel.erase, 6 * BLOCK, BLOCK)
    assert kernel.read(6 * BLOCK, PAGE)[0] == b"\xff" * PAGE  # nothing was programmed
    stats = faulty.fault_stats()
    assert stats["grown_bad_blocks"] == [6, 7]
    assert stats["injected"]["grown_bad_refusals"] == 2
    faulty.clear()
    assert kernel.isbad(6 * BLOCK) == 0
    kernel.write(6 * BLOCK, b"\0" * PAGE)


def test_block_faults_on_nor(serve):
    kernel, faulty = serve(NOR, weak_blocks="1:0", program_fail_blocks="2", grown_bad="3")
    fails(errno.EIO, kernel.erase, 1024, 1024)
    fails(errno.EIO, kernel.write, 2048 + 10, b"\0" * 4)
    fails(errno.EIO, kernel.erase, 3072, 1024)
    kernel.write(10, b"\0" * 4)
    assert kernel.isbad(3072) == 0  # NOR has no bad blocks to report
    assert faulty.fault_stats()["injected"]["erase_failures"] == 1


def test_model_errors_still_come_through():
    faulty = layer(program_fail_pages="5", weak_blocks="1")
    with pytest.raises(OpError) as info:
        faulty.write(100, p.IO_INBAND, memoryview(b"\0" * PAGE))  # misaligned
    assert info.value.errno == errno.EINVAL
    with pytest.raises(OpError) as info:
        faulty.erase(100, BLOCK)
    assert info.value.errno == errno.EINVAL


# -- control channel


@pytest.fixture
def control(tmp_path: Path, serve: Serve) -> Iterator[Callable[..., Any]]:
    """control(**faults) -> (kernel, faulty, socket path)."""
    servers: list[ControlServer] = []

    def _control(**faults: object) -> tuple[FakeKernel, FaultLayer, str]:
        kernel, faulty = serve(**faults)
        stats = Stats()
        stats.sources["faults"] = faulty.fault_stats
        powercut = faulty.inner
        assert isinstance(powercut, PowerCutLayer)
        path = str(tmp_path / f"ctl{len(servers)}.sock")
        server = ControlServer(path, Controller(faulty, powercut, stats))
        server.start()
        servers.append(server)
        return kernel, faulty, path

    yield _control
    for server in servers:
        server.stop()


def test_control_socket_changes_faults_at_run_time(control):
    kernel, _, path = control()
    assert kernel.read(PAGE, PAGE)[1] == 0
    reply = ask(path, {"cmd": "set", "faults": {"bitflip_pages": "1", "weak_blocks": {"3": 1}}})
    assert reply["ok"] is True
    assert reply["faults"]["bitflip_pages"] == [1]
    assert kernel.read(PAGE, PAGE)[1] == EUCLEAN
    got = ask(path, {"cmd": "get"})
    assert got["faults"]["weak_blocks"] == {"3": 1} and got["seed"] == 0
    stats = ask(path, {"cmd": "stats"})["stats"]
    assert stats["faults"]["injected"]["corrected"] == 1
    assert ask(path, {"cmd": "clear"})["faults"]["bitflip_pages"] == []
    assert kernel.read(PAGE, PAGE)[1] == 0


def test_control_arms_a_power_cut(control):
    _, _, path = control()
    reply = ask(path, {"cmd": "powercut", "in": 2})
    assert reply["powercut"]["armed_at"] == reply["powercut"]["ops"] + 2
    assert ask(path, {"cmd": "powercut", "at": 1})["ok"] is False  # op 1 is done
    assert ask(path, {"cmd": "powercut", "at": None})["powercut"]["armed_at"] is None


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"cmd": "reboot"}, "unknown cmd 'reboot'"),
        ({"cmd": "set", "faults": {"bitflip_rate": 3}}, "not a probability"),
        ({"cmd": "set"}, "set needs"),
        ({"cmd": "powercut", "in": 0}, '"in" must be'),
        ({"cmd": "powercut", "at": "soon"}, '"at" must be'),
        ([1, 2], "JSON object"),
    ],
)
def test_control_refuses_bad_requests(control, message, error):
    _, _, path = control()
    reply = ask(path, message)
    assert reply["ok"] is False and error in reply["error"]


def test_control_line_protocol_on_one_connection(control):
    _, _, path = control()
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(path)
        sock.sendall(b'{"cmd": "get"}\nnot json\n\n{"cmd": "clear"}\n')
        lines = sock.makefile("rb")
        replies = [json.loads(lines.readline()) for _ in range(3)]
    assert [reply["ok"] for reply in replies] == [True, False, True]
    assert "not JSON" in replies[1]["error"]


def test_control_while_the_loop_serves(control):
    kernel, _, path = control()
    errors: list[BaseException] = []

    def flip() -> None:
        try:
            for index in range(30):
                ask(path, {"cmd": "set", "faults": {"bitflip_rate": index % 2}})
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    thread = threading.Thread(target=flip)
    thread.start()
    softs = {kernel.read(page % 16 * PAGE, PAGE)[1] for page in range(200)}
    thread.join()
    assert not errors
    assert softs <= {0, EUCLEAN}


def test_ctl_client(control, capsys):
    kernel, _, path = control()
    assert cli.main(["ctl", "--control", path, "set", "bitflip_pages=1", "ecc_error_pages=2"]) == 0
    assert json.loads(capsys.readouterr().out)["faults"]["ecc_error_pages"] == [2]
    assert kernel.read(2 * PAGE, PAGE)[1] == EBADMSG
    assert cli.main(["ctl", "--control", path, "powercut", "+3"]) == 0
    armed = json.loads(capsys.readouterr().out)["powercut"]
    assert armed["armed_at"] == armed["ops"] + 3 == 4  # the fixture's data was op 1
    assert cli.main(["ctl", "--control", path, "powercut", "off"]) == 0
    assert cli.main(["ctl", "--control", path, "send", '{"cmd": "get"}']) == 0
    capsys.readouterr()
    assert cli.main(["ctl", "--control", path, "set", "bitflip_pages=99"]) == 1
    assert "outside 0..63" in json.loads(capsys.readouterr().out)["error"]
    assert cli.main(["ctl", "--control", path, "get", "extra"]) == 1
    assert cli.main(["ctl", "--control", path, "powercut", "soon"]) == 1
    assert cli.main(["ctl", "--control", path + ".missing", "get"]) == 2
    assert "cannot talk to" in capsys.readouterr().err


def test_control_path_must_not_be_another_file(tmp_path):
    path = tmp_path / "regular"
    path.write_text("keep me")
    faulty = layer()
    assert isinstance(faulty.inner, PowerCutLayer)
    server = ControlServer(str(path), Controller(faulty, faulty.inner, Stats()))
    with pytest.raises(ConfigError, match="not a socket"):
        server.start()
    assert path.read_text() == "keep me"


def test_stale_control_socket_is_replaced_a_live_one_is_not(tmp_path):
    path = str(tmp_path / "ctl.sock")
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(path)  # left behind as by a killed server
    faulty = layer()
    assert isinstance(faulty.inner, PowerCutLayer)
    server = ControlServer(path, Controller(faulty, faulty.inner, Stats()))
    server.start()
    try:
        assert ask(path, {"cmd": "get"})["ok"] is True
        other = ControlServer(path, Controller(faulty, faulty.inner, Stats()))
        with pytest.raises(ConfigError, match="another server is listening"):
            other.start()
        assert ask(path, {"cmd": "get"})["ok"] is True
    finally:
        server.stop()
