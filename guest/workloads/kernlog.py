"""The kernel log around a remount: a marker, then the UBI/UBIFS lines after it.

A power cut leaves work for recovery, and UBI/UBIFS say so ("recovery needed",
corrupted PEBs preserved, a LEB's corrupt tail dropped): those are notices and
warnings. An "error" line while attaching or mounting the cut image means
recovery met something it did not expect, and fails the check.
"""

from __future__ import annotations

import re
import subprocess

# UBI prints "ubiN: ...", "ubiN warning: ...", "ubiN error: ..."; UBIFS
# "UBIFS (ubiN:V): ...", "UBIFS warning (...)", "UBIFS error (...)".
_OURS = re.compile(r"\bubi\d+(?: warning| error)?:|\bUBIFS\b")
_ERROR = re.compile(r"\bubi\d+ error:|\bUBIFS error\b")
_WARNING = re.compile(r"\bubi\d+ warning:|\bUBIFS warning\b")
# Notices worth reporting: recovery at work, not the attach/mount banners.
_NOTABLE = re.compile(r"recover|corrupt(?!ed PEBs: 0)")


def mark(text: str) -> str:
    """Write a unique marker line into the kernel log; returns it."""
    line = f"muse-workload: {text}"
    with open("/dev/kmsg", "w", encoding="utf-8") as kmsg:
        kmsg.write(line + "\n")
    return line


def since(marker: str) -> list[str]:
    """Kernel log lines after the last occurrence of marker."""
    text = subprocess.run(["dmesg"], capture_output=True, text=True, check=True,
                          timeout=60).stdout
    lines = text.splitlines()
    start = max((i for i, line in enumerate(lines) if line.endswith(marker)), default=-1)
    return lines[start + 1:]


def classify(lines: list[str]) -> dict[str, list[str]]:
    """UBI/UBIFS lines split into errors, warnings and notable notices (recovery)."""
    out: dict[str, list[str]] = {"errors": [], "warnings": [], "notices": []}
    for line in lines:
        if not _OURS.search(line):
            continue
        if _ERROR.search(line):
            out["errors"].append(line.strip())
        elif _WARNING.search(line):
            out["warnings"].append(line.strip())
        elif _NOTABLE.search(line):
            out["notices"].append(line.strip())
    return out
