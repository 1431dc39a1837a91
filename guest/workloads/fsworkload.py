"""The power-cut workload: seeded file churn with fsync points, recorded off the flash.

Each step creates a file, appends to one, renames one (to a new name, or over
another file: the write-temp-then-rename replace pattern), deletes one, or
syncs everything; about half the steps end with a durable point (fsync of the
file and of its directories). Every step is recorded before it starts and
every durable point after its fsyncs returned (fsmodel.py has the format and
what follows from it). The first error (the device is gone, UBI went
read-only) ends the run: that is how the workload notices the power cut.

With a control socket, each record carries the server's op count, so that
one recorded run can be checked at any cut point of its oplog.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from .fsmodel import STYLE_PATTERN, STYLE_RANDOM, blob_path, generate

DIRS = ("d0", "d1", "d2")
# Step kinds and their weights; removals take over when the tree is full.
KINDS = {"create": 24, "append": 36, "rename": 12, "replace": 8, "delete": 14, "sync": 3}


class ControlGone(OSError):
    """The server's control socket stopped answering: the power is off."""


def op_count(control: str | None, timeout: float = 30.0) -> int:
    """The server's op count (0 without a control socket)."""
    if control is None:
        return 0
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(control)
            sock.sendall(b'{"cmd": "get"}\n')
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
        return int(json.loads(reply)["powercut"]["ops"])
    except (OSError, ValueError, KeyError) as err:
        raise ControlGone(f"control socket {control}: {err}") from err


