"""What the guest says about a test: its console and its state at the end.

Modules:
  splats     streaming scanner for kernel reports (Oops, WARNING, KASAN, lockdep, ...)
  kmemleak   the scan command run after each test, its report parsed
  leftovers  the end-of-test kill, the wait until nothing holds muse, who pins it
  aftermath  Aftermath: all of the above for one test, immutable; its problems
             (why the test fails) and its taint (why its VM must go)
  outcome    a test's outcome class (failed, error-infra, flaky, ...) and check's
             exit code from the classes
  fingerprint  a splat's normalised title and a hash of its top stack frames
  foreign    KCSAN reports outside the stack under test: kept, failing nothing
"""
