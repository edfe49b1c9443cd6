"""bale build end to end, judged by the OCI schemas, skopeo, umoci and runc."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from builder.cli.main import main
from tests.conftest import require_root, require_tool
from tests.helpers import blob, check_layout, runc_run, umoci_unpack, write_toml

RICH = """
[image]
tags = ["1.0.0", "latest"]
platforms = ["linux/amd64"]
created = "2024-01-01T00:00:00Z"

[config]
entrypoint = ["/app/server"]
cmd = ["--port=8080"]
env = { APP_ENV = "prod" }
workdir = "/app"
user = "1000:1000"
ports = ["8080/tcp", "53/udp"]
volumes = ["/data"]
labels = { "org.example.team" = "core" }
stop_signal = "SIGTERM"

[annotations]
"org.opencontainers.image.source" = "https://example.com/app"

[[layers]]
name = "app"
files = [
  { src = "dist/server", dst = "/app/server", mode = 0o755, owner = "1000:1000" },
  { src = "static/", dst = "/app/static/", exclude = ["**/*.map"] },
]
dirs = [{ path = "/data", mode = 0o700, owner = "1000:1000" }]
symlinks = [{ path = "/usr/local/bin/server", target = "/app/server" }]
hardlinks = [{ path = "/app/server-hl", target = "/app/server" }]
content = [{ dst = "/etc/app.conf", text = "port = 8080\\n", mode = 0o600 }]

