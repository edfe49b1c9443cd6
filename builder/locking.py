"""Exclusive locks on output places, so concurrent bales take turns instead of losing work.

A lock is an ``flock`` on a directory's own descriptor: no lock file appears
anywhere, it works across users and containers sharing the directory, and
the kernel releases it when its holder dies (even by SIGKILL).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

Note = Callable[[str], None]
NOTE_AFTER_S = 1.0
_POLL_S = 0.05
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}


@contextmanager
def locked_dir(path: Path, what: str, note: Note | None = None) -> Iterator[None]:
    """Hold the lock of directory ``path`` (made if missing) for the block.

    While another bale holds it, wait; after a second, say so through ``note``.
    A directory removed or replaced while we waited is made and locked again.
    """
    while True:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _acquire(fd, what, note)
            held, now = os.fstat(fd), _stat(path)
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
            break
        os.close(fd)
    try:
        yield
    finally:
        os.close(fd)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


def _acquire(fd: int, what: str, note: Note | None) -> None:
    deadline = time.monotonic() + NOTE_AFTER_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        except OSError as exc:
            if exc.errno in _NO_LOCKS:
                return  # a file system without locks: go on unlocked, as before
            raise
        if time.monotonic() >= deadline:
            break
        time.sleep(_POLL_S)
    if note is not None:
        note(f"waiting for another bale to finish writing {what}")
    fcntl.flock(fd, fcntl.LOCK_EX)
