"""The SBOM of an image on a real Debian base against the ground truth of its filesystem:
``dpkg-query`` on the tree's database and ``importlib.metadata`` on the unpacked image."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.cli.main import main
from tests.conftest import require_tool
from tests.helpers import umoci_unpack, write_toml
from tests.integration.sbom_judges import (
    CYCLONEDX,
    SPDX,
    artifacts,
    cyclonedx_valid,
    packages,
    spdx_valid,
)

BASE = """
[image]
tags = ["deb"]
created = "2024-05-01T12:00:00Z"
compression = "gzip"
sbom = false
provenance = false
[[layers]]
name = "debian"
tar = "rootfs.tar"
"""

TOP = """
[image]
tags = ["top"]
base = "oci:{base}:deb"
created = "2024-05-01T12:00:00Z"
compression = "gzip"
sbom = ["spdx", "cyclonedx"]
[[layers]]
name = "python-packages"
content = [
  {{ dst = "/usr/lib/python3/dist-packages/demo_pkg-1.2.dist-info/METADATA", text = "Metadata-Version: 2.1\\nName: demo_pkg\\nVersion: 1.2\\nLicense: MIT\\n" }},
  {{ dst = "/usr/lib/python3/dist-packages/old_thing-0.9.egg-info", text = "Metadata-Version: 1.1\\nName: old-thing\\nVersion: 0.9\\n" }},
]
"""


@pytest.fixture(scope="module")
def debian_base(debian: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The debootstrapped tree as a one-layer OCI layout (tag ``deb``), devices left out."""
    work = tmp_path_factory.mktemp("debian-base")
    ctx = work / "ctx"
    ctx.mkdir()
    excluded = ["--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*"]
    subprocess.run(
        ["tar", "-C", str(debian), *excluded, "-cf", str(ctx / "rootfs.tar"), "."], check=True
    )
    spec = write_toml(ctx, BASE)
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{work / 'base'}"]) == 0
    (ctx / "rootfs.tar").unlink()
    yield work / "base"


@pytest.fixture(scope="module")
def top(debian_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("debian-top")
    (work / "ctx").mkdir()
    spec = write_toml(work / "ctx", TOP.format(base=debian_base))
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{work / 'out'}"]) == 0
    return work / "out"


def _dpkg_installed(root: Path) -> set[tuple[str, str]]:
    query = require_tool("dpkg-query")
    out = subprocess.run(
        [
            query,
            "-W",
            "-f",
            "${Package}\t${Version}\t${db:Status-Status}\n",
            f"--admindir={root / 'var/lib/dpkg'}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    return {(name, version) for name, version, status in rows if status == "installed"}


def test_debian_packages_equal_dpkg_query(top: Path, debian: Path, tmp_path: Path) -> None:
    [(_, spdx)] = artifacts(top)[SPDX]
    [(_, cdx)] = artifacts(top)[CYCLONEDX]
    spdx_valid(spdx, tmp_path)
    cyclonedx_valid(cdx)
    truth = _dpkg_installed(debian)
    assert len(truth) > 50
    assert packages(spdx, "deb") == truth
    cdx_debs = {
        (c["name"], c["version"])
        for c in json.loads(cdx)["components"]
        if c.get("purl", "").startswith("pkg:deb/debian/")
    }
    assert cdx_debs == truth


def test_python_distributions_equal_importlib_metadata(top: Path, tmp_path: Path) -> None:
    rootfs = umoci_unpack(top, "top", tmp_path / "bundle")
    places = [p for p in rootfs.glob("usr/**/*-packages") if p.is_dir()]
    found = importlib.metadata.distributions(path=[str(p) for p in places])
    truth = {(d.metadata["Name"], d.version) for d in found}
    assert ("demo_pkg", "1.2") in truth
    [(_, spdx)] = artifacts(top)[SPDX]
    assert packages(spdx, "pypi") == truth


def test_layers_and_base_are_named(top: Path, debian_base: Path) -> None:
    [(manifest, spdx)] = artifacts(top)[SPDX]
    document = json.loads(spdx)
    image = json.loads((top / "blobs/sha256" / manifest["subject"]["digest"][7:]).read_bytes())
    config = json.loads((top / "blobs/sha256" / image["config"]["digest"][7:]).read_bytes())
    base_layer, own_layer = config["rootfs"]["diff_ids"]
    by_name = {p["name"]: p for p in document["packages"]}
    assert base_layer in by_name["bash"]["sourceInfo"]
    assert own_layer in by_name["demo_pkg"]["sourceInfo"]
    base_entry = json.loads((debian_base / "index.json").read_text())["manifests"][0]
    base = next(p for p in document["packages"] if p["SPDXID"] == "SPDXRef-Base")
    assert base["versionInfo"] == base_entry["digest"]
    purl = base["externalRefs"][0]["referenceLocator"]
    assert purl.startswith("pkg:oci/base@sha256") and base_entry["digest"][7:] in purl
    assert {f["fileName"] for f in document["files"]} == {
        "./usr/lib/python3/dist-packages/demo_pkg-1.2.dist-info/METADATA",
        "./usr/lib/python3/dist-packages/old_thing-0.9.egg-info",
    }
    licences = {p["name"]: p.get("licenseDeclared") for p in document["packages"]}
    assert licences["demo_pkg"] == "MIT"
    assert licences["bash"] != "NOASSERTION"  # read from its copyright file


def test_bale_sbom_of_the_layout_lists_the_same_packages(
    top: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [(_, attached)] = artifacts(top)[SPDX]
    assert main(["sbom", f"oci:{top}:top"]) == 0
    printed = capsys.readouterr().out.encode()
    for kind in ("deb", "pypi"):
        assert packages(printed, kind) == packages(attached, kind)
    # Read back, the base's layer (bale-built too) counts as bale's: its files are listed.
    names = {f["fileName"] for f in json.loads(printed)["files"]}
    assert {f["fileName"] for f in json.loads(attached)["files"]} < names
    assert "./usr/bin/bash" in names


def test_a_corrupt_dpkg_status_is_one_error_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "top").mkdir()
    bad = write_toml(
        tmp_path / "bad",
        '[image]\ntags = ["b"]\n[[layers]]\n'
        'content = [{ dst = "/var/lib/dpkg/status", text = "Package: x\\nnot a field\\n" }]\n',
    )
    assert main(["build", "-q", "--no-sbom", "-f", str(bad), "-o", f"oci:{tmp_path / 'b'}"]) == 0
    spec = write_toml(tmp_path / "top", f'[image]\nbase = "oci:{tmp_path / "b"}:b"\n')
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{out}"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "/var/lib/dpkg/status line 2" in err and "Traceback" not in err
    assert not out.exists()
