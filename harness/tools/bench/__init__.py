"""muse-harness bench: MUSE against its in-kernel twins, and boot time.

Modules:
  run     the bench VM, the workloads on each device pair, boots; `register()`
  stats   samples, medians and spread, ratios, the goals, boot phases
  chart   reports/bench.png (matplotlib)
"""

from harness.tools.bench.run import register

__all__ = ["register"]
