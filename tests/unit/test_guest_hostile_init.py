"""Raw MUSE_INIT replies, --unchecked, presets, the trivial model and the CLI side."""

import errno
import json
import logging
import mmap
import socket
import struct
import time
from typing import Any

import pytest

from guest.muse import cli, lifecycle, mtdabi
from guest.muse import protocol as p
from guest.muse.ctl import request
from guest.muse.devices import make_device
from guest.muse.devices.trivial import TrivialDevice
from guest.muse.errors import ConfigError
from guest.muse.fakekernel import FakeKernel, ServerThread, socket_pair
from guest.muse.geometry import Geometry
from guest.muse.hostile import rawinit
from guest.muse.hostile.config import model_problems
from guest.muse.hostile.engine import EXIT_HOSTILE_DEATH, HostileEngine
from guest.muse.hostile.presets import PRESETS
from guest.muse.registration import RegistrationWatcher
from guest.muse.session import Session, StopReason
from guest.muse.stores import open_store
from tests.unit.test_guest_cli import Child, fake_register

KIB = 1024
MIB = 1 << 20
GEO = Geometry("g", mtdabi.MTD_NANDFLASH, mtdabi.MTD_WRITEABLE, 4 * MIB, 2048, 128 * KIB,
               oobsize=64, oobavail=32, parts="1M(a),-(b)")  # fmt: skip
GEO_INFO = (
    b"NAME=g\0TYPE=4\0FLAGS=1024\0SIZE=4194304\0WRITESIZE=2048\0WRITEBUFSIZE=2048\0"
    b"ERASESIZE=131072\0OOBSIZE=64\0OOBAVAIL=32\0SUBPAGESHIFT=0\0PARTSCMDLINE=1M(a),-(b)\0"
)


@pytest.fixture(autouse=True)
def _muse_log_to_caplog():
    """cli.main() binds the "muse" logger to a captured stderr that closes with its test."""
    logger = logging.getLogger("muse")
    saved = logger.handlers[:], logger.propagate, logger.level
    logger.handlers[:], logger.propagate = [], True
    yield
    logger.handlers[:], logger.propagate, logger.level = saved[0], saved[1], saved[2]


def config(*args: str) -> lifecycle.ServeConfig:
    return cli.build_config(cli.build_parser().parse_args(["serve", *args]))


def init_out(major: int, minor: int, read: int, write: int) -> bytes:
    return struct.pack("<IIII", major, minor, read, write)


# -- composing the payload
def test_plain_raw_init_is_the_geometry():
    assert rawinit.RawInit().info_for(GEO) == GEO_INFO
    assert rawinit.RawInit().payload(GEO, 4096) == init_out(7, 34, 4096, 4096) + GEO_INFO


def test_params_override_in_place_add_and_drop():
    raw = rawinit.RawInit(
        params=(("NAME", "other"), ("SIZE", "abc"), ("FOO", "1"), ("BARE", None), ("", "x")),
        drop=("OOBAVAIL", "PARTSCMDLINE", "MISSING"),
    )
    assert raw.info_for(GEO) == (
        b"NAME=other\0TYPE=4\0FLAGS=1024\0SIZE=abc\0WRITESIZE=2048\0WRITEBUFSIZE=2048\0"
        b"ERASESIZE=131072\0OOBSIZE=64\0SUBPAGESHIFT=0\0FOO=1\0BARE\0=x\0"
    )


def test_raw_info_version_and_max_io():
    raw = rawinit.RawInit(info=b"NAME=x", version=(7, 33), max_io=(0, 0xFFFFFFFF))
    assert raw.payload(GEO, 4096) == init_out(7, 33, 0, 0xFFFFFFFF) + b"NAME=x"


@pytest.mark.parametrize(
    ("text", "pair"),
    [("7.34", (7, 34)), ("0.0", (0, 0)), ("4294967295.0x10", (0xFFFFFFFF, 16))],
)
def test_parse_version(text, pair):
    assert rawinit.parse_version(text) == pair


@pytest.mark.parametrize("text", ["7", "7.", "7.x", "-1.34", "4294967296.1", "7,34"])
def test_bad_versions(text):
    with pytest.raises(ConfigError, match="--init-version"):
        rawinit.parse_version(text)


