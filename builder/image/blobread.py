"""Reading a blob's bytes from a file: regular files only, bounded by the descriptor.

A blob named by a descriptor is read through ``Checked``: it yields at most
``size`` bytes, refuses a file that holds more or fewer, and compares the
digest once the last byte has passed, so a FIFO, ``/dev/zero`` or a
bit-flipped layer stops with one clear error instead of a hang or a copy.
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path
from typing import Any, BinaryIO, cast

from builder.errors import DigestMismatch, ImageError, LayoutError
from builder.model import Descriptor


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


class Checked:
    """A read-only stream of one blob: at most its descriptor's size, digest checked at the end."""

    def __init__(self, stream: BinaryIO | Any, descriptor: Descriptor, where: str) -> None:
        self.stream = stream
        self.descriptor = descriptor
        self.where = where
        self.hasher = descriptor.digest.new_hasher()
        self.left = descriptor.size
        self.checked = False

    def read(self, size: int = -1) -> bytes:
        want = self.left if size is None or size < 0 else min(size, self.left)
        try:
            data: bytes = self.stream.read(want) if want else b""
            if not data and not self.checked:
                self._check()
        except (OSError, tarfile.TarError) as exc:
            raise ImageError(f"{self.where}: cannot read {self.descriptor.digest}: {exc}") from None
        self.hasher.update(data)
        self.left -= len(data)
        return data

    def _check(self) -> None:
        self.checked = True
        want = self.descriptor
        if self.left or self.stream.read(1):
            raise DigestMismatch(
                f"{self.where}: blob {want.digest} is not {want.size} bytes long, as its "
                "descriptor says; the image is corrupt"
            )
        if self.hasher.hexdigest() != want.digest.encoded:
            raise DigestMismatch(
                f"{self.where}: blob {want.digest} does not match its digest; the image is corrupt"
            )

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.stream.close()

    def __enter__(self) -> Checked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def checked(stream: BinaryIO | Any, descriptor: Descriptor, where: str) -> BinaryIO:
    return cast(BinaryIO, Checked(stream, descriptor, where))
