"""Guest side of test_bugs.py: probes that print one JSON object per result line.

Runs in the guest (standard library only) as `python3 -m guest.bugprobe
CMD ...`. System calls go through ctypes so that results the C library would
not turn into errors (a write() of -2147483648, an ioctl() returning 2) reach
the test as they are.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.pread.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long]
LIBC.pread.restype = ctypes.c_ssize_t
LIBC.pwrite.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long]
LIBC.pwrite.restype = ctypes.c_ssize_t
LIBC.ioctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p]
LIBC.ioctl.restype = ctypes.c_int

# include/uapi/mtd/mtd-abi.h
MEMERASE = 0x40084D02
MEMGETBADBLOCK = 0x40084D0B
ECCGETSTATS = 0x80104D12
MEMWRITE = 0xC0304D18
MEMREAD = 0xC0404D1A
MTD_OPS_PLACE_OOB = 0
WRITE_REQ = struct.Struct("=QQQQQB7x")            # struct mtd_write_req
READ_REQ = struct.Struct("=QQQQQB7xIII4x")        # struct mtd_read_req (with ecc_stats)
ECC_STATS = struct.Struct("=IIII")                # corrected, failed, badblocks, bbtblocks
BLKPG = 0x1269                                    # include/uapi/linux/fs.h
BLKPG_ARG = struct.Struct("=iii4xQ")              # struct blkpg_ioctl_arg, op 2: delete
BLKPG_PARTITION = struct.Struct("=qqi64s64s4x")   # struct blkpg_partition


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def errname(code: int) -> str:
    return errno.errorcode.get(code, str(code))


def result(ret: int) -> dict[str, Any]:
    """A raw system call result: ret, and errno only where the C library set it."""
    err = ctypes.get_errno() if ret == -1 else 0
    return {"ret": ret, "errno": errname(err) if err else None}


def call(fn: Callable[[], int]) -> dict[str, Any]:
    ctypes.set_errno(0)
    return result(fn())


# -- I/O on /dev/mtdX ----------------------------------------------------------------------
def cmd_read(args: argparse.Namespace) -> None:
    fd = os.open(args.dev, os.O_RDONLY)
    buf = ctypes.create_string_buffer(bytes([args.fill]) * args.len, args.len)
    out = call(lambda: LIBC.pread(fd, buf, args.len, args.off))
    data = buf.raw
    out["untouched"] = data.count(args.fill)       # bytes the read never wrote
    out["ff"] = data.count(0xFF)
    emit(**out)


def cmd_write(args: argparse.Namespace) -> None:
    fd = os.open(args.dev, os.O_RDWR)
    data = bytes((i * 7 + 3) & 0xFF for i in range(args.len))
    buf = ctypes.create_string_buffer(data, args.len)
    emit(**call(lambda: LIBC.pwrite(fd, buf, args.len, args.off)))


def cmd_isbad(args: argparse.Namespace) -> None:
    fd = os.open(args.dev, os.O_RDONLY)
    offset = ctypes.c_longlong(args.off)
    emit(**call(lambda: LIBC.ioctl(fd, MEMGETBADBLOCK, ctypes.byref(offset))))


def ecc_stats(fd: int) -> dict[str, int]:
    buf = ctypes.create_string_buffer(ECC_STATS.size)
    if LIBC.ioctl(fd, ECCGETSTATS, buf) != 0:
        raise OSError(ctypes.get_errno(), "ECCGETSTATS")
    corrected, failed, bad, bbt = ECC_STATS.unpack(buf.raw)
    return {"corrected": corrected, "failed": failed, "badblocks": bad, "bbtblocks": bbt}


def cmd_eccstats(args: argparse.Namespace) -> None:
    fd = os.open(args.dev, os.O_RDONLY)
    emit(**ecc_stats(fd))


def cmd_memwrite(args: argparse.Namespace) -> None:
    """MEMWRITE with in-band data and/or OOB (pattern bytes), given mode."""
    fd = os.open(args.dev, os.O_RDWR)
    data = ctypes.create_string_buffer(bytes((i * 13 + 1) & 0xFF for i in range(args.len)))
    oob = ctypes.create_string_buffer(bytes((0xA0 + i) & 0xFF for i in range(args.ooblen)))
    req = ctypes.create_string_buffer(WRITE_REQ.pack(
        args.off, args.len, args.ooblen, ctypes.addressof(data) if args.len else 0,
        ctypes.addressof(oob) if args.ooblen else 0, args.mode))
    emit(**call(lambda: LIBC.ioctl(fd, MEMWRITE, req)))


def cmd_memread(args: argparse.Namespace) -> None:
    """MEMREAD of in-band data and/or OOB; reports whether they hold the memwrite pattern."""
    fd = os.open(args.dev, os.O_RDONLY)
    data = ctypes.create_string_buffer(args.len or 1)
    oob = ctypes.create_string_buffer(args.ooblen or 1)
    req = ctypes.create_string_buffer(READ_REQ.pack(
        args.off, args.len, args.ooblen, ctypes.addressof(data) if args.len else 0,
        ctypes.addressof(oob) if args.ooblen else 0, args.mode, 0, 0, 0))
    out = call(lambda: LIBC.ioctl(fd, MEMREAD, req))
    out["data_ok"] = data.raw[:args.len] == bytes((i * 13 + 1) & 0xFF for i in range(args.len))
    out["oob_ok"] = oob.raw[:args.ooblen] == bytes((0xA0 + i) & 0xFF for i in range(args.ooblen))
    emit(**out)


def cmd_blkpg_del(args: argparse.Namespace) -> None:
    """Open the master MTD as soon as it exists and, once args.after exists, delete MTD
    index args.pno (BLKPG) until that succeeds, while the kernel is still registering
    the MUSE device; print what the deletions returned."""
    deadline = time.monotonic() + args.seconds
    while True:
        try:
            fd = os.open(args.dev, os.O_RDWR)
            break
        except OSError:
            if time.monotonic() > deadline:
                emit(opened=False)
                return
    while args.after and not os.path.exists(args.after):
        if time.monotonic() > deadline:
            emit(opened=True, after=False)
            return
    counts: dict[str, int] = {}
    while not counts.get("ok") and time.monotonic() < deadline:
        key = blkpg_delete(fd, args.pno) or "ok"
        counts[key] = counts.get(key, 0) + 1
    emit(opened=True, deleted=counts.get("ok", 0), results=counts)


def blkpg_delete(fd: int, pno: int) -> str | None:
    """BLKPG_DEL_PARTITION of MTD index pno: None, or the errno's name."""
    part = ctypes.create_string_buffer(BLKPG_PARTITION.pack(0, 0, pno, b"", b""))
    arg = ctypes.create_string_buffer(BLKPG_ARG.pack(2, 0, BLKPG_PARTITION.size,
                                                     ctypes.addressof(part)))
    err: str | None = call(lambda: LIBC.ioctl(fd, BLKPG, arg))["errno"]
    return err


