"""Hostile reply modes against the fake kernel: the exact bytes each one sends.

Expected replies are built here with struct from the wire ABI, not with the
server's packing code, so a wrong offset or field in either shows up.
"""

import errno
import json
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from guest.muse import cli, ctl, mtdabi
from guest.muse import protocol as p
from guest.muse.control import Commands
from guest.muse.devices import make_device
from guest.muse.errors import ConfigError
from guest.muse.fakekernel import FakeKernel, ServerThread, socket_pair
from guest.muse.geometry import Geometry
from guest.muse.hostile.catalogue import catalogue
from guest.muse.hostile.engine import EXIT_HOSTILE_DEATH, HostileEngine
from guest.muse.hostile.modes import MODES
from guest.muse.hostile.rules import parse_rule
from guest.muse.lifecycle import Server
from guest.muse.seeding import draw
from guest.muse.session import Session
from guest.muse.stats import Stats
from guest.muse.stores import open_store

KIB = 1024
GEO = Geometry(
    name="hostile-nand",
    mtd_type=mtdabi.MTD_NANDFLASH,
    flags=mtdabi.MTD_WRITEABLE,
    size=16 * 128 * KIB,
    writesize=2048,
    erasesize=128 * KIB,
    oobsize=64,
    oobavail=32,
)
BAD_BLOCK = 3
READ, WRITE, ERASE = p.Opcode.MUSE_READ, p.Opcode.MUSE_WRITE, p.Opcode.MUSE_ERASE
ISBAD, MARKBAD, SYNC = p.Opcode.MUSE_ISBAD, p.Opcode.MUSE_MARKBAD, p.Opcode.MUSE_SYNC
INIT = p.Opcode.MUSE_INIT


# -- the wire, by hand
def header(length: int, error: int, unique: int) -> bytes:
    return struct.pack("<IiQ", length, error, unique)


def io_reply(unique: int, length: int, data: bytes = b"", soft: int = 0) -> bytes:
    body = struct.pack("<QII", length, soft, 0) + data
    return header(16 + len(body), 0, unique) + body


def isbad_reply(unique: int, result: int) -> bytes:
    return header(24, 0, unique) + struct.pack("<II", result, 0)


def read_in(addr: int, length: int) -> bytes:
    return struct.pack("<QQII", addr, length, p.IO_INBAND, 0)


def write_in(addr: int, data: bytes) -> bytes:
    return struct.pack("<QQII", addr, len(data), p.IO_INBAND, 0) + data


def addr_in(addr: int) -> bytes:
    return struct.pack("<Q", addr)


def erase_in(addr: int, length: int) -> bytes:
    return struct.pack("<QQ", addr, length)


@dataclass
class Served:
    kernel: FakeKernel
    engine: HostileEngine
    session: Session
    deaths: list[int]

    def request(self, opcode: int, payload: bytes = b"") -> int:
        return self.kernel.send(opcode, payload)

    def raw(self) -> bytes:
        return self.kernel.sock.recv(1 << 22)

    def init(self) -> int:
        unique = self.request(INIT, struct.pack("<II", 7, 34))
        self.raw()
        return unique

    def probe(self) -> None:
        """The next message is a SYNC's normal reply: nothing else was sent before it."""
        unique = self.request(SYNC)
        assert self.raw() == header(16, 0, unique)


Serve = Callable[..., Served]


@pytest.fixture
def serve() -> Iterator[Serve]:
    threads: list[ServerThread] = []

    def _serve(*specs: str, init: bool = True, seed: int = 0, **engine: Any) -> Served:
        deaths: list[int] = []
        rules = [parse_rule(spec) for spec in specs]
        hostile = HostileEngine(rules, seed=seed, exit=deaths.append, **engine)
        device = make_device(GEO, open_store(GEO), factory_bad=[BAD_BLOCK])
        kernel_sock, server_sock = socket_pair()
        session = Session(server_sock.fileno(), device, hostile=hostile)
        threads.append(ServerThread(session, kernel_sock, server_sock))
        served = Served(FakeKernel(kernel_sock), hostile, session, deaths)
        if init:
            served.init()
        return served

    yield _serve
    for thread in threads:
        thread.close()


# -- one case per mode (and argument form): request -> exact messages
@dataclass(frozen=True)
class Case:
    spec: str
    opcode: int
    payload: bytes
    expected: Callable[[int], list[bytes]]  # unique -> messages
    dies: bool = False


