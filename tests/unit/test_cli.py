"""The command line's own behaviour: what a signal does to a running command."""

from __future__ import annotations

import signal

import pytest

from harness import cli


def test_a_second_sigterm_does_not_interrupt_the_unwinding() -> None:
    """The first SIGTERM unwinds through the finally blocks that close the VM; a second
    one (timeout(1) forwards one beside the sender's own) is ignored meanwhile."""
    before = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, cli._on_sigterm)
        with pytest.raises(SystemExit) as exit_:
            cli._on_sigterm(signal.SIGTERM, None)
        assert exit_.value.code == 128 + signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before)
