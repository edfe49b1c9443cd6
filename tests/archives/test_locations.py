"""One grammar for image locations: the same string means the same image in every command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.cli.main import main
from builder.errors import UsageError
from builder.spec.load import parse_base
from builder.spec.locations import Location, parse_location, parse_output

CTX = Path("/ctx")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("oci:dir", Location("oci", Path("dir"))),
        ("oci:dir:v1", Location("oci", Path("dir"), "v1")),
        ("oci-archive:o.tar:1.0", Location("oci-archive", Path("o.tar"), "1.0")),
        ("docker-archive:d.tar:v1", Location("docker-archive", Path("d.tar"), "v1")),
        (
            "docker-archive:d.tar:localhost:5000/a/b:v1",
            Location("docker-archive", Path("d.tar"), "v1", "localhost:5000/a/b"),
        ),
        ("docker://alpine:3.20", Location("docker", Path(), "3.20", "docker.io/library/alpine")),
    ],
)
def test_one_parse_for_outputs_bases_and_sources(text: str, expected: Location) -> None:
    assert parse_location(text) == expected
    assert parse_output(text) == expected
    base = parse_base(text, CTX)
    assert base.path == (CTX / expected.path if expected.transport != "docker" else Path())
    assert (base.transport, base.tag, base.name) == (
        expected.transport,
        expected.tag,
        expected.name,
    )
    assert str(parse_location(str(expected))) == str(expected)


def test_extra_colons_are_refused_the_same_way_everywhere() -> None:
    """``oci:a:b:c``: the path ends at the first ':' (skopeo's rule), so 'b:c' is no tag.

    Before one grammar, --output read it as directory 'a:b' with tag 'c' while
    inspect looked for a directory 'a'."""
    for parse in (parse_location, parse_output):
        with pytest.raises(UsageError, match="'b:c' is not a tag"):
            parse("oci:a:b:c")
    with pytest.raises(Exception, match="'b:c' is not a tag"):
        parse_base("oci:a:b:c", CTX)


def _toml(directory: Path, base: str = "scratch") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "image.toml"
    path.write_text(
        f'[image]\nbase = "{base}"\ncreated = "2024-01-01T00:00:00Z"\n'
        'platforms = ["linux/amd64"]\n'
        '[[layers]]\ncontent = [{ dst = "/hello", text = "hi\\n" }]\n'
    )
    return path


@pytest.mark.parametrize(
    "form",
    ["oci:{d}/lay:v1", "oci-archive:{d}/o.tar:v1", "docker-archive:{d}/d.tar:localhost:5000/a:v1"],
)
def test_every_command_reads_what_build_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], form: str
) -> None:
    where = form.format(d=tmp_path)
    assert main(["build", "-q", "-f", str(_toml(tmp_path / "a")), "-o", where]) == 0
    built = capsys.readouterr().out.strip()
    assert main(["inspect", "--json", where]) == 0
    assert json.loads(capsys.readouterr().out)
    assert main(["diff", where, where]) == 0
    capsys.readouterr()
    index = f"oci:{tmp_path}/joined:j"
    assert main(["index", "create", "-q", "-o", index, where]) == 0
    capsys.readouterr()
    on_top = _toml(tmp_path / "b", base=where)
    assert main(["build", "-q", "-f", str(on_top), "-o", f"oci:{tmp_path}/top"]) == 0
    assert capsys.readouterr().out.strip() != built
    assert main(["verify", "-q", "-f", str(on_top)]) == 0


@pytest.mark.parametrize("command", ["build", "inspect", "diff", "index", "base"])
def test_a_path_with_colons_is_one_error_in_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    bad = f"oci:{tmp_path}/x:b:c"
    argv = {
        "build": ["build", "-f", str(_toml(tmp_path / "a")), "-o", bad],
        "inspect": ["inspect", bad],
        "diff": ["diff", bad, bad],
        "index": ["index", "create", "-o", f"oci:{tmp_path}/i", bad],
        "base": ["build", "-f", str(_toml(tmp_path / "a", base=bad)), "-o", f"oci:{tmp_path}/o"],
    }[command]
    assert main(argv) in (1, 2)
    assert "'b:c' is not a tag" in capsys.readouterr().err
