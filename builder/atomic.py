"""Files that appear whole or not at all: write a temp file beside, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_write(path: Path, *, mode: int = 0o644, sync: bool = True) -> Iterator[BinaryIO]:
    """Yield a file that replaces ``path`` when the block ends without an error.

    On an error (or an interrupt) the temp file is removed and ``path`` is left
    as it was. ``sync`` fsyncs the bytes before the rename.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            yield out
            if sync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
