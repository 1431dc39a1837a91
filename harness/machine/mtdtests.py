"""mtd-utils' own test programs for the guest image: mtd-tests, ubi-tests, fs-tests.

Debian's mtd-utils binary package leaves them out; its source package builds
them. They are built here on the host, once per mtd-utils version, from the
source of the very version the guest installs (both come from the host's apt
sources, and host and guest are the same Debian release), and staged for the
root filesystem, whose cache key includes MTD_TESTS_KEY.

The source needs deb-src entries: when apt has none, one file
(SOURCES_FILE) repeats the host's Debian "deb" entries as "deb-src".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from harness.errors import RootfsError
from harness.paths import cache_dir
from harness.proc import file_lock, run_logged, say

PACKAGE = "mtd-utils"
TESTDIR = "/usr/libexec/mtd-utils"      # where the programs land in the guest
SOURCES_FILE = Path("/etc/apt/sources.list.d/muse-harness-src.sources")
# The build's recipe: a change rebuilds the programs and the image.
RECIPE = "1"
CONFIGURE = ("--prefix=/usr", "--disable-unit-tests", "--without-selinux")
BUILD_TOOLS = ("autoconf", "automake", "libtool", "pkg-config", "dpkg-dev")
APT_TIMEOUT = 1200.0
# The programs the peer run needs: a staging without them is not a build.
EXPECTED = ("flash_readtest", "nandpagetest", "nandsubpagetest", "nandbiterrs", "flash_speed",
            "flash_stress", "flash_torture", "runubitests.sh", "io_basic", "integ", "integck")


def _apt(*args: str, what: str) -> str:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(list(args), capture_output=True, text=True, env=env,
                              timeout=APT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise RootfsError(f"{what}: no answer in {APT_TIMEOUT:.0f} s: {' '.join(args)}") from None
    if done.returncode != 0:
        raise RootfsError(f"{what} failed (exit {done.returncode}): {' '.join(args)}\n"
                          f"{done.stderr[-2000:]}")
    return done.stdout


def guest_version() -> str:
    """The mtd-utils version apt would install (the guest's), e.g. '1:2.1.5-1'."""
    found = re.search(r"Candidate:\s*(\S+)", _apt("apt-cache", "policy", PACKAGE,
                                                  what="apt-cache policy"))
    if not found or found.group(1) == "(none)":
        raise RootfsError(f"apt knows no {PACKAGE} package: the guest could not install it")
    return found.group(1)


def source_entries(text: str) -> str:
    """deb822 paragraphs of Debian 'deb' sources, repeated as 'deb-src' (the rest dropped)."""
    out = []
    for paragraph in re.split(r"\n\s*\n", text.strip()):
        types = re.search(r"^Types:\s*(.+)$", paragraph, re.M)
        if not types or "deb" not in types.group(1).split():
            continue
        if "deb-src" in types.group(1).split():
            continue
        out.append(re.sub(r"^Types:.*$", "Types: deb-src", paragraph, count=1, flags=re.M))
    return "\n\n".join(out) + "\n" if out else ""


def _ensure_deb_src() -> None:
    known = subprocess.run(["apt-cache", "showsrc", PACKAGE], capture_output=True, text=True,
                           timeout=APT_TIMEOUT, check=False)
    if known.returncode == 0 and known.stdout.strip():
        return                  # exit 100 and "put some deb-src URIs" when there are none
    if os.geteuid() != 0:
        raise RootfsError(f"apt has no deb-src entries for {PACKAGE}: run as root once, or add "
                          "deb-src lines for the host's Debian sources yourself")
    entries = "\n".join(source_entries(p.read_text()) for p in
                        sorted(Path("/etc/apt/sources.list.d").glob("*.sources")))
    if "Types: deb-src" not in entries:
        raise RootfsError("found no deb822 source (/etc/apt/sources.list.d/*.sources) to "
                          "repeat as deb-src: add deb-src lines for mtd-utils yourself")
    say(f"enabling Debian source packages: {SOURCES_FILE}")
    SOURCES_FILE.write_text("# Written by muse-harness: mtd-utils' tests are built from "
                            "Debian's source package.\n" + entries)
    _apt("apt-get", "update", "-q", what="apt-get update")


def mtd_tests_key(version: str | None = None) -> str:
    return f"{(version or guest_version()).replace(':', '_')}-r{RECIPE}"


def build_mtd_tests() -> Path:
    """The staged tree (its TESTDIR holds the programs), built once per key."""
    version = guest_version()
    key = mtd_tests_key(version)
    folder = cache_dir("mtd-utils-tests") / key
    staged = folder / "stage"
    with file_lock(cache_dir("locks") / "mtd-utils-tests.lock",
                   busy="another process builds mtd-utils' tests: waiting"):
        if all((staged / TESTDIR.lstrip("/") / name).is_file() for name in EXPECTED):
            return staged
        log = folder / "build.log"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        say(f"building mtd-utils {version}'s test programs from Debian's source "
            f"(once; log: {log})")
        _ensure_deb_src()
        if os.geteuid() == 0:
            _apt("apt-get", "build-dep", "-y", "-q", f"{PACKAGE}={version}",
                 what="apt-get build-dep")
            _apt("apt-get", "install", "-y", "-q", *BUILD_TOOLS, what="apt-get install")
        run_logged(["apt-get", "source", "-q", f"{PACKAGE}={version}"], log, cwd=folder,
                   error=RootfsError, what="apt-get source")
        tree = next((p for p in folder.iterdir() if p.is_dir() and p.name.startswith(PACKAGE)),
                    None)
        if tree is None:
            raise RootfsError(f"apt-get source left no {PACKAGE} tree in {folder}")
        run_logged(["./autogen.sh"], log, cwd=tree, error=RootfsError, what="autogen.sh")
        run_logged(["./configure", *CONFIGURE], log, cwd=tree, error=RootfsError,
                   what="configure")
        run_logged(["make", f"-j{os.cpu_count() or 1}"], log, cwd=tree, error=RootfsError,
                   what="make")
        run_logged(["make", "install", f"DESTDIR={staged}"], log, cwd=tree, error=RootfsError,
                   what="make install")
        missing = [n for n in EXPECTED if not (staged / TESTDIR.lstrip("/") / n).is_file()]
        if missing:
            raise RootfsError(f"the {PACKAGE} build installed no {', '.join(missing)} "
                              f"under {TESTDIR} (see {log})")
        shutil.rmtree(tree)
        return staged


def install_into(root: Path, staged: Path) -> None:
    """Only the test programs go into the guest: its own mtd-utils stays Debian's."""
    target = root / TESTDIR.lstrip("/")
    shutil.copytree(staged / TESTDIR.lstrip("/"), target, symlinks=True, dirs_exist_ok=True)