# -- uevents -------------------------------------------------------------------------------
def cmd_uevents(args: argparse.Namespace) -> None:
    """Kernel uevents of mtd devices for args.seconds; at each one, does muse_pid exist?"""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 15)  # NETLINK_KOBJECT_UEVENT
    sock.bind((0, 1))
    sock.settimeout(0.5)
    emit(listening=True)
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        try:
            msg = sock.recv(65536)
        except TimeoutError:
            continue
        fields = dict(part.split("=", 1) for part in msg.decode(errors="replace").split("\0")
                      if "=" in part)
        if fields.get("SUBSYSTEM") != "mtd":
            continue
        path = "/sys" + fields.get("DEVPATH", "")
        emit(action=fields.get("ACTION"), devname=fields.get("DEVNAME"),
             muse_pid=os.path.exists(path + "/muse_pid"))


# -- fault injection -----------------------------------------------------------------------
def fail_nth_used(fd: int) -> bool:
    """Whether the failure armed in fd (/proc/thread-self/fail-nth) was used; disarms it."""
    left = int(os.pread(fd, 32, 0) or b"0")
    os.pwrite(fd, b"0", 0)
    return left == 0


def fail_nth_sweep(action: Callable[[], dict[str, Any]], limit: int) -> None:
    """Run action with the Nth fault-injection site failing, N = 1, 2, ... until a run
    passes all its sites without the failure being used (or limit)."""
    fd = os.open("/proc/thread-self/fail-nth", os.O_RDWR)
    for nth in range(1, limit + 1):
        os.pwrite(fd, str(nth).encode(), 0)
        out = action()
        out.update(nth=nth, injected=fail_nth_used(fd))
        emit(**out)
        if not out["injected"]:
            return
    emit(nth=limit, limit_reached=True)


