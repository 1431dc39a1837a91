"""The hostile reply modes: what each does, to which requests, and its argument.

The byte-level rewrites live in replies.py; this table is what the catalogue
lists and what rule parsing checks against. `kernel` says, for the v3 series
(seed 000: fs/fuse/muse.c over fs/fuse/dev.c), what the kernel is expected to
do with the reply; HOSTILE.md explains the predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import Opcode

INIT = Opcode.MUSE_INIT
READ = Opcode.MUSE_READ
WRITE = Opcode.MUSE_WRITE
ISBAD = Opcode.MUSE_ISBAD

# What op=any means: every request the kernel waits on, INIT aside (it must be named).
ANY: frozenset[int] = frozenset(
    {READ, WRITE, Opcode.MUSE_ERASE, ISBAD, Opcode.MUSE_MARKBAD, Opcode.MUSE_SYNC}
)
ANY_AND_INIT = ANY | {INIT}
IO: frozenset[int] = frozenset({READ, WRITE})

# Argument kinds: (lowest, highest + 1); "unique" is +N/-N (relative) or N.
ARG_RANGES = {
    "bytes": (1, 1 << 24),
    "delta": (-(1 << 32), 1 << 32),
    "s32": (-(1 << 31), 1 << 31),
    "s32-or-u32": (-(1 << 31), 1 << 32),
    "u64": (0, 1 << 64),
    "count": (1, 1 << 64),
    "unique": (-(1 << 64), 1 << 64),
}


@dataclass(frozen=True)
class Mode:
    name: str
    help: str
    kernel: str
    arg: str = ""  # metavar; "" when the mode takes none
    arg_kind: str = ""
    arg_required: bool = False
    ops: frozenset[int] = ANY  # the default opcodes
    allowed: frozenset[int] = ANY_AND_INIT
    after: str = "ready"  # default phase: "init" (after the INIT reply) or "ready"
    # "io": a READ/WRITE success reply; "read": a READ success; "isbad": an ISBAD success.
    needs: str = ""
    followable: bool = True  # sends something instead of the reply: follow=1 makes sense
    dies: bool = False

    @property
    def usage(self) -> str:
        if not self.arg:
            return self.name
        return f"{self.name}:{self.arg}" if self.arg_required else f"{self.name}[:{self.arg}]"


_REFUSED = (
    "fuse_dev_do_write() refuses the write (EINVAL) before matching the request, which stays "
    "pending: the caller blocks until the server exits (or follow=1 answers it)"
)

MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (
        Mode(
            "short",
            "drop the last K bytes of the reply (default: the whole payload, header only); "
            "the header's len says the new size",
            "READ (out_argvar): copy_out_args() shrinks the data arg, muse_send_read() trusts "
            "muse_read_out.len, so the missing bytes are reported read: stale kernel memory "
            "reaches the reader (info leak). Other ops: EINVAL, the request ends with -EIO",
            arg="K",
            arg_kind="bytes",
            ops=frozenset({READ, WRITE, ISBAD}),
        ),
        Mode(
            "long",
            "append K bytes of 0xA5 to the reply (default 16); the header's len says the new size",
            "copy_out_args(): more than expected is EINVAL, the request ends with -EIO",
            arg="K",
            arg_kind="bytes",
        ),
        Mode(
            "nopayload",
            "READ reply with the header and muse_read_out only, len still the requested length",
            "accepted (out_argvar, data arg 0 bytes); muse_do_io() counts the whole length read: "
            "the caller's buffer is returned unfilled (uninitialised kmalloc memory to mtdchar "
            "readers: info leak)",
            ops=frozenset({READ}),
            allowed=frozenset({READ}),
            needs="read",
        ),
        Mode(
            "badlen",
            "header len field off by DELTA (default +16) from the bytes written",
            _REFUSED,
            arg="DELTA",
            arg_kind="delta",
        ),
        Mode(
            "soft-error",
            "muse_read_out/muse_write_out.soft_error = VALUE (an int32 or raw u32)",
            "muse_do_io() takes any value: positive ones break out as success with the chunk "
            "uncounted (mtd_read() returns 0 with retlen < len; a write makes no progress and "
            "mtdchar_write() loops; after an -EUCLEAN chunk, mtd_read()'s WARN_ON_ONCE); "
            "values below -4095 are returned as errnos (read(2) returns a negative count)",
            arg="VALUE",
            arg_kind="s32-or-u32",
            arg_required=True,
            ops=IO,
            allowed=IO,
            needs="io",
        ),
        Mode(
            "io-len",
            "muse_read_out/muse_write_out.len = VALUE (u64), data unchanged",
            "len < requested: -EIO; len > requested (< 2^63): nbytes - ret wraps and "
            "iov_iter_revert() WARNs; len >= 2^63 becomes a negative ssize_t returned as an errno "
            "(2^64-1: -EPERM), truncated to int by muse_do_io()",
            arg="VALUE",
            arg_kind="u64",
            arg_required=True,
            ops=IO,
            allowed=IO,
            needs="io",
        ),
        Mode(
            "io-len-short",
            "muse_read_out/muse_write_out.len = requested - K (default 1, floor 0)",
            "muse_do_io(): ret != nbytes, the iterator is reverted, -EIO",
            arg="K",
            arg_kind="count",
            ops=IO,
            allowed=IO,
            needs="io",
        ),
        Mode(
            "io-len-long",
            "muse_read_out/muse_write_out.len = requested + K (default 1, mod 2^64)",
            "muse_do_io(): iov_iter_revert(iter, nbytes - ret) with a wrapped size_t: "
            "WARN_ON(unroll > MAX_RW_COUNT), then -EIO",
            arg="K",
            arg_kind="count",
            ops=IO,
            allowed=IO,
            needs="io",
        ),
        Mode(
            "isbad",
            "muse_isbad_out.result = VALUE (an int32 or raw u32)",
            "muse_mtd_isbad() returns the u32 as int unchecked: 2 or 0x7fffffff read as bad, "
            "2^32-1 as -EPERM, >= 2^31 as negative non-errnos (MEMGETBADBLOCK returns them)",
            arg="VALUE",
            arg_kind="s32-or-u32",
            arg_required=True,
            ops=frozenset({ISBAD}),
            allowed=frozenset({ISBAD}),
            needs="isbad",
        ),
        Mode(
            "error",
            "header-only reply with out.error = VALUE (e.g. 5, -4096, 0)",
            "VALUE > 0 or <= -512: " + _REFUSED + "; -511..-1: passed through as the op's errno; "
            "0 with no payload: READ/WRITE/ISBAD/INIT get EINVAL and -EIO, others succeed",
            arg="VALUE",
            arg_kind="s32",
            arg_required=True,
        ),
        Mode(
            "swallow",
            "never answer the request (the model still executes it)",
            "the caller sleeps in request_wait_answer() until the server exits; during "
            "registration the init work blocks with mtd_table_mutex held",
            followable=False,
        ),
        Mode(
            "die",
            "os._exit(8) instead of replying",
            "fuse_abort_conn() fails the request with -ECONNABORTED; teardown runs "
            "muse_ctrl_release() with the MTD possibly in use",
            followable=False,
            dies=True,
        ),
        Mode(
            "die-after-init",
            "send the INIT reply, then os._exit(8)",
            "muse_init_mtd_work() races muse_ctrl_release()/muse_exit_mtd_work(): "
            "mtd_registered is set without ref_mutex after registration, so the exit work may "
            "skip mtd_device_unregister() and drop the last fuse_conn reference while the init "
            "work still registers mc->mtd (use-after-free)",
            ops=frozenset({INIT}),
            allowed=frozenset({INIT}),
            followable=False,
            dies=True,
        ),
        Mode(
            "die-in-registration",
            "os._exit(8) at the first READ/ISBAD after the INIT reply (the kernel still "
            "registering: partition scan, bad block checks)",
            "as die-after-init, with the init work blocked inside add_mtd_device(): the "
            "last put (muse_mtd_put_device) schedules muse_exit_mtd_work() before "
            "mtd_registered is set (use-after-free of mc)",
            ops=frozenset({READ, ISBAD}),
            allowed=ANY,
            after="init",
            followable=False,
            dies=True,
        ),
        Mode(
            "wrong-unique",
            "reply under another unique: +N/-N relative, N absolute (default +2^32, unused)",
            "unknown unique: ENOENT, the request stays pending; unique|1 is taken as an "
            "interrupt reply (EINVAL with a payload); 0 is a notification (no superblock: "
            "refused); another pending request's unique completes that request with this data",
            arg="U",
            arg_kind="unique",
        ),
        Mode(
            "dup",
            "send the reply twice",
            "the second write finds no request: ENOENT, harmless",
            followable=False,
        ),
    )
}
