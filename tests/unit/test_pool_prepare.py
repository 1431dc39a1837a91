"""VMPool.prepare: every kernel a session needs is built before its first test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.errors import BuildError
from harness.kernel.build import BuildRequest
from harness.pytest import pool as pool_module
from harness.pytest.pool import PoolOptions, VMPool


def _pool(tmp_path: Path) -> VMPool:
    return VMPool(PoolOptions(kernel=BuildRequest(base="6.12", flavour="default"), smp=2,
                              memory_mb=512, tcg_threads="multi", logdir=tmp_path, worker="w"))


def test_each_kernel_is_built_once_up_front_and_a_failure_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []

    def build(request: BuildRequest) -> Any:
        built.append(request.flavour)
        if request.flavour == "debug":
            raise BuildError("debug: make failed")
        return f"kernel-{request.flavour}"

    monkeypatch.setattr(pool_module, "build_kernel", build)
    monkeypatch.setattr(pool_module, "build_rootfs", lambda: "rootfs")
    pool = _pool(tmp_path)
    pool.prepare(["default", "debug", "partmaster"])
    assert built == ["default", "debug", "partmaster"]
    assert str(pool.rootfs) == "rootfs"
    assert str(pool.kernel("partmaster")) == "kernel-partmaster"
    with pytest.raises(BuildError, match="make failed"):
        pool.kernel("debug")
    assert built == ["default", "debug", "partmaster"], "nothing is built a second time"
