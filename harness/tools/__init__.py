"""The muse-harness subcommands: users of kernel/, machine/, verdict/, report/
and pytest/.

Each module owns its subcommand's parser (register()) and its work.

Modules:
  common       the BuildRequest a command's options stand for; a booted VM
  prepare      build, prepare
  vmcmds       run, shell, boot
  check        check: build, boot, the suite, summary.json and report.md
  compare      compare OLD NEW: regressions, fixes, unstable tests, new splats
  suite        run_suite(): the one way a tool runs pytest (process group, deadline)
  report       report DIR: rewrite a reports directory's index.html
  seriescheck  series-check: checkpatch and a build after every patch
  bugs         bugs: the bug tests as posted and with the fixes; bugs.md
  mutate       mutate: mutation patches, their named tests must fail
  bisect       bisect: the first patch of the series after which a test fails
  editloop     edit-loop: time an edit of the muse.c patch to one test's result
  bench/       bench: MUSE against nandsim and mtdram, boot time
"""
