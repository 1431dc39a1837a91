"""The guest server through the real kernel: NAND with OOB, images, NOR semantics."""

from __future__ import annotations

from harness.pytest.testguest import TestGuest

from .conftest import MuseServers

NAND = "--type nand --size 8MiB --writesize 2048 --oobsize 64 --erasesize 128KiB"

# Two eraseblocks of pages, each page followed by 64 random OOB bytes whose
# first two (the bad block marker) stay 0xFF, as nanddump --oob writes them.
MAKE_PAGES_WITH_OOB = (
    "python3 -c \"import os, sys; sys.stdout.buffer.write(b''.join("
    "os.urandom(2048) + b'\\xff\\xff' + os.urandom(62) for _ in range(128)))\" > /tmp/in"
)


def test_nand_data_and_oob_round_trip(vm: TestGuest, muse: MuseServers) -> None:
    dev = muse.start(NAND).mtd.dev
    vm.check(MAKE_PAGES_WITH_OOB)
    # MUSE takes in-band and OOB data in separate requests: data first, then the OOB part.
    vm.check(f"flash_erase -q {dev} 0 2 && "
             "python3 -c \"import sys; d = open('/tmp/in','rb').read(); "
             "sys.stdout.buffer.write(b''.join(d[i:i+2048] for i in range(0, len(d), 2112)))\""
             f" > /tmp/data && nandwrite -q -p {dev} /tmp/data && "
             f"nandwrite -q -O {dev} /tmp/in", timeout=300)
    vm.check(f"nanddump -q --oob -l 262144 -f /tmp/out {dev} && cmp /tmp/in /tmp/out",
             timeout=300)


def test_image_survives_a_server_restart(vm: TestGuest, muse: MuseServers) -> None:
    image = "--image /tmp/nand.img --image-format raw+oob"
    server = muse.start(f"{NAND} {image}")
    dev = server.mtd.dev
    vm.check(f"head -c 131072 /dev/urandom > /tmp/in && flash_erase -q {dev} 0 1 && "
             f"nandwrite -q -p {dev} /tmp/in")
    assert muse.stop(server) == 0
    dev = muse.start(f"{NAND} {image}").mtd.dev
    vm.check(f"nanddump -q -l 131072 -f /tmp/out {dev} && cmp /tmp/in /tmp/out")
    # The image is in nanddump --oob layout: page 0's data is its first 2048 bytes.
    vm.check("cmp -n 2048 /tmp/in /tmp/nand.img")


def test_raw_oob_image_from_a_dump_loads(vm: TestGuest, muse: MuseServers) -> None:
    """A raw+oob image (as nanddump --oob of real hardware writes it) is served as is."""
    vm.check(MAKE_PAGES_WITH_OOB + " && cp /tmp/in /tmp/dump.img && "
             "head -c $((8 * 1024 * 1024 / 2048 * 2112 - 270336)) /dev/zero | tr '\\0' '\\377'"
             " >> /tmp/dump.img")
    dev = muse.start(f"{NAND} --image /tmp/dump.img --image-format raw+oob").mtd.dev
    vm.check(f"nanddump -q --oob -l 262144 -f /tmp/out {dev} && cmp /tmp/in /tmp/out",
             timeout=300)


def test_nor_programming_only_clears_bits(vm: TestGuest, muse: MuseServers) -> None:
    dev = muse.start("--type nor --size 1MiB --erasesize 64KiB").mtd.dev
    vm.check(f"flash_erase -q {dev} 0 1 && "
             "printf '\\360\\360' > /tmp/a && printf '\\017\\377' > /tmp/b && "
             f"mtd_debug write {dev} 0 2 /tmp/a && mtd_debug write {dev} 0 2 /tmp/b && "
             f"mtd_debug read {dev} 0 4 /tmp/out")
    assert vm.check("od -An -tx1 /tmp/out").stdout.split() == ["00", "f0", "ff", "ff"]
    vm.check(f"flash_erase -q {dev} 0 1 && mtd_debug read {dev} 0 2 /tmp/out")
    assert vm.check("od -An -tx1 /tmp/out").stdout.split() == ["ff", "ff"]


def test_factory_bad_blocks_are_reported_and_markbad_persists(vm: TestGuest,
                                                              muse: MuseServers) -> None:
    image = "--image /tmp/bb.img --image-format raw+oob"
    server = muse.start(f"{NAND} {image} --bad-blocks 3")
    dev = server.mtd.dev
    out = vm.check(f"mtdinfo {dev}; flash_erase {dev} 0 0 2>&1; true").stdout
    assert "Skipping bad block at 00060000" in out, out
    vm.check(f"python3 -c \"import fcntl, struct; fd = open('{dev}', 'r+b'); "
             "fcntl.ioctl(fd, 0x40084d0c, struct.pack('q', 5 * 131072))\"")  # MEMSETBADBLOCK
    assert muse.stop(server) == 0
    dev = muse.start(f"{NAND} {image}").mtd.dev
    out = vm.check(f"flash_erase {dev} 0 0 2>&1; true").stdout
    assert "Skipping bad block at 00060000" in out, out
    assert "Skipping bad block at 000a0000" in out, out


def test_server_reports_missing_dev_muse(vm: TestGuest, muse: MuseServers) -> None:
    # Nothing holds muse now: the end of the previous test waited for that.
    vm.check("modprobe -r muse && ! test -e /dev/muse")
    try:
        status, output = muse.run_to_exit(NAND)
    finally:
        vm.check("modprobe muse && test -e /dev/muse")
    assert status == 2, output
    assert "/dev/muse" in output
