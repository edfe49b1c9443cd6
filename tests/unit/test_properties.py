"""Property-based tests (hypothesis) of the readers that take hostile input.

The property is the same for each: whatever the bytes, the reader returns a
value or raises a BaleError (one clear line for the CLI), never anything else.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder.errors import BaleError
from builder.formats.archive import DockerArchiveStore
from builder.image.documents import check_config, check_index, check_manifest, parse_json
from builder.image.store import resolve_image
from builder.layer.lower import read_layer
from builder.layer.tarimport import import_tar
from builder.model import OCI_MANIFEST, Descriptor, Digest
from builder.spec.load import load
from tests.fuzz.images import (
    BASE_FILES,
    LAYER_TAR,
    Layout,
    docker_archive,
    plain_tar,
    with_member,
)
from tests.fuzz.toml_fuzz import SEEDS, STRINGS, to_toml

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.sampled_from(STRINGS),
    st.text(max_size=20),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=True),
    st.booleans(),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = ["image", "config", "layers", "users", "groups", "annotations", "base", "tags", "created"]
KEYS += ["dst", "src", "path", "target", "text", "owner", "mode", "exclude", "delete", "tar"]


def _toml_values(depth: int = 2) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
        ),
        max_leaves=12,
    )


def _load_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image.toml"
        path.write_text(text, "utf-8", "surrogateescape")
        with contextlib.suppress(BaleError):
            load(path)


@SETTINGS
@given(st.text(max_size=300))
def test_toml_reader_any_text(text: str) -> None:
    _load_text(text)


@SETTINGS
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 50), _toml_values()), max_size=3))
def test_toml_reader_mutated_seed(seed: dict[str, Any], edits: list[tuple[int, Any]]) -> None:
    document = json.loads(json.dumps(seed))
    for where, value in edits:
        nodes = _containers(document)
        parent, key = nodes[where % len(nodes)]
        parent[key] = value
    _load_text(to_toml(document))


def _containers(document: Any) -> list[tuple[Any, Any]]:
    found: list[tuple[Any, Any]] = []
    items = document.items() if isinstance(document, dict) else enumerate(document)
    for key, value in items:
        found.append((document, key))
        if isinstance(value, (dict, list)) and value:
            found += _containers(value)
    return found


GOOD_TAR = plain_tar(BASE_FILES)


def _damaged(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    buffer = bytearray(data)
    for at, byte in edits:
        buffer[at % len(buffer)] = byte
    return bytes(buffer[:cut] if cut is not None else buffer)


tar_damage = st.tuples(
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
    st.none() | st.integers(0, len(GOOD_TAR)),
)


@SETTINGS
@given(tar_damage, st.sampled_from(["none", "gzip", "zstd"]))
def test_tar_import_reader(damage: tuple[list[tuple[int, int]], int | None], codec: str) -> None:
    plain = _damaged(GOOD_TAR, *damage)
    data = {
        "none": plain,
        "gzip": gzip.compress(plain, mtime=0),
        "zstd": zstandard.ZstdCompressor().compress(plain),
    }[codec]
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "in.tar"
        source.write_bytes(data)
        try:
            imported = import_tar(source, Path(tmp), "layers[0]")
        except BaleError:
            return
        for entry in imported.entries:
            assert entry.path and "\0" not in entry.path and ".." not in entry.path.split("/")


@SETTINGS
@given(tar_damage)
def test_tar_base_layer_reader(damage: tuple[list[tuple[int, int]], int | None]) -> None:
    data = _damaged(GOOD_TAR, *damage)
    descriptor = Descriptor(LAYER_TAR, Digest.of(data), len(data))
    diff_id = Digest.of(data)
    try:
        members = read_layer(io.BytesIO(data), descriptor, diff_id, "base")
    except BaleError:
        return
    assert all(path and ".." not in path.split("/") for path, _ in members)


@SETTINGS
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_json_documents(data: bytes) -> None:
    try:
        value = parse_json(data, "doc")
    except BaleError:
        return
    for check in (check_config, check_manifest, check_index):
        with contextlib.suppress(BaleError):
            check(value, "doc")
    with contextlib.suppress(BaleError):
        Descriptor.from_json(value)


class _Memory:
    """A store over blobs in memory (the property is about the JSON, not the files)."""

    name = "memory"

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs

    def open(self, descriptor: Descriptor) -> Any:
        return io.BytesIO(self.blobs.get(str(descriptor.digest), b""))


@SETTINGS
@given(
    st.sampled_from(["manifest", "config"]),
    st.sampled_from(["layers", "config", "rootfs", "Labels", "Env", "size", "digest", "mediaType"]),
    json_values,
)
def test_store_resolves_damaged_documents(which: str, key: str, value: Any) -> None:
    layout = Layout().fill()
    document = dict(layout.manifest if which == "manifest" else layout.config)
    document[key] = value
    data = json.dumps(document).encode()
    blobs = {
        str(Digest.of(b)): b
        for b in (layout.layer, layout.config_bytes or b"", layout.manifest_bytes or b"")
    }
    if which == "manifest":
        root = Descriptor(OCI_MANIFEST, Digest.of(data), len(data))
    else:
        manifest = dict(layout.manifest)
        manifest["config"] = {
            **manifest["config"],
            "digest": str(Digest.of(data)),
            "size": len(data),
        }
        manifest_bytes = json.dumps(manifest).encode()
        blobs[str(Digest.of(manifest_bytes))] = manifest_bytes
        root = Descriptor(OCI_MANIFEST, Digest.of(manifest_bytes), len(manifest_bytes))
    blobs[str(Digest.of(data))] = data
    try:
        image = resolve_image(_Memory(blobs), root, None)
    except BaleError:
        return
    assert image.platform.os and isinstance(image.config_json["rootfs"], dict)


@SETTINGS
@given(json_values)
def test_docker_archive_manifest(value: Any) -> None:
    archive = docker_archive(Layout())
    replaced = with_member(archive, "manifest.json", lambda _: json.dumps(value).encode())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image.tar"
        path.write_bytes(replaced)
        try:
            store = DockerArchiveStore(path)
            try:
                store.lookup("")
            finally:
                store.close()
        except BaleError:
            pass
