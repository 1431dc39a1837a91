"""The power-cut workload's model and checker (guest/workloads), without a VM."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import pytest

from guest.workloads import fsmodel, ubimap
from guest.workloads.__main__ import main
from guest.workloads.fsmodel import Event, Verdict, check, expect, fits, generate
from guest.workloads.kernlog import classify
from guest.workloads.verify import verify

SEED = 3


def no_blobs(ino: int) -> bytes:
    raise AssertionError(f"no base blob expected, asked for {ino}")


def data(step: int, length: int) -> bytes:
    return generate(SEED, step, length, fsmodel.STYLE_RANDOM)


def ev(kind: str, **fields: object) -> Event:
    return {"ev": kind, **fields}


def create(step: int, ino: int, name: str, length: int, before: int = 0) -> Event:
    return ev("create", step=step, ino=ino, name=name, len=length, style=0, before=before)


def append(step: int, ino: int, length: int, before: int = 0) -> Event:
    return ev("append", step=step, ino=ino, len=length, style=0, before=before)


def durable(step: int, inos: Sequence[int] = (), gone: Sequence[int] = (),
            after: int = 0) -> Event:
    return ev("durable", step=step, inos=list(inos), gone=list(gone), after=after)


START = ev("start", seed=SEED, tag="t")


def verdict(events: list[Event], tree: dict[str, bytes], cut: int | None = None) -> Verdict:
    return check(expect(events, cut), tree, no_blobs)


def test_generate_is_seeded_and_styled():
    assert generate(1, 2, 5000, 0) == generate(1, 2, 5000, 0) != generate(1, 3, 5000, 0)
    pattern = generate(1, 2, 5000, fsmodel.STYLE_PATTERN)
    assert len(pattern) == 5000 and len(set(pattern[i:i + 64] for i in range(0, 4096, 64))) <= 64


@pytest.mark.parametrize(("actual", "durable_len", "ok"), [
    (b"abcdef", 3, True),
    (b"abc", 3, True),
    (b"abc\0\0f", 3, True),           # a hole in the unsynced part
    (b"ab", 3, False),                # synced bytes missing
    (b"abX", 3, False),               # synced byte changed
    (b"abcdXf", 3, False),            # unsynced garbage
    (b"abcdefg", 3, False),           # longer than ever written
    (b"\0\0\0", 0, True),
])
def test_fits(actual, durable_len, ok):
    assert (fits(actual, b"abcdef", durable_len) is None) == ok


def test_synced_file_intact_passes_and_counts():
    events = [START, create(1, 1, "d0/a", 5000), durable(1, [1]), append(2, 1, 300)]
    full = data(1, 5000) + data(2, 300)
    v = verdict(events, {"d0/a": full})
    assert v.ok and v.synced_files == 1 and v.synced_bytes == 5000
    assert verdict(events, {"d0/a": full[:5000]}).ok  # the unsynced append may be gone


def test_missing_or_damaged_synced_file_is_lost():
    events = [START, create(1, 1, "d0/a", 5000), durable(1, [1])]
    missing = verdict(events, {})
    assert missing.lost and "missing" in missing.lost[0]
    damaged = bytearray(data(1, 5000))
    damaged[4321] ^= 1
    v = verdict(events, {"d0/a": bytes(damaged)})
    assert v.lost and "offset 4321" in v.lost[0]
    short = verdict(events, {"d0/a": data(1, 4096)})
    assert short.lost and "fewer than the 5000 synced" in short.lost[0]


def test_unsynced_file_may_be_absent_empty_or_partial_but_not_garbage():
    events = [START, create(1, 1, "d1/b", 9000)]
    full = data(1, 9000)
    for tree in ({}, {"d1/b": b""}, {"d1/b": full[:4096]}, {"d1/b": full[:4096] + bytes(100)}):
        assert verdict(events, tree).ok, tree.keys()
    v = verdict(events, {"d1/b": b"\1" * 10})
    assert not v.ok and "neither written nor 0" in v.problems[0]


def test_unknown_file_is_a_problem():
    v = verdict([START], {"d0/zz": b""})
    assert v.problems == ["d0/zz: no file of that name may exist"]


def test_rename_not_synced_either_name_but_not_both_and_not_neither():
    events = [START, create(1, 1, "d0/a", 100), durable(1, [1]),
              ev("rename", step=2, ino=1, to="d2/a.r2", victim=None, before=0)]
    content = data(1, 100)
    assert verdict(events, {"d0/a": content}).ok
    assert verdict(events, {"d2/a.r2": content}).ok
    both = verdict(events, {"d0/a": content, "d2/a.r2": content})
    assert both.problems and "second copy" in both.problems[0]
    assert verdict(events, {}).lost


def test_replace_pattern_target_holds_old_or_new():
    old, new = data(1, 700), data(2, 800)
    events = [START, create(1, 1, "d0/x", 700), durable(1, [1]),
              create(2, 2, "d1/tmp", 800), durable(2, [2]),
              ev("rename", step=2, ino=2, to="d0/x", victim=1, before=0)]
    assert verdict(events, {"d0/x": old, "d1/tmp": new}).ok
    assert verdict(events, {"d0/x": new}).ok
    assert verdict(events, {"d0/x": old}).lost  # the new file, synced, vanished
    settled = [*events, durable(2, [2], [1])]
    assert verdict(settled, {"d0/x": old, "d1/tmp": new}).problems


def test_delete_synced_means_gone():
    events = [START, create(1, 1, "d0/a", 10), durable(1, [1]),
              ev("delete", step=2, ino=1, before=0)]
    assert verdict(events, {}).ok and verdict(events, {"d0/a": data(1, 10)}).ok
    gone = [*events, durable(2, [], [1])]
    assert verdict(gone, {}).ok
    assert verdict(gone, {"d0/a": data(1, 10)}).problems


def test_cut_number_decides_what_was_started_and_what_is_durable():
    events = [START, create(1, 1, "d0/a", 10, before=5), durable(1, [1], after=9),
              create(2, 2, "d0/b", 10, before=12), durable(2, [2], after=20)]
    a = data(1, 10)
    # Cut during op 9: a's fsync had not returned whole, so a may be missing.
    assert verdict(events, {}, cut=9).ok
    # Cut during op 10: a is durable and must be there.
    assert verdict(events, {}, cut=10).lost
    # b began after op 12: with a cut at op 12 it cannot exist.
    assert verdict(events, {"d0/a": a, "d0/b": b""}, cut=12).problems
    assert verdict(events, {"d0/a": a, "d0/b": b""}, cut=13).ok
    model = expect(events, 13)
    assert (model.steps_started, model.durable_points) == (2, 1)


def test_sync_settles_everything():
    events = [START, create(1, 1, "d0/a", 10), create(2, 2, "d0/b", 10),
              ev("delete", step=3, ino=2, before=0), ev("sync", after=0)]
    assert verdict(events, {}).lost
    assert verdict(events, {"d0/a": data(1, 10)}).ok
    assert verdict(events, {"d0/a": data(1, 10), "d0/b": data(2, 10)}).problems


def test_base_files_come_from_blobs():
    events = [START, ev("base", ino=1, name="d2/old", len=3), ev("sync", after=0),
              append(1, 1, 50)]
    model = expect(events)
    blobs = {1: b"xyz"}
    assert check(model, {"d2/old": b"xyz" + data(1, 20)}, blobs.__getitem__).ok
    assert check(model, {"d2/old": b"xy"}, blobs.__getitem__).lost


def test_workload_end_to_end_on_a_plain_directory(tmp_path, capsys):
    root, record = tmp_path / "fs", tmp_path / "rec"
    root.mkdir()
    common = ["--root", str(root), "--record", str(record)]
    assert main(["prepare", *common, "--seed", "7", "--tag", "c1"]) == 0
    assert main(["run", *common, "--steps", "40"]) == 0
    assert main(["run", *common, "--steps", "40"]) == 0  # a second run continues the record
    run = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert run["steps"] == 80 and run["error"] is None
    result: dict[str, Any] = verify(str(root), str(record), None)
    assert result["ok"], result
    assert result["steps_started"] >= 80 and result["synced_files"] > 0
    # A second cycle over the same tree takes the survivors as its base.
    assert main(["prepare", "--root", str(root), "--record", str(tmp_path / "rec2"),
                 "--seed", "8", "--tag", "c2"]) == 0
    assert verify(str(root), str(tmp_path / "rec2"), None)["ok"]
    # Damage a file: the checker must notice.
    victim = next(p for d in sorted(root.iterdir()) for p in sorted(d.iterdir())
                  if p.stat().st_size > 10)
    with open(victim, "r+b") as f:
        f.seek(5)
        byte = f.read(1)
        f.seek(5)
        f.write(bytes([byte[0] ^ 0xFF]))
    bad: dict[str, Any] = verify(str(root), str(tmp_path / "rec2"), None)
    assert not bad["ok"] and bad["lost"]
    os.unlink(victim)
    gone: dict[str, Any] = verify(str(root), str(tmp_path / "rec2"), None)
    assert "missing" in " ".join(gone["lost"])
    (root / "stray").write_bytes(b"")
    stray: dict[str, Any] = verify(str(root), str(record), None)
    assert "unexpected entry 'stray' in the root" in stray["problems"]


def test_kernel_log_classification():
    lines = [
        "[ 1.0] ubi4: attaching mtd0",
        "[ 1.1] ubi4 warning: ubi_eba_init: 1 PEBs are corrupted and preserved",
        "[ 1.2] UBIFS (ubi4:0): recovery needed",
        "[ 1.3] UBIFS error (ubi4:0 pid 9): ubifs_recover_leb: corrupt empty space",
        "[ 1.4] ubi4 error: ubi_io_read: error -74",
        "[ 1.5] UBIFS warning (ubi4:0 pid 9): x: y",
        "[ 1.6] random other line",
        "[ 1.7] ubi4: good PEBs: 128, bad PEBs: 0, corrupted PEBs: 0",
    ]
    out = classify(lines)
    assert [len(out[k]) for k in ("errors", "warnings", "notices")] == [2, 2, 1]


def _ubi_image(blocks: dict[int, tuple[int, int, int] | None], pebs: int = 4) -> bytes:
    """A raw+oob image (512-byte pages, 16 OOB, 4 pages a block); blocks: peb -> VID or None."""
    ws, oob, ppb = 512, 16, 4
    data = bytearray(b"\xff" * pebs * ppb * ws)
    for peb, vid in blocks.items():
        ec = bytearray(ubimap._EC.pack(b"UBI#", 1, 7 + peb, ws, 2 * ws, 0, 0))
        ec[-4:] = ubimap.ubi_crc(bytes(ec[:-4])).to_bytes(4, "big")
        data[peb * ppb * ws:peb * ppb * ws + 64] = ec
        if vid is not None:
            head = bytearray(ubimap._VID.pack(b"UBI!", 1, 1, 0, 0, vid[0], vid[1], 0, 0, 0, 0,
                                              vid[2], 0))
            head[-4:] = ubimap.ubi_crc(bytes(head[:-4])).to_bytes(4, "big")
            data[(peb * ppb + 1) * ws:(peb * ppb + 1) * ws + 64] = head
    pages = [bytes(data[i:i + ws]) + b"\xff" * oob for i in range(0, len(data), ws)]
    return b"".join(pages)


def test_ubimap_reads_vid_headers_and_prefers_the_newer_copy():
    image = bytearray(_ubi_image({0: (5, 0, 10), 1: None, 2: (5, 1, 11), 3: (5, 0, 12)}))
    found = ubimap.ubimap(bytes(image), 512, 16, 2048)
    assert found == {"pebs": 4, "lebs": {"5:0": 3, "5:1": 2}, "ec": {0: 7, 1: 8, 2: 9, 3: 10},
                     "empty": [1]}
    image[3 * 4 * 528 + 528 + 20] ^= 1  # PEB 3's VID header CRC breaks: PEB 0 holds LEB 0
    assert ubimap.ubimap(bytes(image), 512, 16, 2048)["lebs"] == {"5:0": 0, "5:1": 2}
