"""QEMU command line for an x86_64 guest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BINARY = "qemu-system-x86_64"
CONSOLE = "ttyS0"
KERNEL_IMAGE = "arch/x86/boot/bzImage"


@dataclass(frozen=True)
class Share:
    """A host directory exported read-only to the guest over virtio-9p."""

    tag: str
    path: Path


def command(*, kernel: Path, rootfs: Path, append: str, ssh_port: int, accel: str,
            memory_mb: int, smp: int, shares: tuple[Share, ...],
            accel_option: str = "") -> list[str]:
    """accel_option: the -accel value when it is more than the accelerator's name."""
    cmd = [
        # One core per socket: the firmware's MP table lists one CPU per socket, and
        # our kernels have no ACPI to find the others, so "-smp 2" alone boots one CPU.
        BINARY, "-machine", "pc", "-accel", accel_option or accel, "-m", str(memory_mb),
        "-smp", f"{smp},sockets={smp},cores=1,threads=1",
        "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
        "-kernel", str(kernel), "-append", append,
        "-drive", f"file={rootfs},if=virtio,format=raw,snapshot=on",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22",
        # romfile=: no iPXE option ROM for the firmware to load and run (we boot -kernel).
        "-device", "virtio-net-pci,netdev=n0,romfile=",
        "-device", "virtio-rng-pci",
    ]
    if accel == "kvm":
        cmd += ["-cpu", "host"]
    for share in shares:
        cmd += ["-virtfs", f"local,path={share.path},mount_tag={share.tag},"
                           "security_model=none,readonly=on"]
    return cmd


def append_line(*, init: str, extra: str = "", idle: str = "halt") -> str:
    """Kernel command line: console on the serial port, panic ends the VM at once;
    idle "poll": idle CPUs spin (accel.guest_idle())."""
    args = [f"console={CONSOLE},115200", "root=/dev/vda", "rw", "rootfstype=ext4",
            f"init={init}", "panic=-1", "printk.devkmsg=on", "loglevel=7",
            "net.ifnames=0", "random.trust_cpu=on"] + (["idle=poll"] if idle == "poll" else [])
    return " ".join(args + ([extra] if extra else []))
