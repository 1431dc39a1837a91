"""The kernel pipeline: from a base and a flavour to a bootable KernelBuild.

Modules:
  source       Debian's linux-source-<base> (installed, extracted once) or your tree
  series       kernel/series/<base>/series applied with git am in a scratch repository
  kconfig      flavours (kernel/flavours.toml), fragments merged, every option checked
  build        BuildRequest -> KernelBuild: cache key, metadata, make with progress
  incremental  the edit loop's shortcuts: .config reused, only changed modules rebuilt
  testmods     kernel/testmods/ built against each kernel, installed under extra/
"""
