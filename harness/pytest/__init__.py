"""The pytest side: plugin, VM pool, and one test's handle on its guest.

Modules:
  plugin     options, markers, fixtures (vm, run, kernel_build, guest_rootfs); fails
             a test on its Aftermath's problems and saves its console slice; run.json
             before the run, reports/index.html after it
  outcomes   each test's outcome class and reason in its JUnit properties, one retry
             on a fresh VM (pytest-rerunfailures), known issues as xfail markers
  pool       VMPool: one VM per worker, kept or retired after each test's aftermath
  testguest  TestGuest: commands, spawned processes, kmsg markers, finish() -> Aftermath
"""
