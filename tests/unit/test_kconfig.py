"""Config fragments: parsing, and the validation that names dropped options."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.kernel.kconfig import load_flavours, parse_config, requested, validate
from harness.paths import FLAVOURS_FILE


def test_parse_config_values_and_unset() -> None:
    text = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"str\"\n# comment\n\n"
    assert parse_config(text) == {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": '"str"'}


def test_parse_config_rejects_garbage() -> None:
    with pytest.raises(ConfigError, match=r"frag:2: not a config line"):
        parse_config("CONFIG_A=y\nCONFIG_B y\n", "frag")


def test_later_fragment_wins(tmp_path: Path) -> None:
    a, b = tmp_path / "a.config", tmp_path / "b.config"
    a.write_text("CONFIG_X=m\nCONFIG_Y=y\n")
    b.write_text("CONFIG_X=y\n")
    assert requested((a, b)) == {"CONFIG_X": ("y", "b.config"), "CONFIG_Y": ("y", "a.config")}


def test_validate_names_option_and_dependencies(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "fs/fuse").mkdir(parents=True)
    (tree / "fs/fuse/Kconfig").write_text(
        "if FUSE_HELPER\nconfig MUSE\n\ttristate \"MUSE\"\n\tdepends on FUSE_FS && !X\n"
        "\tselect MTD\n\thelp\n\t  text\nendif\n\nconfig OTHER\n\tbool\n"
        "config ZSTD\n\tbool \"zstd\" if ADV\n\tdefault y\n")
    fragment = tmp_path / "muse.config"
    fragment.write_text("CONFIG_MUSE=m\nCONFIG_GONE=y\nCONFIG_OK=y\n# CONFIG_ZSTD is not set\n")
    dotconfig = tmp_path / ".config"
    dotconfig.write_text("CONFIG_OK=y\n# CONFIG_MUSE is not set\nCONFIG_FUSE_FS=y\nCONFIG_ZSTD=y\n")
    with pytest.raises(ConfigError) as info:
        validate(tree, dotconfig, (fragment,))
    message = str(info.value)
    assert "CONFIG_MUSE=m (from muse.config) ended up as CONFIG_MUSE=n" in message
    assert ("fs/fuse/Kconfig: inside 'if FUSE_HELPER (=n)'; "
            "depends on FUSE_FS (=y) && !X (=n); select MTD") in message
    assert "CONFIG_GONE=y" in message and "not defined in any Kconfig" in message
    assert "CONFIG_ZSTD=n (from muse.config) ended up as CONFIG_ZSTD=y" in message
    assert "settable only if ADV (=n)" in message
    assert "CONFIG_OK" not in message


def test_validate_passes_when_all_survive(tmp_path: Path) -> None:
    fragment = tmp_path / "f.config"
    fragment.write_text("CONFIG_A=y\n# CONFIG_B is not set\n")
    dotconfig = tmp_path / ".config"
    dotconfig.write_text("CONFIG_A=y\n")
    validate(tmp_path, dotconfig, (fragment,))


def test_shipped_flavours_load() -> None:
    flavours = load_flavours(FLAVOURS_FILE)
    assert "default" in flavours
    for flavour in flavours.values():
        assert flavour.fragments, flavour.name
        for fragment in flavour.fragments:
            parse_config(fragment.read_text(), str(fragment))