FF = b"\xff"
DATA = bytes(range(256)) * 8  # one 2048-byte page
U32 = (1 << 32) - 1
U64 = (1 << 64) - 1

CASES: dict[str, list[Case]] = {
    "short": [
        Case("short", READ, read_in(0, 2048), lambda u: [header(16, 0, u)]),
        Case("short:100", READ, read_in(0, 2048),
             lambda u: [header(32 + 2048 - 100, 0, u) + struct.pack("<QII", 2048, 0, 0)
                        + FF * (2048 - 100)]),
        Case("short:4,op=isbad", ISBAD, addr_in(0),
             lambda u: [header(20, 0, u) + struct.pack("<I", 0)]),
        Case("short:8,op=erase", ERASE, erase_in(0, 128 * KIB),
             lambda u: [struct.pack("<Ii", 8, 0)]),
    ],
    "long": [
        Case("long", READ, read_in(0, 512),
             lambda u: [header(32 + 512 + 16, 0, u) + struct.pack("<QII", 512, 0, 0)
                        + FF * 512 + b"\xa5" * 16]),
        Case("long:3,op=erase", ERASE, erase_in(0, 128 * KIB),
             lambda u: [header(19, 0, u) + b"\xa5\xa5\xa5"]),
    ],
    "nopayload": [
        Case("nopayload", READ, read_in(2048, 2048),
             lambda u: [header(32, 0, u) + struct.pack("<QII", 2048, 0, 0)]),
    ],
    "badlen": [
        Case("badlen", READ, read_in(0, 64),
             lambda u: [header(32 + 64 + 16, 0, u) + struct.pack("<QII", 64, 0, 0) + FF * 64]),
        Case("badlen:-1,op=sync", SYNC, b"", lambda u: [header(15, 0, u)]),
        Case("badlen:8,follow=1,op=markbad", MARKBAD, addr_in(5 * 128 * KIB),
             lambda u: [header(24, 0, u), header(16, 0, u)]),
    ],
    "soft-error": [
        Case("soft-error:-100000", READ, read_in(0, 16),
             lambda u: [io_reply(u, 16, FF * 16, (-100000) & U32)]),
        Case("soft-error:0x7fffffff", WRITE, write_in(0, DATA),
             lambda u: [io_reply(u, 2048, soft=0x7FFFFFFF)]),
        Case("soft-error:1,op=read", READ, read_in(0, 8), lambda u: [io_reply(u, 8, FF * 8, 1)]),
        Case("soft-error:4294967295", READ, read_in(0, 8),
             lambda u: [io_reply(u, 8, FF * 8, U32)]),
        Case("soft-error:-4095", WRITE, write_in(2048, DATA),
             lambda u: [io_reply(u, 2048, soft=(-4095) & U32)]),
    ],
    "io-len": [
        Case("io-len:0", READ, read_in(0, 32), lambda u: [io_reply(u, 0, FF * 32)]),
        Case("io-len:18446744073709551615", WRITE, write_in(0, DATA),
             lambda u: [io_reply(u, U64)]),
    ],
    "io-len-short": [
        Case("io-len-short", READ, read_in(0, 2048), lambda u: [io_reply(u, 2047, FF * 2048)]),
        Case("io-len-short:5000", WRITE, write_in(0, DATA), lambda u: [io_reply(u, 0)]),
    ],
    "io-len-long": [
        Case("io-len-long", WRITE, write_in(0, DATA), lambda u: [io_reply(u, 2049)]),
        Case("io-len-long:18446744073709551615", READ, read_in(0, 16),
             lambda u: [io_reply(u, 15, FF * 16)]),
    ],
    "isbad": [
        Case("isbad:2", ISBAD, addr_in(0), lambda u: [isbad_reply(u, 2)]),
        Case("isbad:-1", ISBAD, addr_in(BAD_BLOCK * 128 * KIB), lambda u: [isbad_reply(u, U32)]),
        Case("isbad:0x7fffffff", ISBAD, addr_in(0), lambda u: [isbad_reply(u, 0x7FFFFFFF)]),
    ],
    "error": [
        Case("error:5", READ, read_in(0, 16), lambda u: [header(16, 5, u)]),
        Case("error:-4096,op=erase", ERASE, erase_in(0, 128 * KIB),
             lambda u: [header(16, -4096, u)]),
        Case("error:0", ISBAD, addr_in(0), lambda u: [header(16, 0, u)]),
        Case("error:-2147483648,follow=1", WRITE, write_in(0, DATA),
             lambda u: [header(16, -(1 << 31), u), io_reply(u, 2048)]),
    ],
    "swallow": [
        Case("swallow", WRITE, write_in(0, DATA), lambda u: []),
    ],
    "die": [
        Case("die", ERASE, erase_in(0, 128 * KIB), lambda u: [], dies=True),
    ],
    "die-in-registration": [
        Case("die-in-registration", ISBAD, addr_in(0), lambda u: [], dies=True),
    ],
    "die-after-init": [],  # needs the INIT itself: test_die_after_init_replies_then_dies
    "wrong-unique": [
        Case("wrong-unique", SYNC, b"", lambda u: [header(16, 0, u + (1 << 32))]),
        Case("wrong-unique:+1", READ, read_in(0, 4),
             lambda u: [io_reply(u + 1, 4, FF * 4)]),
        Case("wrong-unique:-2,follow=1", SYNC, b"",
             lambda u: [header(16, 0, u - 2), header(16, 0, u)]),
        Case("wrong-unique:0", ERASE, erase_in(0, 128 * KIB), lambda u: [header(16, 0, 0)]),
    ],
    "dup": [
        Case("dup", ISBAD, addr_in(BAD_BLOCK * 128 * KIB),
             lambda u: [isbad_reply(u, 1), isbad_reply(u, 1)]),
    ],
}  # fmt: skip


