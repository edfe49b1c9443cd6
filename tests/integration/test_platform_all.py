"""``--platform all``: every platform of a multi-platform base, attestations skipped."""

from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from builder.cli.main import main
from tests.conftest import require_tool
from tests.helpers import blob, check_layout, write_toml
from tests.integration.attestation import add_attestation

BASE = """
[image]
tags = ["base"]
platforms = ["linux/arm64", "linux/amd64"]

[[layers]]
name = "motd"
content = [{ dst = "/etc/motd", text = "hello {platform}\\n" }]
"""
APP = """
[image]
base = "%s"
tags = ["app"]
%s

[[layers]]
name = "app"
content = [{ dst = "/app", text = "app\\n" }]
"""


def _toml(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return write_toml(directory, text)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """A two-platform base (arm64 first) with an attestation entry, as buildx makes them."""
    layout = tmp_path / "base"
    spec = _toml(tmp_path / "base-ctx", BASE)
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{layout}"]) == 0
    add_attestation(layout)
    assert len(check_layout(layout)) == 3
    return layout


def _app(tmp_path: Path, base_text: str, image_extra: str = "") -> Path:
    return _toml(tmp_path / "app-ctx", APP % (base_text, image_extra))


def _platforms(layout: Path, digest: str) -> list[str]:
    index = json.loads(blob(layout, digest))
    return [f"{m['platform']['os']}/{m['platform']['architecture']}" for m in index["manifests"]]


def _oci_archive(layout: Path, path: Path) -> Path:
    with tarfile.open(path, "w") as tar:
        for item in sorted(layout.rglob("*")):
            tar.add(item, item.relative_to(layout).as_posix(), recursive=False)
    return path


@pytest.mark.parametrize("transport", ["oci", "oci-archive"])
def test_platform_all_takes_the_base_platforms_in_order(
    tmp_path: Path, base: Path, transport: str, capsys: pytest.CaptureFixture[str]
) -> None:
    where = base if transport == "oci" else _oci_archive(base, tmp_path / "base.tar")
    spec = _app(tmp_path, f"{transport}:{where}:base")
    out = tmp_path / "out"
    assert main(["build", "-q", "-f", str(spec), "--platform", "all", "-o", f"oci:{out}"]) == 0
    digest = capsys.readouterr().out.strip().splitlines()[-1]
    assert _platforms(out, digest) == ["linux/arm64", "linux/amd64"]
    manifests = check_layout(out)
    assert len(manifests) == 2
    base_index = json.loads(
        blob(base, json.loads((base / "index.json").read_text())["manifests"][0]["digest"])
    )
    assert [m["annotations"]["org.opencontainers.image.base.digest"] for m in manifests] == [
        m["digest"] for m in base_index["manifests"][:2]
    ]
    raw = subprocess.run(
        [require_tool("skopeo"), "inspect", "--raw", f"oci:{out}:app"],
        check=True,
        capture_output=True,
    ).stdout
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest


def test_platforms_all_in_image_toml(
    tmp_path: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _app(tmp_path, f"oci:{base}:base", 'platforms = ["all"]')
    out = tmp_path / "out"
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{out}"]) == 0
    digest = capsys.readouterr().out.strip()
    assert _platforms(out, digest) == ["linux/arm64", "linux/amd64"]
    args = ["build", "-q", "-f", str(spec), "--platform", "linux/amd64", "-o", f"oci:{out}:one"]
    assert main(args) == 0, "--platform on the command line wins over image.toml's all"
    assert check_layout(out)[-1]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


def test_missing_platform_names_what_the_base_offers(
    tmp_path: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _app(tmp_path, f"oci:{base}:base")
    args = ["build", "-q", "-f", str(spec), "--platform", "linux/s390x", "-o", f"oci:{tmp_path}/o"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "has no image for linux/s390x; it offers: linux/arm64, linux/amd64." in err
    assert "unknown" not in err
    assert not (tmp_path / "o").exists()


def test_single_platform_base_for_another_platform(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    single = tmp_path / "single"
    spec = _toml(tmp_path / "s", BASE.replace('"linux/arm64", ', ""))
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{single}"]) == 0
    app = _app(tmp_path, f"oci:{single}:base")
    args = ["build", "-q", "-f", str(app), "--platform", "linux/arm64", "-o", f"oci:{tmp_path}/o"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "is a single-platform image (a manifest, not an index) for linux/amd64" in err
    assert "cannot be the base of a linux/arm64 image" in err
    out = tmp_path / "all"
    assert main(["build", "-q", "-f", str(app), "--platform", "all", "-o", f"oci:{out}"]) == 0
    (manifest,) = check_layout(out)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"


def test_all_needs_a_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_toml(tmp_path, BASE)
    args = ["build", "-q", "-f", str(spec), "--platform", "all", "-o", f"oci:{tmp_path}/o"]
    assert main(args) == 2
    assert "has no base (scratch)" in capsys.readouterr().err
    spec.write_text(BASE.replace('["linux/arm64", "linux/amd64"]', '["all"]'))
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{tmp_path}/o"]) != 0
    err = capsys.readouterr().err
    assert "platforms" in err and "no base (scratch)" in err
    args = ["build", "-f", str(spec), "--platform", "all", "--platform", "linux/amd64"]
    assert main(args) == 2
    assert "--platform all stands alone" in capsys.readouterr().err


def test_verify_takes_platform_all(
    tmp_path: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _app(tmp_path, f"oci:{base}:base")
    assert (
        main(["build", "-q", "-f", str(spec), "--platform", "all", "-o", f"oci:{tmp_path / 'o'}"])
        == 0
    )
    built = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["verify", "--json", "-f", str(spec), "--platform", "all"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["reproducible"] and outcome["digests"] == [built, built]


def test_verify_reaches_a_base_outside_the_context(
    tmp_path: Path, base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert base == tmp_path / "base"
    spec = _app(tmp_path, "oci:../base:base", 'platforms = ["linux/amd64"]')
    assert main(["verify", "-q", "-f", str(spec)]) == 0
    assert capsys.readouterr().out.strip().startswith("sha256:")