def _fsync(path: str, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Touch:
    """What a step changed: files to fsync, inodes it removed, directories to fsync."""

    inos: list[int] = field(default_factory=list)
    gone: list[int] = field(default_factory=list)
    dirs: set[str] = field(default_factory=set)


class Workload:
    def __init__(self, root: str, record: str, seed: int, tag: str, *,
                 control: str | None = None, cap_bytes: int = 3 << 20,
                 max_files: int = 48) -> None:
        self.root, self.record_dir, self.seed, self.tag = root, record, seed, tag
        self.control = control
        self.cap_bytes, self.max_files = cap_bytes, max_files
        self.rand = random.Random(f"muse-workload-steps:{seed}")
        self.files: dict[int, str] = {}  # ino -> path relative to root
        self.sizes: dict[int, int] = {}
        self.next_ino = 1
        self.step = 0
        os.makedirs(os.path.join(record, "blobs"), exist_ok=True)
        self.log = open(os.path.join(record, "events.jsonl"), "a", encoding="utf-8")  # noqa: SIM115

    def emit(self, ev: str, **fields: Any) -> None:
        self.log.write(json.dumps({"ev": ev, **fields}, sort_keys=True) + "\n")
        self.log.flush()

    def close(self) -> None:
        self.log.close()

    def prepare(self) -> dict[str, Any]:
        """Record the tree as it is (made durable first) as the base of this run."""
        self.emit("start", seed=self.seed, tag=self.tag)
        for d in DIRS:
            os.makedirs(os.path.join(self.root, d), exist_ok=True)
        for d in DIRS:
            for name in sorted(os.listdir(os.path.join(self.root, d))):
                rel = f"{d}/{name}"
                ino = self.next_ino
                self.next_ino += 1
                shutil.copyfile(os.path.join(self.root, rel), blob_path(self.record_dir, ino))
                self.files[ino] = rel
                self.sizes[ino] = os.path.getsize(blob_path(self.record_dir, ino))
        self._sync_all()
        for ino, rel in sorted(self.files.items()):
            self.emit("base", ino=ino, name=rel, len=self.sizes[ino])
        self.emit("sync", after=op_count(self.control))
        return {"files": len(self.files), "bytes": sum(self.sizes.values())}

    def resume(self) -> None:
        """Take up the state the record leaves (each run is a process of its own)."""
        with open(os.path.join(self.record_dir, "events.jsonl"), encoding="utf-8") as f:
            for line in f:
                ev = json.loads(line)
                kind, ino = ev["ev"], ev.get("ino")
                self.step = max(self.step, int(ev.get("step", 0)))
                if kind in ("base", "create"):
                    self.files[ino], self.sizes[ino] = ev["name"], ev["len"]
                    self.next_ino = max(self.next_ino, ino + 1)
                elif kind == "append":
                    self.sizes[ino] += ev["len"]
                elif kind == "rename":
                    if ev["victim"] is not None:
                        del self.files[ev["victim"]], self.sizes[ev["victim"]]
                    self.files[ino] = ev["to"]
                elif kind == "delete":
                    del self.files[ino], self.sizes[ino]
        self.rand = random.Random(f"muse-workload-steps:{self.seed}:{self.step}")

    def run(self, steps: int, seconds: float) -> dict[str, Any]:
        """Churn until the step or time limit, or the first error (the cut)."""
        deadline = time.monotonic() + seconds
        error = None
        last = self.step + steps
        while self.step < last and time.monotonic() < deadline:
            self.step += 1
            try:
                self._one_step()
            except OSError as err:
                error = f"{type(err).__name__}: {err}"
                self.emit("error", step=self.step, error=error)
                break
        self.emit("end", steps=self.step)
        return {"steps": self.step, "error": error, "files": len(self.files),
                "bytes": sum(self.sizes.values())}

    # -- steps ---------------------------------------------------------------------------

    def _one_step(self) -> None:
        kind = self._choose()
        before = op_count(self.control)
        if kind == "sync":
            self._sync_all()
            self.emit("sync", after=op_count(self.control))
            return
        touch: Touch = getattr(self, f"_{kind}")(before)
        if kind == "replace" or self.rand.random() < 0.5:
            self._durable(touch)

    def _choose(self) -> str:
        if sum(self.sizes.values()) > self.cap_bytes or len(self.files) >= self.max_files:
            return "delete"
        if not self.files:
            return "create"
        kinds = list(KINDS)
        return self.rand.choices(kinds, [KINDS[k] for k in kinds])[0]

    def _chunk(self) -> tuple[int, int]:
        """(length, style) of the next write: mostly small, sometimes over many pages."""
        roll = self.rand.random()
        if roll < 0.55:
            length = self.rand.randint(0, 4200)
        elif roll < 0.93:
            length = self.rand.randint(4200, 48 << 10)
        else:
            length = self.rand.randint(48 << 10, 160 << 10)
        style = STYLE_PATTERN if self.rand.random() < 0.3 else STYLE_RANDOM
        return length, style

    def _write(self, rel: str, length: int, style: int, mode: str) -> None:
        with open(os.path.join(self.root, rel), mode) as f:
            f.write(generate(self.seed, self.step, length, style))

    def _new_name(self, ino: int, suffix: str = "") -> str:
        return f"{self.rand.choice(DIRS)}/{self.tag}-{ino}{suffix}"

    def _create(self, before: int) -> Touch:
        ino = self.next_ino
        self.next_ino += 1
        rel = self._new_name(ino)
        length, style = self._chunk()
        self.emit("create", step=self.step, ino=ino, name=rel, len=length, style=style,
                  before=before)
        self.files[ino], self.sizes[ino] = rel, length
        self._write(rel, length, style, "xb")
        return Touch([ino])

    def _append(self, before: int) -> Touch:
        ino = self.rand.choice(sorted(self.files))
        length, style = self._chunk()
        self.emit("append", step=self.step, ino=ino, len=length, style=style, before=before)
        self.sizes[ino] += length
        self._write(self.files[ino], length, style, "ab")
        return Touch([ino])

    def _rename(self, before: int) -> Touch:
        ino = self.rand.choice(sorted(self.files))
        old, new = self.files[ino], self._new_name(ino, f".r{self.step}")
        self.emit("rename", step=self.step, ino=ino, to=new, victim=None, before=before)
        self.files[ino] = new
        os.rename(os.path.join(self.root, old), os.path.join(self.root, new))
        return Touch([ino], dirs={_dir(old), _dir(new)})

    def _replace(self, before: int) -> Touch:
        """Write a new file in full and make it durable, then rename it over another."""
        victim = self.rand.choice(sorted(self.files))
        ino = self._create(before).inos[0]
        self._durable(Touch([ino]))
        tmp, target = self.files[ino], self.files[victim]
        self.emit("rename", step=self.step, ino=ino, to=target, victim=victim,
                  before=op_count(self.control))
        self.files[ino] = target
        del self.files[victim], self.sizes[victim]
        os.rename(os.path.join(self.root, tmp), os.path.join(self.root, target))
        return Touch([ino], [victim], {_dir(tmp), _dir(target)})

    def _delete(self, before: int) -> Touch:
        ino = self.rand.choice(sorted(self.files))
        rel = self.files.pop(ino)
        del self.sizes[ino]
        self.emit("delete", step=self.step, ino=ino, before=before)
        os.unlink(os.path.join(self.root, rel))
        return Touch([], [ino], {_dir(rel)})

    def _durable(self, touch: Touch) -> None:
        """fsync the files, then their directories; record it once all returned."""
        dirs = set(touch.dirs)
        for ino in touch.inos:
            _fsync(os.path.join(self.root, self.files[ino]))
            dirs.add(_dir(self.files[ino]))
        for d in sorted(dirs):
            _fsync(os.path.join(self.root, d), directory=True)
        self.emit("durable", step=self.step, inos=touch.inos, gone=touch.gone,
                  after=op_count(self.control))

    def _sync_all(self) -> None:
        """sync() reports no errors: fsync every file and directory instead."""
        for rel in self.files.values():
            _fsync(os.path.join(self.root, rel))
        for d in DIRS:
            _fsync(os.path.join(self.root, d), directory=True)
        _fsync(self.root, directory=True)


def _dir(rel: str) -> str:
    return rel.split("/")[0]