def _cases() -> list[Any]:
    return [
        pytest.param(case, id=f"{name}[{case.spec}]")
        for name, cases in CASES.items()
        for case in cases
    ]


@pytest.mark.parametrize("case", _cases())
def test_mode_sends_exactly(serve, case, capfd):
    spec = case.spec if "after=" in case.spec else case.spec + ",after=init"
    served = serve(spec)
    unique = served.request(case.opcode, case.payload)
    for message in case.expected(unique):
        assert served.raw() == message
    served.probe()
    label = case.spec.split(",")[0]
    fired = f"muse: hostile: fired {label} on opcode {p.opcode_name(case.opcode)} unique {unique}"
    assert fired in capfd.readouterr().err.splitlines()
    assert served.engine.snapshot()["fired"] == {label.split(":")[0]: 1}
    assert served.deaths == ([EXIT_HOSTILE_DEATH] if case.dies else [])


def test_every_catalogued_mode_has_cases():
    doc: Any = catalogue()
    listed = [mode["name"] for mode in doc["modes"]]
    assert listed == list(MODES)
    assert set(CASES) == set(listed)
    assert all(CASES[name] for name in listed if name != "die-after-init")


def test_die_after_init_replies_then_dies(serve, capfd):
    served = serve("die-after-init", init=False)
    unique = served.request(INIT, struct.pack("<II", 7, 34))
    reply = served.raw()
    assert struct.unpack_from("<IiQ", reply) == (len(reply), 0, unique)
    assert b"NAME=hostile-nand\0" in reply
    served.probe()
    assert served.deaths == [EXIT_HOSTILE_DEATH]
    assert f"fired die-after-init on opcode MUSE_INIT unique {unique}" in capfd.readouterr().err


def test_init_reply_modes(serve):
    served = serve("long:2,op=init", init=False)
    unique = served.request(INIT, struct.pack("<II", 7, 34))
    reply = served.raw()
    assert reply.endswith(b"\0\xa5\xa5")
    assert struct.unpack_from("<IiQ", reply) == (len(reply), 0, unique)
    served = serve("short:5,op=init", init=False)
    unique = served.request(INIT, struct.pack("<II", 7, 34))
    reply = served.raw()
    assert reply.endswith(b"OOBAVAIL=32\0SUBPAGESHI")
    assert struct.unpack_from("<IiQ", reply) == (len(reply), 0, unique)


# -- off by default
def _transcript(served: Served) -> list[bytes]:
    requests = [
        (INIT, struct.pack("<II", 7, 34)),
        (WRITE, write_in(0, DATA)),
        (READ, read_in(0, 2048)),
        (READ, read_in(1 << 40, 16)),  # an error reply
        (ISBAD, addr_in(BAD_BLOCK * 128 * KIB)),
        (MARKBAD, addr_in(7 * 128 * KIB)),
        (ERASE, erase_in(0, 128 * KIB)),
        (SYNC, b""),
    ]
    messages = []
    for opcode, payload in requests:
        served.request(opcode, payload)
        messages.append(served.raw())
    return messages


