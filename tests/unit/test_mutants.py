"""The mutant generator (harness/kernel/mutants.py) on a small C file."""

from __future__ import annotations

from pathlib import Path

from harness.kernel import mutants

SAMPLE = (Path(__file__).resolve().parent.parent / "data" / "mutants" / "sample.c")


def _all() -> tuple[list[str], list[mutants.Mutant]]:
    source = SAMPLE.read_text().splitlines()
    return source, mutants.generate(source)


def test_comments_strings_and_macros_are_left_alone() -> None:
    _, found = _all()
    lines = {m.line for m in found}
    # line 2: a comment; 4-5: a macro; 13: a pr_warn() format string with < and ==
    assert not lines & {1, 2, 3, 4, 5}
    assert {m.operator for m in found if m.line == 13} == {"delete"}


def test_each_operator_finds_its_places() -> None:
    source, found = _all()
    by_id = {m.id: m for m in found}
    assert by_id["relational-12-7-gt"].apply(source)[11] == "\tif (n > 4 || d->count == 0) {"
    assert by_id["relational-12-7-lt"].apply(source)[11] == "\tif (n < 4 || d->count == 0) {"
    assert by_id["logical-12-12"].apply(source)[11] == "\tif (n >= 4 && d->count == 0) {"
    assert by_id["negate-cond-12-1"].apply(source)[11] == \
        "\tif (!(n >= 4 || d->count == 0)) {"
    assert by_id["bound-12-10-+1"].apply(source)[11] == "\tif (n >= 5 || d->count == 0) {"
    assert by_id["errno-14-8"].apply(source)[13] == "\t\tret = -EIO;"
    assert by_id["arithmetic-17-20"].apply(source)[16] == "\td->count = d->count - n;"
    pair = by_id["pair-11-21"]
    assert len(pair.apply(source)) == len(source) - 2
    assert "mutex_lock" not in "".join(pair.apply(source))


def test_statements_are_deleted_only_where_one_starts() -> None:
    _, found = _all()
    deleted = {m.line for m in found if m.operator == "delete"}
    assert {14, 17, 21} <= deleted
    assert not {18, 19} & deleted, "a call split over two lines is not one line's statement"
    assert 9 not in deleted, "declarations stay"
    assert not any(m.operator == "relational" and m.line == 19 for m in found), \
        "a shift is not a comparison"


def test_ids_are_unique_and_the_sample_is_seeded() -> None:
    _, found = _all()
    assert len({m.id for m in found}) == len(found)
    first = mutants.sample(found, 5, seed=7)
    assert first == mutants.sample(found, 5, seed=7)
    assert first != mutants.sample(found, 5, seed=8)
    assert [m.line for m in first] == sorted(m.line for m in first)
    assert mutants.sample(found, None, seed=1) == found


def test_diff_is_a_patch_of_the_one_change() -> None:
    source, found = _all()
    diff = next(m for m in found if m.id == "errno-14-8").diff("fs/fuse/sample.c", source)
    assert diff.startswith("--- a/fs/fuse/sample.c\n+++ b/fs/fuse/sample.c\n@@ ")
    changed = [ln for ln in diff.splitlines()[2:] if ln[:1] in "+-"]
    assert changed == ["-\t\tret = -EINVAL;", "+\t\tret = -EIO;"]
