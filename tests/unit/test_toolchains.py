"""Toolchains as data (harness/kernel/toolchains.py) and how a request names one."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import BuildError, ConfigError
from harness.kernel.build import BuildRequest, make_command
from harness.kernel.kconfig import load_flavours
from harness.kernel.toolchains import Toolchain, toolchain


def test_clang_builds_with_llvm_1_and_a_directory_of_its_own() -> None:
    make = make_command(Path("/src"), Path("/b"), 2, "clang")
    assert "LLVM=1" in make
    assert any(arg.startswith("CC=") and arg.endswith("clang") for arg in make)
    assert "LLVM=1" not in make_command(Path("/src"), Path("/b"), 2)
    clang = BuildRequest(base="6.12", toolchain="clang")
    assert clang.build_name() == "6.12-default-clang"
    assert BuildRequest(base="6.12").build_name() == "6.12-default"
    assert "--toolchain=clang" in clang.as_args()
    assert not any(a.startswith("--toolchain") for a in BuildRequest().as_args())


def test_a_missing_program_is_named_with_its_packages() -> None:
    absent = Toolchain("imaginary", "no-such-cc-here", (), ("no-such-cc-here",), ("pkg-a",))
    with pytest.raises(BuildError, match="needs no-such-cc-here: install pkg-a"):
        absent.check()
    with pytest.raises(BuildError, match="unknown toolchain 'icc' \\(known: gcc, clang\\)"):
        toolchain("icc")


def test_a_flavour_that_needs_clang_builds_with_it() -> None:
    kmsan = BuildRequest(base="6.12", flavour="kmsan")
    assert kmsan.compiler() == "clang"
    assert kmsan.build_name() == "6.12-kmsan-clang"
    assert BuildRequest(base="6.12", flavour="kmsan", toolchain="clang").compiler() == "clang"
    assert BuildRequest(base="6.12", flavour="debug").compiler() == "gcc"


def test_a_flavour_names_only_known_toolchains(tmp_path: Path) -> None:
    flavours = tmp_path / "flavours.toml"
    flavours.write_text('[odd]\nfragments = ["base.config"]\ntoolchain = "icc"\n')
    with pytest.raises(ConfigError, match="flavour 'odd': unknown toolchain 'icc'"):
        load_flavours(flavours)


def test_kmsan_tests_run_only_when_the_flavour_is_named(pytester: pytest.Pytester) -> None:
    """An opt-in flavour (kmsan: clang, and 10 to 20 times slower) is no part of a run
    that does not name it, so make check builds no KMSAN kernel of its own accord."""
    assert load_flavours()["kmsan"].opt_in and not load_flavours()["debug"].opt_in
    pytester.makepyfile(test_f='''
import pytest

@pytest.mark.flavour("kmsan")
def test_k():
    pass

@pytest.mark.flavour("debug")
def test_d():
    pass
''')
    def selected(*args: str) -> list[str]:
        result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", *args)
        return sorted(line.split("::")[1] for line in result.outlines if "::" in line)
    assert selected() == ["test_d"]
    assert selected("--flavour=kmsan") == ["test_d", "test_k"]
    assert selected("--flavours=default,kmsan") == ["test_k"]