def test_parse_max_io():
    assert rawinit.parse_max_io("0,4095") == (0, 4095)
    with pytest.raises(ConfigError, match="--init-max-io"):
        rawinit.parse_max_io("4096")


def test_parse_raw(tmp_path):
    assert rawinit.parse_raw("4e 41 4d 45 3d 78") == b"NAME=x"
    blob = tmp_path / "info"
    blob.write_bytes(b"\0" * 5000)
    assert rawinit.parse_raw(f"@{blob}") == b"\0" * 5000
    with pytest.raises(ConfigError, match="hex digits"):
        rawinit.parse_raw("NAME=x")
    with pytest.raises(ConfigError, match="No such file"):
        rawinit.parse_raw(f"@{tmp_path}/none")


# -- what the kernel makes of it
@pytest.mark.parametrize(
    ("info", "view"),
    [
        (b"NAME=x\0", {"NAME": b"x"}),
        (b"\0\0 NAME = x y \0NAME=z\0", {"NAME": b"z"}),
        (b"FLAG\0", {"FLAG": b""}),
        (b"", {}),
        (b"NAME=x", None),  # unterminated
        (b"=x\0", None),  # empty key
        (b"NAME=x\0" + b"\0" * 4090, None),  # more than MUSE_INIT_INFO_MAX
    ],
)
def test_kernel_view(info, view):
    assert rawinit.kernel_view(info) == view


@pytest.mark.parametrize(
    ("value", "number"),
    [(b"12", 12), (b"+12", 12), (b"12\n", 12), (b"0x10", None), (b"-1", None), (b"", None),
     (b"4294967295", 0xFFFFFFFF), (b"4294967296", None)],
)  # fmt: skip
def test_numbers_parse_like_kstrtou32(value, number):
    geo = rawinit.announced_geometry({"NAME": b"n", "WRITESIZE": value})
    assert (geo.writesize if geo else None) == number


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (init_out(7, 34, 4096, 4096) + GEO_INFO, None),
        (init_out(7, 38, 0, 0) + GEO_INFO, None),  # floored to 4096
        (init_out(7, 33, 4096, 4096) + GEO_INFO, "version 7.33"),
        (init_out(8, 34, 4096, 4096) + GEO_INFO, "version 8.34"),
        (init_out(7, 34, 4096, 4096) + GEO_INFO[:-1], "does not parse"),
        (init_out(7, 34, 4096, 4096) + GEO_INFO.replace(b"WRITESIZE=2048", b"WRITESIZE=0"),
         "WRITESIZE must not be 0"),
        (init_out(7, 34, 4096, 4096) + GEO_INFO.replace(b"=2048\0E", b"=8192\0E"),
         "max_read/max_write 4096 must be at least WRITEBUFSIZE 8192"),
        (init_out(7, 34, 4096, 4096) + GEO_INFO.replace(b"NAME=g\0", b""), "does not parse"),
        (init_out(7, 34, 4096, 4096)[:12], "muse_init_out alone"),
        (init_out(7, 35, 4096, 4096) + GEO_INFO + b"ECCSTRENGTH=1\0ECCSTEPSIZE=256\0", None),
        (init_out(7, 35, 4096, 4096) + GEO_INFO + b"ECCSTRENGTH=1\0", "both or neither"),
        (init_out(7, 35, 4096, 4096) + GEO_INFO + b"ECCSTRENGTH=1\0ECCSTEPSIZE=300\0",
         "whole ECC steps"),
        (init_out(7, 35, 4096, 4096) + GEO_INFO + b"ECCSTRENGTH=2049\0ECCSTEPSIZE=256\0",
         "exceeds"),
        (init_out(7, 35, 4096, 4096) + GEO_INFO + b"ECCSTRENGTH=1x\0ECCSTEPSIZE=256\0",
         "does not parse"),
        (init_out(7, 35, 4096, 4096) + GEO_INFO.replace(b"TYPE=4", b"TYPE=3").replace(
            b"OOBSIZE=64\0OOBAVAIL=32", b"OOBSIZE=0\0OOBAVAIL=0")
         + b"ECCSTRENGTH=1\0ECCSTEPSIZE=256\0", "only a NAND"),
    ],
)  # fmt: skip
def test_kernel_verdict(payload, why):
    verdict = rawinit.kernel_verdict(payload)
    assert (why is None) == (not verdict)
    assert why is None or why in "; ".join(verdict)


