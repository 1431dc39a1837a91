"""Where things live: the checkout, its kernel/ data, and the host cache."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KERNEL_DIR = REPO / "kernel"
SERIES_DIR = KERNEL_DIR / "series"
CONFIGS_DIR = KERNEL_DIR / "configs"
FLAVOURS_FILE = KERNEL_DIR / "flavours.toml"
TESTMODS_DIR = KERNEL_DIR / "testmods"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


# Fixed at import: a test session that swaps HOME (pytester) still shares this cache.
DEFAULT_CACHE = Path.home() / ".cache" / "muse-harness"


def cache_root() -> Path:
    """The cache shared by all runs: sources, trees, builds, root filesystems."""
    env = os.environ.get("MUSE_HARNESS_CACHE")
    root = Path(env) if env else DEFAULT_CACHE
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(*parts: str) -> Path:
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
