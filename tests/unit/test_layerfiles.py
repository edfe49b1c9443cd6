"""Reading layers back: one media type → codec map, shared with every other reader."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import BinaryIO

import pytest

from builder.cli.main import main
from builder.errors import ImageError
from builder.image.layerfiles import layer_files
from builder.model import OCI_LAYER, Descriptor, Digest
from tests.fuzz.images import LAYER_TAR, Layout
from tests.fuzz.tar_attacks import long_name_claim


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


def _bytes_read() -> int:
    """Bytes this process has read through read(2) and friends so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_inspect_files_refuses_an_oversized_header_without_reading_the_layer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to measure the layer first: all of it was read before the header was refused."""
    size = 32 << 20
    Layout(layer=long_name_claim(b"L", size), layer_type=LAYER_TAR).write(tmp_path / "base")
    before = _bytes_read()
    code = main(["inspect", "--files", f"oci:{tmp_path / 'base'}:base"])
    read = _bytes_read() - before
    err = capsys.readouterr().err
    assert code == 1
    assert "GNU long-name header at byte 0 claims 2147483648 bytes" in err
    assert len(err.strip().splitlines()) == 1
    assert read < size // 4
