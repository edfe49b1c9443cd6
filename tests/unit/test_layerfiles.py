"""Reading layers back: one media type → codec map, shared with every other reader."""

from __future__ import annotations

import io
import tarfile
from typing import BinaryIO

import pytest

from builder.errors import ImageError
from builder.image.layerfiles import layer_files
from builder.model import OCI_LAYER, Descriptor, Digest


class _Store:
    name = "test store"

    def __init__(self, data: bytes) -> None:
        self.data = data

    def open(self, descriptor: Descriptor) -> BinaryIO:
        return io.BytesIO(self.data)


def _tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("hello")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    return out.getvalue()


def test_a_known_media_type_is_read() -> None:
    data = _tar()
    files = layer_files(_Store(data), Descriptor(OCI_LAYER, Digest.of(data), len(data)))
    assert [f.path for f in files] == ["hello"]


def test_an_unknown_media_type_is_an_error_as_for_base_layers() -> None:
    """It used to be read as an uncompressed tar here, and refused when a build read it."""
    data = _tar()
    unknown = Descriptor("application/vnd.example.layer", Digest.of(data), len(data))
    with pytest.raises(ImageError, match="unsupported layer media type"):
        layer_files(_Store(data), unknown)
