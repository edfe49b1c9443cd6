"""Registry cache settings: image.toml's [cache], the flags and the environment, and merging."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.cli.main import main
from builder.errors import SpecError
from builder.model import Descriptor, Digest
from builder.reference import parse_reference
from builder.registry.layercache import CachedDocument, CacheEntry, encode, merged, parse_cache
from builder.spec.load import load
from tests.helpers import write_toml

LAYER = '[[layers]]\ncontent = [{ dst = "/a", text = "a" }]\n'


def test_cache_table_is_read_and_tags_default(tmp_path: Path) -> None:
    spec = load(
        write_toml(
            tmp_path,
            '[cache]\nfrom = ["docker://reg.example/app/cache", "reg.example/app/cache:pr"]\n'
            'to = ["reg.example/app/cache:main"]\nmax_entries = 50\n' + LAYER,
        )
    )
    assert [str(r) for r in spec.cache.sources] == [
        "reg.example/app/cache:bale-cache",
        "reg.example/app/cache:pr",
    ]
    assert [str(r) for r in spec.cache.targets] == ["reg.example/app/cache:main"]
    assert spec.cache.max_entries == 50


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('from = ["reg.example/a@sha256:' + "0" * 64 + '"]', "pins a digest"),
        ('to = ["Bad Name"]', "cache.to[0]"),
        ("max_entries = 0", "1 or more"),
        ("size = 3", "unknown key 'size'"),
    ],
)
def test_bad_cache_table_says_where(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load(write_toml(tmp_path, f"[cache]\n{table}\n" + LAYER))


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--cache-from", "reg.example/Upper"], {}, "--cache-from"),
        (["--cache-max-entries", "0"], {}, "--cache-max-entries"),
        ([], {"BALE_CACHE_TO": "ok.example/a, Bad/Name"}, "BALE_CACHE_TO"),
        ([], {"BALE_CACHE_MAX_ENTRIES": "many"}, "BALE_CACHE_MAX_ENTRIES"),
    ],
)
def test_bad_flags_and_environment_are_usage_errors(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = write_toml(tmp_path, LAYER)
    assert main(["build", "-f", str(spec), "-o", f"oci:{tmp_path / 'o'}", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_merge_keeps_the_newest_within_the_limit() -> None:
    layer = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", Digest.of(b"x"), 1)
    old = {f"k{n}": CacheEntry(layer, Digest.of(b"y"), "linux/amd64", n) for n in range(5)}
    new = {"k0": CacheEntry(layer, Digest.of(b"y"), "linux/amd64", 9)}
    assert sorted(merged(old, new, 3)) == ["k0", "k3", "k4"]
    assert merged(old, new, 3)["k0"].written == 9


SPDX = "application/spdx+json"


def test_a_cache_without_documents_is_written_as_before_and_read_back() -> None:
    """No ``documents`` key unless there are some (older bales read the same bytes)."""
    layer = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", Digest.of(b"x"), 1)
    entries = {"k": CacheEntry(layer, Digest.of(b"y"), "linux/amd64", 3)}
    blob, _ = encode(entries)
    assert b"documents" not in blob
    ref = parse_reference("localhost:5000/c:x")
    assert parse_cache(blob, ref) == (entries, {})

    document = CachedDocument(Descriptor(SPDX, Digest.of(b"sbom"), 4), 5)
    blob, manifest = encode(entries, {"spdx-1": document})
    assert parse_cache(blob, ref) == (entries, {"spdx-1": document})
    listed = [d["digest"] for d in json.loads(manifest)["layers"][1:]]
    assert str(document.descriptor.digest) in listed  # kept by the registry's GC


@pytest.mark.parametrize(
    "documents",
    [
        "not a map",
        {"a": "not a descriptor"},
        {"a": {"mediaType": SPDX, "digest": "sha256:nothex", "size": 4}},
        {"a": {"mediaType": SPDX, "digest": str(Digest.of(b"s")), "size": 1, "written": "x"}},
        {"a": {"mediaType": SPDX, "digest": str(Digest.of(b"s")), "size": (64 << 20) + 1}},
    ],
)
def test_a_document_that_cannot_be_read_is_dropped_not_the_cache(documents: object) -> None:
    layer = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", Digest.of(b"x"), 1)
    entries = {"k": CacheEntry(layer, Digest.of(b"y"), "linux/amd64", 3)}
    blob = json.loads(encode(entries)[0])
    blob["documents"] = documents
    found = parse_cache(json.dumps(blob).encode(), parse_reference("localhost:5000/c:x"))
    assert found == (entries, {})


def test_documents_merge_newest_first_within_the_limit() -> None:
    kept = {
        f"d{n}": CachedDocument(Descriptor(SPDX, Digest.of(bytes([n])), 1), n) for n in range(4)
    }
    newer = {"d0": CachedDocument(Descriptor(SPDX, Digest.of(b"z"), 1), 9)}
    assert sorted(merged(kept, newer, 2)) == ["d0", "d3"]
