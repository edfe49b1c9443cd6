"""SIGINT and SIGTERM as exceptions, so every ``finally`` runs before bale exits.

Imports nothing beyond ``signal``: the first line ``builder.cli.entry`` runs
calls ``hold``, which only notes a signal; ``install`` (inside the entry
point's ``try``) then raises the noted one, so a signal during start-up ends
bale like any other.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys


class Terminated(BaseException):
    """SIGTERM arrived; unwinds like KeyboardInterrupt does for SIGINT."""


_held: list[int] = []


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def _note(signum: int, frame: object) -> None:
    _held.append(signum)


def hold() -> None:
    """Until ``install``: note SIGINT and SIGTERM instead of acting on them."""
    signal.signal(signal.SIGINT, _note)
    signal.signal(signal.SIGTERM, _note)


def install() -> None:
    """SIGINT raises KeyboardInterrupt (as by default), SIGTERM raises Terminated.

    A signal noted since ``hold`` is raised at once.

    An interrupt raised where Python can only print and drop it (a weakref
    callback or ``__del__``, as in the import machinery's module locks) is
    delivered again, so it still stops bale instead of being swallowed.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)
    previous = sys.unraisablehook

    def redeliver(unraisable: sys.UnraisableHookArgs) -> None:
        if isinstance(unraisable.exc_value, Terminated):
            _send_later(signal.SIGTERM)
        elif isinstance(unraisable.exc_value, KeyboardInterrupt):
            _send_later(signal.SIGINT)
        else:
            previous(unraisable)

    sys.unraisablehook = redeliver
    if _held:
        raise Terminated if _held[0] == signal.SIGTERM else KeyboardInterrupt


def _send_later(signum: int) -> None:
    """Signal this process from another thread: the main thread's handler then
    raises in ordinary code, not inside the hook that would drop it again."""
    _thread.start_new_thread(os.kill, (os.getpid(), signum))


def ignore() -> None:
    """Ignore further signals while the process reports the first one and exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def report(exc: BaseException) -> tuple[str, int]:
    """The one line and the exit code (130, 143) for an interrupt."""
    if isinstance(exc, Terminated):
        what, code = "terminated", 128 + signal.SIGTERM
    else:
        what, code = "interrupted", 128 + signal.SIGINT
    return f"bale: {what}; outputs were left as they were\n", code
