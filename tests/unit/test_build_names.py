"""Which build directory each kind of kernel request gets (BuildRequest.build_name)."""

from __future__ import annotations

from pathlib import Path

from harness.kernel.build import BuildRequest


def test_a_partial_series_never_builds_into_the_flavours_own_directory() -> None:
    whole = BuildRequest(base="6.12", flavour="kmsan")
    names = {whole.build_name(), BuildRequest(base="6.12", flavour="kmsan", upto=33).build_name(),
             BuildRequest(base="6.12", flavour="kmsan", upto=33, as_posted=True).build_name(),
             BuildRequest(base="6.12", flavour="kmsan", as_posted=True).build_name()}
    assert names == {"6.12-kmsan-clang", "6.12-kmsan-clang-upto",
                     "6.12-kmsan-clang-as-posted-upto", "6.12-kmsan-clang-as-posted"}


def test_bisect_steps_and_mutants_keep_their_own_names() -> None:
    assert BuildRequest(base="6.1", upto=7, build_as="bisect").build_name() == "6.1-default-bisect"
    assert BuildRequest(base="6.1", extra_patches=(Path("/m.patch"),)).build_name() \
        == "6.1-default-extra"
