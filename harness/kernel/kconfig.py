"""Phase 3: config from allnoconfig plus the flavour's fragments, then validated.

Kconfig silently drops an option whose dependencies are not met; validate()
turns that into an error naming the option and what it depends on.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError
from harness.kernel.toolchains import TOOLCHAINS
from harness.paths import CONFIGS_DIR, FLAVOURS_FILE
from harness.proc import run_logged

SET = re.compile(r"^(CONFIG_\w+)=(.*)$")
UNSET = re.compile(r"^# (CONFIG_\w+) is not set$")


MAKE_VAR = re.compile(r"^[A-Za-z_][\w.]*=\S*$")


@dataclass(frozen=True)
class Flavour:
    name: str
    description: str
    fragments: tuple[Path, ...]
    # kbuild variables on make's command line (e.g. GCOV_PROFILE_muse.o=y): what a
    # fragment cannot say, without patching a Makefile.
    make_vars: tuple[str, ...] = ()
    # The toolchain the flavour's options need (kmsan: clang), whatever the run asks.
    toolchain: str = ""
    # Tests marked for it run only when asked for by name (--flavour or --flavours):
    # its kernel needs another toolchain or is too slow for every make check.
    opt_in: bool = False


def fragment_path(name: str, base: str = "") -> Path:
    """kernel/configs/<base>/<name> where a base needs its own, else kernel/configs/<name>."""
    own = CONFIGS_DIR / base / name if base else None
    return own if own is not None and own.is_file() else CONFIGS_DIR / name


def load_flavours(path: Path = FLAVOURS_FILE, base: str = "") -> dict[str, Flavour]:
    data = tomllib.loads(path.read_text())
    flavours = {}
    for name, entry in data.items():
        fragments = tuple(fragment_path(f, base) for f in entry["fragments"])
        for fragment in fragments:
            if not fragment.is_file():
                raise ConfigError(f"{path}: flavour {name!r} names missing fragment {fragment}")
        make_vars = tuple(entry.get("make_vars", ()))
        for var in make_vars:
            if not MAKE_VAR.match(var):
                raise ConfigError(f"{path}: flavour {name!r}: make_vars entry {var!r} is not "
                                  "NAME=VALUE")
        needs = entry.get("toolchain", "")
        if needs and needs not in TOOLCHAINS:
            raise ConfigError(f"{path}: flavour {name!r}: unknown toolchain {needs!r} "
                              f"(known: {', '.join(TOOLCHAINS)})")
        flavours[name] = Flavour(name, entry.get("description", ""), fragments, make_vars,
                                 needs, bool(entry.get("opt_in", False)))
    return flavours


def flavour(name: str, base: str = "") -> Flavour:
    """The flavour's fragments, each the base's own where kernel/configs/<base>/ has one."""
    flavours = load_flavours(base=base)
    if name not in flavours:
        raise ConfigError(f"unknown flavour {name!r}; known: {', '.join(sorted(flavours))}")
    return flavours[name]


def parse_config(text: str, origin: str = "") -> dict[str, str]:
    """Options of a .config or fragment: name -> value, 'n' for '# ... is not set'."""
    options: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if match := SET.match(line):
            options[match.group(1)] = match.group(2)
        elif match := UNSET.match(line):
            options[match.group(1)] = "n"
        elif line and not line.startswith("#"):
            raise ConfigError(f"{origin}:{number}: not a config line: {raw!r}")
    return options


def requested(fragments: tuple[Path, ...]) -> dict[str, tuple[str, str]]:
    """What the fragments ask for: option -> (value, fragment name); later fragments win."""
    wanted: dict[str, tuple[str, str]] = {}
    for fragment in fragments:
        for option, value in parse_config(fragment.read_text(), str(fragment)).items():
            wanted[option] = (value, fragment.name)
    return wanted


def _annotate(expr: str, final: dict[str, str]) -> str:
    """'A && !B' -> 'A (=y) && !B (=n)', values from the final .config."""
    return re.sub(r"\b([A-Z][A-Z0-9_]*)\b",
                  lambda m: f"{m.group(1)} (={final.get('CONFIG_' + m.group(1), 'n')})", expr)


def kconfig_definition(tree: Path, option: str, final: dict[str, str]) -> str | None:
    """Where option is defined, its depends/select lines and enclosing if blocks, or None."""
    symbol = option.removeprefix("CONFIG_")
    start = re.compile(rf"^\s*(menu)?config\s+{re.escape(symbol)}\s*$")
    for kconfig in tree.rglob("Kconfig*"):
        if "Documentation" in kconfig.parts or not kconfig.is_file():
            continue
        lines = kconfig.read_text(errors="replace").splitlines()
        if not any(start.match(line) for line in lines):
            continue
        conditions: list[str] = []
        for index, line in enumerate(lines):
            stripped = line.strip()
            if stripped.startswith("if "):
                conditions.append(stripped[3:])
            elif stripped == "endif" and conditions:
                conditions.pop()
            if not start.match(line):
                continue
            facts = [f"inside 'if {_annotate(c, final)}'" for c in conditions]
            for follow in lines[index + 1:]:
                stripped = follow.strip()
                if re.match(r"^(menu)?config\s|^(end)?(menu|if|choice)\b|^source\b", stripped):
                    break
                if stripped.startswith("depends on"):
                    facts.append("depends on " + _annotate(stripped[len("depends on"):].strip(),
                                                            final))
                elif stripped.startswith(("select", "imply")):
                    facts.append(stripped)
                elif (prompt := re.match(r'^(bool|tristate|string|int|hex)\s+".*"\s+if\s+(.+)$',
                                         stripped)):
                    # Without a visible prompt the option takes its default, whatever was asked.
                    facts.append(f"settable only if {_annotate(prompt.group(2), final)}")
            where = kconfig.relative_to(tree)
            return f"defined in {where}: " + ("; ".join(facts) if facts else "no dependencies")
    return None


def validate(tree: Path, dotconfig: Path, fragments: tuple[Path, ...],
             allow_undefined: bool = False) -> None:
    """Every option the fragments ask for has that value in dotconfig.

    allow_undefined lets an option that no Kconfig defines pass: a bisect step
    before the patch that adds CONFIG_MUSE, say.
    """
    final = parse_config(dotconfig.read_text(), str(dotconfig))
    problems = []
    for option, (value, fragment) in sorted(requested(fragments).items()):
        got = final.get(option, "n")
        if got == value:
            continue
        definition = kconfig_definition(tree, option, final)
        if definition is None and allow_undefined:
            continue
        why = definition or "no such option in this tree (not defined in any Kconfig)"
        problems.append(f"  {option}={value} (from {fragment}) ended up as {option}={got}: {why}")
    if problems:
        raise ConfigError("config options requested by fragments did not survive "
                          "olddefconfig:\n" + "\n".join(problems))


def configure(tree: Path, builddir: Path, fragments: tuple[Path, ...], make: list[str],
              log: Path, allow_undefined: bool = False) -> None:
    """allnoconfig, merge fragments with the kernel's merge_config.sh, olddefconfig, validate."""
    builddir.mkdir(parents=True, exist_ok=True)
    run_logged([*make, "allnoconfig"], log, error=ConfigError, what="make allnoconfig")
    run_logged([str(tree / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(builddir),
                str(builddir / ".config"), *map(str, fragments)],
               log, cwd=tree, error=ConfigError, what="merge_config.sh")
    run_logged([*make, "olddefconfig"], log, error=ConfigError, what="make olddefconfig")
    validate(tree, builddir / ".config", fragments, allow_undefined)
