"""Known issues: tests expected to fail or to be flaky on a base (or one of its flavours).

kernel/series/<base>/known-issues.toml holds [[issue]] tables:

    [[issue]]
    test = "tests/integration/test_x.py::test_y"   # a node id; it covers its [params]
    flavour = "debug"                             # optional: only on this flavour
    expect = "fail"                               # or "flaky"
    reason = "why, in one line"
    see = "kernel/series/6.12/0125-....patch"     # the fix patch or test that explains it

The plugin marks each listed test xfail (not strict): a listed failure is
shown as known-failure and does not fail the run; a listed test that passes
is shown as known-fixed, "remove the entry".
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

FILE = "known-issues.toml"
EXPECTS = ("fail", "flaky")


@dataclass(frozen=True)
class KnownIssue:
    test: str
    expect: str
    reason: str
    see: str
    flavour: str = ""

    def covers(self, nodeid: str, flavour: str) -> bool:
        if self.flavour and self.flavour != flavour:
            return False
        return nodeid == self.test or nodeid.startswith(self.test + "[")


def load(path: Path) -> list[KnownIssue]:
    """The entries of a known-issues file ([] when there is none); bad entries are errors."""
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"{path}: not valid TOML: {exc}") from exc
    issues = []
    for index, entry in enumerate(data.get("issue", []), 1):
        missing = [k for k in ("test", "expect", "reason", "see") if not entry.get(k)]
        if missing:
            raise HarnessError(f"{path}: issue {index} lacks {', '.join(missing)}")
        if entry["expect"] not in EXPECTS:
            raise HarnessError(f"{path}: issue {index}: expect must be one of "
                               f"{', '.join(EXPECTS)}, not {entry['expect']!r}")
        unknown = set(entry) - {"test", "expect", "reason", "see", "flavour"}
        if unknown:
            raise HarnessError(f"{path}: issue {index}: unknown keys {', '.join(sorted(unknown))}")
        issues.append(KnownIssue(entry["test"], entry["expect"], entry["reason"], entry["see"],
                                 entry.get("flavour", "")))
    return issues


def find(issues: list[KnownIssue], nodeid: str, flavour: str) -> KnownIssue | None:
    return next((i for i in issues if i.covers(nodeid, flavour)), None)
