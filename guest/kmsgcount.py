"""Count the kernel log records that contain a text, from now on.

    python3 -m guest.kmsgcount TEXT OUT

Reads /dev/kmsg from its end and rewrites OUT with the count after each match,
until killed. `dmesg | grep -c` cannot do this for a long run that logs a
lot: the ring buffer drops the oldest records (UBI's power-cut emulation
prints a stack trace at every cut). A reader that falls behind gets EPIPE
for the records it lost and goes on.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    text, out = argv[0].encode(), argv[1]
    fd = os.open("/dev/kmsg", os.O_RDONLY)
    os.lseek(fd, 0, os.SEEK_END)
    count = 0
    with open(out, "w") as f:
        f.write("0\n")
    while True:
        try:
            record = os.read(fd, 8192)         # one record per read
        except BrokenPipeError:
            continue
        if text in record:
            count += 1
            with open(out, "w") as f:
                f.write(f"{count}\n")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