# -- serve options
def test_unchecked_sends_what_was_given():
    args = ["--type", "nand", "--name", "bad", "--size", "1MiB", "--writesize", "0"]
    with pytest.raises(ConfigError, match="WRITESIZE must not be 0"):
        config(*args)
    cfg = config("--unchecked", *args)
    assert cfg.hostile.init_payload == init_out(7, 34, 131072, 131072) + (
        b"NAME=bad\0TYPE=4\0FLAGS=1024\0SIZE=1048576\0WRITESIZE=0\0WRITEBUFSIZE=0\0"
        b"ERASESIZE=131072\0OOBSIZE=0\0OOBAVAIL=0\0SUBPAGESHIFT=0\0"
    )
    assert cfg.hostile.trivial == "the kernel should refuse this INIT"
    assert cfg.register_timeout == 10.0 and config("--type", "ram").register_timeout == 60.0


def test_init_options_through_the_cli(tmp_path):
    cfg = config("--type", "ram", "--name", "r", "--size", "1MiB", "--init-param", "SIZE=abc",
                 "--init-param", "FOO=1", "--init-param", "NAME=", "--init-drop", "FLAGS",
                 "--init-version", "7.99", "--init-max-io", "1,4095")  # fmt: skip
    assert cfg.hostile.init_payload == init_out(7, 99, 1, 4095) + (
        b"NAME=\0TYPE=1\0SIZE=abc\0WRITESIZE=1\0WRITEBUFSIZE=1\0ERASESIZE=131072\0OOBSIZE=0\0"
        b"OOBAVAIL=0\0SUBPAGESHIFT=0\0FOO=1\0"
    )
    blob = tmp_path / "big"
    blob.write_bytes(b"A" * 5000)
    cfg = config("--type", "ram", "--init-raw", f"@{blob}")
    assert cfg.hostile.init_payload == init_out(7, 34, 131072, 131072) + b"A" * 5000
    assert "does not parse" in cfg.hostile.verdict[0]
    with pytest.raises(ConfigError, match="--init-raw replaces"):
        config("--init-raw", "00", "--init-param", "A=1")


def test_announced_geometry_is_what_the_model_serves():
    cfg = config("--type", "nand", "--size", "4MiB", "--init-param", "SIZE=8388608",
                 "--init-param", "NAME=seen")  # fmt: skip
    assert cfg.geometry.size == 8 * MIB and cfg.geometry.name == "seen"
    assert not cfg.hostile.trivial and cfg.hostile.watch == ("seen", [])
    assert cfg.max_io == 131072 and cfg.hostile.request_max_write == 131072


def test_buffers_follow_the_announced_max_io():
    cfg = config("--type", "nand", "--init-max-io", "0,67108864")
    assert cfg.max_io == 16 * MIB and cfg.hostile.request_max_write == 64 * MIB
    assert config("--type", "nand", "--init-max-io", "0,0").max_io == 4096


def test_trivial_model_refuses_model_options():
    with pytest.raises(ConfigError, match="--bad-blocks, --fault need a geometry the models"):
        config("--preset", "huge-size", "--bad-blocks", "1", "--fault", "bitflip_rate=0.1")
    # Moot when the kernel should refuse the INIT anyway.
    cfg = config("--type", "nand", "--init-version", "7.33", "--fault", "bitflip_rate=0.1")
    assert cfg.hostile.trivial and not cfg.injection.wanted


