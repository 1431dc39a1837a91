"""The edit loop's shortcuts: which changes allow a module-only build, when .config stands."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.kernel.incremental import changed_since, config_current, kconfig_deps, module_targets

AUTO_CONF_CMD = """\
deps_config := \\
\tfs/fuse/Kconfig \\
\tKconfig

include/config/auto.conf: $(deps_config)

$(deps_config): ;
"""


@pytest.fixture
def builddir(tmp_path: Path) -> Path:
    build = tmp_path / "build"
    (build / "fs/fuse").mkdir(parents=True)
    (build / "fs/fuse/muse.mod").write_text("fs/fuse/muse.o\n")
    (build / "fs/fuse/cuse.mod").write_text("fs/fuse/cuse.o\n")
    (build / "drivers/mtd").mkdir(parents=True)
    (build / "drivers/mtd/mtd.mod").write_text("drivers/mtd/mtdcore.o drivers/mtd/mtdsuper.o\n")
    return build


def test_module_sources_only_build_their_modules(builddir: Path) -> None:
    assert module_targets(builddir, {"fs/fuse/muse.c"}) == ["fs/fuse/muse.ko"]
    assert module_targets(builddir, {"fs/fuse/muse.c", "drivers/mtd/mtdsuper.c"}) == [
        "drivers/mtd/mtd.ko", "fs/fuse/muse.ko"]


@pytest.mark.parametrize("changed", [
    set(),                                   # nothing changed: nothing to shortcut
    {"fs/fuse/dev.c"},                       # built in: no .mod lists it
    {"fs/fuse/muse.c", "fs/fuse/fuse_i.h"},  # a header reaches who knows what
    {"fs/fuse/Kconfig"},
    {"fs/fuse/new.c"},                       # a new file: the Makefile changed too
])
def test_anything_else_needs_the_whole_build(builddir: Path, changed: set[str]) -> None:
    assert module_targets(builddir, changed) is None


def test_kconfig_deps_reads_the_deps_list() -> None:
    assert kconfig_deps(AUTO_CONF_CMD) == ["fs/fuse/Kconfig", "Kconfig"]
    assert kconfig_deps("nothing here\n") == []


def test_config_stands_until_fragments_or_a_kconfig_change(tmp_path: Path,
                                                           builddir: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "fs/fuse").mkdir(parents=True)
    for name in ("fs/fuse/Kconfig", "Kconfig"):
        (tree / name).write_text("config X\n")
        os.utime(tree / name, ns=(1, 1))
    assert not config_current(tree, builddir, "key")      # no .config yet
    (builddir / ".config").write_text("CONFIG_X=y\n")
    (builddir / "config-key").write_text("key")
    (builddir / "include/config").mkdir(parents=True)
    (builddir / "include/config/auto.conf.cmd").write_text(AUTO_CONF_CMD)
    assert config_current(tree, builddir, "key")
    assert not config_current(tree, builddir, "other fragments")
    (tree / "fs/fuse/Kconfig").write_text("config X\nconfig MUSE\n")  # newer than .config
    assert not config_current(tree, builddir, "key")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", "-C",
                           str(repo), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_changed_since_the_last_build_compares_commits(tmp_path: Path, builddir: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "fs/fuse").mkdir(parents=True)
    (tree / "fs/fuse/muse.c").write_text("one\n")
    _git(tree, "init", "-q")
    _git(tree, "add", "-A")
    _git(tree, "commit", "-q", "-m", "a")
    first = _git(tree, "rev-parse", "HEAD")
    (tree / "fs/fuse/muse.c").write_text("two\n")
    _git(tree, "commit", "-q", "-am", "b")
    second = _git(tree, "rev-parse", "HEAD")
    assert changed_since(tree, builddir, second) is None   # never built here
    (builddir / "built-commit").write_text(first)
    (builddir / "vmlinux").write_text("")
    assert changed_since(tree, builddir, second) == {"fs/fuse/muse.c"}
    assert changed_since(tree, builddir, first) == set()
    assert changed_since(tree, builddir, None) is None    # a user tree: make decides