[[layers]]
name = "extra"
compression = "none"
content = [{ dst = "/etc/motd", text = "hi\\n" }]
"""


def make_context(root: Path, reverse: bool = False) -> Path:
    """The RICH context; ``reverse`` creates files in the opposite order."""
    files = {
        "dist/server": "#!/bin/sh\necho server\n",
        "static/index.html": "<html></html>\n",
        "static/app.js": "console.log(1)\n",
        "static/app.js.map": "{}\n",
        "static/img/logo.svg": "<svg/>\n",
    }
    for name in sorted(files, reverse=reverse):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[name])
    write_toml(root, RICH)
    return root / "image.toml"


def build(*args: str) -> int:
    return main(["build", "--quiet", *args])


def test_rich_image_is_valid_and_judges_agree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = make_context(tmp_path / "ctx")
    out = tmp_path / "oci"
    assert build("-f", str(spec), "-o", f"oci:{out}") == 0
    digest = capsys.readouterr().out.strip().splitlines()[-1]
    manifests = check_layout(out)
    assert len(manifests) == 1
    manifest = manifests[0]
    assert manifest["layers"][1]["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
    assert manifest["annotations"]["org.opencontainers.image.created"] == "2024-01-01T00:00:00Z"
    config = json.loads(blob(out, manifest["config"]["digest"]))
    assert config["config"]["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    assert [h["created_by"] for h in config["history"]] == ["bale: layer app", "bale: layer extra"]

    skopeo = require_tool("skopeo")
    inspected = json.loads(
        subprocess.run(
            [skopeo, "inspect", f"oci:{out}:1.0.0"], check=True, capture_output=True, text=True
        ).stdout
    )
    assert inspected["Digest"] == digest
    assert inspected["Architecture"] == "amd64" and inspected["Os"] == "linux"
    assert "APP_ENV=prod" in inspected["Env"]
    assert inspected["Labels"] == {"org.example.team": "core"}

    rootfs = umoci_unpack(out, "latest", tmp_path / "bundle")
    server = (rootfs / "app/server").stat()
    assert stat.S_IMODE(server.st_mode) == 0o755 and (server.st_uid, server.st_gid) == (1000, 1000)
    assert (rootfs / "app/server-hl").stat().st_ino == server.st_ino
    assert os.readlink(rootfs / "usr/local/bin/server") == "/app/server"
    data = (rootfs / "data").stat()
    assert stat.S_IMODE(data.st_mode) == 0o700 and data.st_uid == 1000
    assert stat.S_IMODE((rootfs / "etc/app.conf").stat().st_mode) == 0o600
    assert (rootfs / "etc/motd").read_text() == "hi\n"
    assert stat.S_IMODE((rootfs / "app/static/index.html").stat().st_mode) == 0o644
    everything = {str(p.relative_to(rootfs)): _kind(p) for p in rootfs.rglob("*")}
    assert everything == {
        "app": "dir",
        "app/server": "file",
        "app/server-hl": "file",
        "app/static": "dir",
        "app/static/app.js": "file",
        "app/static/img": "dir",
        "app/static/img/logo.svg": "file",
        "app/static/index.html": "file",
        "data": "dir",
        "etc": "dir",
        "etc/app.conf": "file",
        "etc/motd": "file",
        "usr": "dir",
        "usr/local": "dir",
        "usr/local/bin": "dir",
        "usr/local/bin/server": "symlink",
    }
    implicit = [rootfs / p for p in ("app", "etc", "usr", "usr/local", "usr/local/bin")]
    assert {(stat.S_IMODE(p.stat().st_mode), p.stat().st_uid) for p in implicit} == {(0o755, 0)}


def _kind(path: Path) -> str:
    if path.is_symlink():
        return "symlink"
    return "dir" if path.is_dir() else "file"


def test_busybox_image_runs_under_runc(tmp_path: Path) -> None:
    require_root()
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        require_tool("busybox-static-is-missing")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy(busybox, ctx / "busybox")
    spec = write_toml(
        ctx,
        """
        [image]
        tags = ["run"]
        [config]
        entrypoint = ["/bin/busybox", "echo", "hello"]
        [[layers]]
        files = [{ src = "busybox", dst = "/bin/busybox" }]
        """,
    )
    assert build("-f", str(spec), "-o", f"oci:{tmp_path / 'oci'}") == 0
    umoci_unpack(tmp_path / "oci", "run", tmp_path / "bundle")
    result = runc_run(tmp_path / "bundle", f"bale-test-{os.getpid()}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "hello"


def _build_subprocess(spec: Path, out: Path, cwd: Path, env: dict[str, str], umask: int) -> str:
    def preexec() -> None:
        os.umask(umask)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "builder.cli.main",
            "build",
            "-q",
            "-f",
            str(spec),
            "-o",
            f"oci:{out}",
        ],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        preexec_fn=preexec,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_builds_are_reproducible_across_machines_state(tmp_path: Path) -> None:
    first = make_context(tmp_path / "one")
    old_umask = os.umask(0o077)
    try:
        second = make_context(tmp_path / "two", reverse=True)
    finally:
        os.umask(old_umask)
    for index, path in enumerate(sorted((tmp_path / "two").rglob("*"))):
        os.utime(path, (1_000_000 + index * 7919, 2_000_000 + index * 104729))
    (tmp_path / "two" / "dist/server").chmod(0o700)
    digests = {
        _build_subprocess(first, tmp_path / "o1", tmp_path, {"TZ": "UTC"}, 0o022),
        _build_subprocess(second, tmp_path / "o2", tmp_path / "two", {"TZ": "Asia/Kolkata"}, 0o077),
    }
    assert len(digests) == 1


def _layer_members(layout: Path, manifest: dict) -> list[tuple]:  # type: ignore[type-arg]
    import io

    members = []
    for layer in manifest["layers"]:
        with tarfile.open(fileobj=io.BytesIO(blob(layout, layer["digest"]))) as tar:
            members.extend(tar.getmembers())
    return members


def test_source_date_epoch_changes_created_and_mtimes_only(tmp_path: Path) -> None:
    spec = make_context(tmp_path / "ctx")
    text = spec.read_text().replace('created = "2024-01-01T00:00:00Z"\n', "")
    spec.write_text(text)
    layouts = {}
    for epoch in ("0", "1700000000"):
        out = tmp_path / f"oci-{epoch}"
        _build_subprocess(spec, out, tmp_path, {"SOURCE_DATE_EPOCH": epoch}, 0o022)
        layouts[epoch] = (out, check_layout(out)[0])
    (a_out, a), (b_out, b) = layouts["0"], layouts["1700000000"]
    a_config = json.loads(blob(a_out, a["config"]["digest"]))
    b_config = json.loads(blob(b_out, b["config"]["digest"]))
    assert (
        b_config["created"] == "2023-11-14T22:13:20Z"
        and a_config["created"] == "1970-01-01T00:00:00Z"
    )
    for config in (a_config, b_config):
        config.pop("created")
        config["rootfs"].pop("diff_ids")
        for item in config["history"]:
            item.pop("created")
    assert a_config == b_config
    a_members, b_members = _layer_members(a_out, a), _layer_members(b_out, b)
    assert {m.mtime for m in a_members} == {0} and {m.mtime for m in b_members} == {1700000000}
    strip = [(m.name, m.mode, m.uid, m.gid, m.size, m.type, m.linkname) for m in a_members]
    assert strip == [(m.name, m.mode, m.uid, m.gid, m.size, m.type, m.linkname) for m in b_members]


@pytest.mark.parametrize(
    ("args", "toml", "code", "message"),
    [
        ([], '[[layers]]\nfiles = [{ src = "missing", dst = "/x" }]\n', 1, "does not exist"),
        ([], "[[layers]\n", 1, "invalid TOML"),
        (
            ["--platform", "linux"],
            '[[layers]]\ncontent = [{ dst = "/x", text = "" }]\n',
            2,
            "--platform",
        ),
        (["--tag=-x"], '[[layers]]\ncontent = [{ dst = "/x", text = "" }]\n', 2, "invalid tag"),
        (
            ["-o", "tar:x"],
            '[[layers]]\ncontent = [{ dst = "/x", text = "" }]\n',
            2,
            "unknown transport",
        ),
        (["--bogus"], "", 2, "unrecognized arguments"),
    ],
)
def test_errors_are_messages_with_exit_codes_and_write_nothing(
    tmp_path: Path, args: list[str], toml: str, code: int, message: str
) -> None:
    spec = write_toml(tmp_path, toml)
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "builder.cli.main",
            "build",
            "-f",
            str(spec),
            "-o",
            f"oci:{out}",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_json_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = make_context(tmp_path / "ctx")
    assert main(["build", "--json", "-f", str(spec), "-o", f"oci:{tmp_path / 'o'}"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tags"] == ["1.0.0", "latest"]
    image = summary["images"][0]
    assert image["platform"] == "linux/amd64" and len(image["layers"]) == 2
    manifest = check_layout(tmp_path / "o")[0]
    assert [layer["digest"] for layer in image["layers"]] == [
        x["digest"] for x in manifest["layers"]
    ]


def test_zstd_layers_decompress_to_their_diff_ids(tmp_path: Path) -> None:
    import hashlib

    import zstandard

    spec = make_context(tmp_path / "ctx")
    spec.write_text(spec.read_text().replace("[image]\n", '[image]\ncompression = "zstd"\n', 1))
    assert build("-f", str(spec), "-o", f"oci:{tmp_path / 'o'}") == 0
    manifest = check_layout(tmp_path / "o")[0]
    config = json.loads(blob(tmp_path / "o", manifest["config"]["digest"]))
    layer = manifest["layers"][0]
    assert layer["mediaType"].endswith("+zstd")
    reader = zstandard.ZstdDecompressor().stream_reader(
        blob(tmp_path / "o", layer["digest"]), read_across_frames=True
    )
    assert "sha256:" + hashlib.sha256(reader.read()).hexdigest() == config["rootfs"]["diff_ids"][0]


def test_an_unreadable_input_is_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = make_context(tmp_path / "ctx")
    # Tests run as root, which reads every file: refuse the one file by hand,
    # through both ways bale opens files.
    for name, real in (("builtins.open", open), ("os.open", os.open)):

        def denied(path: object, *args: object, _real: Any = real, **kwargs: object) -> object:
            if str(path).endswith("index.html"):
                raise PermissionError(13, "Permission denied", str(path))
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(name, denied)
    assert main(["build", "--no-cache", "-f", str(spec), "-o", f"oci:{tmp_path / 'o'}"]) == 1
    err = capsys.readouterr().err
    assert "index.html: Permission denied" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_progress_bars_are_cleared_before_the_outputs_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = make_context(tmp_path / "ctx")
    out = f"oci:{tmp_path / 'o'}"
    assert main(["build", "--no-cache", "--progress", "-f", str(spec), "-o", out]) == 0
    err = capsys.readouterr().err
    assert "layer app" in err
    bars = err.split("wrote oci:", 1)[0]
    # A bar left open would still show on the line "wrote" is printed on.
    assert "%|" not in bars.rsplit("\r", 1)[-1]
    assert main(["build", "--no-cache", "--progress", "-q", "-f", str(spec), "-o", out]) == 0
    assert "layer app" not in capsys.readouterr().err
