"""The running kernel's gcov counters (CONFIG_GCOV_KERNEL), for the host's coverage run.

    python3 -m guest.gcov reset    zero every counter
    python3 -m guest.gcov dump     every .gcda file, as a base64 tar on stdout

The files under /sys/kernel/debug/gcov report size 0, so each is read whole
before it goes into the tar (tar(1) would store them empty). The tar's member
names are the objects' build paths, as the kernel lists them.
"""

from __future__ import annotations

import base64
import io
import sys
import tarfile
from pathlib import Path

ROOT = Path("/sys/kernel/debug/gcov")


def reset(root: Path = ROOT) -> None:
    (root / "reset").write_text("1\n")


def dump(root: Path = ROOT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted(root.rglob("*.gcda")):
            data = path.read_bytes()
            info = tarfile.TarInfo(str(path.relative_to(root)))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def main(argv: list[str]) -> int:
    if not ROOT.is_dir():
        print(f"{ROOT} is missing: the kernel has no CONFIG_GCOV_KERNEL", file=sys.stderr)
        return 2
    if argv == ["reset"]:
        reset()
    elif argv == ["dump"]:
        sys.stdout.write(base64.b64encode(dump()).decode() + "\n")
    else:
        print("usage: python3 -m guest.gcov reset|dump", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