def test_no_rules_no_change(serve):
    with_engine = _transcript(serve(init=False))
    device = make_device(GEO, open_store(GEO), factory_bad=[BAD_BLOCK])
    kernel_sock, server_sock = socket_pair()
    plain = ServerThread(Session(server_sock.fileno(), device), kernel_sock, server_sock)
    try:
        without = _transcript(Served(FakeKernel(kernel_sock), HostileEngine(), plain.session, []))
    finally:
        plain.close()
    assert with_engine == without
    assert len(without) == 8 and without[3] == header(16, -errno.EINVAL, 8)


def test_a_plain_server_has_no_engine():
    args = cli.build_parser().parse_args(["serve", "--type", "ram", "--size", "1MiB"])
    cfg = cli.build_config(args)
    assert not cfg.hostile.wanted and cfg.hostile.init_payload is None
    assert Server(cfg)._hostile_engine() is None


# -- triggers
def _fired_reads(served: Served, count: int, length: int = 16) -> list[int]:
    """Which of `count` READs came back rewritten (1-based)."""
    fired = []
    for n in range(1, count + 1):
        unique = served.request(READ, read_in(0, length))
        if served.raw() != io_reply(unique, length, FF * length):
            fired.append(n)
    return fired


def test_nth_fires_once(serve):
    assert _fired_reads(serve("io-len:0,nth=3,after=init"), 6) == [3]


def test_every_with_count(serve):
    assert _fired_reads(serve("io-len:0,every=2,count=3,after=init"), 9) == [2, 4, 6]


def test_nth_and_every(serve):
    assert _fired_reads(serve("io-len:0,nth=2,every=3,after=init"), 9) == [2, 5, 8]


def test_prob_is_seeded(serve):
    expected = [n for n in range(1, 41) if draw(7, "hostile", 0, n) < 0.3]
    assert _fired_reads(serve("io-len:0,prob=0.3,after=init", seed=7), 40) == expected
    other = _fired_reads(serve("io-len:0,prob=0.3,after=init", seed=8), 40)
    assert other != expected and 0 < len(expected) < 40


def test_op_filter(serve):
    served = serve("soft-error:-5,op=write,after=init")
    assert _fired_reads(served, 2) == []
    unique = served.request(WRITE, write_in(0, DATA))
    assert served.raw() == io_reply(unique, 2048, soft=(-5) & U32)


def test_default_phase_waits_for_ready(serve):
    served = serve("io-len:0")
    assert _fired_reads(served, 2) == []
    served.engine.mark_ready()
    assert _fired_reads(served, 2) == [1]


def test_after_init_does_not_count_the_init(serve):
    served = serve("dup,op=any,after=init", init=False)
    served.init()
    served.probe()  # the first request after INIT: duplicated
    assert served.raw() == header(16, 0, served.kernel._unique)


def test_first_due_rule_wins_and_the_other_fires_next(serve, capfd):
    served = serve("io-len:1,after=init", "io-len:2,after=init")
    lengths = []
    for _ in range(3):
        served.request(READ, read_in(0, 16))
        lengths.append(struct.unpack_from("<Q", served.raw(), 16)[0])
    assert lengths == [1, 2, 16]
    assert served.engine.snapshot()["rules"] == [
        {"spec": "io-len:1,after=init", "seen": 3, "fired": 1},
        {"spec": "io-len:2,after=init", "seen": 3, "fired": 1},
    ]


def test_field_modes_skip_error_replies(serve):
    served = serve("soft-error:9,after=init")
    unique = served.request(READ, read_in(1 << 40, 16))  # out of range: the model fails it
    assert served.raw() == header(16, -errno.EINVAL, unique)
    unique = served.request(READ, read_in(0, 16))
    assert served.raw() == io_reply(unique, 16, FF * 16, 9)


def test_die_in_registration_ignores_writes(serve):
    served = serve("die-in-registration")
    unique = served.request(WRITE, write_in(0, DATA))
    assert served.raw() == io_reply(unique, 2048)
    served.request(READ, read_in(0, 16))
    served.probe()
    assert served.deaths == [EXIT_HOSTILE_DEATH]


def test_die_runs_the_before_exit_hooks_first(serve):
    served = serve("die,after=init")
    order: list[str] = []
    served.engine.before_exit.append(lambda: order.append(f"hook, deaths={served.deaths}"))
    served.request(SYNC)
    served.probe()
    assert order == ["hook, deaths=[]"] and served.deaths == [EXIT_HOSTILE_DEATH]


