"""What a build with an SBOM reads: each context file opened once, each base layer
decompressed once, and the same SPDX bytes whichever way the SBOM got its members
(hashed as the layer was written, from the cache's records, or read again)."""

from __future__ import annotations

import builtins
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import builder.layer.cache
import builder.layer.lower
from builder.cli.main import main
from tests.helpers import write_toml
from tests.integration.sbom_judges import SPDX, artifacts, packages, spdx_valid

CONTEXT_FILES = {
    "app/bin/run": b"#!/bin/sh\necho run\n",
    "app/data.bin": bytes(range(256)) * 9000,  # bigger than one read, several chunks
    "app/lib/demo_pkg-1.2.dist-info/METADATA": b"Metadata-Version: 2.1\nName: demo_pkg\n"
    b"Version: 1.2\nLicense-Expression: MIT\n",
    "app/empty": b"",
}
TOP = """
[image]
tags = ["t"]
created = "2024-05-01T12:00:00Z"
compression = "gzip"
{base}
[[layers]]
name = "app"
files = [{{ src = "app/", dst = "/app/" }}, {{ src = "true", dst = "/bin/true" }}]
{delete}
"""
BASE = """
[image]
tags = ["b"]
created = "2024-05-01T12:00:00Z"
compression = "gzip"
sbom = false
provenance = false
[[layers]]
name = "one"
content = [
  { dst = "/var/lib/dpkg/status.d/tzdata", text = "Package: tzdata\\nVersion: 2024a\\nArchitecture: all\\n" },
  { dst = "/usr/share/doc/tzdata/copyright", text = "Files: *\\nLicense: public-domain\\n" },
  { dst = "/etc/passwd", text = "root:x:0:0:root:/root:/bin/sh\\n" },
  { dst = "/etc/group", text = "root:x:0:\\n" },
]
[[layers]]
name = "two"
content = [{ dst = "/usr/lib/python3/dist-packages/old-1.0.dist-info/METADATA", text = "Metadata-Version: 2.1\\nName: old\\nVersion: 1.0\\n" }]
"""


def context(root: Path, base: str = "", delete: str = "") -> Path:
    for name, data in CONTEXT_FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    shutil.copy("/bin/true", root / "true")  # an ELF file: the Go catalog's picker reads it
    past = 1_600_000_000  # older than the cache's racy window: the stat key is kept
    for path in root.rglob("*"):
        os.utime(path, (past, past))
    return write_toml(root, TOP.format(base=base, delete=delete))


def build(spec: Path, out: Path, *args: str) -> bytes:
    """Build to a new layout; the SPDX document it carries."""
    shutil.rmtree(out, ignore_errors=True)
    assert main(["build", "-q", "-f", str(spec), *args, "-o", f"oci:{out}"]) == 0
    [(_, spdx)] = artifacts(out)[SPDX]
    return spdx


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """How often each path was opened (``open`` and ``os.open``), by resolved path."""
    counted: Counter[str] = Counter()

    def counting(real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(path: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(path, (str, Path)):
                counted[str(Path(path).resolve())] += 1
            return real(path, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(builtins, "open", counting(builtins.open))
    monkeypatch.setattr(os, "open", counting(os.open))
    yield counted


@pytest.fixture
def decompressions(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Every base layer decompression: the codec of each call of ``lower``'s reader."""
    calls: list[object] = []
    real = builder.layer.lower.decompressed

    def counting(raw: Any, codec: Any) -> Any:
        calls.append(codec)
        return real(raw, codec)

    monkeypatch.setattr(builder.layer.lower, "decompressed", counting)
    yield calls


def _context_opens(opens: Counter[str], root: Path) -> dict[str, int]:
    files = [*CONTEXT_FILES, "true"]
    return {name: opens[str((root / name).resolve())] for name in files}


def test_a_cold_build_opens_each_context_file_once(tmp_path: Path, opens: Counter[str]) -> None:
    root = tmp_path / "ctx"
    spec = context(root)
    opens.clear()
    spdx = build(spec, tmp_path / "out")
    spdx_valid(spdx, tmp_path)
    once = dict.fromkeys(CONTEXT_FILES, 1)
    # The ELF file is also opened by the architecture check, SBOM or not.
    assert _context_opens(opens, root) == {**once, "true": 2}
    assert packages(spdx, "pypi") == {("demo_pkg", "1.2")}  # the kept METADATA was read
    opens.clear()
    plain = ["build", "-q", "-f", str(spec), "--no-cache", "--no-sbom"]
    assert main([*plain, "-o", f"oci:{tmp_path / 'plain'}"]) == 0
    assert _context_opens(opens, root) == {**once, "true": 2}


def test_the_spdx_is_the_same_hashed_at_build_recorded_or_read(
    tmp_path: Path, opens: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(builder.layer.cache, "RACY_NS", 0)  # files just written: reusable
    root = tmp_path / "ctx"
    spec = context(root)
    written = build(spec, tmp_path / "out")  # cold: hashed as the layer was written
    cache = Path(os.environ["BALE_CACHE_DIR"])
    assert list((cache / "file-hashes").glob("*.json"))
    opens.clear()
    recorded = build(spec, tmp_path / "out")  # the layer reused, its record used
    # The architecture check opens the ELF file; of the others, only the kept
    # METADATA is read again (its bytes are not in the record).
    metadata = "app/lib/demo_pkg-1.2.dist-info/METADATA"
    reused = {**dict.fromkeys(CONTEXT_FILES, 0), "true": 1, metadata: 1}
    assert _context_opens(opens, root) == reused
    shutil.rmtree(cache / "file-hashes")
    opens.clear()
    read = build(spec, tmp_path / "out")  # the layer reused, no record: files read
    assert _context_opens(opens, root) == {**dict.fromkeys(CONTEXT_FILES, 1), "true": 2}
    uncached = build(spec, tmp_path / "out", "--no-cache")
    assert written == recorded == read == uncached


@pytest.fixture
def base_layout(tmp_path: Path) -> Path:
    """A two-layer base image (tag ``b``), no SBOM of its own."""
    base_dir = tmp_path / "base-ctx"
    base_dir.mkdir()
    layout = tmp_path / "base"
    assert main(["build", "-q", "-f", str(write_toml(base_dir, BASE)), "-o", f"oci:{layout}"]) == 0
    return layout


@pytest.mark.parametrize(
    ("delete", "args"),
    [
        ("", ()),  # the base checked, its files not needed
        ('delete = ["/etc/group"]', ()),  # the base's files planned against
        ("", ("--trust-base",)),  # not checked: read for the SBOM only
    ],
    ids=["checked", "planned", "trusted"],
)
def test_each_base_layer_is_decompressed_once(
    tmp_path: Path,
    base_layout: Path,
    decompressions: list[object],
    delete: str,
    args: tuple[str, ...],
) -> None:
    spec = context(tmp_path / "ctx", f'base = "oci:{base_layout}:b"', delete)
    decompressions.clear()
    spdx = build(spec, tmp_path / "out", *args)
    assert len(decompressions) == 2  # two base layers, each once
    assert packages(spdx, "deb") == {("tzdata", "2024a")}
    assert packages(spdx, "pypi") == {("demo_pkg", "1.2"), ("old", "1.0")}
    decompressions.clear()
    again = build(spec, tmp_path / "out", *args)  # the scans and checks are cached
    assert len(decompressions) == (2 if delete else 0)  # planning reads the base each build
    fresh = build(spec, tmp_path / "fresh", "--no-cache", "--trust-base")
    assert spdx == again == fresh
