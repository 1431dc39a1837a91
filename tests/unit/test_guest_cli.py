"""The guest MUSE server as a process: CLI, registration wait, signals, exit codes."""

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from guest import contract
from guest.muse import cli, lifecycle
from guest.muse import protocol as p
from guest.muse.errors import DeviceUnavailable
from guest.muse.fakekernel import FakeKernel, ReplyError, socket_pair
from guest.muse.registration import MtdEntry, RegistrationWatcher

ROOT = Path(__file__).resolve().parents[2]
KIB = 1024


def fake_register(
    sysfs: Path, dev: Path, index: int, name: str, size: int, pid: int, with_pid: bool = True
) -> None:
    """What the kernel makes visible: sysfs attributes (muse_pid last) and the node."""
    entry = sysfs / f"mtd{index}"
    entry.mkdir()
    (entry / "name").write_text(name + "\n")
    (entry / "size").write_text(f"{size}\n")
    (dev / f"mtd{index}").touch()
    if with_pid:
        (entry / "muse_pid").write_text(f"{pid}\n")


class Child:
    """The CLI in a subprocess, serving the server end of a socketpair via --fd."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        self.sysfs = tmp_path / "sys"
        self.dev = tmp_path / "dev"
        self.sysfs.mkdir()
        self.dev.mkdir()
        kernel_sock, server_sock = socket_pair()
        fd = server_sock.fileno()
        cmd = [sys.executable, "-m", "guest.muse", "serve", "--fd", str(fd),
               "--sysfs-root", str(self.sysfs), "--dev-root", str(self.dev), *args]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, pass_fds=(fd,), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        server_sock.close()
        self.kernel = FakeKernel(kernel_sock)

    def lines_until(self, marker: str, timeout: float = 10.0) -> list[str]:
        lines: list[str] = []
        stdout = self.proc.stdout
        assert stdout is not None

        def reader() -> None:
            for raw in stdout:
                lines.append(raw.decode().rstrip("\n"))
                if lines[-1] == marker:
                    return

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        thread.join(timeout)
        assert lines and lines[-1] == marker, lines
        return lines

    def finish(self, timeout: float = 10.0) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout)
        finally:
            self.proc.kill()
            self.kernel.sock.close()
        assert self.proc.stderr is not None
        return code, self.proc.stderr.read().decode()


def wait_for(predicate: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_full_lifecycle(tmp_path):
    image = tmp_path / "nand.img"
    stats = tmp_path / "stats.json"
    ready = tmp_path / "ready.json"
    child = Child(
        tmp_path, "--type", "nand", "--name", "clinand", "--size", "4MiB", "--writesize", "2048",
        "--oobsize", "64", "--erasesize", "128KiB", "--parts", "1M(boot)ro,-(rest)",
        "--image", str(image), "--image-format", "raw+oob", "--bad-blocks", "3",
        "--stats-json", str(stats), "--ready-file", str(ready),
    )  # fmt: skip
    kernel = child.kernel
    reply = kernel.init()
    assert reply.params["NAME"] == "clinand"
    assert reply.params["PARTSCMDLINE"] == "1M(boot)ro,-(rest)"
    assert reply.params["OOBAVAIL"] == "32"
    # The kernel reads while it registers: the server must answer meanwhile.
    assert kernel.isbad(3 * 128 * KIB) == 1
    assert kernel.write(2 * 2048, b"\xa5" * 2048) == 0
    pid = child.proc.pid
    fake_register(child.sysfs, child.dev, 4, "clinand", 4 << 20, pid)
    fake_register(child.sysfs, child.dev, 5, "boot", 1 << 20, pid)
    fake_register(child.sysfs, child.dev, 3, "someone-else", 1 << 20, pid + 100000)
    fake_register(child.sysfs, child.dev, 6, "rest", 3 << 20, pid)
    lines = child.lines_until("muse: ready")
    assert lines == [
        f"muse: registered mtd4 name=clinand size={4 << 20} dev={child.dev}/mtd4",
        f"muse: registered mtd5 name=boot size={1 << 20} dev={child.dev}/mtd5",
        f"muse: registered mtd6 name=rest size={3 << 20} dev={child.dev}/mtd6",
        "muse: ready",
    ]
    # What the host reads of it (guest/contract.py).
    output = "\n".join(lines)
    assert contract.is_ready(output)
    assert [(m.index, m.name, m.size) for m in contract.registered(output)] == [
        (4, "clinand", 4 << 20), (5, "boot", 1 << 20), (6, "rest", 3 << 20)]
    doc = json.loads(ready.read_text())
    assert doc["pid"] == pid
    assert [(m["index"], m["name"], m["dev"]) for m in doc["mtd"]] == [
        (4, "clinand", f"{child.dev}/mtd4"),
        (5, "boot", f"{child.dev}/mtd5"),
        (6, "rest", f"{child.dev}/mtd6"),
    ]
    child.proc.send_signal(signal.SIGUSR1)
    wait_for(stats.exists)
    snap = json.loads(stats.read_text())
    assert snap["ops"]["MUSE_WRITE"] == {"requests": 1, "errors": 0}
    assert kernel.write(5 * 2048, b"\x3c" * 2048) == 0
    kernel.erase(128 * KIB, 128 * KIB)
    child.proc.send_signal(signal.SIGTERM)
    code, err = child.finish()
    assert code == 0, err
    raw = image.read_bytes()
    stride = 2048 + 64
    assert raw[2 * stride : 2 * stride + 2048] == b"\xa5" * 2048
    assert raw[5 * stride : 5 * stride + 2048] == b"\x3c" * 2048
    first_of_block3 = 3 * 64 * stride
    assert raw[first_of_block3 + 2048 : first_of_block3 + 2050] == b"\0\0"
    snap = json.loads(stats.read_text())
    assert snap["pid"] == pid
    assert snap["ops"]["MUSE_WRITE"]["requests"] == 2
    assert snap["ops"]["MUSE_INIT"]["requests"] == 1
    assert snap["store"]["flushes"] >= 1
    assert snap["device"]["bad_blocks"] == [3]
    assert snap["device"]["erase_counts"][:3] == [0, 1, 0]


def test_sigint_before_registration_stops_cleanly(tmp_path):
    stats = tmp_path / "stats.json"
    child = Child(tmp_path, "--type", "nor", "--size", "1MiB", "--stats-json", str(stats))
    child.kernel.init()
    child.kernel.write(0, b"\0" * 10)
    child.proc.send_signal(signal.SIGINT)
    code, err = child.finish()
    assert code == 0, err
    assert json.loads(stats.read_text())["bytes"]["written"] == 10


def test_kernel_abort_before_registration_exits_3(tmp_path):
    child = Child(tmp_path, "--type", "ram", "--size", "1MiB")
    child.kernel.init()
    child.kernel.sock.close()  # what ENODEV is on the real device
    code, err = child.finish()
    assert code == lifecycle.EXIT_REJECTED
    assert "kernel rejected the device (see dmesg)" in err


def test_abort_after_registration_exits_5(tmp_path):
    child = Child(tmp_path, "--type", "ram", "--size", "1MiB", "--name", "r")
    child.kernel.init()
    fake_register(child.sysfs, child.dev, 0, "r", 1 << 20, child.proc.pid)
    child.lines_until("muse: ready")
    child.kernel.sock.close()
    code, err = child.finish()
    assert code == lifecycle.EXIT_ABORTED
    assert "aborted" in err


def test_major_mismatch_exits_4(tmp_path):
    child = Child(tmp_path, "--type", "ram", "--size", "1MiB")
    with pytest.raises(ReplyError) as info:
        child.kernel.init(major=8, minor=1)
    assert info.value.errno == errno.EPROTO
    code, err = child.finish()
    assert code == lifecycle.EXIT_PROTOCOL
    assert "FUSE 8.1" in err


def test_registration_timeout_exits_6(tmp_path):
    child = Child(tmp_path, "--type", "ram", "--size", "1MiB", "--register-timeout", "0.3")
    child.kernel.init()
    code, err = child.finish()
    assert code == lifecycle.EXIT_NOT_REGISTERED
    assert "did not register the device within 0.3 s" in err


def test_missing_device_exits_2(capsys):
    assert (
        cli.main(["serve", "--type", "ram", "--size", "1MiB", "--device", "/nonexistent/muse"]) == 2
    )
    assert "cannot open /nonexistent/muse: not found" in capsys.readouterr().err


def test_unopenable_device_says_cap_sys_admin(monkeypatch):
    def denied(path: str, flags: int) -> int:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(DeviceUnavailable, match="needs CAP_SYS_ADMIN"):
        lifecycle.open_device("/dev/muse")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "12X"], "invalid size '12X'"),
        (["--size", "1000"], "not a multiple of WRITESIZE"),
        (["--type", "nor", "--bad-blocks", "1"], "needs a NAND type"),
        (["--type", "ram", "--check-program-once"], "needs a NAND type"),
        (["--size", "1MiB", "--bad-blocks", "8"], "outside eraseblocks 0..7"),
        (["--size", "1MiB", "--bad-blocks", "x"], "is not N or N-M"),
        (["--flags", "writeable,fast"], "unknown MTD flag 'fast'"),
        (["--max-io", "3000"], "multiple of the 2048-byte subpage"),
        (["--type", "nor", "--writebufsize", "8KiB", "--max-io", "4KiB"], "at least WRITEBUFSIZE"),
        (["--parts", "1M(a),-(b),1M(c)"], "fill-up"),
        (["--type", "nor", "--ecc", "hamming-512"], "needs a NAND type"),
        (["--oobavail", "60", "--ecc", "hamming-256"], "cannot hold"),
    ],
)
def test_bad_arguments_exit_1(capsys, args, message):
    assert cli.main(["serve", "--dry-run", *args]) == 1
    assert message in capsys.readouterr().err


def test_argparse_errors_exit_1(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--type", "floppy"])
    assert info.value.code == 1


def test_wrong_size_image_exits_1(tmp_path, capsys):
    image = tmp_path / "x.img"
    image.write_bytes(b"\xff" * 4096)
    code = cli.main(["serve", "--type", "nand", "--size", "1MiB", "--image", str(image),
                     "--image-format", "raw+oob", "--fd", "-1"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "has 4096 bytes but the geometry needs 1081344" in err


def test_dry_run_prints_the_init_parameters(capsys):
    assert cli.main(["serve", "--dry-run", "--type", "nor", "--name", "n0", "--size", "2MiB"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "NAME=n0", "TYPE=3", "FLAGS=3072", f"SIZE={2 << 20}", "WRITESIZE=1", "WRITEBUFSIZE=64",
        "ERASESIZE=65536", "OOBSIZE=0", "OOBAVAIL=0", "SUBPAGESHIFT=0",
        "max_read=131072", "max_write=131072",
    ]  # fmt: skip


def test_dry_run_nand_defaults(capsys):
    assert cli.main(["serve", "--dry-run", "--flags", "0x400", "--writesize", "4096"]) == 0
    out = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines())
    assert out["NAME"] == f"muse-{os.getpid()}"
    assert (out["TYPE"], out["OOBSIZE"], out["OOBAVAIL"], out["FLAGS"]) == (
        "4",
        "128",
        "64",
        "1024",
    )


def test_help_documents_the_contract():
    result = subprocess.run([sys.executable, "-m", "guest.muse", "serve", "--help"], cwd=ROOT,
                            capture_output=True, text=True, check=True)  # fmt: skip
    for needle in ("muse: registered mtdN", "muse: ready", "--ready-file", "raw+oob", "OOB_AUTO"):
        assert needle in result.stdout


def test_ctl_starts_without_the_servers_modules(tmp_path: Path) -> None:
    """ctl runs dozens of times a test, and a guest Python start under TCG pays for
    every module: the client imports none of the server's."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "guest.muse", "ctl",
                             "--control", str(tmp_path / "none"), "get"], cwd=ROOT,
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 2 and "cannot talk to" in result.stderr, result.stderr
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")}  # fmt: skip
    assert "guest.muse.ctl" in imported
    assert not imported & {"guest.muse.cli", "guest.muse.lifecycle", "guest.muse.session",
                           "guest.muse.devices", "guest.muse.faultconfig"}, sorted(imported)
    bad = subprocess.run([sys.executable, "-m", "guest.muse", "ctl", "--control", "x", "odd"],
                         cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 1 and "invalid choice: 'odd'" in bad.stderr


# -- the registration watcher on its own


def watcher(
    tmp_path: Path, names: Sequence[str] = (), **kwargs: Any
) -> tuple[RegistrationWatcher, Path, Path, list[list[MtdEntry]], list[str]]:
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    sysfs.mkdir(exist_ok=True)
    dev.mkdir(exist_ok=True)
    found: list[list[MtdEntry]] = []
    timeouts: list[str] = []
    w = RegistrationWatcher(
        pid=4242, master_name="m", part_names=list(names), on_ready=found.append,
        on_timeout=timeouts.append, sysfs_root=str(sysfs), dev_root=str(dev), **kwargs,
    )  # fmt: skip
    return w, sysfs, dev, found, timeouts


def test_watcher_master_only(tmp_path):
    w, sysfs, dev, _, _ = watcher(tmp_path)
    assert w.poll() is None
    fake_register(sysfs, dev, 1, "m", 8192, 999)  # another server's device
    assert w.poll() is None
    fake_register(sysfs, dev, 2, "m", 8192, 4242)
    assert w.poll() == [MtdEntry(2, "m", 8192, f"{dev}/mtd2")]


def test_watcher_waits_for_every_partition(tmp_path):
    w, sysfs, dev, _, _ = watcher(tmp_path, names=["a", "b"])
    fake_register(sysfs, dev, 0, "m", 8192, 4242)
    fake_register(sysfs, dev, 1, "a", 4096, 4242)
    assert w.poll() is None
    fake_register(sysfs, dev, 10, "b", 4096, 4242)
    entries = w.poll()
    assert entries is not None
    assert [entry.index for entry in entries] == [0, 1, 10]


def test_watcher_waits_for_the_device_node(tmp_path):
    w, sysfs, dev, _, _ = watcher(tmp_path)
    fake_register(sysfs, dev, 0, "m", 8192, 4242)
    (dev / "mtd0").unlink()
    assert w.poll() is None
    (dev / "mtd0").touch()
    assert w.poll() is not None


def test_watcher_name_fallback(tmp_path):
    w, sysfs, dev, _, _ = watcher(tmp_path)
    fake_register(sysfs, dev, 0, "m", 8192, 4242, with_pid=False)
    fake_register(sysfs, dev, 1, "other", 8192, 4242, with_pid=False)
    assert w.poll() is None
    assert w.poll(fallback=True) == [MtdEntry(0, "m", 8192, f"{dev}/mtd0")]


def test_watcher_thread_reports_ready(tmp_path):
    w, sysfs, dev, found, timeouts = watcher(tmp_path, interval=0.01)
    w.start()
    fake_register(sysfs, dev, 7, "m", 8192, 4242)
    assert w.registered.wait(5)
    w.stop()
    assert found == [[MtdEntry(7, "m", 8192, f"{dev}/mtd7")]] and timeouts == []


def test_watcher_thread_times_out(tmp_path):
    w, _, _, found, timeouts = watcher(tmp_path, timeout=0.1, interval=0.01)
    w.start()
    wait_for(lambda: timeouts)
    w.stop()
    assert found == [] and "within 0.1 s" in timeouts[0]
    assert not w.registered.is_set()


def test_watcher_timeout_names_missing_partitions(tmp_path):
    w, sysfs, dev, found, timeouts = watcher(tmp_path, names=["a", "b"], timeout=0.1)
    fake_register(sysfs, dev, 0, "m", 8192, 4242)
    fake_register(sysfs, dev, 1, "a", 4096, 4242)
    w.start()
    wait_for(lambda: timeouts)
    w.stop()
    assert found == []
    assert timeouts[0].endswith("found mtd0 (m), mtd1 (a); missing b")


def test_ready_file_contract(tmp_path):
    path = tmp_path / "ready.json"
    lifecycle.write_ready_file(str(path), [MtdEntry(3, "boot", 4096, "/dev/mtd3")])
    assert json.loads(path.read_text()) == {
        "pid": os.getpid(),
        "mtd": [{"index": 3, "name": "boot", "size": 4096, "dev": "/dev/mtd3"}],
    }


def test_request_buffer_is_big_enough_for_a_max_write():
    assert p.request_buffer_size(128 * KIB) >= p.IN_HEADER.size + p.IO_IN.size + 128 * KIB
