"""Code that runs inside the guest VM (Debian 12, python3.11, standard library only).

  muse/       the MUSE server (python3 -m guest.muse serve)
  workloads/  filesystem and power-cut workloads the tests drive
  bench/      the benchmark's guest side
  contract    what the guest prints and the host reads
  bugprobe    raw-syscall probes of tests/integration/test_bugs.py
  biterrs     nandbiterrs' incremental test as raw syscalls (test_ecc.py)
  gcov        the kernel's gcov counters, reset and dumped (coverage flavour)
  kmsgcount   counts kernel log records with a text, from now on (test_peer.py)
"""
