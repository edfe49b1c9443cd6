"""Small images written by hand, byte by byte, for the attack and damage harnesses.

Nothing here uses bale: a harness must judge bale with inputs bale did not make.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = LAYER_TAR + "+gzip"
LAYER_ZSTD = LAYER_TAR + "+zstd"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def plain_tar(members: dict[str, bytes], dirs: tuple[str, ...] = ("etc",)) -> bytes:
    """A small, honest tar: the given directories, then files (mode 0644, uid 0)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in dirs:
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def with_member(archive: bytes, name: str, edit: Callable[[bytes], bytes]) -> bytes:
    """``archive`` (an uncompressed tar) with member ``name``'s bytes replaced by ``edit(bytes)``."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(archive)) as src,
        tarfile.open(fileobj=out, mode="w") as dst,
    ):
        for info in src:
            stream = src.extractfile(info)
            data = stream.read() if stream else b""
            if info.name == name:
                data = edit(data)
                info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    return out.getvalue()


BASE_FILES = {
    "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n",
    "etc/group": b"root:x:0:\n",
    "hello.txt": b"hello\n",
}


@dataclass
class Layout:
    """An OCI layout under construction: blobs, one manifest, one tagged index entry.

    Every field may be replaced before ``write`` to damage the result.
    """

    layer: bytes = field(default_factory=lambda: gzip.compress(plain_tar(BASE_FILES), mtime=0))
    layer_type: str = LAYER_GZIP
    diff_id: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    config_bytes: bytes | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    manifest_bytes: bytes | None = None
    index: dict[str, Any] = field(default_factory=dict)
    index_bytes: bytes | None = None
    extra_blobs: dict[str, bytes] = field(default_factory=dict)

    def fill(self) -> Layout:
        """Compute every document from the layer (fields already set are kept)."""
        if not self.diff_id:
            self.diff_id = sha256(_uncompressed(self.layer, self.layer_type))
        self.config = self.config or {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/bin"], "Labels": {"a": "b"}},
            "rootfs": {"type": "layers", "diff_ids": [self.diff_id]},
        }
        config = self.config_bytes if self.config_bytes is not None else canonical(self.config)
        self.config_bytes = config
        self.manifest = self.manifest or {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [
                {
                    "mediaType": self.layer_type,
                    "digest": sha256(self.layer),
                    "size": len(self.layer),
                }
            ],
        }
        manifest = self.manifest_bytes or canonical(self.manifest)
        self.manifest_bytes = manifest
        self.index = self.index or {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": sha256(manifest),
                    "size": len(manifest),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {"org.opencontainers.image.ref.name": "base"},
                }
            ],
        }
        self.index_bytes = self.index_bytes or canonical(self.index)
        return self

    def blobs(self) -> dict[str, bytes]:
        self.fill()
        assert self.config_bytes is not None and self.manifest_bytes is not None
        found = {sha256(b): b for b in (self.layer, self.config_bytes, self.manifest_bytes)}
        return {**found, **self.extra_blobs}

    def write(self, root: Path) -> Path:
        """Write the layout at ``root`` (created)."""
        blobs = self.blobs()
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_bytes(b'{"imageLayoutVersion":"1.0.0"}')
        assert self.index_bytes is not None
        (root / "index.json").write_bytes(self.index_bytes)
        for digest, data in blobs.items():
            path = root / "blobs" / digest.replace(":", "/", 1)
            if not path.exists() and not path.is_symlink():
                path.write_bytes(data)
        return root

    def blob_path(self, root: Path, data: bytes) -> Path:
        return root / "blobs" / "sha256" / sha256(data).split(":")[1]


def _uncompressed(data: bytes, media_type: str) -> bytes:
    try:
        if media_type.endswith("+gzip"):
            return gzip.decompress(data)
        if media_type.endswith("+zstd"):
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except Exception:
        return data
    return data


def tar_dir(root: Path) -> bytes:
    """A directory tree as a tar (for oci-archive bases), names relative to ``root``."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path in sorted(root.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return out.getvalue()


def docker_archive(layout: Layout, repo_tags: Any = ("base:latest",)) -> bytes:
    """A ``docker save`` tarball of the layout's one image (layers stored uncompressed)."""
    layout.fill()
    assert layout.config_bytes is not None
    layer = _uncompressed(layout.layer, layout.layer_type)
    config_name = sha256(layout.config_bytes).split(":")[1] + ".json"
    manifest = [
        {
            "Config": config_name,
            "RepoTags": list(repo_tags) if isinstance(repo_tags, tuple) else repo_tags,
            "Layers": ["layer.tar"],
        }
    ]
    files = {
        "manifest.json": json.dumps(manifest).encode(),
        config_name: layout.config_bytes,
        "layer.tar": layer,
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
