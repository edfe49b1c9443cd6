"""Reference parsing and normalisation, checked against Docker's behaviour."""

from __future__ import annotations

import pytest

from builder.errors import InvalidReference
from builder.model import Digest
from builder.reference import Reference, parse_reference

D = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("alpine", "docker.io", "library/alpine", None, None),
        ("alpine:3.20", "docker.io", "library/alpine", "3.20", None),
        ("docker://alpine:3.20", "docker.io", "library/alpine", "3.20", None),
        ("user/app", "docker.io", "user/app", None, None),
        ("docker.io/alpine", "docker.io", "library/alpine", None, None),
        ("index.docker.io/alpine", "docker.io", "library/alpine", None, None),
        ("registry-1.docker.io/x/y", "docker.io", "x/y", None, None),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/app:v1", "localhost:5000", "app", "v1", None),
        ("127.0.0.1:5000/a/b/c", "127.0.0.1:5000", "a/b/c", None, None),
        ("[::1]:5000/app", "[::1]:5000", "app", None, None),
        ("ghcr.io/o/app@" + D, "ghcr.io", "o/app", None, D),
        ("ghcr.io/o/app:t@" + D, "ghcr.io", "o/app", "t", D),
        ("quay.io/a-b/c__d.e:T_1.x-y", "quay.io", "a-b/c__d.e", "T_1.x-y", None),
        ("Registry/app", "Registry", "app", None, None),
    ],
)
def test_parse(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_reference(text)
    assert ref == Reference(registry, repository, tag, Digest.parse(digest) if digest else None)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "empty"),
        ("Alpine", "lowercase"),
        ("ghcr.io/Owner/app", "lowercase"),
        ("a//b", "empty path component"),
        ("app-", "invalid repository name component 'app-'"),
        ("app:-x", "invalid tag '-x'"),
        ("app:" + "x" * 129, "invalid tag"),
        ("app:", "invalid tag ''"),
        ("app@sha256:abc", "invalid digest"),
        ("app@md5", "invalid digest"),
        ("ex$ample.com/app", "invalid registry host"),
        ("ghcr.io/", "missing repository"),
        ("a/" + "b" * 260, "longer than 255"),
    ],
)
def test_parse_errors(text: str, needle: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference(text)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("text", "shown", "api_host", "manifest_ref"),
    [
        ("alpine", "docker.io/library/alpine", "registry-1.docker.io", "latest"),
        ("localhost:5000/a:v1", "localhost:5000/a:v1", "localhost:5000", "v1"),
        ("ghcr.io/o/a:t@" + D, f"ghcr.io/o/a:t@{D}", "ghcr.io", D),
    ],
)
def test_rendering(text: str, shown: str, api_host: str, manifest_ref: str) -> None:
    ref = parse_reference(text)
    assert str(ref) == shown
    assert ref.api_host == api_host
    assert ref.manifest_ref == manifest_ref
    assert ref.context() == f"{ref.registry}/{ref.repository}"


def test_with_tag_and_digest() -> None:
    ref = parse_reference("ghcr.io/o/a:t@" + D)
    assert str(ref.with_tag("v2")) == "ghcr.io/o/a:v2"
    assert str(parse_reference("ghcr.io/o/a").with_digest(D)) == f"ghcr.io/o/a@{D}"
    with pytest.raises(InvalidReference, match="invalid tag"):
        ref.with_tag("bad tag")
    with pytest.raises(InvalidReference, match="invalid digest"):
        ref.with_digest("sha256:nothex")


def test_round_trip() -> None:
    for text in ["docker.io/library/alpine:3", f"localhost:5000/x/y@{D}"]:
        assert str(parse_reference(text)) == text
