"""oci-archive and docker-archive writing: content, determinism, atomicity, one platform."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from builder.commands.build import BuildResult
from builder.errors import DigestMismatch, ImageError
from builder.formats.archive import write_docker_archive, write_oci_archive
from builder.formats.layout import Blob, LayoutStore, blob_path
from builder.image.assemble import Image, config_blob, index_blob, manifest_blob
from builder.image.store import resolve_image
from builder.layer.build import Layer
from builder.model import OCI_LAYER_GZIP, Descriptor, Digest, Platform

MakeImage = Callable[..., BuildResult]
CREATED = 1704067200  # 2024-01-01T00:00:00Z


def members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return tar.getmembers()


def member_bytes(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        stream = tar.extractfile(name)
        assert stream is not None
        return stream.read()


@pytest.mark.parametrize("transport", ["oci-archive", "docker-archive"])
def test_archives_are_deterministic(make_image: MakeImage, tmp_path: Path, transport: str) -> None:
    first, second = tmp_path / "a" / "x.tar", tmp_path / "b" / "x.tar"
    make_image([f"{transport}:{first}"])
    make_image([f"{transport}:{second}"])
    assert first.read_bytes() == second.read_bytes()
    found = members(first)
    assert [m.name for m in found] == sorted(m.name for m in found)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in found} == {(CREATED, 0, 0, "", "")}
    assert not [p for p in first.parent.iterdir() if p.name != "x.tar"]


def test_oci_archive_holds_the_layout(make_image: MakeImage, tmp_path: Path) -> None:
    path = tmp_path / "o.tar"
    result = make_image([f"oci-archive:{path}:v2"])
    index = json.loads(member_bytes(path, "index.json"))
    # The image alone is listed: podman load refuses an archive listing its referrers too.
    [entry] = index["manifests"]
    assert result.referrers
    assert entry["digest"] == str(result.root.digest)
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": "v2"}
    assert json.loads(member_bytes(path, "oci-layout")) == {"imageLayoutVersion": "1.0.0"}
    names = {m.name for m in members(path)}
    image = result.images[0]
    for blob in (image.manifest, image.config, *image.layers):
        assert f"blobs/sha256/{blob.descriptor.digest.encoded}" in names
    for referrer in result.referrers:  # stored unlisted, found by their subject
        for blob in (referrer.manifest, *referrer.blobs):
            assert f"blobs/sha256/{blob.descriptor.digest.encoded}" in names


def test_docker_archive_layout_and_manifest(make_image: MakeImage, tmp_path: Path) -> None:
    path = tmp_path / "d.tar"
    result = make_image([f"docker-archive:{path}:team/app:v1"])
    image = result.images[0]
    [manifest] = json.loads(member_bytes(path, "manifest.json"))
    assert manifest == {
        "Config": f"blobs/sha256/{image.config.descriptor.digest.encoded}",
        "RepoTags": ["team/app:v1"],
        "Layers": [f"blobs/sha256/{layer.descriptor.digest.encoded}" for layer in image.layers],
    }
    for name in [manifest["Config"], *manifest["Layers"]]:
        assert member_bytes(path, name)
    [entry] = json.loads(member_bytes(path, "index.json"))["manifests"]
    assert entry["digest"] == str(image.manifest.descriptor.digest)
    assert entry["annotations"] == {
        "io.containerd.image.name": "docker.io/team/app:v1",
        "org.opencontainers.image.ref.name": "v1",
    }
    repositories = json.loads(member_bytes(path, "repositories"))
    assert repositories == {"team/app": {"v1": image.config.descriptor.digest.encoded}}


def test_docker_archive_default_name_uses_build_tags(make_image: MakeImage, tmp_path: Path) -> None:
    path = tmp_path / "d.tar"
    make_image([f"docker-archive:{path}"])
    [manifest] = json.loads(member_bytes(path, "manifest.json"))
    assert manifest["RepoTags"] == ["bale:t1"]


def test_docker_archive_refuses_zstd(make_image: MakeImage, tmp_path: Path) -> None:
    path = tmp_path / "d.tar"
    with pytest.raises(ImageError, match='compression = "gzip"'):
        make_image([f"docker-archive:{path}"], compression="zstd")
    assert not path.exists()
    assert list(tmp_path.glob(".d.tar*")) == []


class _LyingBlob:
    """A blob whose bytes do not match its descriptor (it changed on disk)."""

    def __init__(self) -> None:
        self.descriptor = Descriptor(OCI_LAYER_GZIP, Digest.of(b"good"), 4)
        self.verified_file = None

    def open(self) -> BinaryIO:
        return io.BytesIO(b"evil")


def test_failed_archive_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "o.tar"
    path.write_bytes(b"previous archive")
    blob = _LyingBlob()
    with pytest.raises(DigestMismatch):
        write_oci_archive(path, [blob], blob.descriptor, ["t"], CREATED)
    assert path.read_bytes() == b"previous archive"
    assert [p.name for p in tmp_path.iterdir()] == ["o.tar"]


def _two_platform_index(make_image: MakeImage, tmp_path: Path) -> tuple[list[Blob], Descriptor]:
    """An index of two platform manifests sharing bale-built layers."""
    layout = tmp_path / "layout"
    built = make_image([f"oci:{layout}"]).images[0]
    layers = [
        Layer(x.descriptor, x.diff_id, blob_path(layout, x.descriptor), x.created_by)
        for x in built.layers
    ]
    blobs: list[Blob] = list(layers)
    images = []
    for platform in (Platform.parse("linux/amd64"), Platform.parse("linux/arm64")):
        config = config_blob(platform, CREATED, {}, layers)
        manifest = manifest_blob(config, layers, {})
        blobs += [config, manifest]
        images.append(Image(platform, manifest, config, tuple(layers)))
    index = index_blob(images, {})
    return [*blobs, index], index.descriptor


def test_docker_archive_of_an_index_needs_a_platform(make_image: MakeImage, tmp_path: Path) -> None:
    blobs, root = _two_platform_index(make_image, tmp_path)
    path = tmp_path / "d.tar"
    with pytest.raises(ImageError, match=r"holds one platform.*--platform"):
        write_docker_archive(path, blobs, root, "app", ["v1"], None, CREATED)
    assert not path.exists()
    write_docker_archive(path, blobs, root, "app", ["v1"], Platform.parse("linux/arm64"), CREATED)
    [manifest] = json.loads(member_bytes(path, "manifest.json"))
    config = json.loads(member_bytes(path, manifest["Config"]))
    assert config["architecture"] == "arm64"


def test_oci_archive_of_an_index_keeps_every_platform(
    make_image: MakeImage, tmp_path: Path
) -> None:
    blobs, root = _two_platform_index(make_image, tmp_path)
    path = tmp_path / "o.tar"
    write_oci_archive(path, blobs, root, ["multi"], CREATED)
    with tarfile.open(path) as tar:
        # Python < 3.11.4 (Debian 12's 3.11.2) has no extraction filters.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(tmp_path / "x", **safe)  # type: ignore[arg-type]
    store = LayoutStore(tmp_path / "x")
    image = resolve_image(store, store.lookup("multi"), Platform.parse("linux/arm64"))
    assert image.platform == Platform.parse("linux/arm64")


def test_several_outputs_share_one_build(make_image: MakeImage, tmp_path: Path) -> None:
    outputs = [f"oci:{tmp_path / 'l'}", f"oci-archive:{tmp_path / 'o.tar'}"]
    outputs.append(f"docker-archive:{tmp_path / 'd.tar'}")
    result = make_image(outputs)
    digest = result.root.digest.encoded
    assert (tmp_path / "l" / "blobs" / "sha256" / digest).is_file()
    assert f"blobs/sha256/{digest}" in {m.name for m in members(tmp_path / "o.tar")}
    assert f"blobs/sha256/{digest}" in {m.name for m in members(tmp_path / "d.tar")}
