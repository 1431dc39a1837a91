"""What a file tree may look like after a power cut, given the workload's record.

The workload (fsworkload.py) appends one JSON line per event to a record kept
off the flash, before it acts and again after each fsync returned:

  start    {"seed", "tag"}
  base     {"ino", "name", "len"}: a file present (and synced) at the start;
           its bytes are in the record's blobs/ directory
  create   {"step", "ino", "name", "len", "style", "before"}
  append   {"step", "ino", "len", "style", "before"}
  rename   {"step", "ino", "to", "victim", "before"} (victim: the inode the
           rename replaces, or null)
  delete   {"step", "ino", "before"}
  durable  {"step", "inos", "gone", "after"}: fsync of the files and of their
           directories returned; "gone" names inodes whose removal was synced
  sync     {"after"}: sync() returned, everything is durable
  error    {"step", "error"}: the first failure, the workload stopped there
  end      {"steps"}

"before"/"after" are the server's op count when the step began / when its
fsyncs had returned (0 without a control socket). For a cut during op N, a
step with before >= N never reached the flash, and a durable point with
after < N is whole on it, because every op it waited for is numbered at most
`after`. Without a cut number (a live cut, the nandsim control) all recorded
steps may have landed and all recorded durable points hold.

Contents only grow (create writes a first chunk, append adds one), so every
version of a file is a prefix of its last one. After the cut a file must:
  - hold its durable prefix exactly (its length at the last durable point);
  - beyond it, hold bytes of its later versions, or zeros (a hole: the size
    reached the flash before some data did), and be no longer than its last
    started version;
  - sit under its durable name or a name a later started rename gave it.
A file whose last durable state exists and that no started step may have
removed must be found: otherwise its synced data is lost. Anything else in
the tree (unknown names, a file under two names) is a problem too.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Event = dict[str, Any]
# A chunk: ("gen", seed, step, length, style) or ("blob", ino, length).
Chunk = tuple[Any, ...]

STYLE_RANDOM, STYLE_PATTERN = 0, 1
_BLOCK = 4096


def generate(seed: int, step: int, length: int, style: int) -> bytes:
    """The bytes a step writes: random, or a short random pattern repeated (compressible)."""
    rand = random.Random(f"muse-workload:{seed}:{step}")
    if style == STYLE_PATTERN:
        pattern = rand.randbytes(rand.randint(1, 64))
        return (pattern * (length // len(pattern) + 1))[:length]
    return rand.randbytes(length)


@dataclass
class Inode:
    ino: int
    chunks: list[Chunk]
    name: str | None  # where it is once every started step landed (None: removed)
    names: set[str]  # where it may be after the cut
    durable_name: str | None = None  # name at its last durable point, if it existed then
    durable_len: int = 0
    may_vanish: bool = True  # not durable yet, or a removal started since

    @property
    def length(self) -> int:
        return sum(int(c[-2] if c[0] == "gen" else c[-1]) for c in self.chunks)

    @property
    def must_exist(self) -> bool:
        return self.durable_name is not None and not self.may_vanish

    def settle(self) -> None:
        """Its current state became durable."""
        if self.name is None:
            self.durable_name, self.names, self.may_vanish = None, set(), True
        else:
            self.durable_name, self.names, self.may_vanish = self.name, {self.name}, False
        self.durable_len = self.length


@dataclass
class Expectation:
    """The model at a cut: every inode the workload knew, and the recorded figures."""

    inodes: dict[int, Inode]
    steps_started: int = 0
    durable_points: int = 0
    error: str | None = None


def expect(events: Iterable[Event], cut: int | None = None) -> Expectation:
    """Fold the record into what may be on the flash after a cut during op `cut`."""
    inodes: dict[int, Inode] = {}
    model = Expectation(inodes)
    seed = 0
    for ev in events:
        kind = ev["ev"]
        if kind == "start":
            seed = int(ev["seed"])
        elif kind == "base":
            name = str(ev["name"])
            node = Inode(int(ev["ino"]), [("blob", int(ev["ino"]), int(ev["len"]))], name, {name})
            node.settle()
            inodes[node.ino] = node
        elif kind in ("create", "append", "rename", "delete"):
            if cut is not None and int(ev["before"]) >= cut:
                continue
            model.steps_started += 1
            _started(inodes, seed, ev)
        elif kind in ("durable", "sync"):
            if cut is not None and int(ev["after"]) >= cut:
                continue
            model.durable_points += 1
            chosen = inodes.values() if kind == "sync" else (
                inodes[int(i)] for i in [*ev["inos"], *ev["gone"]])
            for node in chosen:
                node.settle()
        elif kind == "error":
            model.error = str(ev["error"])
    return model


def _started(inodes: dict[int, Inode], seed: int, ev: Event) -> None:
    kind, ino = ev["ev"], int(ev["ino"])
    if kind == "create":
        name = str(ev["name"])
        inodes[ino] = Inode(ino, [("gen", seed, int(ev["step"]), int(ev["len"]),
                                   int(ev["style"]))], name, {name})
        return
    node = inodes[ino]
    if kind == "append":
        node.chunks.append(("gen", seed, int(ev["step"]), int(ev["len"]), int(ev["style"])))
    elif kind == "rename":
        node.name = str(ev["to"])
        node.names.add(node.name)
        if ev.get("victim") is not None:
            victim = inodes[int(ev["victim"])]
            victim.name, victim.may_vanish = None, True
    else:  # delete
        node.name, node.may_vanish = None, True


@dataclass
class Verdict:
    files: int = 0  # regular files found in the tree
    synced_files: int = 0  # files that had to be there, found intact
    synced_bytes: int = 0  # their durable bytes, all checked
    unsynced_files: int = 0  # files found in a state no fsync promised
    lost: list[str] = field(default_factory=list)  # synced data missing or damaged
    problems: list[str] = field(default_factory=list)  # everything else that is wrong

    @property
    def ok(self) -> bool:
        return not self.lost and not self.problems

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "files": self.files, "synced_files": self.synced_files,
                "synced_bytes": self.synced_bytes, "unsynced_files": self.unsynced_files,
                "lost": self.lost, "problems": self.problems}


Loader = Callable[[int], bytes]  # a base inode's bytes


def content(node: Inode, blob: Loader) -> bytes:
    return b"".join(generate(*c[1:]) if c[0] == "gen" else blob(int(c[1])) for c in node.chunks)


def fits(actual: bytes, full: bytes, durable_len: int) -> str | None:
    """Why `actual` is not a state a file with versions prefix-of-`full` may be in, or None."""
    if len(actual) < durable_len:
        return f"{len(actual)} bytes, fewer than the {durable_len} synced"
    if len(actual) > len(full):
        return f"{len(actual)} bytes, more than the {len(full)} ever written"
    if actual[:durable_len] != full[:durable_len]:
        at = next(i for i in range(durable_len) if actual[i] != full[i])
        return f"synced bytes differ from offset {at} (of {durable_len} synced)"
    zero = bytes(_BLOCK)
    for pos in range(durable_len, len(actual), _BLOCK):
        got, want = actual[pos:pos + _BLOCK], full[pos:pos + _BLOCK]
        if got == want[:len(got)] or got == zero[:len(got)]:
            continue
        for i, byte in enumerate(got):
            if byte not in (0, want[i]):
                return f"unsynced byte at offset {pos + i} is {byte:#x}, neither written nor 0"
    return None


def check(model: Expectation, actual: dict[str, bytes], blob: Loader) -> Verdict:
    """Compare the tree found after the cut with what the model allows."""
    verdict = Verdict(files=len(actual))
    fulls = {ino: content(node, blob) for ino, node in model.inodes.items()}
    # Which inodes each found file may be (name and content both fit).
    fitting: dict[str, list[int]] = {}
    reasons: dict[str, list[str]] = {}
    for path, data in sorted(actual.items()):
        fitting[path], reasons[path] = [], []
        for ino, node in model.inodes.items():
            if path not in node.names:
                continue
            why = fits(data, fulls[ino], node.durable_len if node.durable_name else 0)
            if why is None:
                fitting[path].append(ino)
            else:
                reasons[path].append(f"inode {ino}: {why}")
    owner = _match(fitting, [n.ino for n in model.inodes.values() if n.must_exist])
    placed = {ino: path for path, ino in owner.items()}
    for path in sorted(actual):
        if path in owner:
            continue
        if not fitting[path] and not reasons[path]:
            verdict.problems.append(f"{path}: no file of that name may exist")
        elif not fitting[path]:
            verdict.problems.append(f"{path}: {'; '.join(reasons[path])}")
        else:
            verdict.problems.append(f"{path}: a second copy of inode(s) {fitting[path]}")
    for ino, node in sorted(model.inodes.items()):
        if ino in placed:
            if node.must_exist:
                verdict.synced_files += 1
                verdict.synced_bytes += node.durable_len
            else:
                verdict.unsynced_files += 1
        elif node.must_exist:
            seen = [f"{p}: {r}" for p in sorted(node.names) if p in actual
                    for r in reasons.get(p, []) if r.startswith(f"inode {ino}:")]
            verdict.lost.append(
                f"inode {ino} ({node.durable_name}, {node.durable_len} bytes synced) "
                + ("is damaged: " + "; ".join(seen) if seen else
                   f"is missing (may be at {sorted(node.names)})"))
    return verdict


def _match(fitting: dict[str, list[int]], required: list[int]) -> dict[str, int]:
    """A path -> inode matching with each inode once, covering required inodes first."""
    owner: dict[str, int] = {}
    holder: dict[int, str] = {}
    paths_of: dict[int, list[str]] = {}
    for path, inos in fitting.items():
        for ino in inos:
            paths_of.setdefault(ino, []).append(path)

    def place(ino: int, seen: set[str]) -> bool:  # Kuhn's augmenting path
        for path in paths_of.get(ino, []):
            if path in seen:
                continue
            seen.add(path)
            if path not in owner or place(owner[path], seen):
                owner[path], holder[ino] = ino, path
                return True
        return False

    for ino in [*required, *sorted(set(paths_of) - set(required))]:
        if ino not in holder:
            place(ino, set())
    return owner


def read_record(record_dir: str) -> list[Event]:
    path = os.path.join(record_dir, "events.jsonl")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def blob_path(record_dir: str, ino: int) -> str:
    return os.path.join(record_dir, "blobs", f"{ino}")


def blob_loader(record_dir: str) -> Loader:
    def load(ino: int) -> bytes:
        with open(blob_path(record_dir, ino), "rb") as f:
            return f.read()
    return load
