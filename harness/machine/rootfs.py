"""Guest root filesystem: Debian built with mmdebstrap from the host's apt sources.

The result is an ext4 image made without mounting (mkfs.ext4 -d) plus an SSH
key pair, cached under a key over everything that goes into it, including
mtd-utils' test programs (mtdtests.py) under /usr/libexec/mtd-utils. VMs open it
with snapshot=on, so no test changes it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import jinja2

from harness.errors import RootfsError
from harness.machine.mtdtests import build_mtd_tests, install_into, mtd_tests_key
from harness.paths import TEMPLATES_DIR, cache_dir
from harness.proc import file_lock, run_logged, say, sha256_files

SUITE = "bookworm"
PACKAGES = ("python3", "openssh-server", "mtd-utils", "kmod", "iproute2", "procps",
            "util-linux", "coreutils")
ROOTFS_RECIPE = "1"
IMAGE_SLACK = 512 * 1024 * 1024

# Facts shared by the templates and the VM phase.
GUEST = {
    "hostname": "muse-guest",
    "guest_ip": "10.0.2.15",
    "gateway": "10.0.2.2",
    "harness_tag": "harness",
    "harness_mount": "/mnt/harness",
    "modules_tag": "modules",
    "marker": "MUSE-HARNESS:",
    "init": "/sbin/muse-harness-init",
    # bookworm's python3: the host writes bytecode for the guest when it runs the same.
    "python": "3.11",
}


@dataclass(frozen=True)
class Rootfs:
    image: Path
    ssh_key: Path
    key: str
    rebuilt: bool
    seconds: float


def _render(name: str) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    return env.get_template(name).render(**GUEST)


def _host_apt_sources() -> list[str]:
    """The host's own apt source files, passed to mmdebstrap as its mirrors."""
    override = os.environ.get("MUSE_HARNESS_APT_SOURCES")
    if override:
        return [override]
    found = []
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file() and any(ln.strip() and not ln.lstrip().startswith("#")
                                for ln in legacy.read_text().splitlines()):
        found.append(str(legacy))
    directory = Path("/etc/apt/sources.list.d")
    if directory.is_dir():
        found += sorted(str(p) for p in directory.iterdir() if p.suffix in (".list", ".sources"))
    if not found:
        raise RootfsError("no apt sources on the host (/etc/apt/sources.list[.d]); "
                          "set MUSE_HARNESS_APT_SOURCES to a sources file")
    return found


def _host_apt_options(workdir: Path) -> list[str]:
    """Proxy and validity settings of the host's apt, so the chroot's apt behaves alike."""
    dump = subprocess.run(["apt-config", "dump"], capture_output=True, text=True, check=False)
    keep = [ln for ln in dump.stdout.splitlines()
            if ln.startswith(("Acquire::http::Proxy", "Acquire::https::Proxy",
                              "Acquire::Check-Valid-Until", "Acquire::Check-Date"))]
    if not keep:
        return []
    conf = workdir / "host-apt.conf"
    conf.write_text("\n".join(keep) + "\n")
    return [f"--aptopt={conf}"]


TEMPLATES = ("init.sh.j2", "sshd_config.j2", "harness.pth.j2")


def rootfs_key() -> str:
    templates = [TEMPLATES_DIR / name for name in TEMPLATES]
    extra = "\0".join([ROOTFS_RECIPE, SUITE, *PACKAGES, json.dumps(GUEST, sort_keys=True),
                       mtd_tests_key()])
    return sha256_files(templates, extra)[:16]


def _customize(root: Path, pubkey: str, mtd_tests: Path) -> None:
    install_into(root, mtd_tests)
    init = root / GUEST["init"].lstrip("/")
    init.write_text(_render("init.sh.j2"))
    init.chmod(0o755)
    (root / "etc/ssh/sshd_config").write_text(_render("sshd_config.j2"))
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(pubkey)
    (ssh_dir / "authorized_keys").chmod(0o600)
    site = root / "usr/lib/python3/dist-packages"
    (site / "muse-harness.pth").write_text(_render("harness.pth.j2"))
    (root / GUEST["harness_mount"].lstrip("/")).mkdir(parents=True, exist_ok=True)
    (root / "etc/hostname").write_text(GUEST["hostname"] + "\n")
    # No fstab entries: init mounts what it needs; sshd host keys come from postinst.
    (root / "etc/fstab").write_text("")


def build_rootfs() -> Rootfs:
    key = rootfs_key()
    directory = cache_dir("rootfs")
    final = directory / key
    start = time.monotonic()
    with file_lock(cache_dir("locks") / "rootfs.lock"):
        if (final / "rootfs.ext4").is_file():
            say(f"root filesystem {key} is up to date")
            return Rootfs(final / "rootfs.ext4", final / "id_ed25519", key, False, 0.0)
        for tool in ("mmdebstrap", "mkfs.ext4", "ssh-keygen"):
            if not shutil.which(tool):
                raise RootfsError(f"{tool} is missing: run 'make deps' (or apt-get install "
                                  "mmdebstrap e2fsprogs openssh-client)")
        mtd_tests = build_mtd_tests()
        work = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=directory))
        log = directory / f"{key}.log"
        log.unlink(missing_ok=True)
        try:
            say(f"building the Debian {SUITE} guest root filesystem (log: {log})")
            run_logged(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "muse-harness",
                        "-f", str(work / "id_ed25519")], log, error=RootfsError)
            root = work / "root"
            mode = "root" if os.geteuid() == 0 else "unshare"
            run_logged(["mmdebstrap", f"--mode={mode}", "--variant=minbase",
                        f"--include={','.join(PACKAGES)}",
                        "--dpkgopt=path-exclude=/usr/share/{doc,man,locale,info}/*",
                        "--dpkgopt=path-include=/usr/share/locale/locale.alias",
                        *_host_apt_options(work), SUITE, str(root),
                        *_host_apt_sources()], log, error=RootfsError, what="mmdebstrap")
            _customize(root, (work / "id_ed25519.pub").read_text(), mtd_tests)
            used = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()
                       and not f.is_symlink())
            size_mb = (used + IMAGE_SLACK) // (1024 * 1024)
            run_logged(["mkfs.ext4", "-q", "-F", "-L", "muse-root", "-d", str(root),
                        str(work / "rootfs.ext4"), f"{size_mb}M"], log, error=RootfsError,
                       what="mkfs.ext4 -d")
            shutil.rmtree(root)
            shutil.rmtree(final, ignore_errors=True)
            work.rename(final)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        seconds = round(time.monotonic() - start, 1)
        say(f"root filesystem built in {seconds} s")
        return Rootfs(final / "rootfs.ext4", final / "id_ed25519", key, True, seconds)
