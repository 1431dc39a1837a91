"""The edit loop's shortcuts: what changed since a build directory's last build.

A patch of the series changed: the .config is reused while the fragments and
every Kconfig file it was made from are unchanged, and when all that changed
are sources of modules (muse.c with CONFIG_MUSE=m), only those .ko files are
built and put where modules_install put them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from harness.errors import BuildError
from harness.proc import run_logged


def head(tree: Path) -> str | None:
    result = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True,
                            text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def changed_since(tree: Path, builddir: Path, commit: str | None) -> set[str] | None:
    """Files whose content changed since this build directory's last build (None: unknown)."""
    built = builddir / "built-commit"
    if commit is None or not built.is_file() or not (builddir / "vmlinux").is_file():
        return None
    result = subprocess.run(["git", "-C", str(tree), "diff", "--name-only", "-z",
                             "--no-renames", built.read_text().strip(), commit],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return None
    return {path for path in result.stdout.split("\0") if path}


def config_current(tree: Path, builddir: Path, config_key: str) -> bool:
    """The .config stands: same fragments, and no Kconfig file it was made from is newer."""
    dotconfig, key, deps = (builddir / ".config", builddir / "config-key",
                            builddir / "include/config/auto.conf.cmd")
    if not (dotconfig.is_file() and key.is_file() and deps.is_file()):
        return False
    if key.read_text() != config_key:
        return False
    made = dotconfig.stat().st_mtime_ns
    for name in kconfig_deps(deps.read_text()):
        try:
            if (tree / name).stat().st_mtime_ns > made:
                return False
        except FileNotFoundError:
            return False
    return True


def kconfig_deps(auto_conf_cmd: str) -> list[str]:
    """The Kconfig files of include/config/auto.conf.cmd's deps_config list."""
    lines = auto_conf_cmd.splitlines()
    try:
        start = lines.index("deps_config := \\") + 1
    except ValueError:
        return []
    deps = []
    for line in lines[start:]:
        name = line.strip().removesuffix("\\").strip()
        if not name:
            break
        deps.append(name)
    return deps


def module_targets(builddir: Path, changed: set[str]) -> list[str] | None:
    """The .ko targets to rebuild when only sources of modules changed, else None.

    A changed file qualifies when it is a .c file whose object kbuild lists in a
    module's .mod file (built-in objects are in no .mod file); anything else
    (headers, Kconfig, Makefiles, new files) needs the whole build.
    """
    if not changed:
        return None
    targets = set()
    for path in changed:
        if not path.endswith(".c"):
            return None
        obj = path[:-2] + ".o"
        directory = builddir / Path(path).parent
        owner = next((mod for mod in sorted(directory.glob("*.mod"))
                      if obj in mod.read_text().split()), None)
        if owner is None:
            return None
        targets.add(str(owner.relative_to(builddir).with_suffix(".ko")))
    return sorted(targets)


def install_modules(builddir: Path, modules: list[str], log: Path) -> None:
    """Put freshly built .ko files where modules_install put them, stripped like it does."""
    release = (builddir / "include/config/kernel.release").read_text().strip()
    installed = builddir / "modroot/lib/modules" / release
    for module in modules:
        target = installed / "kernel" / module
        if not target.is_file():
            raise BuildError(f"{target} is missing: the last full build did not install "
                             f"{module}; remove {builddir / 'built-commit'} to rebuild all")
        # A VM may be loading modules from modroot over 9p: replace, never rewrite in place.
        tmp = target.with_name(f".{target.name}.new")
        shutil.copyfile(builddir / module, tmp)
        run_logged(["strip", "--strip-debug", str(tmp)], log, error=BuildError,
                   what="strip")
        os.replace(tmp, target)
    run_logged(["depmod", "-b", str(builddir / "modroot"), release], log, error=BuildError,
               what="depmod")
