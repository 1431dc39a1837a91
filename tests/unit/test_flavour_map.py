"""--flavour-map: a test marked for one flavour boots another (harness/pytest/plugin.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import pytest

from harness.pytest.plugin import _built_flavour


def _config(value: str) -> pytest.Config:
    return cast(pytest.Config, SimpleNamespace(getoption=lambda name: value))


def test_a_mapped_flavour_boots_its_replacement() -> None:
    config = _config("partmaster=coverage-partmaster, debug = coverage-debug")
    assert _built_flavour(config, "partmaster") == "coverage-partmaster"
    assert _built_flavour(config, "debug") == "coverage-debug"
    assert _built_flavour(config, "coverage") == "coverage"


def test_without_a_map_each_test_boots_its_own_flavour() -> None:
    assert _built_flavour(_config(""), "partmaster") == "partmaster"