def test_trivial_model_keeps_the_control_socket(tmp_path):
    cfg = config("--preset", "huge-size", "--control", str(tmp_path / "ctl"))
    assert cfg.hostile.control == str(tmp_path / "ctl") and cfg.injection.control is None


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({}, None),
        ({"erasesize": 3 * KIB}, "eraseblocks are not whole pages"),
        ({"oobsize": 1, "oobavail": 0}, "bad block marker"),
        ({"oobavail": 63}, "bad block marker"),
        ({"writesize": 2, "subpage_shift": 2}, "subpages"),
        ({"writesize": 6, "erasesize": 384, "subpage_shift": 2, "oobsize": 4, "oobavail": 2},
         "subpages"),
    ],
)
def test_model_problems(fields, problem):
    geo = Geometry("m", mtdabi.MTD_NANDFLASH, 0, 6 * MIB, 2048, 128 * KIB, oobsize=64,
                   oobavail=32)  # fmt: skip
    problems = model_problems(Geometry(**{**geo.__dict__, **fields}))
    assert (problem is None) == (not problems)
    assert problem is None or problem in problems[0]


def test_trivial_device():
    device = TrivialDevice(GEO, "why")
    out = bytearray(b"\0" * 64)
    assert device.read(1 << 63, p.IO_OOB_AUTO, memoryview(out)) == 0 and out == b"\xff" * 64
    assert device.write(0, p.IO_INBAND, memoryview(b"\0")) == 0
    device.erase(0, 1 << 64)
    device.mark_bad(5)
    assert not device.is_bad(0)
    assert device.stats() == {"type": "trivial", "reason": "why", "reads": 1, "writes": 1,
                              "erases": 1, "markbads": 1}  # fmt: skip


# -- presets
@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_builds_and_matches_its_expectation(name):
    preset = PRESETS[name]
    cfg = config("--preset", name)
    payload = cfg.hostile.init_payload
    assert payload is not None and len(payload) - p.INIT_OUT.size <= p.MUSE_INIT_INFO_MAX
    assert ("rejected" if cfg.hostile.verdict else "registered") == preset.expect
    assert ("trivial model" in preset.help) == bool(cfg.hostile.trivial) or cfg.hostile.verdict
    assert set(preset.args) & {"--unchecked", "--init-param", "--init-max-io"}


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_model_serves_without_errors(name):
    cfg = config("--preset", name)
    geo = cfg.geometry
    if cfg.hostile.trivial:
        model: Any = TrivialDevice(geo, cfg.hostile.trivial)
    else:
        model = make_device(geo, open_store(geo))
    engine = HostileEngine(init_payload=cfg.hostile.init_payload)
    kernel_sock, server_sock = socket_pair()
    session = Session(server_sock.fileno(), model, max_io=cfg.max_io, hostile=engine,
                      request_max_write=cfg.hostile.request_max_write)  # fmt: skip
    thread = ServerThread(session, kernel_sock, server_sock)
    kernel = FakeKernel(kernel_sock)
    try:
        kernel.send(p.Opcode.MUSE_INIT, p.INIT_IN.pack(7, 34))
        assert kernel.recv().payload == cfg.hostile.init_payload
        page = max(geo.writesize, 16)
        assert kernel.write(0, b"\x5a" * page) == 0
        data, soft = kernel.read(0, page)
        assert soft == 0 and data in (b"\x5a" * page, b"\xff" * page)
        kernel.erase(0, geo.erasesize)
        assert kernel.isbad(0) == 0
    finally:
        thread.close()


def test_options_after_a_preset_override_it():
    cfg = config("--preset", "nand-writesize-not-pow2", "--size", "12MiB", "--name", "n")
    assert b"NAME=n\0" in (cfg.hostile.init_payload or b"")
    assert b"SIZE=12582912\0" in (cfg.hostile.init_payload or b"")
    with pytest.raises(SystemExit):
        config("--preset", "nope")


def test_special_presets():
    cfg = config("--preset", "parts-many-unnamed")
    assert len(cfg.geometry.partitions()) == 1001 and not cfg.hostile.trivial
    assert cfg.hostile.watch == (None, [])  # the kernel's cmdlinepart decides
    cfg = config("--preset", "huge-size")
    assert cfg.geometry.size == (1 << 64) - 128 * KIB and "memory model" in cfg.hostile.trivial
    assert b"NAME=\0" in (config("--preset", "name-empty").hostile.init_payload or b"")


