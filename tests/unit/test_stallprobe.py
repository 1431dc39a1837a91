"""guest.stallprobe on host processes that finish, stop on SIGINT, or ignore it."""

from __future__ import annotations

import sys

from guest.stallprobe import gone_within, probe, state_of

IGNORES_SIGINT = [sys.executable, "-c",
                  "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                  "time.sleep(30)"]


def test_a_command_that_finishes_is_not_blocked() -> None:
    found = probe(["true"], wait=2, grace=1)
    assert found["blocked"] is False and found["status"] == 0


def test_sigint_ends_a_sleeping_command() -> None:
    found = probe(["sleep", "30"], wait=0.3, grace=2)
    assert found["blocked"] is True and found["state"] == "S"
    assert found["interruptible"] is True and "killable" not in found


def test_sigkill_ends_what_sigint_does_not() -> None:
    found = probe(IGNORES_SIGINT, wait=0.5, grace=2)
    assert (found["interruptible"], found["killable"]) == (False, True)
    assert found["state_after_kill"] == ""
    assert gone_within(int(str(found["pid"])), 1) and state_of(int(str(found["pid"]))) == ""
