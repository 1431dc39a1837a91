"""Invalid geometries: the kernel refuses each, the server says why, nothing registers.

One case per rule of the kernel's parameter check (geometry_cases.py). The
server sends each geometry unchecked, so the kernel's check is what is
tested; a splat during any of them fails the test through the plugin.
"""

from __future__ import annotations

import pytest

from guest import contract
from harness.pytest.testguest import TestGuest

from .geometry_cases import CASES, Case


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_invalid_geometry_is_refused(vm: TestGuest, case: Case) -> None:
    before = vm.check("cat /proc/mtd").stdout
    proc = vm.spawn(contract.serve_command(f"{case.command} --register-timeout 30"))
    verdict = proc.expect(r"^muse: (ready|error: .*)$", 120).group(1)
    assert verdict != "ready", f"{case.rule}: the kernel registered it:\n{proc.text()}"
    status = proc.wait(60)
    text = proc.text()
    assert status == 3, f"{case.rule}: not refused by the kernel (exit {status}):\n{text}"
    assert "kernel rejected the device" in text, text
    assert case.why in text, f"the server did not say why ({case.why!r}):\n{text}"
    assert vm.check("cat /proc/mtd").stdout == before
