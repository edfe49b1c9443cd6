"""Go modules in the SBOM, judged by ``go version -m`` (Debian's golang-go).

The image holds a program built here with ``go build`` (a module with a
dependency), Debian's runc (a Go binary built without module information),
a non-Go ELF, a Go binary with a damaged record and a text file quoting the
record's magic. For every Go binary the SBOM's Go packages equal what
``go version -m`` prints; spdx-tools and cyclonedx validate the documents.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from builder.cli.main import main
from builder.supply.gobuild import MAGIC
from tests.conftest import require_tool
from tests.go import build_hello, go_version_m
from tests.helpers import write_toml
from tests.integration.sbom_judges import CYCLONEDX, SPDX, artifacts, cyclonedx_valid, spdx_valid

IMAGE = """
[image]
tags = ["v1"]
platforms = ["linux/amd64"]
created = "2024-05-01T12:00:00Z"
[[layers]]
files = [{ src = "bin/", dst = "/usr/local/bin/", mode = 0o755 }]
content = [{ dst = "/etc/magic.txt", text = "a quote of \\u00ff Go buildinf: is not a binary" }]
"""
# runc (Debian's, cgo) has its record 70 KiB into the data segment: past the
# 64 KiB Go's own reader searches when it has no section headers.
GO_BINARIES = ("hello", "runc")


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build context: bin/ with two Go binaries, a non-Go ELF and a damaged Go binary."""
    root = tmp_path_factory.mktemp("go-context")
    hello = build_hello(root / "go")
    (root / "bin").mkdir()
    shutil.copy(hello, root / "bin" / "hello")
    shutil.copy(require_tool("runc"), root / "bin" / "runc")
    shutil.copy("/bin/true", root / "bin" / "true")
    data = bytearray(hello.read_bytes())
    at = data.find(MAGIC)
    data[at + 32 : at + 42] = b"\xff" * 10  # the version's length: an overlong varint
    (root / "bin" / "damaged").write_bytes(bytes(data))
    write_toml(root, IMAGE)
    return root


def _by_binary(spdx: bytes) -> dict[str, set[tuple[str, str]]]:
    """The SPDX document's Go packages, (name, version), by the binary they were read from."""
    found: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for package in json.loads(spdx)["packages"]:
        purls = [r["referenceLocator"] for r in package.get("externalRefs", [])]
        if any(p.startswith("pkg:golang/") for p in purls):
            path = package["sourceInfo"].split(" record /")[1].split(" in layer ")[0]
            found[path.rsplit("/", 1)[1]].add((package["name"], package.get("versionInfo", "")))
    return dict(found)


def _expected(context: Path) -> dict[str, set[tuple[str, str]]]:
    return {name: go_version_m(context / "bin" / name, context / "go") for name in GO_BINARIES}


def test_go_modules_equal_go_version_m(context: Path, tmp_path: Path) -> None:
    layout = tmp_path / "oci"
    args = ["build", "-q", "-f", str(context / "image.toml"), "-o", f"oci:{layout}"]
    assert main([*args, "--sbom", "spdx", "--sbom", "cyclonedx"]) == 0
    found = artifacts(layout)
    [(_, spdx)] = found[SPDX]
    [(_, cyclonedx)] = found[CYCLONEDX]
    spdx_valid(spdx, tmp_path)
    cyclonedx_valid(cyclonedx)
    expected = _expected(context)
    assert ("example.com/greet", "v1.2.3") in expected["hello"]  # the test means something
    assert _by_binary(spdx) == expected
    components = json.loads(cyclonedx)["components"]
    golang = {
        (c["name"], c.get("version", ""))
        for c in components
        if c.get("purl", "").startswith("pkg:golang/")
    }
    assert golang == set().union(*expected.values())
    purls = {c["purl"] for c in components if c.get("purl", "").startswith("pkg:golang/")}
    assert "pkg:golang/example.com/greet@v1.2.3" in purls
    assert "pkg:golang/example.com/hello" in purls  # (devel) is no version
    # Again with the cached file hashes (and Go records) of the same layer: the same bytes.
    assert main([*args[:-1], f"oci:{tmp_path / 'again'}", "--sbom", "spdx"]) == 0
    [(_, again)] = artifacts(tmp_path / "again")[SPDX]
    assert again == spdx


def test_go_binaries_in_a_base_layer_and_bale_sbom(
    context: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "base"
    spec = context / "image.toml"
    assert main(["build", "-q", "--no-sbom", "-f", str(spec), "-o", f"oci:{base}"]) == 0
    top = tmp_path / "top"
    top.mkdir()
    write_toml(
        top,
        f"""
        [image]
        tags = ["t"]
        base = "oci:{base}:v1"
        created = "2024-05-01T12:00:00Z"
        [[layers]]
        content = [{{ dst = "/etc/top", text = "on a base with Go binaries" }}]
        """,
    )
    for run in ("first", "cached"):
        out = tmp_path / run
        assert main(["build", "-q", "-f", str(top / "image.toml"), "-o", f"oci:{out}"]) == 0
        [(_, spdx)] = artifacts(out)[SPDX]
        assert _by_binary(spdx) == _expected(context), run
    capsys.readouterr()
    assert main(["sbom", f"oci:{base}:v1"]) == 0
    assert _by_binary(capsys.readouterr().out.encode()) == _expected(context)
