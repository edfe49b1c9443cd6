"""inspect and diff: golden outputs, and the differences diff must catch."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from builder.cli.main import main
from builder.commands.build import BuildResult
from tests.conftest import require_tool

MakeImage = Callable[..., BuildResult]
Layer = dict[str, tuple[str, int]]
GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("BALE_REGEN_GOLDEN") == "1"


def check_golden(name: str, text: str) -> None:
    """Compare with golden/NAME; BALE_REGEN_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    if REGENERATE:
        path.write_text(text)
    assert text == path.read_text()


def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, out.replace(str(tmp_path), "TMP")


CONF = {"/etc/app.conf": ("port = 8080\n", 0o644), "/bin/run": ("#!/bin/sh\necho hi\n", 0o755)}
DATA = {"/data/readme.txt": ("hello\n", 0o644)}


def build_pair(
    make_image: MakeImage, tmp_path: Path, a: list[Layer], b: list[Layer]
) -> tuple[str, str]:
    make_image([f"oci:{tmp_path / 'a'}"], layers=a)
    make_image([f"docker-archive:{tmp_path / 'b.tar'}"], layers=b)
    return f"oci:{tmp_path / 'a'}", f"docker-archive:{tmp_path / 'b.tar'}"


def test_inspect_golden(
    make_image: MakeImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_image([f"oci-archive:{tmp_path / 'o.tar'}"], layers=[CONF, DATA])
    code, out = cli(capsys, tmp_path, "inspect", "--files", f"oci-archive:{tmp_path / 'o.tar'}:t1")
    assert code == 0
    check_golden("inspect.txt", out)


def test_inspect_json_raw_and_config(
    make_image: MakeImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = make_image([f"oci:{tmp_path / 'l'}"], layers=[CONF, DATA])
    source = f"oci:{tmp_path / 'l'}"
    code, out = cli(capsys, tmp_path, "inspect", "--json", "--files", source)
    doc = json.loads(out)
    assert code == 0
    assert doc["root"]["digest"] == str(result.root.digest)
    [image] = doc["images"]
    assert image["platform"] == "linux/amd64"
    assert image["config"]["entrypoint"] == ["/bin/run"]
    layer = image["layers"][1]
    assert layer["diffId"] == str(result.images[0].layers[1].diff_id)
    assert layer["history"] == "bale: layer l2"
    assert [f["path"] for f in layer["files"]] == ["data", "data/readme.txt"]
    assert layer["uncompressedSize"] == 3 * 512 + 1024  # two headers, one block of data, end
    main(["inspect", "--raw", source])
    assert capsys.readouterr().out.encode() == result.images[0].manifest.data
    main(["inspect", "--config", source])
    assert capsys.readouterr().out.encode() == result.images[0].config.data


def test_diff_identical_images(
    make_image: MakeImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = build_pair(make_image, tmp_path, [CONF, DATA], [CONF, DATA])
    assert cli(capsys, tmp_path, "diff", a, b) == (0, "identical\n")


def test_diff_one_byte_golden(
    make_image: MakeImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = {"/data/readme.txt": ("hellp\n", 0o644)}
    a, b = build_pair(make_image, tmp_path, [CONF, DATA], [CONF, changed])
    code, out = cli(capsys, tmp_path, "diff", a, b)
    assert code == 1
    check_golden("diff-one-byte.txt", out)
    assert "layer 2: data/readme.txt: content 6 bytes" in out


def test_diff_mode_change(
    make_image: MakeImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = {**CONF, "/bin/run": ("#!/bin/sh\necho hi\n", 0o700)}
    a, b = build_pair(make_image, tmp_path, [CONF, DATA], [changed, DATA])
    code, out = cli(capsys, tmp_path, "diff", "--json", a, b)
    doc = json.loads(out)
    assert code == 1
    assert not doc["identical"]
    files = [d for d in doc["differences"] if d["path"] == "bin/run"]
    assert files == [
        {
            "platform": "linux/amd64",
            "where": "layer 1",
            "path": "bin/run",
            "what": "mode",
            "a": "0755",
            "b": "0700",
        }
    ]


def test_diff_reordered_layers(
    make_image: MakeImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = build_pair(make_image, tmp_path, [CONF, DATA], [DATA, CONF])
    code, out = cli(capsys, tmp_path, "diff", a, b)
    assert code == 1
    assert "layer 1: moved" in out and "layer 2 of B" in out
    assert "layer 2: moved" in out and "layer 1 of B" in out
    assert "layer 1: data/readme.txt: added" in out


def test_inspect_unknown_source_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", "docker://example.com/App:1"]) == 2
    assert "lowercase" in capsys.readouterr().err
    assert main(["inspect", f"oci:{tmp_path / 'missing'}"]) == 2


def test_inspect_files_reads_layers_umoci_wrote(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """umoci 0.4.7 ends a layer right after its last file's bytes (no padding, no end blocks)."""
    umoci = require_tool("umoci")
    tree, layout = tmp_path / "tree", tmp_path / "L"
    tree.mkdir()
    (tree / "z").write_text("ab\n")
    for args in (
        ["init", "--layout", str(layout)],
        ["new", "--image", f"{layout}:t"],
        ["insert", "--rootless", "--image", f"{layout}:t", str(tree), "/"],
    ):
        subprocess.run([umoci, *args], check=True, capture_output=True)
    code = main(["inspect", "--files", "--json", f"oci:{layout}:t"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    files = doc["images"][0]["layers"][0]["files"]
    assert [(f["path"], f["type"], f["size"]) for f in files][-1] == ("z", "file", 3)
