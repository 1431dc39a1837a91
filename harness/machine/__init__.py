"""The guest machine: a root filesystem, QEMU, and the ways in (serial console, SSH).

Modules:
  rootfs     Debian 12 by mmdebstrap, the tiny init, the SSH key; cached
  guestcode  bytecode for the checkout's guest/, written on the host before a boot
  accel      KVM probed once per host boot, TCG otherwise
  qemu/      the QEMU command line per architecture (x86_64)
  vm         VM: boot to SSH ready, commands, markers, death on every exit path
  ssh        one paramiko connection per VM, one channel per command, timeouts
  console    the serial console read live: log file, text, splats as they stream
"""
