"""What a test leaves behind in the guest: its processes, and references on muse.

At the end of every test the harness kills what the test spawned and still
runs, then waits until nothing holds the muse module any more. A reference
that stays is a server or an MTD user the test forgot (it would pin MTDs and
/dev/muse for the tests after it), or a reference the kernel leaked. Either
way the test fails with a description of who holds what, and the next test
gets a fresh VM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REFCNT = "/sys/module/muse/refcnt"
SETTLE_SECONDS = 60   # a connection's exit work: well under a second, seconds on debug
PINNED_STATUS = 3


def pinned_by(refcnt: str = REFCNT) -> str:
    """Who pins muse: its count, the files that hold a MUSE or MTD device, the tasks
    with MUSE or MTD code on their kernel stack, the MTDs, the user processes."""
    return (f'echo "muse refcnt $(cat {refcnt})"; grep -w ^muse /proc/modules; '
            "for f in /proc/[0-9]*/fd/*; do l=$(readlink $f 2>/dev/null) && case $l in "
            '*muse*|*mtd*) echo "$f -> $l";; esac; done; '
            "for t in /proc/[0-9]*/task/*; do grep -qE 'muse|mtd' $t/stack 2>/dev/null && "
            '{ echo "$t $(cat $t/comm) $(cat $t/wchan)"; cat $t/stack; }; done; '
            "cat /proc/mtd; ps --ppid 2 -p 2 --deselect -o pid,pgid,stat,etimes,cmd")


_COUNT = re.compile(r"^muse refcnt (\d+)$", re.M)


def settle_command(live: list[int], seconds: int = SETTLE_SECONDS,
                   refcnt: str = REFCNT) -> str:
    """Kill the live processes with their process groups (a server under `unshare
    --fork` is the child of the process the test spawned), then wait until muse's
    count drops to zero; exit PINNED_STATUS with pinned_by()'s output if it does not.
    Built-in muse has no count and always settles."""
    # An SSH session's shell leads its own process group (sshd calls setsid()), and
    # the PID of a live leader cannot have been reused.
    kill = f"kill -9 {' '.join(f'-{p} {p}' for p in live)} 2>/dev/null; " if live else ""
    return (f"{kill}test -e {refcnt} || exit 0; end=$(($(date +%s) + {seconds})); "
            f'while [ "$(cat {refcnt})" != 0 ] && [ $(date +%s) -lt $end ]; do sleep 0.2; done; '
            f'[ "$(cat {refcnt})" = 0 ] && exit 0; {pinned_by(refcnt)}; exit {PINNED_STATUS}')


@dataclass
class Pinned:
    """muse still referenced after a test: the count and what holds it."""

    count: int
    details: str

    @property
    def title(self) -> str:
        return f"muse is still referenced ({self.count}) {SETTLE_SECONDS} s after the test"


def parse_pinned(status: int, stdout: str) -> Pinned | None:
    if status != PINNED_STATUS:
        return None
    match = _COUNT.search(stdout)
    return Pinned(int(match.group(1)) if match else -1, stdout)
