"""The checkout's guest/ package as the guest's python3 loads it.

The guest mounts the checkout read-only over virtio-9p (init.sh), so its
python3 cannot write bytecode there: every start compiled each guest module
again, reading the sources over 9p, seconds under TCG. compile_for_guest()
writes the bytecode on the host before a boot, where the host's Python is the
guest's minor version (the cache tag, cpython-311, names the files; another
version's are ignored by the guest, so nothing breaks, it is only slower).
"""

from __future__ import annotations

import compileall
import sys

from harness.machine.rootfs import GUEST
from harness.paths import REPO

GUEST_PACKAGE = REPO / "guest"


def host_is_guest_python() -> bool:
    return f"{sys.version_info.major}.{sys.version_info.minor}" == GUEST["python"]


def compile_for_guest() -> bool:
    """Bytecode for guest/ in its __pycache__ directories (git ignores them): a no-op
    for an unchanged module. False when the host's Python cannot write the guest's."""
    return host_is_guest_python() and bool(compileall.compile_dir(GUEST_PACKAGE, quiet=1))
