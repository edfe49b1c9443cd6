"""Bases pulled from a registry: mount on push, the blob cache, inspect/diff, runc."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from builder.cachedir import cache_dir
from builder.cli.main import main
from tests.conftest import require_root
from tests.helpers import check_layout, runc_run, umoci_unpack, write_toml
from tests.integration.registry_fixtures import RunningRegistry, require_tool

BASE = """
[image]
tags = ["v1"]
[[layers]]
content = [{ dst = "/etc/base", text = "base" }]
"""


def push_base(reg: RunningRegistry, tmp_path: Path, repo: str, toml: str = BASE) -> str:
    ctx = tmp_path / "base"
    ctx.mkdir(exist_ok=True)
    write_toml(ctx, toml)
    ref = f"{reg.host}/{repo}:v1"
    assert main(["build", "-q", "-f", str(ctx / "image.toml"), "-o", f"docker://{ref}"]) == 0
    return ref


def app(tmp_path: Path, base: str, extra: str = "") -> Path:
    ctx = tmp_path / "app"
    ctx.mkdir(exist_ok=True)
    return write_toml(
        ctx,
        f'[image]\nbase = "{base}"\n{extra}\n[[layers]]\n'
        'content = [{ dst = "/etc/app", text = "app" }]\n',
    )


def test_base_from_registry_mounts_on_push_and_fills_cache(
    plain_registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = push_base(plain_registry, tmp_path, "bases/src")
    capsys.readouterr()
    spec = app(tmp_path, base)
    out = f"docker://{plain_registry.host}/bases/dst:v1"
    assert main(["build", "-q", "-f", str(spec), "-o", out, "-o", f"oci:{tmp_path / 'l'}:v1"]) == 0
    log = plain_registry.log()
    assert "POST /v2/bases/dst/blobs/uploads/?mount=sha256:" in log
    assert "from=bases%2Fsrc" in log or "from=bases/src" in log
    manifests = check_layout(tmp_path / "l")
    layers = manifests[0]["layers"]
    base_layer = layers[0]["digest"]
    # The base layer was mounted, not uploaded; the app layer was uploaded.
    puts = [line for line in log.splitlines() if "PUT /v2/bases/dst/blobs/uploads" in line]
    assert any(layers[1]["digest"] in line for line in puts)
    assert not any(base_layer in line for line in puts)
    # The layout needed the base layer's bytes: they went through the verifying cache.
    assert (cache_dir() / "blobs" / "sha256" / base_layer.split(":")[1]).is_file()
    ref = f"docker://{plain_registry.host}/bases/dst:v1"
    assert main(["diff", "-q", f"oci:{tmp_path / 'l'}:v1", ref]) == 0


def test_push_to_the_base_registry_downloads_no_base_layer(
    plain_registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = push_base(plain_registry, tmp_path, "lazy/src")
    capsys.readouterr()
    spec = app(tmp_path, base)
    out = f"docker://{plain_registry.host}/lazy/dst:v1"
    before = len(plain_registry.log().splitlines())
    assert main(["build", "-q", "-f", str(spec), "-o", out]) == 0
    requests = plain_registry.log().splitlines()[before:]
    blob_gets = [line for line in requests if "GET /v2/lazy/src/blobs/" in line]
    config_digest = json.loads(
        subprocess.run(
            [require_tool("skopeo"), "inspect", "--raw", "--tls-verify=false", f"docker://{base}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["config"]["digest"]
    assert blob_gets and all(config_digest in line for line in blob_gets), blob_gets
    assert any("mount=sha256:" in line for line in requests)


def test_base_via_docker_prefix_and_inspect(
    plain_registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = push_base(plain_registry, tmp_path, "bases/insp")
    capsys.readouterr()
    assert main(["inspect", "--json", f"docker://{base}"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "sha256:" in json.dumps(doc)
    spec = app(tmp_path, f"docker://{base}")
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{tmp_path / 'o'}:v1"]) == 0
    rootfs = umoci_unpack(tmp_path / "o", "v1", tmp_path / "bundle")
    assert (rootfs / "etc" / "base").read_text() == "base"
    assert (rootfs / "etc" / "app").read_text() == "app"


def test_corrupt_cached_blob_is_not_used(
    plain_registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cached blob that does not match its digest (any size) is fetched again."""
    base = push_base(plain_registry, tmp_path, "bases/corrupt")
    capsys.readouterr()
    assert main(["inspect", "--json", f"docker://{base}"]) == 0
    doc = json.loads(capsys.readouterr().out)
    digest = doc["images"][0]["layers"][0]["digest"].split(":")[1]
    spec = app(tmp_path, base)
    blobs = cache_dir() / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (blobs / digest).write_bytes(b"garbage")
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{tmp_path / 'o'}:v1"]) == 0
    check_layout(tmp_path / "o")
    good = (blobs / digest).read_bytes()
    assert hashlib.sha256(good).hexdigest() == digest
    # Same size, other bytes: caught by the digest, not the size, and fetched again.
    (blobs / digest).write_bytes(bytes(len(good)))
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{tmp_path / 'p'}:v1"]) == 0
    check_layout(tmp_path / "p")
    assert (blobs / digest).read_bytes() == good


def test_busybox_base_from_registry_runs_under_runc(
    plain_registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_root()
    require_tool("runc")
    busybox = Path(require_tool("busybox"))
    ctx = tmp_path / "base"
    (ctx / "bin").mkdir(parents=True)
    (ctx / "bin" / "busybox").write_bytes(busybox.read_bytes())
    (ctx / "bin" / "busybox").chmod(0o755)
    toml = """
    [[layers]]
    files = [{ src = "bin/busybox", dst = "/bin/busybox" }]
    symlinks = [{ path = "/bin/sh", target = "busybox" }, { path = "/bin/cat", target = "busybox" }]
    """
    base = push_base(plain_registry, tmp_path, "bases/busybox", toml)
    spec = app(tmp_path, base, '[config]\ncmd = ["/bin/cat", "/etc/app"]')
    target = f"{plain_registry.host}/bases/runme:v1"
    assert main(["build", "-q", "-f", str(spec), "-o", f"docker://{target}"]) == 0
    layout = tmp_path / "pulled"
    skopeo = require_tool("skopeo")
    subprocess.run(
        [skopeo, "copy", "--src-tls-verify=false", f"docker://{target}", f"oci:{layout}:v1"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    bundle = tmp_path / "bundle"
    umoci_unpack(layout, "v1", bundle)
    result = runc_run(bundle, f"bale-regbase-{os.getpid()}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "app"