def cmd_failnth_open(args: argparse.Namespace) -> None:
    def attempt() -> dict[str, Any]:
        fd = LIBC.open(args.dev.encode(), os.O_RDWR)
        out = result(fd)
        if fd >= 0:
            os.close(fd)
        return out
    LIBC.open.restype = ctypes.c_int
    fail_nth_sweep(attempt, args.limit)


def cmd_failnth_read(args: argparse.Namespace) -> None:
    """pread() of args.len bytes under fail-nth; compares with the data read without it."""
    fd = os.open(args.dev, os.O_RDONLY)
    want = os.pread(fd, args.len, args.off)
    buf = ctypes.create_string_buffer(args.len)

    def attempt() -> dict[str, Any]:
        ctypes.memset(buf, 0x5A, args.len)
        out = result(LIBC.pread(fd, buf, args.len, args.off))
        if out["ret"] > 0:
            out["same"] = buf.raw[:out["ret"]] == want[:out["ret"]]
        return out
    fail_nth_sweep(attempt, args.limit)


def cmd_openclose(args: argparse.Namespace) -> None:
    for _ in range(args.count):
        os.close(os.open(args.dev, os.O_RDWR))
    emit(done=args.count)


# -- a kernel reference count, read from /proc/kcore ------------------------------------------
def kernel_reader(symbol: str) -> Callable[[int], bytes]:
    """Reads n bytes at a data symbol through /proc/kcore (root; CONFIG_PROC_KCORE and
    CONFIG_KALLSYMS_ALL): the ELF program header that maps its address gives the offset."""
    with open("/proc/kallsyms") as f:
        addr = next(int(fields[0], 16) for fields in map(str.split, f) if fields[2] == symbol)
    fd = os.open("/proc/kcore", os.O_RDONLY)
    head = os.pread(fd, 64, 0)
    phoff, = struct.unpack_from("=Q", head, 0x20)
    phentsize, phnum = struct.unpack_from("=HH", head, 0x36)
    for i in range(phnum):
        ptype, _, offset, vaddr, _, _, memsz, _ = struct.unpack(
            "=IIQQQQQQ", os.pread(fd, 56, phoff + i * phentsize))
        if ptype == 1 and vaddr <= addr < vaddr + memsz:          # PT_LOAD
            return lambda n: os.pread(fd, n, offset + addr - vaddr)
    raise SystemExit(f"/proc/kcore maps no {symbol} at {addr:#x}")


def cmd_userns_refs(args: argparse.Namespace) -> None:
    """How much init_user_ns's reference count grows over args.opens opens of /dev/muse.

    The count's offset in struct user_namespace is found, not assumed: every forked
    child holds new credentials and so references, so the one 32-bit word of the
    structure that rises by (a multiple of) the number of children and falls back
    when they exit is the count."""
    read = kernel_reader("init_user_ns")
    size = 320         # past ns.count, well inside the structure (no KASAN redzone)

    def words() -> list[int]:
        return list(struct.unpack(f"={size // 4}I", read(size)))
    before = words()
    children = []
    for _ in range(args.children):
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
    time.sleep(0.5)
    held = words()
    for pid in children:
        os.kill(pid, 15)
        os.waitpid(pid, 0)
    time.sleep(0.5)
    after = words()
    # Each child holds one or two references (6.1 on x86_64: two); allow a few
    # from the rest of the guest.
    found = [i for i in range(len(before))
             if any(0 <= held[i] - before[i] - k * args.children <= 4 for k in (1, 2))
             and abs(after[i] - before[i]) <= 4]
    if len(found) != 1:
        emit(calibrated=False, candidates=[i * 4 for i in found],
             changed={i * 4: [before[i], held[i], after[i]] for i in range(len(before))
                      if not before[i] == held[i] == after[i]})
        return
    index = found[0]
    for _ in range(args.opens):
        os.close(os.open("/dev/muse", os.O_RDWR))
    time.sleep(2)      # a connection's last reference goes in an RCU callback
    emit(calibrated=True, offset=index * 4, before=after[index], opens=args.opens,
         grew=words()[index] - after[index])