def test_raw_init_payload_is_sent_verbatim_and_counted(serve, capfd):
    payload = struct.pack("<IIII", 7, 33, 1, 2) + b"NAME=x"
    served = serve(init=False, init_payload=payload)
    unique = served.request(INIT, struct.pack("<II", 7, 34))
    assert served.raw() == header(16 + len(payload), 0, unique) + payload
    assert served.engine.snapshot()["fired"] == {"raw-init": 1}
    assert f"fired raw-init on opcode MUSE_INIT unique {unique}" in capfd.readouterr().err


# -- rules
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("explode", "unknown hostile mode 'explode'"),
        ("soft-error", "needs an argument: soft-error:VALUE"),
        ("soft-error:abc", "'abc' is not an integer"),
        ("soft-error:4294967296", "is outside -2147483648..4294967295"),
        ("badlen:0", "(and not 0)"),
        ("io-len:-1", "is outside 0.."),
        ("dup:3", "takes no argument"),
        ("isbad:1,op=read", "outside what it applies to: MUSE_ISBAD"),
        ("short,op=frob", "op 'frob' is not a number"),
        ("short,nth=0", "nth='0' must be an integer >= 1"),
        ("short,prob=1.5", "prob='1.5' must be in (0, 1]"),
        ("short,after=never", "after='never'"),
        ("short,color=red", "KEY=VALUE with KEY one of op, nth"),
        ("swallow,follow=1", "follow=1 makes no sense"),
        ("long,follow=maybe", "follow takes 1 or 0"),
        ("die-after-init,op=read", "outside what it applies to: MUSE_INIT"),
    ],
)
def test_bad_rules(spec, message):
    with pytest.raises(ConfigError) as info:
        parse_rule(spec)
    assert message in str(info.value)


def test_rule_defaults():
    rule = parse_rule(" soft-error:-74 ")
    assert (rule.ops, rule.nth, rule.count, rule.after, rule.follow) == (
        frozenset({READ, WRITE}), 1, 1, "ready", False)  # fmt: skip
    assert rule.label == "soft-error:-74" and rule.arg == (-74)
    rule = parse_rule("wrong-unique:+3,op=read+write+8198,prob=0.5,every=4")
    assert rule.ops == {READ, WRITE, SYNC} and rule.relative and rule.arg == 3
    assert (rule.nth, rule.every, rule.count, rule.prob) == (4, 4, None, 0.5)
    assert parse_rule("die-in-registration").after == "init"
    assert parse_rule("die").ops == {READ, WRITE, ERASE, ISBAD, MARKBAD, SYNC}


# -- control
def _commands(engine: HostileEngine) -> Commands:
    commands = Commands(Stats())
    commands.register("hostile", engine.control)
    return commands


def test_control_adds_and_clears(serve):
    served = serve()
    commands = _commands(served.engine)
    line = json.dumps({"cmd": "hostile", "add": "dup,after=init"})
    reply = json.loads(commands.handle_line(line))
    assert reply["ok"] and reply["hostile"]["rules"] == [
        {"spec": "dup,after=init", "seen": 0, "fired": 0}
    ]
    unique = served.request(SYNC)
    assert served.raw() == served.raw() == header(16, 0, unique)
    replace = {"cmd": "hostile", "clear": True, "add": ["io-len:0,after=init"]}
    replaced: Any = commands.handle(replace)
    assert [rule["spec"] for rule in replaced["hostile"]["rules"]] == ["io-len:0,after=init"]
    assert replaced["hostile"]["fired"] == {"dup": 1}
    cleared: Any = commands.handle({"cmd": "hostile", "clear": True})
    assert cleared["hostile"]["rules"] == []


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"cmd": "hostile", "add": 5}, "takes a rule string or a list"),
        ({"cmd": "hostile", "add": ["dup", "nope"]}, "unknown hostile mode 'nope'"),
    ],
)
def test_control_refuses_bad_requests(request_, message):
    engine = HostileEngine()
    reply: Any = _commands(engine).handle(request_)
    assert reply == {"ok": False, "error": reply["error"]} and message in reply["error"]
    assert engine.snapshot()["rules"] == []  # all or nothing


def test_ctl_builds_hostile_requests():
    assert ctl.build_request("hostile", []) == {"cmd": "hostile"}
    assert ctl.build_request("hostile", ["off"]) == {"cmd": "hostile", "clear": True}
    assert ctl.build_request("hostile", ["dup", "isbad:2"]) == {
        "cmd": "hostile",
        "add": ["dup", "isbad:2"],
    }
