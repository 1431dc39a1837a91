"""Reading the tree after a remount and judging it against the workload record."""

from __future__ import annotations

import os

from .fsmodel import blob_loader, check, expect, read_record
from .fsworkload import DIRS


def _tree(root: str) -> tuple[dict[str, bytes], list[str]]:
    """Regular files under root's workload directories, and what does not belong."""
    files: dict[str, bytes] = {}
    problems = [f"unexpected entry {name!r} in the root" for name in sorted(os.listdir(root))
                if name not in DIRS]
    for d in DIRS:
        path = os.path.join(root, d)
        if not os.path.isdir(path):
            problems.append(f"directory {d} is missing")
            continue
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if os.path.islink(full) or not os.path.isfile(full):
                problems.append(f"{d}/{name} is not a regular file")
                continue
            with open(full, "rb") as f:
                files[f"{d}/{name}"] = f.read()
    return files, problems


def verify(root: str, record: str, cut: int | None) -> dict[str, object]:
    events = read_record(record)
    model = expect(events, cut)
    files, problems = _tree(root)
    verdict = check(model, files, blob_loader(record))
    verdict.problems[:0] = problems
    return {**verdict.as_dict(), "cut": cut, "steps_started": model.steps_started,
            "durable_points": model.durable_points, "workload_error": model.error}
