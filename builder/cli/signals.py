"""SIGINT and SIGTERM as exceptions, so every ``finally`` runs before bale exits.

Kept free of bale's other imports: ``builder.cli.entry`` installs these
handlers before it imports anything heavy, so a signal during start-up is
caught too.
"""

from __future__ import annotations

import signal
from types import FrameType


class Terminated(BaseException):
    """SIGTERM arrived; unwinds like KeyboardInterrupt does for SIGINT."""


EXIT_CODES = {KeyboardInterrupt: 128 + signal.SIGINT, Terminated: 128 + signal.SIGTERM}
MESSAGES = {KeyboardInterrupt: "interrupted", Terminated: "terminated"}


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def install() -> None:
    """SIGINT raises KeyboardInterrupt (as by default), SIGTERM raises Terminated."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)


def ignore() -> None:
    """Ignore further signals while the process reports the first one and exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def report(exc: BaseException) -> tuple[str, int]:
    """The one line and the exit code (130, 143) for an interrupt."""
    kind = Terminated if isinstance(exc, Terminated) else KeyboardInterrupt
    line = f"bale: {MESSAGES[kind]}; outputs were left as they were\n"
    return line, EXIT_CODES[kind]
