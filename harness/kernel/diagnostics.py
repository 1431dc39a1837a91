"""What a patch adds to the compiler's and sparse's diagnostics (0-day's ">>" lines).

The files a patch touches are compiled with W=1 and checked with sparse (C=1)
on the tree before the patch and on the tree after it; a diagnostic is new
when the tree after has more of it than the tree before. Line numbers move
as a patch adds code, so a diagnostic is known by tool, file, kind and
message, counted as a multiset. A patch accepts a new diagnostic it cannot
avoid with a line in its message:

    Accepted-Diagnostic: "<text in the message>" <why>
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BuildError

# "/tree/fs/fuse/muse.c:12:5: warning: no previous prototype for 'f' [-Wmissing-prototypes]"
LINE = re.compile(r"^(?P<file>[^\s:]+\.[chS]):(?P<line>\d+):(?:\d+:)? "
                  r"(?P<kind>warning|error): (?P<message>.*)$")
# kbuild's step lines say which tool speaks next: sparse after CHECK, the compiler after CC.
STEP = re.compile(r"^\s+(CHECK|CC(?: \[M\])?)\s+(\S+)")
QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'"})   # gcc's, in a UTF-8 locale
ACCEPTED = re.compile(r'^Accepted-Diagnostic: "([^"]+)"', re.M)
TOUCHED = re.compile(r"^\+\+\+ b/(\S+)", re.M)
TIMEOUT = 900.0


@dataclass(frozen=True)
class Diagnostic:
    tool: str        # sparse, or the compiler (gcc, clang)
    file: str        # relative to the tree
    line: int
    kind: str        # warning or error
    message: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.tool, self.file, self.kind, self.message

    def show(self) -> str:
        return f">> {self.file}:{self.line}: {self.tool} {self.kind}: {self.message}"


def parse(output: str, tree: Path, compiler: str) -> list[Diagnostic]:
    """Diagnostics in a kbuild log, each with the tool that printed it."""
    found, tool, prefix = [], compiler, f"{tree}/"
    for raw in output.splitlines():
        step = STEP.match(raw)
        if step:
            tool = "sparse" if step.group(1) == "CHECK" else compiler
            continue
        match = LINE.match(raw.strip())
        if match:
            path = match.group("file").removeprefix(prefix).removeprefix("./")
            found.append(Diagnostic(tool, path, int(match.group("line")), match.group("kind"),
                                    " ".join(match.group("message").translate(QUOTES).split())))
    return found


def new_in(before: list[Diagnostic], after: list[Diagnostic]) -> list[Diagnostic]:
    """The diagnostics after that outnumber their like before (the last of each kind)."""
    extra = Counter(d.key for d in after) - Counter(d.key for d in before)
    new: list[Diagnostic] = []
    for diag in reversed(after):
        if extra[diag.key] > 0:
            extra[diag.key] -= 1
            new.append(diag)
    return sorted(new, key=lambda d: (d.file, d.line, d.tool))


def accepted(patch_text: str, diag: Diagnostic) -> bool:
    return any(text in diag.message for text in ACCEPTED.findall(patch_text))


def touched(patch_text: str) -> list[str]:
    """The files a patch changes, in its order."""
    return list(dict.fromkeys(TOUCHED.findall(patch_text)))


def sources_of(files: list[str], series_sources: list[str]) -> list[str]:
    """The C files to compile for a patch's files: its own, and for a header every
    C file of the series beside it or, for a header under include/, every one."""
    chosen = [f for f in files if f.endswith(".c")]
    for header in (f for f in files if f.endswith(".h")):
        folder = header.rsplit("/", 1)[0]
        chosen += [c for c in series_sources
                   if header.startswith("include/") or c.rsplit("/", 1)[0] == folder]
    return list(dict.fromkeys(chosen))


def collect(make: list[str], tree: Path, builddir: Path, sources: list[str], compiler: str,
            log: Path) -> list[Diagnostic]:
    """Compile sources (those the tree has, built in this configuration) with W=1 and
    sparse; their objects are removed first so that both really run."""
    objects = []
    for source in sources:
        obj = builddir / (source[:-2] + ".o")
        if (tree / source).is_file() and obj.is_file():
            obj.unlink()
            objects.append(source[:-2] + ".o")
    if not objects:
        return []
    # One job and one stream: a diagnostic follows the step line of the tool that printed it.
    command = [*make, "-j1", "W=1", "C=1", *objects]
    try:
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, timeout=TIMEOUT, check=False,
                                stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BuildError(f"W=1 C=1 build of {' '.join(objects)} took over {TIMEOUT:.0f} s; "
                         f"log: {log}") from None
    output = result.stdout
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n{output}")
    if result.returncode != 0:
        raise BuildError(f"W=1 C=1 build of {' '.join(objects)} failed "
                         f"(exit {result.returncode}); log: {log}\n{output[-2000:]}")
    return parse(output, tree, compiler)