# -- a minimal MUSE server -----------------------------------------------------------------
def cmd_rawserve(args: argparse.Namespace) -> None:
    """Answers MUSE_INIT with the given parameters and max_read/max_write, then every
    request the way an erased device would; reads /dev/muse with a buffer of
    args.bufsize. Prints each request (opcode, data length) and read() errors."""
    fd = os.open("/dev/muse", os.O_RDWR)
    emit(opened=True, pid=os.getpid())
    info = b"".join(p.encode() + b"\0" for p in args.param)
    errors = 0
    while True:
        try:
            req = os.read(fd, args.bufsize)
        except OSError as exc:
            emit(read_error=errname(exc.errno or 0))
            if exc.errno in (errno.ENODEV, errno.ECONNABORTED) or errors > 20:
                return
            errors += 1
            time.sleep(0.2)
            continue
        length, opcode, unique = struct.unpack_from("=IIQ", req)
        body = req[40:]
        if opcode == 8192:                                   # MUSE_INIT
            reply = struct.pack("=IIII", 7, 34, args.max_read, args.max_write) + info
            emit(opcode="INIT")
            if args.arm_kworkers:
                arm_kworkers()
        elif opcode == 36:                                   # FUSE_INTERRUPT
            continue
        elif opcode in (8194, 8195):                         # READ, WRITE
            _addr, size, _flags, _ = struct.unpack_from("=QQII", body)
            emit(opcode="READ" if opcode == 8194 else "WRITE", len=size, request=length)
            reply = struct.pack("=QII", size, 0, 0)
            if opcode == 8194:
                reply += b"\xff" * size
        elif opcode == 8197:                                 # ISBAD
            reply = struct.pack("=II", 0, 0)
        else:                                                # ERASE, MARKBAD, SYNC
            reply = b""
        out = struct.pack("=IiQ", 16 + len(reply), 0, unique) + reply
        nth = args.init_fail_nth if opcode == 8192 else 0
        try:
            write_failing(fd, out, nth)
        except OSError as exc:
            emit(write_error=errname(exc.errno or 0))
            if opcode == 8192:
                return
        if opcode == 8192:
            emit(init_accepted=True)


def cmd_init_refusals(args: argparse.Namespace) -> None:
    """args.count connections, each refused at MUSE_INIT (a reply of FUSE major 99);
    the free pages (page cache dropped) before and after them."""
    def free_pages() -> int:
        time.sleep(1)                    # what the last connections free goes in RCU
        with open("/proc/sys/vm/drop_caches", "w") as drop:
            drop.write("3")
        with open("/proc/vmstat") as vmstat:
            free = next(int(line.split()[1]) for line in vmstat
                        if line.startswith("nr_free_pages "))
        # Pages freed to the per-CPU lists are free but not in nr_free_pages.
        with open("/proc/zoneinfo") as zoneinfo:
            return free + sum(int(line.split()[1]) for line in zoneinfo
                              if line.split()[:1] == ["count:"])

    def refused() -> None:
        fd = os.open("/dev/muse", os.O_RDWR)
        try:
            _, _, unique = struct.unpack_from("=IIQ", os.read(fd, args.bufsize))
            reply = struct.pack("=IIII", 99, 34, 65536, 65536)
            os.write(fd, struct.pack("=IiQ", 16 + len(reply), 0, unique) + reply)
        finally:
            os.close(fd)
    for _ in range(args.warmup):
        refused()
    before = free_pages()
    for _ in range(args.count):
        refused()
    after = free_pages()
    emit(count=args.count, before=before, after=after, lost=before - after)


def write_failing(fd: int, data: bytes, nth: int) -> None:
    """write(2) with the nth fault-injection site of this thread failing (0: none);
    tells whether the failure was used (the kernel processes MUSE_INIT's reply in
    the writer's context)."""
    if not nth:
        os.write(fd, data)
        return
    fail = os.open("/proc/thread-self/fail-nth", os.O_RDWR)
    try:
        os.pwrite(fail, str(nth).encode(), 0)
        try:
            os.write(fd, data)
        finally:
            emit(fail_nth=nth, injected=fail_nth_used(fail))
    finally:
        os.close(fail)


