"""Host side of the MUSE test harness; the folders are the data flow.

  kernel/    source -> series -> kconfig -> build: a KernelBuild (and test modules)
  machine/   rootfs, accelerator, QEMU per arch, the VM, SSH, the serial console
  verdict/   what a test's console and guest state say: splats, kmemleak, leftovers,
             and the test's Aftermath built from them
  pytest/    the pytest plugin, the VM pool and a test's handle on its guest
  tools/     the muse-harness subcommands (check, bugs, mutate, bench, ...): users of
             the layers above, never imported by them
Shared by all: errors (one exception family), paths, proc (host processes), options
(the options the CLI and the plugin share) and cli (dispatch to tools).

Layering, checked by import-linter in `make lint` (pyproject.toml): tools -> pytest ->
machine -> kernel and verdict; guest/ imports nothing from harness/.
"""
