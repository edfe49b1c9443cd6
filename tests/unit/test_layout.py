from __future__ import annotations

import errno
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from builder.errors import DigestMismatch, LayoutError
from builder.formats.layout import LayoutStore, write_layout
from builder.image.assemble import JsonBlob
from builder.layer.build import Layer, build_layer
from builder.layer.entries import Entry, InlineContent, Kind
from builder.model import OCI_MANIFEST, Codec, Descriptor


def _blob(text: str) -> JsonBlob:
    return JsonBlob.of(OCI_MANIFEST, {"x": text})


def _refs(root: Path) -> dict[str, str]:
    index = json.loads((root / "index.json").read_text())
    return {
        m.get("annotations", {}).get("org.opencontainers.image.ref.name", ""): m["digest"]
        for m in index["manifests"]
    }


def test_tags_move_and_other_images_stay(tmp_path: Path) -> None:
    one, two = _blob("1"), _blob("2")
    write_layout(tmp_path / "l", [one], one.descriptor, ["a", "b"])
    write_layout(tmp_path / "l", [two], two.descriptor, ["b", "c"])
    refs = _refs(tmp_path / "l")
    assert refs == {
        "a": str(one.descriptor.digest),
        "b": str(two.descriptor.digest),
        "c": str(two.descriptor.digest),
    }
    assert LayoutStore(tmp_path / "l").lookup("a") == Descriptor(
        OCI_MANIFEST,
        one.descriptor.digest,
        one.descriptor.size,
        {"org.opencontainers.image.ref.name": "a"},
    )


def test_untagged_image_is_listed_once(tmp_path: Path) -> None:
    one = _blob("1")
    write_layout(tmp_path / "l", [one], one.descriptor, [])
    write_layout(tmp_path / "l", [one], one.descriptor, [])
    assert len(json.loads((tmp_path / "l" / "index.json").read_text())["manifests"]) == 1


@dataclass(frozen=True)
class _Lying:
    """A blob whose bytes do not match its descriptor."""

    descriptor: Descriptor
    verified_file: None = None

    def open(self) -> io.BytesIO:
        return io.BytesIO(b"something else")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_failure_leaves_an_existing_layout_as_it_was(tmp_path: Path) -> None:
    one, two = _blob("1"), _blob("2")
    root = tmp_path / "l"
    write_layout(root, [one], one.descriptor, ["a"])
    before = _snapshot(root)
    with pytest.raises(DigestMismatch, match="changed before it was written"):
        write_layout(root, [two, _Lying(_blob("3").descriptor)], two.descriptor, ["a"])
    assert _snapshot(root) == before


def test_failure_leaves_no_new_directory(tmp_path: Path) -> None:
    with pytest.raises(DigestMismatch):
        write_layout(tmp_path / "new", [_Lying(_blob("3").descriptor)], _blob("3").descriptor, [])
    assert not (tmp_path / "new").exists()


def test_refuses_a_directory_that_is_not_a_layout(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "precious.txt").write_text("keep")
    with pytest.raises(LayoutError, match="without an 'oci-layout' file"):
        write_layout(tmp_path / "d", [_blob("1")], _blob("1").descriptor, [])
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["precious.txt"]


def test_lookup_errors_name_what_exists(tmp_path: Path) -> None:
    one = _blob("1")
    write_layout(tmp_path / "l", [one], one.descriptor, ["a", "b"])
    with pytest.raises(LayoutError, match="has no image 'z'; it has: a, b"):
        LayoutStore(tmp_path / "l").lookup("z")
    with pytest.raises(LayoutError, match="holds 2 images"):
        LayoutStore(tmp_path / "l").lookup("")


def _layer(tmp_path: Path) -> Layer:
    entries = [Entry("f", Kind.FILE, 0o644, content=InlineContent(os.urandom(300_000)))]
    return build_layer(entries, Codec.of("gzip"), 0, tmp_path / "built")


@pytest.mark.parametrize("kernel", [True, False])
def test_a_built_layer_is_copied_whole_with_or_without_the_kernel_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kernel: bool
) -> None:
    layer = _layer(tmp_path)
    real, calls = os.copy_file_range, []

    def copy_file_range(*args: int) -> int:
        calls.append(args)
        if not kernel:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real(*args)

    monkeypatch.setattr(os, "copy_file_range", copy_file_range)
    root = tmp_path / "l"
    write_layout(root, [layer], layer.descriptor, ["t"])
    assert calls
    copied = root / "blobs" / "sha256" / layer.descriptor.digest.encoded
    assert copied.read_bytes() == layer.path.read_bytes()
    assert copied.stat().st_mode & 0o777 == 0o644
    assert not os.path.samefile(copied, layer.path)


def test_a_layer_blob_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    layer = _layer(tmp_path)
    with open(layer.path, "ab") as blob:
        blob.write(b"x")
    root = tmp_path / "l"
    with pytest.raises(DigestMismatch, match="changed before it was written"):
        write_layout(root, [layer], layer.descriptor, ["t"])
    assert not root.exists()


@dataclass(frozen=True)
class _VerifiedElsewhere:
    """Any blob (not a Layer) whose file bale verified: the writer needs only that fact."""

    descriptor: Descriptor
    verified_file: Path

    def open(self) -> io.BytesIO:
        raise AssertionError("a verified file is copied, not re-read through open()")


def test_the_writer_trusts_a_blob_that_says_it_was_verified(tmp_path: Path) -> None:
    """The writer used to ask ``isinstance(blob, Layer)``: it knew how layers were built."""
    layer = _layer(tmp_path)
    blob = _VerifiedElsewhere(layer.descriptor, layer.path)
    root = tmp_path / "l"
    write_layout(root, [blob], layer.descriptor, ["t"])
    assert (root / layer.descriptor.digest.blob_path).read_bytes() == layer.path.read_bytes()


def test_a_failed_build_keeps_a_layout_another_build_made_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both saw no directory; the other build made the layout first; ours fails: keep it."""
    root = tmp_path / "l"
    one = _blob("1")
    real_exists = Path.exists
    raced: list[bool] = []

    def racing_exists(path: Path) -> bool:
        """Our build's checks see no directory; the other build writes meanwhile."""
        if path == root and len(raced) < 2:
            raced.append(True)
            if len(raced) == 2:
                write_layout(root, [one], one.descriptor, ["other"])
            return False
        return real_exists(path)

    monkeypatch.setattr(Path, "exists", racing_exists)
    with pytest.raises(DigestMismatch):
        write_layout(root, [_Lying(_blob("3").descriptor)], _blob("3").descriptor, ["ours"])
    monkeypatch.undo()
    assert LayoutStore(root).lookup("other").digest == one.descriptor.digest