def set_make_it_fail(comm_prefix: str, value: str) -> None:
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if not f.read().startswith(comm_prefix):
                    continue
            with open(f"/proc/{pid}/make-it-fail", "w") as f:
                f.write(value)
        except OSError:
            continue        # not a process, or gone meanwhile


def cmd_make_it_fail(args: argparse.Namespace) -> None:
    set_make_it_fail(args.comm_prefix, args.value)
    emit(done=True)


def arm_kworkers() -> None:
    """The next slab allocation of a kworker fails (failslab set up with task-filter Y and
    times 0 by the caller): the MUSE init work registers the MTD in a kworker."""
    set_make_it_fail("kworker", "1")
    with open("/sys/kernel/debug/failslab/times", "w") as f:
        f.write("1")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bugprobe")
    sub = parser.add_subparsers(dest="cmd", required=True)

    def dev_cmd(name: str, func: Callable[[argparse.Namespace], None]) -> argparse.ArgumentParser:
        p = sub.add_parser(name)
        p.add_argument("dev")
        p.set_defaults(func=func)
        return p

    p = dev_cmd("read", cmd_read)
    p.add_argument("--off", type=int, default=0)
    p.add_argument("--len", type=int, default=2048)
    p.add_argument("--fill", type=int, default=0x5A)
    p = dev_cmd("write", cmd_write)
    p.add_argument("--off", type=int, default=0)
    p.add_argument("--len", type=int, default=2048)
    p = dev_cmd("isbad", cmd_isbad)
    p.add_argument("--off", type=int, default=0)
    dev_cmd("eccstats", cmd_eccstats)
    for name, func in (("memwrite", cmd_memwrite), ("memread", cmd_memread)):
        p = dev_cmd(name, func)
        p.add_argument("--off", type=int, default=0)
        p.add_argument("--len", type=int, default=0)
        p.add_argument("--ooblen", type=int, default=0)
        p.add_argument("--mode", type=int, default=MTD_OPS_PLACE_OOB)
    p = dev_cmd("blkpg-del", cmd_blkpg_del)
    p.add_argument("--pno", type=int, required=True, help="MTD index of the partition")
    p.add_argument("--after", default="", help="a path to wait for before deleting")
    p.add_argument("--seconds", type=float, default=60)
    p = sub.add_parser("uevents")
    p.add_argument("--seconds", type=float, default=30)
    p.set_defaults(func=cmd_uevents)
    p = dev_cmd("failnth-open", cmd_failnth_open)
    p.add_argument("--limit", type=int, default=100)
    p = dev_cmd("failnth-read", cmd_failnth_read)
    p.add_argument("--off", type=int, default=0)
    p.add_argument("--len", type=int, default=131072)
    p.add_argument("--limit", type=int, default=200)
    p = sub.add_parser("make-it-fail")
    p.add_argument("comm_prefix")
    p.add_argument("value")
    p.set_defaults(func=cmd_make_it_fail)
    p = dev_cmd("openclose", cmd_openclose)
    p.add_argument("--count", type=int, default=100)
    p = sub.add_parser("userns-refs")
    p.add_argument("--opens", type=int, default=200)
    p.add_argument("--children", type=int, default=40)
    p.set_defaults(func=cmd_userns_refs)
    p = sub.add_parser("init-refusals")
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--bufsize", type=int, default=65536 + 4096)
    p.set_defaults(func=cmd_init_refusals)
    p = sub.add_parser("rawserve")
    p.add_argument("--param", action="append", default=[], help="KEY=VALUE of MUSE_INIT")
    p.add_argument("--max-read", type=int, default=65536)
    p.add_argument("--max-write", type=int, default=65536)
    p.add_argument("--bufsize", type=int, default=65536 + 4096)
    p.add_argument("--arm-kworkers", action="store_true",
                   help="let the next kworker slab allocation after MUSE_INIT fail")
    p.add_argument("--init-fail-nth", type=int, default=0, metavar="N",
                   help="fail the Nth fault-injection site of the MUSE_INIT reply's write")
    p.set_defaults(func=cmd_rawserve)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
