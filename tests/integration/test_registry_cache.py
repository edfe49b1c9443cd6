"""The layer cache shared through a registry, judged as two CI runners would use it.

Each "runner" has its own copy of the context (other directory, other
inodes, mtimes moved by a year, files created in another order) and its own
empty BALE_CACHE_DIR; the registry is Debian's docker-registry on loopback,
whose request log shows every blob upload and mount.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import lzma
import random
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from builder.cli.main import main
from builder.commands import build as pipeline
from builder.commands import layersource
from builder.commands.build import BuildOptions, build
from builder.commands.filerecords import RECORD_TYPE
from builder.commands.verify import copy_tree
from builder.layer.build import Layer
from builder.layer.cache import LayerCache
from builder.layer.entries import HostFile
from builder.model import Descriptor, Digest
from builder.reference import parse_reference
from builder.registry import layercache as registry_layercache
from builder.registry.client import RegistryClient
from builder.registry.layercache import (
    CACHE_TYPE,
    EMPTY,
    CachedDocument,
    CacheEntry,
    encode,
    read_cache,
    write_cache,
)
from builder.registry.options import Clients, RegistryOptions
from builder.spec.locations import parse_output
from builder.supply import sbom
from tests.conftest import require_tool
from tests.fuzz.images import plain_tar
from tests.helpers import check_layout
from tests.integration import registry_fixtures
from tests.integration.registry_fixtures import RunningRegistry, free_port

SPEC = """
[image]
created = "2024-01-01T00:00:00Z"
[[layers]]
name = "deps"
files = [{ src = "deps/", dst = "/opt/deps/" }]
[[layers]]
name = "app"
files = [{ src = "app/", dst = "/opt/app/" }]
"""


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkout every runner clones: a few hundred KB of text and noise in two layers."""
    root = tmp_path_factory.mktemp("origin")
    (root / "image.toml").write_text(SPEC)
    rng = random.Random(15)
    for layer, count in (("deps", 40), ("app", 5)):
        for number in range(count):
            path = root / layer / f"d{number % 4}" / f"f{number}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            words = " ".join(rng.choice(("alpha", "beta", "gamma")) for _ in range(2000))
            path.write_text(words + rng.randbytes(2000).hex())
    return root


class Runner:
    """A fresh clone (other inodes, mtimes moved by ``shift``, reversed order) and an empty
    cache; ``run`` is bale there, in this process."""

    def __init__(self, origin: Path, home: Path, shift: int, runners: Runners) -> None:
        self.context = home / "checkout"
        copy_tree(origin, self.context, reverse=shift % 2 == 1, shift=shift)
        self.cache = home / "cache"
        self.monkeypatch, self.capsys = runners.monkeypatch, runners.capsys

    def run(self, *args: str) -> tuple[int, str, str]:
        """``bale ARGS`` with this runner's cache: exit code, stdout and stderr."""
        self.monkeypatch.setenv("BALE_CACHE_DIR", str(self.cache))
        self.capsys.readouterr()
        code = main(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err

    def build(self, *flags: str) -> tuple[int, dict[str, Any], str]:
        """``bale build --json`` here; returns exit code, summary and stderr."""
        code, out, err = self.run("build", "--json", "-f", str(self.context / "image.toml"), *flags)
        return code, json.loads(out) if code == 0 else {}, err


@dataclass(frozen=True)
class Runners:
    """Makes the runners of one test, each in its own directory under ``home``."""

    origin: Path
    home: Path
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]

    def __call__(self, name: str, shift: int, origin: Path | None = None) -> Runner:
        return Runner(origin or self.origin, self.home / name, shift, self)


