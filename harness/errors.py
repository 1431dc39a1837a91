"""Errors a user can act on: each carries a message meant to be printed as is."""


class HarnessError(Exception):
    """Base class: the CLI prints the message and exits non-zero, no traceback."""


class SourceError(HarnessError):
    """The kernel source tree is missing, not a kernel tree, or not usable."""


class SeriesError(HarnessError):
    """A patch of the series does not apply."""


class ConfigError(HarnessError):
    """A config fragment is malformed or an option it asks for did not survive."""


class BuildError(HarnessError):
    """make failed."""


class RootfsError(HarnessError):
    """The guest root filesystem could not be built."""


class VMError(HarnessError):
    """The VM failed to boot, died, or stopped answering."""


class GuestTimeout(VMError):
    """A guest command outlived its timeout."""
