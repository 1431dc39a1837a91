"""New-diagnostic deltas per patch (harness/kernel/diagnostics.py), on captured kbuild logs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.kernel import diagnostics
from harness.kernel.diagnostics import Diagnostic

DATA = Path(__file__).resolve().parent.parent / "data" / "diagnostics"


# The captured logs built tests/data/diagnostics/demo.c as an external module there.
MODULE_DIR = Path("/work/diagmod")
SPARSE = [("sparse", 7, "symbol 'demo_no_prototype' was not declared. Should it be static?"),
          ("sparse", 22, "cast removes address space '__user' of expression")]


def _found(name: str, compiler: str) -> list[tuple[str, int, str]]:
    found = diagnostics.parse((DATA / name).read_text(), MODULE_DIR, compiler)
    assert all(d.file == "demo.c" and d.kind == "warning" for d in found)
    return [(d.tool, d.line, d.message) for d in found]


def test_gcc_log_names_each_tool_and_strips_the_tree() -> None:
    # gcc quotes with U+2018/U+2019 in a UTF-8 locale: plain quotes, for Accepted-Diagnostic.
    assert _found("gcc-w1-sparse.log", "gcc") == [
        ("gcc", 7, "no previous prototype for 'demo_no_prototype' [-Wmissing-prototypes]"),
        ("gcc", 9, "variable 'unused_but_set' set but not used [-Wunused-but-set-variable]"),
        *SPARSE]


def test_clang_log_leaves_out_notes_and_source_lines() -> None:
    assert _found("clang-w1-sparse.log", "clang") == [
        ("clang", 9, "variable 'unused_but_set' set but not used [-Wunused-but-set-variable]"),
        ("clang", 7, "no previous prototype for function 'demo_no_prototype' "
                     "[-Wmissing-prototypes]"),
        *SPARSE]


def _d(message: str, line: int = 1, tool: str = "gcc") -> Diagnostic:
    return Diagnostic(tool, "fs/fuse/muse.c", line, "warning", message)


def test_moved_lines_are_not_new_but_one_more_of_a_kind_is() -> None:
    before = [_d("unused variable 'x'", 10), _d("shadowed 'y'", 20)]
    after = [_d("unused variable 'x'", 14), _d("shadowed 'y'", 24), _d("shadowed 'y'", 40)]
    assert diagnostics.new_in(before, after) == [_d("shadowed 'y'", 40)]
    assert diagnostics.new_in(after, before) == []


def test_same_message_from_another_tool_is_another_diagnostic() -> None:
    assert diagnostics.new_in([_d("m")], [_d("m"), _d("m", tool="sparse")]) == \
        [_d("m", tool="sparse")]


def test_a_patch_accepts_a_diagnostic_by_text() -> None:
    text = 'Subject: x\n\nAccepted-Diagnostic: "context imbalance" the lock is dropped by f()\n'
    assert diagnostics.accepted(text, _d("context imbalance in 'g' - unexpected unlock"))
    assert not diagnostics.accepted(text, _d("unused variable 'x'"))
    assert not diagnostics.accepted("no such line", _d("context imbalance"))


def test_touched_files_and_the_sources_compiled_for_them() -> None:
    patch = "--- a/fs/fuse/fuse_i.h\n+++ b/fs/fuse/fuse_i.h\n--- a/fs/fuse/dev.c\n" \
            "+++ b/fs/fuse/dev.c\n+++ b/fs/fuse/dev.c\n"
    files = diagnostics.touched(patch)
    assert files == ["fs/fuse/fuse_i.h", "fs/fuse/dev.c"]
    series = ["fs/fuse/dev.c", "fs/fuse/muse.c", "drivers/mtd/mtdpart.c"]
    assert diagnostics.sources_of(files, series) == ["fs/fuse/dev.c", "fs/fuse/muse.c"]
    assert diagnostics.sources_of(["include/uapi/linux/fuse.h"], series) == series


@pytest.mark.parametrize("line", [
    "  CC [M]  fs/fuse/muse.o",
    "make[1]: Entering directory '/b'",
    "fs/fuse/muse.c: In function 'muse_init':",
    "   12 |         int x;",
])
def test_lines_that_are_not_diagnostics(line: str) -> None:
    assert diagnostics.parse(line, Path("/t"), "gcc") == []
