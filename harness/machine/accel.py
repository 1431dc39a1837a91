"""KVM when it works, TCG otherwise.

/dev/kvm can exist and still fail at run time ("KVM internal error"), so a
short probe boots the kernel with no root filesystem under KVM: if the kernel
gets as far as panicking about the missing root, KVM works. The verdict is
cached per host boot.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.machine.qemu import x86_64
from harness.options import GUEST_IDLE, TCG_THREADS
from harness.paths import cache_dir
from harness.proc import file_lock, say

PROBE_TIMEOUT = 30


@dataclass(frozen=True)
class Accel:
    name: str      # "kvm" or "tcg"
    reason: str    # why this one: kept in reports


def tcg_threads(preferred: str, parallel: bool) -> str:
    """The TCG thread mode for a guest: the preferred one, but always a thread per
    vCPU when its CPUs must run in parallel.

    On an idle host the two modes serve MUSE requests about as fast, and "multi"
    runs the guest's processes side by side (a server starting while a shell
    polls for it). On a host whose cores are busy, "multi" makes every wakeup of
    a task on the other vCPU wait until a halted host thread is scheduled again:
    random 2 KiB MUSE reads measured 433/s against 2486/s in "single", which
    keeps the guest's two CPUs (interleaved at most 100 ms apart) on one host core.
    """
    if preferred not in TCG_THREADS:
        raise ValueError(f"TCG thread mode {preferred!r}: not one of {', '.join(TCG_THREADS)}")
    return "multi" if parallel else preferred


def guest_idle(preferred: str, accel: str, alone: bool, threads: str = "multi") -> str:
    """What an idle guest CPU does: "halt" or "poll" (the kernel's idle=poll).

    Under TCG a halted vCPU's host thread sleeps, and every wakeup sent to it (a
    MUSE request's, each time the server and its caller sit on different vCPUs)
    waits until the host wakes and schedules that thread. A polling vCPU is
    running when the wakeup comes (issue 23's bench, 2 vCPUs: MUSE sequential
    reads 1.5 times, random reads and UBIFS writes about 3 times faster), but
    keeps a host core busy for the VM's whole life, idle or not: "auto" polls
    only for a VM that has the host to itself with a host thread per vCPU (round
    robin, a polling vCPU holds the one thread until its time slice ends), and
    never under KVM, where the host's own halt polling does this job for free.
    """
    if preferred not in GUEST_IDLE:
        raise ValueError(f"guest idle mode {preferred!r}: not one of {', '.join(GUEST_IDLE)}")
    if preferred != "auto":
        return preferred
    return "poll" if accel == "tcg" and alone and threads == "multi" else "halt"


def accel_option(accel: str, threads: str) -> str:
    """QEMU's -accel value."""
    return f"tcg,thread={threads}" if accel == "tcg" else accel


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def probe_kvm(kernel: Path) -> tuple[bool, str]:
    cmd = [x86_64.BINARY, "-accel", "kvm", "-cpu", "host", "-m", "256", "-display", "none",
           "-monitor", "none", "-serial", "stdio", "-no-reboot", "-kernel", str(kernel),
           "-append", f"console={x86_64.CONSOLE} panic=-1"]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                                timeout=PROBE_TIMEOUT, stdin=subprocess.DEVNULL, check=False)
        output = result.stdout + result.stderr
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or b""
        output = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        if "KVM internal error" not in output:
            return False, f"KVM probe hung for {PROBE_TIMEOUT} s"
    if "Kernel panic" in output or "VFS:" in output:
        return True, "KVM probe booted the kernel"
    lines = [ln for ln in output.splitlines() if "KVM" in ln or "kvm" in ln]
    return False, "KVM probe failed: " + (lines[0].strip() if lines else output.strip()[-200:])


def choose_accel(kernel: Path) -> Accel:
    forced = os.environ.get("MUSE_HARNESS_ACCEL")
    if forced in ("kvm", "tcg"):
        return Accel(forced, "forced by MUSE_HARNESS_ACCEL")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Accel("tcg", "no usable /dev/kvm")
    verdict_file = cache_dir("accel") / f"{_boot_id()}.json"
    with file_lock(cache_dir("locks") / "accel.lock"):
        if verdict_file.is_file():
            data = json.loads(verdict_file.read_text())
            return Accel(data["name"], data["reason"] + " (cached for this host boot)")
        works, reason = probe_kvm(kernel)
        accel = Accel("kvm" if works else "tcg", reason)
        verdict_file.write_text(json.dumps({"name": accel.name, "reason": accel.reason}))
    if not works:
        say(f"{reason}; falling back to TCG")
    return accel
