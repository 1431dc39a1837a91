"""Guest-side MUSE server: a userspace flash device (MTD) behind /dev/muse.

Pure standard library (Debian 12, python3.11). `python3 -m guest.muse serve
--help` documents the CLI, its stdout/ready-file contract and exit codes.

Modules:
  protocol      wire ABI: opcodes, IO flags, structs, MUSE_INIT key/values
  mtdabi        MTD type numbers and flags (mtd-abi.h), per-type defaults
  geometry      Geometry, size parsing, validation mirroring muse_verify_mtdreq
  partitions    PARTSCMDLINE parsing (cmdlinepart syntax, partition names)
  stores        memory / raw (+ .oob sidecar) / raw+oob mmap'ed backing stores
  devices/      flash models (ram, nor, nand) behind the FlashOps interface;
                DeviceLayer is the pass-through seam for fault injection
  ecc           the NAND model's ECC engine (--ecc): Hamming SEC-DED per step
  session       the request loop and opcode dispatch on any fd
  registration  waits for /sys/class/mtd/mtdN/muse_pid == our PID
  stats         per-opcode counters, JSON dumps
  lifecycle     process wiring: signals, shutdown, exit codes
  cli           argument parsing
  cliparser     the parser every command shares (bad arguments exit 1)
  fakekernel    the kernel's side of the protocol, for tests over a socketpair
Faults and power cuts (FAULTS.md):
  faultconfig   fault settings, KEY=VALUE / JSON parsing, nandsim mapping
  devices/faulty    FaultLayer: injected read, program, erase, bad block faults
  devices/powercut  PowerCutLayer: op numbering, oplog, torn op and stop
  seeding       seeded decisions keyed by (seed, what)
  oplog         the operation log format, writer and reader
  devices/torn      applying logged ops whole or torn (live cuts and replay)
  injection     serve options and layer wiring
  control       the --control socket: JSON lines, served by a thread
  ctl           `ctl` client for the control socket
  replay        `replay` and `oplog` commands
Hostile server mode (HOSTILE.md):
  hostile/      bad replies and raw MUSE_INIT payloads on purpose, presets,
                `hostile --list`; devices/trivial serves odd geometry
"""