@pytest.fixture
def runners(
    origin: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Runners:
    """The runners of one test: clones of ``origin`` (unless told another) under tmp_path."""
    return Runners(origin, tmp_path, monkeypatch, capsys)


@pytest.fixture
def compressed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The created_by of every layer this process compressed (the counter the judges ask for)."""
    names: list[str] = []
    real = pipeline.build_layer

    def counting(*args: Any, **kwargs: Any) -> Layer:
        names.append(str(kwargs["created_by"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "build_layer", counting)
    return names


def sources(summary: dict[str, Any]) -> dict[str, str]:
    layers = summary["images"][0]["layers"]
    return {layer["createdBy"].removeprefix("bale: layer "): layer["source"] for layer in layers}


def layer_digests(summary: dict[str, Any]) -> list[str]:
    return [layer["digest"] for layer in summary["images"][0]["layers"]]


def uploaded_digests(log: str) -> set[str]:
    """Digests of the blobs whose upload was completed (the final PUT carries ?digest=)."""
    found = set()
    for line in log.splitlines():
        if "PUT /v2/" in line and "/blobs/uploads/" in line and "digest=sha256:" in line:
            found.add("sha256:" + line.split("digest=sha256:")[1][:64])
    return found


def test_two_runners_share_layers_through_the_registry(
    plain_registry: RunningRegistry,
    runners: Runners,
    tmp_path: Path,
    compressed: list[str],
) -> None:
    host = plain_registry.host
    cache = f"docker://{host}/ci/cache:main"
    first = runners("runner1", 0)
    code, one, _ = first.build("-o", f"docker://{host}/ci/app:one", "--cache-to", cache)
    assert code == 0
    assert sources(one) == {"deps": "built", "app": "built"}
    assert len(compressed) == 2
    artifact = read_cache(RegistryClient(host), parse_reference(cache))
    assert {e.descriptor.digest for e in artifact.entries.values()} == {
        Digest.parse(d) for d in layer_digests(one)
    }
    manifest = httpx.get(
        f"http://{host}/v2/ci/cache/manifests/main",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    ).json()
    assert manifest["artifactType"] == CACHE_TYPE

    mark = len(plain_registry.log())
    second = runners("runner2", 86_400 * 365 + 3)
    assert (second.context / "app").stat().st_ino != (first.context / "app").stat().st_ino
    code, two, err = second.build("-o", f"docker://{host}/ci/app:two", "--cache-from", cache)
    assert code == 0, err
    assert sources(two) == {"deps": "registry-cache", "app": "registry-cache"}
    assert len(compressed) == 2  # runner 2 compressed nothing
    assert two["digest"] == one["digest"]
    log = plain_registry.log()[mark:]
    assert not uploaded_digests(log) & set(layer_digests(one))
    assert all(f"mount={d}" not in log for d in layer_digests(one))  # same repository: HEAD

    # A third runner pushing elsewhere in the registry: the layers are mounted, not sent.
    mark = len(plain_registry.log())
    third = runners("runner3", 7)
    code, three, _ = third.build("-o", f"docker://{host}/ci/other:t", "--cache-from", cache)
    assert code == 0 and three["digest"] == one["digest"]
    log = plain_registry.log()[mark:]
    assert not uploaded_digests(log) & set(layer_digests(one))
    assert all(f"mount={d}" in log for d in layer_digests(one))

    # bale verify builds twice without any cache: the same digest as the cache hits.
    code, out, _ = third.run("verify", "--json", "-f", str(third.context / "image.toml"))
    assert code == 0
    verified = json.loads(out)
    assert verified["reproducible"] and verified["digests"] == [one["digest"]] * 2


def test_a_hit_into_a_layout_downloads_and_verifies_the_blob(
    plain_registry: RunningRegistry,
    runners: Runners,
    tmp_path: Path,
    compressed: list[str],
) -> None:
    cache = f"docker://{plain_registry.host}/ci/layout-cache:x"
    first = runners("r1", 0)
    code, one, _ = first.build("-o", f"oci:{tmp_path / 'one'}", "--cache-to", cache)
    assert code == 0
    second = runners("r2", 99)
    out = tmp_path / "two"
    code, two, _ = second.build("-o", f"oci:{out}", "--cache-from", cache)
    assert code == 0
    assert sources(two) == {"deps": "registry-cache", "app": "registry-cache"}
    assert len(compressed) == 2 and two["digest"] == one["digest"]
    check_layout(out)  # every blob re-hashed against its descriptor, schemas validated
    # The downloaded blobs now sit in runner 2's local cache: a rebuild there is local.
    code, again, _ = second.build("-o", f"oci:{out}", "--cache-from", cache)
    assert sources(again) == {"deps": "local-cache", "app": "local-cache"}
    # Without --json, stderr says the same: one line per layer.
    third = runners("r3", 5)
    spec = str(third.context / "image.toml")
    code, _, err = third.run(
        "build", "-f", spec, "-o", f"oci:{tmp_path / 'three'}", "--cache-from", cache
    )
    assert code == 0
    lines = [x for x in err.splitlines() if x.startswith("layer ")]
    digests = layer_digests(one)
    assert lines == [
        f"layer deps: registry cache {digests[0]}",
        f"layer app: registry cache {digests[1]}",
    ]


def test_a_changed_file_rebuilds_only_its_layer(
    plain_registry: RunningRegistry,
    runners: Runners,
    tmp_path: Path,
    compressed: list[str],
) -> None:
    cache = f"docker://{plain_registry.host}/ci/change-cache:x"
    target = f"docker://{plain_registry.host}/ci/change:x"
    first = runners("r1", 0)
    code, one, _ = first.build("-o", target, "--cache-to", cache)
    second = runners("r2", 5)
    (second.context / "app" / "d0" / "f0.txt").write_text("changed\n")
    code, two, err = second.build("-o", target, "--cache-from", cache, "--cache-to", cache)
    assert code == 0, err
    assert sources(two) == {"deps": "registry-cache", "app": "built"}
    assert compressed == ["bale: layer deps", "bale: layer app", "bale: layer app"]
    assert layer_digests(two)[0] == layer_digests(one)[0]
    assert layer_digests(two)[1] != layer_digests(one)[1]
    entries = read_cache(RegistryClient(plain_registry.host), parse_reference(cache)).entries
    assert len(entries) == 3  # merged: both versions of app, deps once


def _push_artifact(host: str, repo: str, tag: str, blob: bytes) -> None:
    """A cache artifact around arbitrary bytes (a damaged cache)."""
    client = RegistryClient(host)
    descriptor = Descriptor(CACHE_TYPE, Digest.of(blob), len(blob))
    client.push_blob(repo, EMPTY, lambda: io.BytesIO(b"{}"))
    client.push_blob(repo, descriptor, lambda: io.BytesIO(blob))
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": CACHE_TYPE,
        "config": EMPTY.to_json(),
        "layers": [descriptor.to_json()],
    }
    data = json.dumps(manifest).encode()
    client.push_manifest(repo, tag, "application/vnd.oci.image.manifest.v1+json", data)


def _cold(summary: dict[str, Any]) -> bool:
    return set(sources(summary).values()) == {"built"}


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if "warning" in line]


def test_a_corrupted_cache_is_one_warning_and_a_cold_build(
    plain_registry: RunningRegistry,
    runners: Runners,
    tmp_path: Path,
) -> None:
    host = plain_registry.host
    _push_artifact(host, "ci/bad-cache", "x", b'{"version": 1, "entries": {"k": {"digest": 7}}')
    runner = runners("r", 0)
    bad = f"docker://{host}/ci/bad-cache:x"
    out = f"oci:{tmp_path / 'o'}"
    code, summary, err = runner.build("--cache-from", bad, "--cache-to", bad, "-o", out)
    assert code == 0 and _cold(summary)
    assert len(_warnings(err)) == 1 and "damaged" in err
    # The writer replaced the damaged list: the cache works again.
    entries = read_cache(RegistryClient(host), parse_reference(bad)).entries
    assert {str(e.descriptor.digest) for e in entries.values()} == set(layer_digests(summary))
    # A tag that holds something else (here: an image) is never overwritten.
    image = f"docker://{host}/ci/not-a-cache:x"
    code, pushed, _ = runner.build("-o", image)
    code, _, err = runner.build("--cache-to", image, "-o", out)
    assert code == 0 and len(_warnings(err)) == 1 and "not a bale layer cache" in err
    head = httpx.head(
        f"http://{host}/v2/ci/not-a-cache/manifests/x",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert head.headers["Docker-Content-Digest"] == pushed["digest"]


def test_a_deleted_blob_is_a_miss(
    plain_registry: RunningRegistry,
    runners: Runners,
    tmp_path: Path,
) -> None:
    host = plain_registry.host
    cache = f"docker://{host}/ci/gone-cache:x"
    first = runners("r1", 0)
    code, one, _ = first.build("-o", f"oci:{tmp_path / 'one'}", "--cache-to", cache)
    deps = layer_digests(one)[0]
    deleted = httpx.delete(f"http://{host}/v2/ci/gone-cache/blobs/{deps}")
    assert deleted.status_code == 202
    assert httpx.head(f"http://{host}/v2/ci/gone-cache/blobs/{deps}").status_code == 404
    second = runners("r2", 3)
    code, two, err = second.build("-o", f"oci:{tmp_path / 'two'}", "--cache-from", cache)
    assert code == 0
    assert sources(two) == {"deps": "built", "app": "registry-cache"}
    assert two["digest"] == one["digest"]
    assert len(_warnings(err)) == 1 and deps in err


def test_a_registry_that_is_down_is_one_warning(
    runners: Runners,
    tmp_path: Path,
) -> None:
    down = f"docker://127.0.0.1:{free_port()}/ci/cache:x"
    runner = runners("r", 0)
    out = f"oci:{tmp_path / 'o'}"
    code, summary, err = runner.build("--cache-from", down, "--cache-to", down, "-o", out)
    assert code == 0 and _cold(summary)
    assert len(_warnings(err)) == 2  # one for reading, one for writing
    assert all("registry cache" in line for line in _warnings(err))


def test_a_registry_that_refuses_us_is_one_warning(
    tls_registry: RunningRegistry,
    runners: Runners,
    tmp_path: Path,
) -> None:
    runners.monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "no-credentials"))
    runner = runners("r", 0)
    cache = f"docker://{tls_registry.host}/ci/cache:x"
    ca = ["--ca-cert", str(tls_registry.ca_path)]
    code, summary, err = runner.build(*ca, "--cache-from", cache, "-o", f"oci:{tmp_path}/o")
    assert code == 0 and _cold(summary)
    assert len(_warnings(err)) == 1 and "registry cache" in err


def test_concurrent_writers_keep_each_others_entries(plain_registry: RunningRegistry) -> None:
    """Six writers of one tag at once (a CI matrix sharing a cache tag): no entry is lost."""
    ref = parse_reference(f"{plain_registry.host}/ci/shared-cache:matrix")
    layer = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", EMPTY.digest, 2)
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def writer(number: int) -> None:
        client = RegistryClient(plain_registry.host, options=RegistryOptions())
        entry = CacheEntry(layer, EMPTY.digest, "linux/amd64", number)
        entries = {f"job{number}-{i}": entry for i in range(3)}
        start.wait()
        try:
            write_cache(client, ref, entries, 100)
        except BaseException as exc:  # reported below, with the entries
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    found = read_cache(RegistryClient(plain_registry.host), ref).entries
    assert sorted(found) == sorted(f"job{n}-{i}" for n in range(6) for i in range(3))


def test_the_cache_stays_within_its_limit(plain_registry: RunningRegistry) -> None:
    ref = parse_reference(f"{plain_registry.host}/ci/bounded-cache:x")
    client = RegistryClient(plain_registry.host)
    layer = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", EMPTY.digest, 2)
    for written in range(1, 6):
        entry = CacheEntry(layer, EMPTY.digest, "linux/amd64", written)
        assert write_cache(client, ref, {f"k{written}": entry}, 3) == min(written, 3)
    assert sorted(read_cache(client, ref).entries) == ["k3", "k4", "k5"]


def test_layers_cached_before_a_registry_cache_was_named_are_published(
    plain_registry: RunningRegistry,
    runners: Runners,
    tmp_path: Path,
    compressed: list[str],
) -> None:
    """A runner with a kept cache directory: its stat records carry no content key yet."""
    runner = runners("kept", 0)
    future = LayerCache(runner.cache, lambda: time.time_ns() + 10**10)  # nothing is racy
    spec = runner.context / "image.toml"
    layout = parse_output(f"oci:{tmp_path / 'out'}")
    build(BuildOptions(spec_path=spec, outputs=(layout,), cache=future))
    cache = parse_reference(f"{plain_registry.host}/ci/kept-cache:x")
    with Clients() as clients:
        options = BuildOptions(
            spec_path=spec, outputs=(layout,), cache=future, cache_to=(cache,), clients=clients
        )
        result = build(options)
    assert [layer.source for layer in result.images[0].layers] == ["local-cache"] * 2
    assert len(compressed) == 2  # the first build only
    published = read_cache(RegistryClient(plain_registry.host), cache).entries
    assert {e.descriptor.digest for e in published.values()} == {
        layer.descriptor.digest for layer in result.images[0].layers
    }
    fresh = runners("fresh", 11)
    code, summary, _ = fresh.build(
        "-o", f"oci:{tmp_path / 'o2'}", "--cache-from", f"docker://{cache}"
    )
    assert code == 0 and set(sources(summary).values()) == {"registry-cache"}
    assert summary["digest"] == str(result.root.digest)


TAR_SPEC = """
[image]
created = "2024-01-01T00:00:00Z"
[[layers]]
name = "rootfs"
tar = "rootfs.tar"
[[layers]]
name = "app"
files = [{ src = "app/", dst = "/opt/app/" }]
"""


def rootfs_tar(motd: bytes) -> bytes:
    """An uncompressed tarball: a directory, some incompressible noise and a small file."""
    noise = random.Random(13).randbytes(200_000)
    return plain_tar({"srv/noise.bin": noise, "srv/motd": motd}, dirs=("srv",))


@pytest.fixture(scope="module")
def tar_origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkout whose first layer is a gzip'd tarball."""
    root = tmp_path_factory.mktemp("tar-origin")
    (root / "image.toml").write_text(TAR_SPEC)
    (root / "rootfs.tar").write_bytes(gzip.compress(rootfs_tar(b"hello\n"), mtime=0))
    (root / "app").mkdir()
    (root / "app" / "main.txt").write_text("main\n" * 1000)
    return root


def test_a_tarball_layer_is_shared_by_the_hash_of_its_members(
    plain_registry: RunningRegistry,
    runners: Runners,
    tar_origin: Path,
    tmp_path: Path,
    compressed: list[str],
) -> None:
    """Runner 2 takes the tarball's layer from the registry; a recompressed tarball (same
    members) still hits; a changed member is a miss that rebuilds that layer alone."""
    host = plain_registry.host
    cache, target = f"docker://{host}/ci/tar-cache:x", f"docker://{host}/ci/tar-app:x"
    first = runners("r1", 0, tar_origin)
    code, one, err = first.build("-o", target, "--cache-to", cache)
    assert code == 0, err
    assert sources(one) == {"rootfs": "built", "app": "built"} and len(compressed) == 2

    mark = len(plain_registry.log())
    second = runners("r2", 86_400 * 365 + 3, tar_origin)
    code, two, err = second.build("-o", target, "--cache-from", cache)
    assert code == 0, err
    assert sources(two) == {"rootfs": "registry-cache", "app": "registry-cache"}
    assert len(compressed) == 2 and two["digest"] == one["digest"]
    assert not uploaded_digests(plain_registry.log()[mark:]) & set(layer_digests(one))

    third = runners("r3", 5, tar_origin)
    (third.context / "rootfs.tar").write_bytes(lzma.compress(rootfs_tar(b"hello\n")))
    code, three, _ = third.build("-o", f"oci:{tmp_path / 'o3'}", "--cache-from", cache)
    assert sources(three)["rootfs"] == "registry-cache" and three["digest"] == one["digest"]
    assert len(compressed) == 2
    # The download went into runner 3's local cache, where a rebuild finds it by stat key
    # (the app layer's files, copied just now, are too fresh for a stat record: racy).
    code, again, _ = third.build("-o", f"oci:{tmp_path / 'o3'}")
    assert sources(again)["rootfs"] == "local-cache" and again["digest"] == one["digest"]

    built = len(compressed)
    fourth = runners("r4", 7, tar_origin)
    (fourth.context / "rootfs.tar").write_bytes(gzip.compress(rootfs_tar(b"hellO\n"), mtime=0))
    code, four, _ = fourth.build("-o", f"oci:{tmp_path / 'o4'}", "--cache-from", cache)
    assert sources(four) == {"rootfs": "built", "app": "registry-cache"}
    assert compressed[built:] == ["bale: layer rootfs"]
    assert layer_digests(four)[0] != layer_digests(one)[0]
    assert layer_digests(four)[1] == layer_digests(one)[1]


OCI_ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every context file the SBOM opened (``HostFile.open``: a layer build and the content
    key read files by their own descriptors)."""
    paths: list[str] = []
    real = HostFile.open

    def counting(self: HostFile) -> Any:
        paths.append(self.path)
        return real(self)

    monkeypatch.setattr(HostFile, "open", counting)
    return paths


def _manifest(host: str, repo: str, reference: str) -> dict[str, Any]:
    answer = httpx.get(f"http://{host}/v2/{repo}/manifests/{reference}", headers=OCI_ACCEPT)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def _blob(host: str, repo: str, digest: str) -> bytes:
    answer = httpx.get(f"http://{host}/v2/{repo}/blobs/{digest}")
    assert answer.status_code == 200
    return answer.content


def _spdx(host: str, repo: str, summary: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The SPDX SBOM the build pushed: its manifest digest and its document."""
    (found,) = [r for r in summary["referrers"] if r["artifactType"] == "application/spdx+json"]
    manifest = _manifest(host, repo, found["digest"])
    return found["digest"], json.loads(_blob(host, repo, manifest["layers"][0]["digest"]))


def _in(context: Path, paths: list[str]) -> list[str]:
    return [p for p in paths if Path(p).is_relative_to(context)]


def test_a_hit_brings_the_sboms_file_hashes_and_reads_no_file(
    plain_registry: RunningRegistry, runners: Runners, opened: list[str]
) -> None:
    """Runner 2 (fresh clone, empty cache, SBOM on, another label: another image, so
    the SBOM is made anew) takes the file hashes of each layer from the cache: its
    SBOM opens none of the layers' files, and lists them as runner 1's did."""
    host = plain_registry.host
    cache = f"docker://{host}/ci/sbom-cache:x"
    first = runners("r1", 0)
    code, one, err = first.build("-o", f"docker://{host}/ci/sbom-one:x", "--cache-to", cache)
    assert code == 0, err
    # A built layer's files are hashed for the SBOM as they are written, never reopened;
    # a hit without a usable record reopens all 45 (test_a_bad_file_hashes_record_costs_the_hashing_only).
    assert _in(first.context, opened) == []

    manifest = _manifest(host, "ci/sbom-cache", "x")
    blob = json.loads(_blob(host, "ci/sbom-cache", manifest["layers"][0]["digest"]))
    entries = blob["entries"].values()
    records = {e["files"]["digest"] for e in entries}
    assert {e["files"]["mediaType"] for e in entries} == {RECORD_TYPE}
    assert len(records) == 2
    # The manifest lists every blob the entries name, so a registry's GC keeps them.
    listed = {d["digest"] for d in manifest["layers"][1:]}
    documents = {d["digest"] for d in blob["documents"].values()}
    assert listed == set(layer_digests(one)) | records | documents
    for record in records:  # each record names the files of its layer with their sha256
        rows = json.loads(_blob(host, "ci/sbom-cache", record))
        some = next(iter(rows))
        source = first.context / Path(some).relative_to("opt")
        assert rows[some][0] == hashlib.sha256(source.read_bytes()).hexdigest()

    second = runners("r2", 86_400 * 365 + 3)
    _relabel(second.context / "image.toml")
    code, two, err = second.build("-o", f"docker://{host}/ci/sbom-two:x", "--cache-from", cache)
    assert code == 0, err
    assert sources(two) == {"deps": "registry-cache", "app": "registry-cache"}
    assert _in(second.context, opened) == []
    assert two["digest"] != one["digest"]
    _, sbom_one = _spdx(host, "ci/sbom-one", one)
    _, sbom_two = _spdx(host, "ci/sbom-two", two)
    assert sbom_two["files"] == sbom_one["files"]
    checksums = {c["checksumValue"] for f in sbom_one["files"] for c in f["checksums"]}
    some = next(iter((second.context / "app").rglob("*.txt")))
    assert hashlib.sha256(some.read_bytes()).hexdigest() in checksums


def _relabel(spec: Path) -> None:
    """Another image of the same layers: another config, so another manifest."""
    spec.write_text(spec.read_text() + '[config]\nlabels = { runner = "two" }\n')


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every SPDX document bale writes (not one it takes from a cache)."""
    made: list[str] = []
    kind, write = sbom.WRITERS["spdx"]

    def counting(inventory: Any) -> bytes:
        made.append(inventory.image.name)
        return write(inventory)

    monkeypatch.setitem(sbom.WRITERS, "spdx", (kind, counting))
    return made


def test_a_whole_image_hit_takes_its_sbom_from_the_cache(
    plain_registry: RunningRegistry, runners: Runners, opened: list[str], written: list[str]
) -> None:
    """The same image on runner 2 has the same SBOM: taken from the cache (mounted, not
    sent), not made; another image of the same layers gets an SBOM of its own."""
    host = plain_registry.host
    cache = f"docker://{host}/ci/memo-cache:x"
    first = runners("r1", 0)
    code, one, err = first.build("-o", f"docker://{host}/ci/memo-one:x", "--cache-to", cache)
    assert code == 0, err
    digest_one, sbom_one = _spdx(host, "ci/memo-one", one)
    document = _manifest(host, "ci/memo-one", digest_one)["layers"][0]
    kept = read_cache(RegistryClient(host), parse_reference(cache)).documents
    assert [d.descriptor.digest for d in kept.values()] == [Digest.parse(document["digest"])]
    assert len(written) == 1

    mark = len(plain_registry.log())
    second = runners("r2", 86_400 * 365 + 3)
    code, two, err = second.build("-o", f"docker://{host}/ci/memo-two:x", "--cache-from", cache)
    assert code == 0, err
    assert len(written) == 1  # runner 2 wrote no SBOM
    assert two["digest"] == one["digest"] and _in(second.context, opened) == []
    digest_two, sbom_two = _spdx(host, "ci/memo-two", two)
    assert digest_two == digest_one and sbom_two == sbom_one
    log = plain_registry.log()[mark:]
    assert document["digest"] not in uploaded_digests(log)
    assert f"mount={document['digest']}" in log
    records = [
        e.files.digest
        for e in read_cache(RegistryClient(host), parse_reference(cache)).entries.values()
        if e.files
    ]
    assert len(records) == 2
    assert not any(f"GET /v2/ci/memo-cache/blobs/{r}" in log for r in records)  # not needed

    third = runners("r3", 5)
    _relabel(third.context / "image.toml")
    code, three, err = third.build("-o", f"docker://{host}/ci/memo-three:x", "--cache-from", cache)
    assert code == 0, err
    assert sources(three) == {"deps": "registry-cache", "app": "registry-cache"}
    assert len(written) == 2 and three["digest"] != one["digest"]


def test_a_hit_passes_its_record_and_sbom_on_to_another_cache_by_mount(
    plain_registry: RunningRegistry, runners: Runners, written: list[str]
) -> None:
    """Runner 2 takes everything from cache A (its SBOM whole, so no record is fetched)
    and writes cache B in another repository: B names the same records and SBOM, the
    records mounted from A (never downloaded) and the SBOM from runner 2's push; none
    is sent."""
    host = plain_registry.host
    first = runners("r1", 0)
    code, one, err = first.build(
        "-o", f"docker://{host}/ci/pass-one:x", "--cache-to", f"docker://{host}/ci/pass-a:x"
    )
    assert code == 0, err
    a = read_cache(RegistryClient(host), parse_reference(f"{host}/ci/pass-a:x"))
    records = {str(e.files.digest) for e in a.entries.values() if e.files}
    (document,) = [str(d.descriptor.digest) for d in a.documents.values()]
    assert len(records) == 2

    mark = len(plain_registry.log())
    second = runners("r2", 5)
    code, two, err = second.build(
        "-o",
        f"docker://{host}/ci/pass-two:x",
        "--cache-from",
        f"docker://{host}/ci/pass-a:x",
        "--cache-to",
        f"docker://{host}/ci/pass-b:x",
    )
    assert code == 0, err
    assert len(written) == 1 and two["digest"] == one["digest"]
    b = read_cache(RegistryClient(host), parse_reference(f"{host}/ci/pass-b:x"))
    assert {str(e.files.digest) for e in b.entries.values() if e.files} == records
    assert [str(d.descriptor.digest) for d in b.documents.values()] == [document]
    log = plain_registry.log()[mark:]
    for digest, home in [*((r, "ci/pass-a") for r in records), (document, "ci/pass-two")]:
        mounts = [line for line in log.splitlines() if f"mount={digest}" in line]
        assert any("/v2/ci/pass-b/" in line and f"from={home}" in line for line in mounts)
    assert not any(f"GET /v2/ci/pass-a/blobs/{r}" in log for r in records)
    assert not uploaded_digests(log) & {*records, document}


def test_a_kept_sbom_that_is_gone_is_made_again(
    plain_registry: RunningRegistry, runners: Runners, written: list[str]
) -> None:
    """A document whose blob is gone (or another version's) costs the making and one warning."""
    host = plain_registry.host
    repo = "ci/memo-gone"
    cache = f"docker://{host}/{repo}:x"
    first = runners("r1", 0)
    code, one, err = first.build("-o", f"docker://{host}/{repo}-one:x", "--cache-to", cache)
    assert code == 0, err
    artifact = read_cache(RegistryClient(host), parse_reference(cache))
    (key, document) = next(iter(artifact.documents.items()))
    gone = Descriptor(document.descriptor.media_type, Digest.of(b"nowhere"), 7)
    _rewrite(
        host,
        repo,
        "x",
        dict(artifact.entries),
        {key: dataclasses.replace(document, descriptor=gone)},
    )

    second = runners("r2", 5)
    code, two, err = second.build("-o", f"docker://{host}/{repo}-two:x", "--cache-from", cache)
    assert code == 0, err
    assert sources(two) == {"deps": "registry-cache", "app": "registry-cache"}
    assert len(written) == 2
    warned = _warnings(err)
    assert len(warned) == 1 and "SBOM" in warned[0]
    assert _spdx(host, f"{repo}-two", two)[0] == _spdx(host, f"{repo}-one", one)[0]


def _rewrite(
    host: str,
    repo: str,
    tag: str,
    entries: dict[str, CacheEntry],
    documents: dict[str, CachedDocument] | None = None,
) -> None:
    """A cache tag holding ``entries`` (and ``documents``), its manifest listing only the
    cache blob."""
    blob, _ = encode(entries, documents)
    _push_artifact(host, repo, tag, blob)


@pytest.mark.parametrize(
    "damage", ["garbage", "nested", "wrong-size", "oversized", "missing", "version"]
)
def test_a_bad_file_hashes_record_costs_the_hashing_only(
    plain_registry: RunningRegistry, runners: Runners, opened: list[str], damage: str
) -> None:
    host = plain_registry.host
    repo = f"ci/bad-record-{damage}"
    cache = f"docker://{host}/{repo}:x"
    first = runners("r1", 0)
    code, one, err = first.build("-o", f"docker://{host}/{repo}-one:x", "--cache-to", cache)
    assert code == 0, err
    client = RegistryClient(host)
    garbage = b"[" * 100_000 + b"]" * 100_000 if damage == "nested" else b"not a record"
    client.push_blob(
        repo, Descriptor(RECORD_TYPE, Digest.of(garbage), len(garbage)), lambda: io.BytesIO(garbage)
    )
    bad = {
        "garbage": Descriptor(RECORD_TYPE, Digest.of(garbage), len(garbage)),
        "nested": Descriptor(RECORD_TYPE, Digest.of(garbage), len(garbage)),
        "wrong-size": Descriptor(RECORD_TYPE, Digest.of(garbage), len(garbage) + 5),
        "oversized": Descriptor(RECORD_TYPE, Digest.of(garbage), (64 << 20) + 1),
        "missing": Descriptor(RECORD_TYPE, Digest.of(b"nowhere"), 7),
        "version": Descriptor(RECORD_TYPE.replace(".v", ".v9"), Digest.of(garbage), 12),
    }[damage]
    entries = read_cache(client, parse_reference(cache)).entries
    _rewrite(host, repo, "x", {k: dataclasses.replace(e, files=bad) for k, e in entries.items()})

    second = runners("r2", 5)
    code, two, err = second.build("-o", f"docker://{host}/{repo}-two:x", "--cache-from", cache)
    assert code == 0, err
    assert sources(two) == {"deps": "registry-cache", "app": "registry-cache"}
    assert len(_in(second.context, opened)) == 45  # every file hashed for the SBOM, once
    warned = _warnings(err)
    assert len(warned) == 1 and "file-hashes record" in warned[0]
    assert two["digest"] == one["digest"]
    assert _spdx(host, f"{repo}-two", two)[0] == _spdx(host, f"{repo}-one", one)[0]


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[RunningRegistry]:
    """A registry of this test's own, whose garbage collection touches no other test's blobs."""
    (tmp_path / "registry").mkdir()
    yield from registry_fixtures.plain_registry(tmp_path / "registry")


def test_the_registrys_garbage_collection_keeps_the_cached_blobs(
    own_registry: RunningRegistry, runners: Runners, tmp_path: Path
) -> None:
    """Layers pushed only to the cache (an OCI layout output) survive the registry's own
    garbage-collect; a listed blob deleted anyway is dropped from the cache on the next write."""
    host = own_registry.host
    repo = "ci/gc-cache"
    first = runners("r1", 0)
    code, one, err = first.build(
        "-o", f"oci:{tmp_path / 'o'}", "--cache-to", f"docker://{host}/{repo}:x"
    )
    assert code == 0, err
    listed = [d["digest"] for d in _manifest(host, repo, "x")["layers"]]
    assert len(listed) == 1 + 2 + 2 + 1  # the cache blob, two layers, two records, the SBOM
    config = own_registry.log_path.parent / "config.yml"
    collected = subprocess.run(
        [require_tool("docker-registry"), "garbage-collect", str(config)],
        capture_output=True,
        text=True,
    )
    assert collected.returncode == 0, collected.stderr
    for digest in listed:
        assert httpx.head(f"http://{host}/v2/{repo}/blobs/{digest}").status_code == 200

    deps = layer_digests(one)[0]
    client = RegistryClient(host)
    ref = parse_reference(f"{host}/{repo}:x")
    (document,) = read_cache(client, ref).documents.values()
    for digest in (deps, document.descriptor.digest):
        assert httpx.delete(f"http://{host}/v2/{repo}/blobs/{digest}").status_code == 202
    layer = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", EMPTY.digest, 2)
    assert (
        write_cache(client, ref, {"new": CacheEntry(layer, EMPTY.digest, "linux/amd64", 1)}, 10)
        == 2
    )
    kept = read_cache(client, ref)
    assert sorted(str(e.descriptor.digest) for e in kept.entries.values()) == sorted(
        [str(EMPTY.digest), layer_digests(one)[1]]
    )
    assert kept.documents == {}


def test_a_hit_pushed_without_download_is_noted_for_the_next_build(
    plain_registry: RunningRegistry, runners: Runners, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner that keeps its cache directory: the second build of the same checkout
    hashes no file and does not read the cache's entries, only checks the blob is there."""
    host = plain_registry.host
    cache = parse_reference(f"{host}/ci/noted-cache:x")
    first = runners("r1", 0)
    code, one, err = first.build(
        "-o", f"docker://{host}/ci/noted:one", "--cache-to", f"docker://{cache}"
    )
    assert code == 0, err
    hashed: list[int] = []
    real = layersource.hash_host_files

    def counting(entries: Any) -> dict[str, str]:
        hashed.append(1)
        return real(entries)

    monkeypatch.setattr(layersource, "hash_host_files", counting)
    second = runners("r2", 5)
    future = LayerCache(second.cache, lambda: time.time_ns() + 10**10)  # nothing is racy
    output = parse_output(f"docker://{host}/ci/noted:two")
    spec = second.context / "image.toml"
    results = []
    for _ in range(2):
        mark = len(plain_registry.log())
        with Clients() as clients:
            options = BuildOptions(
                spec_path=spec,
                outputs=(output,),
                cache=future,
                cache_from=(cache,),
                clients=clients,
            )
            results.append(build(options))
        log = plain_registry.log()[mark:]
    assert len(hashed) == 2  # the first build only: one per layer
    assert "GET /v2/ci/noted-cache/manifests/x" not in log
    assert [x.source for x in results[1].images[0].layers] == ["registry-cache"] * 2
    assert str(results[1].root.digest) == one["digest"] == str(results[0].root.digest)
    assert len(list((second.cache / "content-keys").glob("*.json"))) == 2


def test_an_entry_rewritten_without_the_sbom_keeps_its_record(
    plain_registry: RunningRegistry, runners: Runners, opened: list[str]
) -> None:
    """A --no-sbom job refreshing the cache keeps the records an SBOM job published."""
    host = plain_registry.host
    cache = f"docker://{host}/ci/kept-record:x"
    first = runners("r1", 0)
    code, _, err = first.build("-o", f"docker://{host}/ci/kept-app:one", "--cache-to", cache)
    assert code == 0, err
    client, ref = RegistryClient(host), parse_reference(cache)
    before = {k: (e.files, e.written) for k, e in read_cache(client, ref).entries.items()}
    assert all(files is not None for files, _ in before.values())
    time.sleep(1.1)  # a later second, so the rewrite shows in ``written``
    plain = runners("r2", 3)
    flags = ("--no-sbom", "--no-provenance", "--cache-from", cache, "--cache-to", cache)
    code, two, err = plain.build("-o", f"docker://{host}/ci/kept-app:two", *flags)
    assert code == 0 and set(sources(two).values()) == {"registry-cache"}, err
    after = read_cache(client, ref).entries
    assert {k: e.files for k, e in after.items()} == {k: f for k, (f, _) in before.items()}
    assert all(after[k].written > written for k, (_, written) in before.items())

    third = runners("r3", 7)  # and the record still spares an SBOM job the hashing
    code, _, err = third.build("-o", f"docker://{host}/ci/kept-app:three", "--cache-from", cache)
    assert code == 0 and _in(third.context, opened) == [], err


TWO_PLATFORMS = """
[image]
created = "2024-01-01T00:00:00Z"
platforms = ["linux/amd64", "linux/arm64"]
[[layers]]
name = "deps"
files = [{ src = "deps/", dst = "/opt/deps/" }]
[[layers]]
name = "app-amd64"
platforms = ["linux/amd64"]
files = [{ src = "app/", dst = "/opt/app/" }]
[[layers]]
name = "app-arm64"
platforms = ["linux/arm64"]
files = [{ src = "app/", dst = "/opt/arm/" }]
"""


def _counted_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The reference of each read of a ``--cache-from`` cache's entry list."""
    reads: list[str] = []
    real = registry_layercache.read_cache

    def counting(client: RegistryClient, ref: Any) -> Any:
        reads.append(str(ref))
        return real(client, ref)

    monkeypatch.setattr(registry_layercache, "read_cache", counting)
    return reads


def _two_platform_origin(origin: Path, target: Path) -> Path:
    """``origin`` with a spec of two platforms, each with a layer of its own."""
    shutil.copytree(origin, target)
    (target / "image.toml").write_text(TWO_PLATFORMS)
    return target


def test_two_platforms_read_the_cache_once(
    plain_registry: RunningRegistry,
    runners: Runners,
    tmp_path: Path,
    origin: Path,
) -> None:
    """The platforms look their layers up at once: the entry list is read once for all."""
    two = _two_platform_origin(origin, tmp_path / "two-origin")
    cache = f"docker://{plain_registry.host}/ci/two-cache:x"
    first = runners("r1", 0, two)
    code, one, _ = first.build("-o", f"oci:{tmp_path / 'one'}", "--cache-to", cache)
    assert code == 0
    reads = _counted_reads(runners.monkeypatch)
    second = runners("r2", 5, two)
    code, two_summary, err = second.build("-o", f"oci:{tmp_path / 'two'}", "--cache-from", cache)
    assert code == 0 and not _warnings(err)
    assert reads == [cache.removeprefix("docker://")]
    assert len(two_summary["images"]) == 2
    for image in two_summary["images"]:
        assert {layer["source"] for layer in image["layers"]} == {"registry-cache"}
    assert two_summary["digest"] == one["digest"]


def test_a_failing_cache_read_with_two_platforms_is_one_warning(
    plain_registry: RunningRegistry,
    runners: Runners,
    tmp_path: Path,
    origin: Path,
) -> None:
    """A read that fails is not tried again by the other platform; both build cold."""
    reads: list[str] = []

    def failing(client: RegistryClient, ref: Any) -> Any:
        reads.append(str(ref))
        raise registry_layercache.CacheFormatError(f"{ref} refused by this test")

    runners.monkeypatch.setattr(registry_layercache, "read_cache", failing)
    two = _two_platform_origin(origin, tmp_path / "two-origin")
    cache = f"docker://{plain_registry.host}/ci/failing-cache:x"
    runner = runners("r", 0, two)
    code, summary, err = runner.build("-o", f"oci:{tmp_path / 'o'}", "--cache-from", cache)
    assert code == 0 and len(reads) == 1
    for image in summary["images"]:
        assert {layer["source"] for layer in image["layers"]} == {"built"}
    warned = _warnings(err)
    assert len(warned) == 1 and "not used:" in err and "refused by this test" in err
