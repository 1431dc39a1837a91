"""Phase 1: get kernel sources.

Either Debian's linux-source-<base> package, extracted once into the cache,
or the user's own tree, which is never written to.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import SourceError
from harness.paths import cache_dir
from harness.proc import file_lock, say


@dataclass(frozen=True)
class Source:
    """A pristine kernel tree and what identifies it."""

    path: Path
    version: str          # kernel version from the Makefile, e.g. 6.1.158
    origin: str           # "debian:linux-source-6.1=6.1.158-1" or "user:/path"
    user: bool            # the user's tree: read-only to us
    has_muse: bool        # already carries fs/fuse/muse.c: build it as it is


def kernel_version(tree: Path) -> str:
    makefile = tree / "Makefile"
    try:
        text = makefile.read_text(errors="replace")[:4096]
    except OSError as exc:
        raise SourceError(f"{tree} is not a kernel tree: cannot read {makefile} ({exc})") from exc
    fields = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL) = (\d*)$", text, re.M))
    if "VERSION" not in fields or "PATCHLEVEL" not in fields:
        raise SourceError(f"{tree} is not a kernel tree: no VERSION/PATCHLEVEL in {makefile}")
    return ".".join(v for v in (fields["VERSION"], fields["PATCHLEVEL"],
                                fields.get("SUBLEVEL", "")) if v)


def user_source(tree: Path) -> Source:
    """The user's tree, checked to be a kernel tree that can be built out of tree."""
    tree = tree.expanduser().resolve()
    if not tree.is_dir():
        raise SourceError(f"--kernel-src {tree}: no such directory")
    if not (tree / "Kconfig").is_file() or not (tree / "fs" / "fuse").is_dir():
        raise SourceError(f"--kernel-src {tree}: not a kernel tree (no Kconfig or fs/fuse)")
    version = kernel_version(tree)
    # Kbuild refuses O= builds from a tree that was configured in place.
    if (tree / ".config").exists() or (tree / "include" / "config").exists():
        raise SourceError(
            f"--kernel-src {tree}: the tree was configured or built in place; "
            "out-of-tree builds need a clean source (run 'make mrproper' there, "
            "after saving your .config)")
    return Source(tree, version, f"user:{tree}", True, (tree / "fs/fuse/muse.c").exists())


def _package_version(package: str) -> str | None:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status} ${Version}", package],
        capture_output=True, text=True, check=False)
    words = result.stdout.split()
    if result.returncode != 0 or "installed" not in words[:3]:
        return None
    return words[-1]


def _install_package(package: str) -> None:
    if os.geteuid() != 0:
        raise SourceError(
            f"{package} is not installed and we are not root: "
            f"run 'sudo apt-get install {package}' or pass --kernel-src DIR")
    say(f"installing {package} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", package]):
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise SourceError(f"{' '.join(cmd)} failed:\n{result.stdout[-2000:]}"
                              f"{result.stderr[-2000:]}")


def debian_source(base: str) -> Source:
    """linux-source-<base>, installed when missing, extracted once per package version."""
    package = f"linux-source-{base}"
    version = _package_version(package)
    if version is None:
        _install_package(package)
        version = _package_version(package)
        if version is None:
            raise SourceError(f"{package} still not installed after apt-get install")
    tarball = Path(f"/usr/src/{package}.tar.xz")
    if not tarball.is_file():
        raise SourceError(f"{package} {version} is installed but {tarball} is missing")
    dest = cache_dir("src") / f"{package}_{version}"
    with file_lock(cache_dir("locks") / f"src-{package}.lock"):
        if not (dest / "Makefile").is_file():
            say(f"extracting {tarball} (once per package version)")
            tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest.parent))
            try:
                subprocess.run(["tar", "-xf", str(tarball), "-C", str(tmp)], check=True)
                inner = next(p for p in tmp.iterdir() if p.is_dir())
                shutil.rmtree(dest, ignore_errors=True)
                inner.rename(dest)
            except (subprocess.CalledProcessError, StopIteration) as exc:
                raise SourceError(f"extracting {tarball} failed: {exc}") from exc
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return Source(dest, kernel_version(dest), f"debian:{package}={version}", False,
                  _pristine_has_muse(dest))


def _pristine_has_muse(tree: Path) -> bool:
    """Whether the package itself carries MUSE: the extraction doubles as our scratch
    repository, so its working tree has muse.c whenever a series is applied."""
    if not (tree / ".git").is_dir():
        return (tree / "fs/fuse/muse.c").exists()
    probe = subprocess.run(["git", "-C", str(tree), "cat-file", "-e",
                            "harness/pristine:fs/fuse/muse.c"], capture_output=True, check=False)
    return probe.returncode == 0


def get_source(base: str, kernel_src: Path | None) -> Source:
    return user_source(kernel_src) if kernel_src else debian_source(base)
