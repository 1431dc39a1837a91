"""The compilers a kernel can be built with, as data: gcc (the default) and clang.

Each toolchain names the make variables kbuild needs, the programs that must
be there (checked before anything is built) and the Debian packages that
bring them. clang builds with LLVM=1: clang, ld.lld and the LLVM binutils.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from harness.errors import BuildError


@dataclass(frozen=True)
class Toolchain:
    name: str
    cc: str
    make_vars: tuple[str, ...]
    programs: tuple[str, ...]
    packages: tuple[str, ...]

    def check(self) -> None:
        """A clear error, before the build, when a program of the toolchain is missing."""
        missing = [p for p in self.programs if shutil.which(p) is None]
        if missing:
            raise BuildError(f"the {self.name} toolchain needs {', '.join(missing)}: install "
                             f"{' '.join(self.packages)} (make deps TOOLCHAIN={self.name})")

    def make_args(self) -> list[str]:
        cc = f"ccache {self.cc}" if shutil.which("ccache") else self.cc
        return [*self.make_vars, f"CC={cc}", f"HOSTCC={cc}"]


TOOLCHAINS = {
    "gcc": Toolchain("gcc", "gcc", (), ("gcc", "ld"), ("build-essential",)),
    "clang": Toolchain("clang", "clang", ("LLVM=1",),
                       ("clang", "ld.lld", "llvm-ar", "llvm-nm", "llvm-objcopy"),
                       ("clang", "lld", "llvm")),
}
DEFAULT_TOOLCHAIN = "gcc"


def toolchain(name: str) -> Toolchain:
    if name not in TOOLCHAINS:
        raise BuildError(f"unknown toolchain {name!r} (known: {', '.join(TOOLCHAINS)})")
    return TOOLCHAINS[name]
