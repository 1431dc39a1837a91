"""Series parsing and git am application on a tiny fake tree (no kernel needed)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.errors import SeriesError
from harness.kernel import series as series_mod
from harness.kernel.series import Series, apply_series, read_series
from harness.kernel.source import Source
from harness.tools import bugs

PATCH = """From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Test Author <test@example.invalid>
Date: Sun, 24 Jan 2021 23:20:00 +0000
Subject: [PATCH] {subject}

---
 {path} | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/{path} b/{path}
--- a/{path}
+++ b/{path}
@@ -{line},3 +{line},3 @@
 {before}
-{old}
+{new}
 {after}
--\x20
2.39.5
"""


def make_patch(directory: Path, name: str, **fields: object) -> Path:
    path = directory / name
    path.write_text(PATCH.format(**fields))
    return path


@pytest.fixture
def fake_tree(tmp_path: Path) -> Source:
    tree = tmp_path / "linux"
    (tree / "fs").mkdir(parents=True)
    (tree / "fs" / "a.c").write_text("one\ntwo\nthree\nfour\nfive\n")
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\n")
    return Source(tree, "6.1.0", "test:fake", user=False, has_muse=False)


@pytest.fixture
def series_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "series"
    (root / "9.9").mkdir(parents=True)
    monkeypatch.setattr(series_mod, "SERIES_DIR", root)
    return root / "9.9"


def test_read_series_skips_comments_and_stops_at_fixes(series_dir: Path) -> None:
    for name in ("0001-a.patch", "0002-b.patch", "0101-fix.patch"):
        (series_dir / name).write_text("x")
    (series_dir / "series").write_text(
        "# the series\n0001-a.patch\n\n0002-b.patch\n# --- fixes ---\n0101-fix.patch\n")
    full = read_series("9.9")
    assert [p.name for p in full.patches] == ["0001-a.patch", "0002-b.patch", "0101-fix.patch"]
    assert full.fixes == 1
    posted = read_series("9.9", as_posted=True)
    assert [p.name for p in posted.patches] == ["0001-a.patch", "0002-b.patch"]
    assert posted.fixes == 0
    assert full.chain_id() != posted.chain_id()


def test_extensions_follow_the_fixes_and_are_not_posted(series_dir: Path) -> None:
    for name in ("0001-a.patch", "0101-fix.patch", "0201-ext.patch"):
        (series_dir / name).write_text("x")
    (series_dir / "series").write_text(
        "0001-a.patch\n# --- fixes ---\n0101-fix.patch\n# --- extensions ---\n0201-ext.patch\n")
    full = read_series("9.9")
    assert [p.name for p in full.patches] == ["0001-a.patch", "0101-fix.patch", "0201-ext.patch"]
    assert (full.fixes, full.extensions) == (2, 1)
    assert read_series("9.9", as_posted=True).patches == full.patches[:1]
    fixes = bugs.fix_patches("9.9")
    assert [p.name for p in fixes] == ["0101-fix.patch"]
    (series_dir / "series").write_text("0001-a.patch\n# --- extensions ---\n0201-ext.patch\n")
    with pytest.raises(SeriesError, match=r"series:2: the extensions marker must follow"):
        read_series("9.9")


def test_read_series_names_missing_patch(series_dir: Path) -> None:
    (series_dir / "series").write_text("0001-missing.patch\n")
    with pytest.raises(SeriesError, match=r"series:1: patch 0001-missing.patch does not exist"):
        read_series("9.9")


def test_unknown_base_lists_known(series_dir: Path) -> None:
    (series_dir / "series").write_text("")
    with pytest.raises(SeriesError, match=r"no series for base '1.0'.*9\.9"):
        read_series("1.0")


def test_apply_makes_one_commit_per_patch_and_reuses_chain(fake_tree: Source,
                                                           tmp_path: Path) -> None:
    p1 = make_patch(tmp_path, "0001-two.patch", subject="two", path="fs/a.c", line=1,
                    before="one", old="two", new="TWO", after="three")
    p2 = make_patch(tmp_path, "0002-four.patch", subject="four", path="fs/a.c", line=3,
                    before="three", old="four", new="FOUR", after="five")
    repo = apply_series(fake_tree, Series("9.9", (p1, p2), 0))
    assert (repo / "fs/a.c").read_text() == "one\nTWO\nthree\nFOUR\nfive\n"
    log = subprocess.run(["git", "-C", str(repo), "log", "--format=%an|%s"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert log == ["Test Author|four", "Test Author|two", "muse-harness|pristine"]
    # Re-applying an unchanged series must not touch the files (no rebuild).
    before = (repo / "fs/a.c").stat().st_mtime_ns
    apply_series(fake_tree, Series("9.9", (p1, p2), 0))
    assert (repo / "fs/a.c").stat().st_mtime_ns == before
    # Dropping the second patch goes back to the first commit's content.
    apply_series(fake_tree, Series("9.9", (p1,), 0))
    assert (repo / "fs/a.c").read_text() == "one\nTWO\nthree\nfour\nfive\n"


def test_failing_patch_names_patch_and_hunk(fake_tree: Source, tmp_path: Path) -> None:
    good = make_patch(tmp_path, "0001-two.patch", subject="two", path="fs/a.c", line=1,
                      before="one", old="two", new="TWO", after="three")
    bad = make_patch(tmp_path, "0002-bad.patch", subject="bad", path="fs/a.c", line=3,
                     before="three", old="not-there", new="X", after="five")
    with pytest.raises(SeriesError) as info:
        apply_series(fake_tree, Series("9.9", (good, bad), 0))
    message = str(info.value)
    assert "patch 0002-bad.patch does not apply" in message
    assert "fs/a.c at line 3" in message
    assert "-not-there" in message
    # The tree is left usable: a good series applies afterwards.
    repo = apply_series(fake_tree, Series("9.9", (good,), 0))
    assert not (repo / ".git" / "rebase-apply").exists()


def test_applied_series_does_not_make_the_pristine_tree_carry_muse(fake_tree: Source,
                                                                   tmp_path: Path) -> None:
    from harness.kernel.source import _pristine_has_muse

    adds_muse = tmp_path / "0001-muse.patch"
    adds_muse.write_text(
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
        "From: Test Author <test@example.invalid>\nDate: Sun, 24 Jan 2021 23:20:00 +0000\n"
        "Subject: [PATCH] add muse\n\n---\n"
        "diff --git a/fs/fuse/muse.c b/fs/fuse/muse.c\nnew file mode 100644\n"
        "--- /dev/null\n+++ b/fs/fuse/muse.c\n@@ -0,0 +1 @@\n+int muse;\n")
    repo = apply_series(fake_tree, Series("9.9", (adds_muse,), 0))
    assert (repo / "fs/fuse/muse.c").is_file()
    assert not _pristine_has_muse(repo)


def test_reapplying_after_a_changed_patch_keeps_mtimes_of_unchanged_files(
        fake_tree: Source, tmp_path: Path) -> None:
    (fake_tree.path / "fs" / "b.c").write_text("alpha\nbeta\ngamma\ndelta\n")
    p1 = make_patch(tmp_path, "0001-two.patch", subject="two", path="fs/a.c", line=1,
                    before="one", old="two", new="TWO", after="three")
    p2 = make_patch(tmp_path, "0002-beta.patch", subject="beta", path="fs/b.c", line=1,
                    before="alpha", old="beta", new="BETA", after="gamma")
    repo = apply_series(fake_tree, Series("9.9", (p1, p2), 0))
    old = 1_000_000_000 * 10**9
    for name in ("fs/a.c", "fs/b.c"):
        os.utime(repo / name, ns=(old, old))
    # Editing the first patch re-applies both; only a.c really changes.
    edited = make_patch(tmp_path, "0001-two-edited.patch", subject="two", path="fs/a.c",
                        line=1, before="one", old="two", new="Two", after="three")
    apply_series(fake_tree, Series("9.9", (edited, p2), 0))
    assert (repo / "fs/a.c").read_text().startswith("one\nTwo\n")
    assert (repo / "fs/a.c").stat().st_mtime_ns != old
    assert (repo / "fs/b.c").read_text() == "alpha\nBETA\ngamma\ndelta\n"
    assert (repo / "fs/b.c").stat().st_mtime_ns == old


def test_bisect_starts_at_the_patch_that_adds_muse_c() -> None:
    from harness.kernel.series import read_series
    from harness.tools.bisect import muse_patch

    for base in ("6.1", "6.12"):
        series = read_series(base)
        number = muse_patch(series)
        assert series.patches[number - 1].name.startswith("0007-fuse-Implement-MUSE")


def test_series_from_an_mbox_or_a_directory(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.kernel.series import load_series, subjects

    monkeypatch.setenv("MUSE_HARNESS_CACHE", str(tmp_path / "cache"))
    own = read_series("6.1")
    mbox = tmp_path / "v4.mbox"
    mbox.write_bytes(b"".join(p.read_bytes() for p in own.patches[:3]))
    series = load_series("6.1", mbox)
    assert len(series.patches) == 3 and series.fixes == 0
    assert subjects(series) == subjects(own)[:3]
    assert load_series("6.1", mbox).patches == series.patches     # split once per content
    with_fixes = load_series("6.1", mbox, with_fixes=True)
    assert len(with_fixes.patches) == 3 + own.fixes and with_fixes.fixes == own.fixes
    # A directory with a series file, as kernel/series/<base> is.
    directory = tmp_path / "v5"
    directory.mkdir()
    for patch in own.patches[:2]:
        (directory / patch.name).write_bytes(patch.read_bytes())
    (directory / "series").write_text("\n".join(p.name for p in own.patches[:2]) + "\n")
    assert [p.name for p in load_series("6.1", directory).patches] == \
        [p.name for p in own.patches[:2]]
    with pytest.raises(SeriesError, match="needs a series file"):
        load_series("6.1", tmp_path)
    with pytest.raises(SeriesError, match="no such mbox or directory"):
        load_series("6.1", tmp_path / "nope.mbox")
    empty = tmp_path / "empty.mbox"
    empty.write_text("")
    with pytest.raises(SeriesError, match=r"(?s)not an mbox git can split:.*empty mbox"):
        load_series("6.1", empty)
    with pytest.raises(SeriesError, match=r"no series for base '9\.9'"):
        load_series("9.9", mbox)


def test_added_lines_names_the_patch_that_wrote_each_line(fake_tree: Source,
                                                          tmp_path: Path) -> None:
    p1 = make_patch(tmp_path, "0001-two.patch", subject="two", path="fs/a.c", line=1,
                    before="one", old="two", new="TWO", after="three")
    p2 = make_patch(tmp_path, "0002-four.patch", subject="four", path="fs/a.c", line=3,
                    before="three", old="four", new="FOUR", after="five")
    added = series_mod.added_lines(fake_tree, Series("9.9", (p1, p2), 0), ["fs/a.c", "fs/no.c"])
    assert added == {"0001-two.patch": {"fs/a.c": [2]}, "0002-four.patch": {"fs/a.c": [4]}}