# -- the catalogue command
def test_catalogue_json(capsys):
    assert cli.main(["hostile", "--list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    names = [mode["name"] for mode in doc["modes"]]
    assert len(names) == len(set(names)) == 16
    assert [preset["name"] for preset in doc["presets"]] == list(PRESETS)
    for entry in doc["modes"] + doc["presets"]:
        assert entry["description"] and entry["kernel"]
    assert {preset["expect"] for preset in doc["presets"]} == {"registered", "rejected"}
    assert set(doc["keys"]) == {"op", "nth", "every", "prob", "count", "after", "follow"}
    assert "--init-raw HEX|@FILE" in doc["init_options"]


def test_catalogue_text(capsys):
    assert cli.main(["hostile", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 16 + len(PRESETS)
    assert lines[0].split()[:2] == ["mode", "short[:K]"]
    assert lines[-1].split()[:3] == ["preset", "leak-mtdparts-small-max-io", "[rejected]"]


def test_dry_run_shows_the_raw_init(capsys):
    assert cli.main(["serve", "--dry-run", "--type", "ram", "--init-raw", "4e414d453d78"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "NAME=x  (unterminated)"
    assert out[1:5] == ["max_read=131072", "max_write=131072", "version=7.34", "info_bytes=6"]
    assert out[5].startswith("model=trivial") and out[6].startswith("kernel=refuses")


# -- the session's side
def _session(**kwargs: Any) -> tuple[Session, FakeKernel, ServerThread]:
    kernel_sock, server_sock = socket_pair()
    session = Session(server_sock.fileno(), TrivialDevice(GEO, "test"), max_io=4096, **kwargs)
    return session, FakeKernel(kernel_sock), ServerThread(session, kernel_sock, server_sock)


def test_request_buffer_fits_a_large_announced_max_write():
    session, kernel, thread = _session(request_max_write=100 * MIB)
    try:
        assert isinstance(session._req, mmap.mmap) and len(session._req) == 100 * MIB + 80
        assert kernel.write(0, b"\0" * 300 * KIB) == 0  # more than max_io: it arrives whole
    finally:
        thread.close()


def test_an_impossible_max_write_keeps_the_usual_buffer():
    session, _, thread = _session(request_max_write=0xFFFFFFFF)
    thread.close()
    assert isinstance(session._req, bytearray) and len(session._req) == 8192


def test_unreadable_requests_stop_the_server(monkeypatch, caplog):
    kernel_sock, server_sock = socket_pair()
    session = Session(server_sock.fileno(), TrivialDevice(GEO, "test"))

    def refuse(fd: int, buffers: object) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr("guest.muse.session.os.readv", refuse)
    assert session.serve() is StopReason.ABORTED
    assert "refuses to read a request into 131152 bytes" in caplog.text
    kernel_sock.close()
    server_sock.close()


def test_a_refused_init_reply_stops_the_server(monkeypatch, caplog):
    kernel_sock, server_sock = socket_pair()
    session = Session(server_sock.fileno(), TrivialDevice(GEO, "test"))
    called: list[bool] = []
    session.on_init = lambda: called.append(True)
    request_ = p.pack_request(p.Opcode.MUSE_INIT, 2, p.INIT_IN.pack(7, 34))
    session._req[: len(request_)] = request_

    def refuse(fd: int, data: object) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr("guest.muse.session.os.write", refuse)
    session.handle(len(request_))
    monkeypatch.undo()
    assert session.serve() is StopReason.ABORTED and called == [True]
    assert "the kernel refused the MUSE_INIT reply" in caplog.text
    kernel_sock.close()
    server_sock.close()


def test_watcher_without_a_master_name_waits_for_a_stable_set(tmp_path):
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    sysfs.mkdir()
    dev.mkdir()
    watcher = RegistrationWatcher(pid=42, master_name=None, part_names=[], on_ready=print,
                                  on_timeout=print, sysfs_root=str(sysfs), dev_root=str(dev),
                                  settle=0.1)  # fmt: skip
    assert watcher.poll() is None
    fake_register(sysfs, dev, 1, "x", 4096, 42)
    assert watcher.poll() is None
    time.sleep(0.12)
    assert [entry.name for entry in watcher.poll() or []] == ["x"]
    fake_register(sysfs, dev, 2, "y", 4096, 42)
    assert watcher.poll() is None


# -- the process
def test_unchecked_init_rejected_exits_3(tmp_path):
    child = Child(tmp_path, "--unchecked", "--type", "nand", "--name", "bad", "--size", "1MiB",
                  "--writesize", "0")  # fmt: skip
    unique = child.kernel.send(p.Opcode.MUSE_INIT, p.INIT_IN.pack(7, 34))
    reply = child.kernel.sock.recv(1 << 16)
    info = (b"NAME=bad\0TYPE=4\0FLAGS=1024\0SIZE=1048576\0WRITESIZE=0\0WRITEBUFSIZE=0\0"
            b"ERASESIZE=131072\0OOBSIZE=0\0OOBAVAIL=0\0SUBPAGESHIFT=0\0")  # fmt: skip
    assert reply == struct.pack("<IiQ", 32 + len(info), 0, unique) + init_out(
        7, 34, 131072, 131072
    ) + info
    child.kernel.sock.close()  # what the kernel's abort looks like
    code, err = child.finish()
    assert code == lifecycle.EXIT_REJECTED
    assert "kernel rejected the device (see dmesg)" in err
    assert f"muse: hostile: fired raw-init on opcode MUSE_INIT unique {unique}" in err


def test_die_exits_8_with_stats(tmp_path):
    stats = tmp_path / "stats.json"
    child = Child(tmp_path, "--type", "ram", "--size", "1MiB", "--stats-json", str(stats),
                  "--hostile", "die,op=write,after=init")  # fmt: skip
    child.kernel.init()
    assert child.kernel.read(0, 16)[0] == b"\xff" * 16
    unique = child.kernel.send(p.Opcode.MUSE_WRITE, p.IO_IN.pack(0, 4, p.IO_INBAND, 0) + b"abcd")
    code, err = child.finish()
    assert code == EXIT_HOSTILE_DEATH
    assert f"muse: hostile: fired die on opcode MUSE_WRITE unique {unique}" in err
    snap = json.loads(stats.read_text())
    assert snap["hostile"]["fired"] == {"die": 1}
    assert snap["ops"]["MUSE_WRITE"]["requests"] == 1


def test_preset_registers_with_the_trivial_model_and_hostile_control(tmp_path):
    path = str(tmp_path / "ctl.sock")
    child = Child(tmp_path, "--preset", "huge-size", "--name", "huge", "--control", path)
    reply = child.kernel.init()
    assert reply.params["SIZE"] == str((1 << 64) - 128 * KIB)
    assert child.kernel.read((1 << 63) + 4096, 32) == (b"\xff" * 32, 0)
    fake_register(child.sysfs, child.dev, 0, "huge", (1 << 64) - 128 * KIB, child.proc.pid)
    child.lines_until("muse: ready")
    answer = request(path, {"cmd": "hostile", "add": "dup,op=sync"})
    assert answer["ok"], answer
    unique = child.kernel.send(p.Opcode.MUSE_SYNC)
    first, second = child.kernel.sock.recv(64), child.kernel.sock.recv(64)
    assert first == second == struct.pack("<IiQ", 16, 0, unique)
    stats: Any = request(path, {"cmd": "stats"})["stats"]
    assert stats["device"]["type"] == "trivial" and stats["hostile"]["fired"]["dup"] == 1
    child.proc.terminate()
    code, err = child.finish()
    assert code == lifecycle.EXIT_OK, err


def test_raw_init_can_overflow_the_info_page(tmp_path):
    child = Child(tmp_path, "--type", "ram", "--init-raw", "41" * 5000)
    child.kernel.send(p.Opcode.MUSE_INIT, p.INIT_IN.pack(7, 34))
    child.kernel.sock.settimeout(5)
    reply = child.kernel.sock.recv(1 << 16)
    assert len(reply) == 32 + 5000 and reply.endswith(b"A" * 5000)
    child.kernel.sock.shutdown(socket.SHUT_RDWR)
    code, err = child.finish()
    assert code == lifecycle.EXIT_REJECTED, err
