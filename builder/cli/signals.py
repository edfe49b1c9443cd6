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


# Every SIGINT or SIGTERM this process got: noted while held, noted then raised after.
_seen: list[int] = []


def _raise(signum: int) -> None:
    raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt


def _act(signum: int, frame: object) -> None:
    _seen.append(signum)
    _raise(signum)


def _note(signum: int, frame: object) -> None:
    _seen.append(signum)


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
    signal.signal(signal.SIGINT, _act)
    signal.signal(signal.SIGTERM, _act)
    previous = sys.unraisablehook

    def redeliver(unraisable: sys.UnraisableHookArgs) -> None:
        if isinstance(unraisable.exc_value, Terminated):
            _send_later(signal.SIGTERM)
        elif isinstance(unraisable.exc_value, KeyboardInterrupt):
            _send_later(signal.SIGINT)
        else:
            previous(unraisable)

    sys.unraisablehook = redeliver
    check()


def check() -> None:
    """Raise the first signal seen, if any: one held, or one whose exception was lost.

    CPython can drop an exception raised by a handler while it compiles a
    module's source (no ``.pyc``, as under PYTHONDONTWRITEBYTECODE): the
    import then succeeds as if no signal had come. Called once the imports
    are done and before any work, it turns such a signal into the usual exit.
    """
    if _seen:
        _raise(_seen[0])


def interrupt_in(exc: BaseException) -> BaseException | None:
    """The KeyboardInterrupt or Terminated that ``exc`` is, or was raised from or during.

    CPython wraps an exception raised inside ``__set_name__`` while it creates
    a class (as ``import platform`` does) in a RuntimeError: a signal landing
    there reaches bale as that RuntimeError, its cause the interrupt.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, (KeyboardInterrupt, Terminated)):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


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
