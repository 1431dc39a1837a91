"""mtd-utils' tests from Debian's source: deb-src entries (harness/machine/mtdtests.py)."""

from __future__ import annotations

from harness.machine.mtdtests import source_entries

SOURCES = """Types: deb
URIs: http://mirror.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://mirror.invalid/debian-security
Suites: bookworm-security
Components: main

Types: rpm
URIs: http://elsewhere.invalid/
"""


def test_deb_entries_are_repeated_as_deb_src() -> None:
    out = source_entries(SOURCES)
    assert out.count("Types: deb-src") == 1                # the second already has deb-src
    assert "URIs: http://mirror.invalid/debian\n" in out
    assert "Suites: bookworm bookworm-updates" in out and "Signed-By:" in out
    assert "rpm" not in out and "security" not in out


def test_no_deb_entry_gives_nothing() -> None:
    assert source_entries("Types: rpm\nURIs: x\n") == ""
    assert source_entries("") == ""
