"""``[image] sbom`` and ``provenance`` in image.toml, and the CI allow-list."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import SpecError
from builder.spec.load import load
from builder.supply.ci import LOCAL_BUILDER, ci_context
from tests.helpers import write_toml

LAYER = '\n[[layers]]\ncontent = [{ dst = "/a", text = "a" }]\n'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ("spdx",)),
        ("true", ("spdx",)),
        ("false", ()),
        ('"cyclonedx"', ("cyclonedx",)),
        ('["cyclonedx", "spdx", "cyclonedx"]', ("cyclonedx", "spdx")),
    ],
)
def test_sbom_key(tmp_path: Path, value: str | None, expected: tuple[str, ...]) -> None:
    line = "" if value is None else f"sbom = {value}\n"
    spec = load(write_toml(tmp_path, f"[image]\n{line}" + LAYER))
    assert spec.sbom == expected
    assert spec.provenance is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('sbom = "swid"', "unknown SBOM format 'swid'"),
        ("sbom = []", "expected a format name or a list of them"),
        ("sbom = 3", "expected a format name or a list of them"),
        ('provenance = "yes"', "expected true or false"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        load(write_toml(tmp_path, f"[image]\n{text}\n" + LAYER))
    assert message in str(caught.value)
    assert "image.toml" in str(caught.value)


def test_ci_context_reads_only_its_allow_list() -> None:
    assert ci_context({"GITLAB_TOKEN": "x"}).builder_id == LOCAL_BUILDER
    gitlab = ci_context(
        {
            "GITLAB_CI": "true",
            "CI_SERVER_URL": "https://gitlab.example",
            "CI_PROJECT_PATH": "acme/app",
            "CI_RUNNER_ID": "7",
            "CI_JOB_URL": "https://gitlab.example/acme/app/-/jobs/9",
            "CI_PROJECT_URL": "https://gitlab.example/acme/app",
            "CI_COMMIT_SHA": "abc",
            "CI_JOB_TOKEN": "secret",
            "CI_PIPELINE_SOURCE": "push",
        }
    )
    assert gitlab.builder_id == "https://gitlab.example/acme/app/-/runners/7"
    assert gitlab.invocation_id == "https://gitlab.example/acme/app/-/jobs/9"
    assert gitlab.source == {
        "uri": "git+https://gitlab.example/acme/app",
        "digest": {"gitCommit": "abc"},
    }
    assert dict(gitlab.internal) == {"CI_PIPELINE_SOURCE": "push"}


def test_prune_ages_out_the_sbom_caches(tmp_path: Path) -> None:
    import os

    from builder.layer.cache import FILE_HASHES, LAYER_SCANS, prune

    old, new = tmp_path / FILE_HASHES / "a.json", tmp_path / LAYER_SCANS / "1-b.json"
    for path in (old, new):
        path.parent.mkdir(parents=True)
        path.write_text("{}")
    os.utime(old, (1_000, 1_000))
    prune(tmp_path, 86400)
    assert not old.exists() and new.exists()
    prune(tmp_path, None)
    assert not new.exists()


def test_verify_result_is_not_reproducible_when_an_artifact_differs() -> None:
    from builder.commands.verify import VerifyResult
    from builder.model import OCI_MANIFEST, Descriptor, Digest

    image = Descriptor(OCI_MANIFEST, Digest.of(b"m"), 1)
    same = (("application/spdx+json", "sha256:a"), ("application/vnd.in-toto+json", "sha256:b"))
    other = (same[0], ("application/vnd.in-toto+json", "sha256:c"))
    assert VerifyResult(image, image, (), same, same).reproducible
    changed = VerifyResult(image, image, (), same, other)
    assert not changed.reproducible
    assert changed.differing_artifacts == ["application/vnd.in-toto+json"]
    assert VerifyResult(image, image, (), same, same[:1]).differing_artifacts == [
        "application/spdx+json",
        "application/vnd.in-toto+json",
    ]
