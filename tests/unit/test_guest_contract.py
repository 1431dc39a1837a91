"""The guest's output contract: the server's lines round-trip, /proc/mtd parses."""

from __future__ import annotations

import pytest

from guest import contract

PROC_MTD = """dev:    size   erasesize  name
mtd0: 04000000 00020000 "NAND simulator partition 0"
mtd1: 00100000 00010000 "boot (ro)"
mtd2: 01000000 00020000 "mtdram test device"
"""


def test_registered_lines_round_trip() -> None:
    mtds = [contract.RegisteredMtd(3, "musebench-nand", 64 << 20, "/dev/mtd3"),
            contract.RegisteredMtd(4, "rest", 1 << 20, "/dev/mtd4")]
    out = "muse: warning: x\n" + "".join(m.line() + "\n" for m in mtds) + contract.READY_LINE
    assert contract.registered(out) == mtds
    assert contract.is_ready(out) and not contract.is_ready(out.replace("ready", "steady"))


def test_proc_mtd() -> None:
    found = contract.proc_mtd(PROC_MTD)
    assert [(m.index, m.size, m.erasesize) for m in found] == [
        (0, 64 << 20, 128 << 10), (1, 1 << 20, 64 << 10), (2, 16 << 20, 128 << 10)]
    assert contract.mtd_index(PROC_MTD, contract.NANDSIM_NAME) == 0
    assert contract.mtd_index(PROC_MTD, "boot (ro)") == 1
    assert contract.mtd_index(PROC_MTD, "boot") is None


class FakeServer:
    def __init__(self, out: str) -> None:
        self.out = out

    def expect(self, pattern: str, timeout: float) -> object:
        assert pattern == contract.READY_PATTERN and timeout == 7
        return None

    def text(self) -> str:
        return self.out


def test_start_server_waits_and_names_the_mtds() -> None:
    spawned: list[str] = []
    line = contract.RegisteredMtd(0, "n", 4096, "/dev/mtd0").line()

    def spawn(command: str) -> FakeServer:
        spawned.append(command)
        return FakeServer(f"{line}\n{contract.READY_LINE}\n")

    _, mtds = contract.start_server(spawn, "--type ram", timeout=7)
    assert spawned == ["exec python3 -m guest.muse serve --type ram"]
    assert [m.index for m in mtds] == [0]
    with pytest.raises(contract.NotRegistered, match="without registered MTDs"):
        contract.start_server(lambda c: FakeServer(contract.READY_LINE), "x", timeout=7)
