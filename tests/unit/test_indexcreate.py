"""Pure parts of ``bale index create``: annotations, platform clashes, the index document."""

from __future__ import annotations

import json

import pytest

from builder.cli.images import _annotations
from builder.commands.index import Member, check_platforms, make_index
from builder.errors import UsageError
from builder.image.assemble import index_of
from builder.model import DOCKER_MANIFEST, OCI_MANIFEST, Descriptor, Digest, Platform


@pytest.mark.parametrize(
    ("texts", "expected"),
    [
        ([], ()),
        (["a=1"], (("a", "1"),)),
        (["a=1", "b=x=y"], (("a", "1"), ("b", "x=y"))),
        (["a=1", "a=2"], (("a", "2"),)),
        (["a="], (("a", ""),)),
    ],
)
def test_annotations(texts: list[str], expected: tuple[tuple[str, str], ...]) -> None:
    assert _annotations(texts) == expected


@pytest.mark.parametrize("text", ["novalue", "=v", " =v"])
def test_bad_annotation(text: str) -> None:
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        _annotations([text])


def _member(source: str, platform: str, media_type: str = OCI_MANIFEST) -> Member:
    digest = Digest.of(source.encode())
    return Member(source, Platform.parse(platform), Descriptor(media_type, digest, 10), ())


@pytest.mark.parametrize(
    ("platforms", "clash"),
    [
        (["linux/amd64", "linux/arm64"], None),
        (["linux/arm/v6", "linux/arm/v7"], None),
        (["linux/amd64", "linux/x86_64"], "'s0' and 's1' are both linux/amd64"),
        (["linux/arm", "linux/arm/v7"], "'s0' and 's1' are both linux/arm/v7"),
        (["linux/arm64", "linux/amd64", "linux/arm64/v8"], "'s0' and 's2' are both linux/arm64"),
    ],
)
def test_check_platforms(platforms: list[str], clash: str | None) -> None:
    members = [_member(f"s{i}", p) for i, p in enumerate(platforms)]
    if clash is None:
        check_platforms(members)
        return
    with pytest.raises(UsageError, match=clash):
        check_platforms(members)


def test_make_index_is_index_of_in_order() -> None:
    members = [_member("b", "linux/arm64"), _member("a", "linux/amd64")]
    index = make_index(members, {"k": "v"}, "oci")
    entries = [(m.manifest, m.platform) for m in members]
    assert index == index_of(entries, {"k": "v"}, "oci")
    document = json.loads(index.data)
    assert [m["platform"]["architecture"] for m in document["manifests"]] == ["arm64", "amd64"]
    assert document["annotations"] == {"k": "v"}


@pytest.mark.parametrize(
    ("types", "annotations", "error"),
    [
        ([DOCKER_MANIFEST, DOCKER_MANIFEST], {}, None),
        ([DOCKER_MANIFEST, OCI_MANIFEST], {}, "not Docker: s1"),
        ([DOCKER_MANIFEST], {"k": "v"}, "no annotations"),
    ],
)
def test_docker_list(types: list[str], annotations: dict[str, str], error: str | None) -> None:
    archs = ["linux/amd64", "linux/arm64"]
    members = [_member(f"s{i}", archs[i], t) for i, t in enumerate(types)]
    if error is not None:
        with pytest.raises(UsageError, match=error):
            make_index(members, annotations, "docker")
        return
    document = json.loads(make_index(members, annotations, "docker").data)
    assert document["mediaType"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert "annotations" not in document
