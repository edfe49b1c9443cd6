"""Files that appear whole or not at all, and the temp files that make them.

Every temp file or directory bale makes is named ``….bale-tmp`` (never a
valid digest, and recognisably bale's) and holds an exclusive ``flock`` for
as long as its maker lives: it is made as ``….bale-new``, locked, then
renamed, so no ``.bale-tmp`` is ever unlocked while its maker runs. A
``.bale-tmp`` whose lock is free belongs to a killed bale, and so does a
``.bale-new`` older than a minute: ``sweep`` removes both.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".bale-tmp"
NEW_SUFFIX = ".bale-new"
# A .bale-new lives for the microseconds between its creation and its lock.
NEW_STALE_S = 60.0


def temp_file(directory: Path, stem: str) -> tuple[int, Path]:
    """A new temp file ``.<stem>.<random>.bale-tmp`` in ``directory``, locked by the fd."""
    fd, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=NEW_SUFFIX, dir=directory)
    try:
        return fd, _claim(fd, Path(name))
    except BaseException:
        os.close(fd)
        Path(name).unlink(missing_ok=True)
        raise


@contextmanager
def temp_dir(stem: str) -> Iterator[Path]:
    """A locked work directory ``bale-<stem>-<random>.bale-tmp`` in TMPDIR, removed after."""
    made = Path(tempfile.mkdtemp(prefix=f"bale-{stem}-", suffix=NEW_SUFFIX))
    fd = os.open(made, os.O_RDONLY | os.O_DIRECTORY)
    path = made
    try:
        path = _claim(fd, made)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


def _claim(fd: int, made: Path) -> Path:
    """Lock ``made`` through ``fd``, then give it its ``.bale-tmp`` name."""
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    path = made.with_name(made.name.removesuffix(NEW_SUFFIX) + TEMP_SUFFIX)
    os.rename(made, path)
    return path


@contextmanager
def atomic_write(path: Path, *, mode: int = 0o644, sync: bool = True) -> Iterator[BinaryIO]:
    """Yield a file that replaces ``path`` when the block ends without an error.

    On an error (or an interrupt) the temp file is removed and ``path`` is left
    as it was. ``sync`` fsyncs the bytes before the rename.
    """
    fd, tmp = temp_file(path.parent, path.name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            yield out
            if sync:
                out.flush()
                os.fsync(out.fileno())
            else:
                out.flush()
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sweep(directory: Path, prefix: str = "") -> int:
    """Remove the temps of killed bales in ``directory`` (names starting ``prefix``).

    Returns how many bytes were freed.
    """
    freed = 0
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return 0
    for entry in entries:
        name = entry.name
        if not name.startswith(prefix):
            continue
        if name.endswith(TEMP_SUFFIX) or name.endswith(NEW_SUFFIX):
            freed += _remove_stale(Path(entry.path), name.endswith(NEW_SUFFIX))
    return freed


def _remove_stale(path: Path, new: bool) -> int:
    try:
        st = path.lstat()
        if st.st_uid != os.geteuid() or not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            return 0
        if new and time.time() - st.st_mtime < NEW_STALE_S:
            return 0
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return 0
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return 0
        if stat.S_ISDIR(st.st_mode):
            size = _tree_size(path)
            shutil.rmtree(path, ignore_errors=True)
            return size
        path.unlink(missing_ok=True)
        return st.st_size
    finally:
        os.close(fd)


def _tree_size(path: Path) -> int:
    total = 0
    for parent, _, names in os.walk(path):
        for name in names:
            with suppress(OSError):
                total += os.lstat(os.path.join(parent, name)).st_size
    return total
