"""``--output`` strings for the archive transports."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.errors import UsageError
from builder.spec.locations import Output, parse_output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("oci-archive:out.tar", Output("oci-archive", Path("out.tar"))),
        ("oci-archive:out.tar:v1", Output("oci-archive", Path("out.tar"), "v1")),
        ("docker-archive:d.tar", Output("docker-archive", Path("d.tar"))),
        ("docker-archive:d.tar:v1", Output("docker-archive", Path("d.tar"), "v1")),
        ("docker-archive:d.tar:app:v1", Output("docker-archive", Path("d.tar"), "v1", "app")),
        (
            "docker-archive:d.tar:localhost:5000/team/app:v1",
            Output("docker-archive", Path("d.tar"), "v1", "localhost:5000/team/app"),
        ),
        ("oci:dir:latest", Output("oci", Path("dir"), "latest")),
    ],
)
def test_parse_output(text: str, expected: Output) -> None:
    assert parse_output(text) == expected
    assert str(parse_output(text)) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tar:x", "unknown transport"),
        ("oci-archive:", "missing the path"),
        ("docker-archive:d.tar:App:v1", "not a repository name"),
    ],
)
def test_parse_output_errors(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_output(text)
