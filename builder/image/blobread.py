"""Opening a blob or archive file: regular files only, symlinks only within the layout.

A FIFO would block the read forever, ``/dev/zero`` never ends, and a symlink
to a host file would copy that file into an image; each is one clear error
here. (The bytes are then checked against their descriptor by ``VerifiedReader``.)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from builder.errors import LayoutError


def open_regular(path: Path, where: str, inside: Path | None = None) -> BinaryIO:
    """``path`` opened for reading, if it is a regular file (a symlink only within ``inside``)."""
    if inside is not None and path.is_symlink():
        real = path.resolve()
        if not real.is_relative_to(inside.resolve()):
            raise LayoutError(f"{where}: {path} is a symlink to {real}, outside {inside}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise LayoutError(f"{where}: {path} is missing") from None
    except OSError as exc:
        raise LayoutError(f"{where}: cannot open {path}: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LayoutError(f"{where}: {path} is not a regular file (a FIFO, device or directory)")
    os.set_blocking(fd, True)
    return open(fd, "rb")
