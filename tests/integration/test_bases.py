"""Building on local bases, judged by umoci (unpack), skopeo (inspect) and getcap."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import textwrap
from pathlib import Path
from typing import Any

import pytest

from builder.cli.main import main
from tests.conftest import require_root, require_tool
from tests.helpers import blob, check_layout, umoci_unpack

EPOCH = ["--source-date-epoch", "0"]


def bale(tmp: Path, toml: str, output: str, *extra: str) -> str:
    spec = tmp / "image.toml"
    spec.write_text(textwrap.dedent(toml))
    assert main(["build", "-q", "-f", str(spec), "-o", output, *EPOCH, *extra]) == 0
    return output


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def layout_doc(layout: Path, digest: str) -> Any:
    return json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_bytes())


def manifest_of(layout: Path, tag: str) -> Any:
    index = json.loads((layout / "index.json").read_bytes())
    (entry,) = [
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag
    ]
    return layout_doc(layout, entry["digest"])


def unpack(layout: Path, tag: str, bundle: Path) -> Path:
    require_tool("umoci")
    run("umoci", "unpack", "--rootless", "--image", f"{layout}:{tag}", str(bundle))
    return bundle / "rootfs"


def tree(root: Path) -> dict[str, str]:
    """Relative path → 'dir', 'link:TARGET' or the file's text."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = path.read_text()
    return out


BASE_TOML = """
[config]
entrypoint = ["/bin/sh"]
cmd = ["-c", "echo base"]
env = { A = "base", PATH = "/bin" }
labels = { from = "base" }
[[layers]]
files = [{ src = "root/", dst = "/" }]
dirs = [{ path = "/srv", mode = 0o750, owner = "7:7" }]
"""


def base_tree(ctx: Path) -> None:
    files = {
        "etc/apt/sources.list": "deb x\n",
        "etc/keep": "keep\n",
        "etc/nginx/conf.d/default.conf": "old\n",
        "etc/nginx/nginx.conf": "main\n",
        "var/cache/apt/a.bin": "a\n",
        "var/cache/apt/b.bin": "b\n",
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
        "etc/group": "root:x:0:\n",
    }
    for rel, text in files.items():
        path = ctx / "root" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def bale_base(tmp_path: Path) -> Path:
    ctx = tmp_path / "basectx"
    ctx.mkdir()
    base_tree(ctx)
    bale(ctx, BASE_TOML, f"oci:{tmp_path / 'base'}:v1")
    return tmp_path / "base"


APP_TOML = """
[image]
base = "{base}"
[config]
env = {{ A = "app", B = "2" }}
user = "app"
[[users]]
name = "app"
uid = 1000
[[groups]]
name = "app"
gid = 1000
[[layers]]
delete = ["/etc/apt", "/var/cache/apt/*"]
opaque = ["/etc/nginx/conf.d"]
content = [
  {{ dst = "/etc/nginx/conf.d/new.conf", text = "new\\n", owner = "app:app" }},
  {{ dst = "/srv/data/x", text = "x\\n" }},
  {{ dst = "/var/cache/apt/b.bin", text = "again\\n" }},
]
"""

EXPECTED = {
    "etc": "dir",
    "etc/group": "root:x:0:\napp:x:1000:\n",
    "etc/keep": "keep\n",
    "etc/nginx": "dir",
    "etc/nginx/conf.d": "dir",
    "etc/nginx/conf.d/new.conf": "new\n",
    "etc/nginx/nginx.conf": "main\n",
    "etc/passwd": (
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/nonexistent:/usr/sbin/nologin\n"
    ),
    "srv": "dir",
    "srv/data": "dir",
    "srv/data/x": "x\n",
    "var": "dir",
    "var/cache": "dir",
    "var/cache/apt": "dir",
    "var/cache/apt/b.bin": "again\n",
}


def check_extended(tmp_path: Path, base: str, base_layout: Path, base_tag: str) -> Any:
    ctx = tmp_path / "appctx"
    ctx.mkdir()
    out = tmp_path / "app"
    bale(ctx, APP_TOML.format(base=base), f"oci:{out}:app")
    rootfs = unpack(out, "app", tmp_path / "bundle")
    assert tree(rootfs) == EXPECTED
    # the base layers are reused byte for byte
    manifest = manifest_of(out, "app")
    base_manifest = manifest_of(base_layout, base_tag)
    count = len(base_manifest["layers"])
    assert [m["digest"] for m in manifest["layers"][:count]] == [
        m["digest"] for m in base_manifest["layers"]
    ]
    assert len(manifest["layers"]) == count + 2  # accounts + the layer
    base_config = layout_doc(base_layout, base_manifest["config"]["digest"])
    config = layout_doc(out, manifest["config"]["digest"])
    assert config["rootfs"]["diff_ids"][:count] == base_config["rootfs"]["diff_ids"]
    assert config["history"][: len(base_config.get("history", []))] == base_config.get(
        "history", []
    )
    annotations = manifest["annotations"]
    assert annotations["org.opencontainers.image.base.name"] == base
    assert annotations["org.opencontainers.image.base.digest"].startswith("sha256:")
    require_tool("skopeo")
    inspected = json.loads(run("skopeo", "inspect", f"oci:{out}:app"))
    assert inspected["Layers"] == [m["digest"] for m in manifest["layers"]]
    return config


def test_extend_bale_base(tmp_path: Path, bale_base: Path) -> None:
    config = check_extended(tmp_path, f"oci:{bale_base}:v1", bale_base, "v1")
    assert config["config"]["Env"] == ["A=app", "PATH=/bin", "B=2"]
    assert config["config"]["Entrypoint"] == ["/bin/sh"]
    assert config["config"]["Cmd"] == ["-c", "echo base"]
    assert config["config"]["Labels"] == {"from": "base"}
    assert config["config"]["User"] == "app"


def _one_file_over(tmp_path: Path, base: Path, dst: str) -> Path:
    """A layout (tag t) of ``base`` plus a layer holding one file at ``dst``."""
    ctx = tmp_path / "c"
    ctx.mkdir()
    out = tmp_path / "o"
    toml = f"""
    [image]
    base = "oci:{base}:v1"
    [[layers]]
    content = [{{ dst = "{dst}", text = "n" }}]
    """
    bale(ctx, toml, f"oci:{out}:t")
    return out


def test_implicit_parent_keeps_base_attributes(tmp_path: Path, bale_base: Path) -> None:
    out = _one_file_over(tmp_path, bale_base, "/srv/new")
    rootfs = unpack(out, "t", tmp_path / "b")
    assert (rootfs / "srv").stat().st_mode & 0o7777 == 0o750


def test_missing_parents_over_a_base_are_left_to_the_runtime(
    tmp_path: Path, bale_base: Path
) -> None:
    out = _one_file_over(tmp_path, bale_base, "/opt/new/deep/file")
    manifest = check_layout(out)[0]
    last = manifest["layers"][-1]
    with tarfile.open(fileobj=io.BytesIO(blob(out, last["digest"]))) as tar:
        assert tar.getnames() == ["opt/new/deep/file"]
    rootfs = unpack(out, "t", tmp_path / "b")
    for directory in ("opt", "opt/new", "opt/new/deep"):
        assert (rootfs / directory).stat().st_mode & 0o7777 == 0o755
    assert (rootfs / "opt/new/deep/file").read_text() == "n"


def test_extend_umoci_base(tmp_path: Path) -> None:
    require_tool("umoci")
    layout = tmp_path / "u"
    run("umoci", "init", "--layout", str(layout))
    run("umoci", "new", "--image", f"{layout}:b")
    base_tree(tmp_path)
    run("umoci", "insert", "--rootless", "--image", f"{layout}:b", str(tmp_path / "root"), "/")
    run("umoci", "config", "--image", f"{layout}:b", "--config.entrypoint", "/bin/sh")
    config = check_extended(tmp_path, f"oci:{layout}:b", layout, "b")
    assert config["config"]["Entrypoint"] == ["/bin/sh"]


@pytest.mark.parametrize("transport", ["oci-archive", "docker-archive"])
def test_archive_bases(tmp_path: Path, bale_base: Path, transport: str) -> None:
    require_tool("skopeo")
    archive = tmp_path / "base.tar"
    ref = f"{transport}:{archive}:" + ("base:v1" if transport == "docker-archive" else "v1")
    run("skopeo", "copy", f"oci:{bale_base}:v1", ref)
    ctx = tmp_path / "appctx"
    ctx.mkdir()
    out = tmp_path / "app"
    bale(ctx, APP_TOML.format(base=ref), f"oci:{out}:app")
    rootfs = unpack(out, "app", tmp_path / "bundle")
    assert tree(rootfs) == EXPECTED
    inspected = json.loads(run("skopeo", "inspect", f"oci:{out}:app"))
    assert len(inspected["Layers"]) == 3


def test_capability_survives(tmp_path: Path) -> None:
    require_root()
    require_tool("getcap")
    require_tool("umoci")
    ctx = tmp_path / "c"
    ctx.mkdir()
    out = tmp_path / "o"
    toml = """
    [[layers]]
    [[layers.content]]
    dst = "/bin/ping"
    text = "x"
    mode = 0o4755
    xattrs = { "user.origin" = "bale" }
    capabilities = ["cap_net_raw,cap_net_bind_service=+ep"]
    """
    bale(ctx, toml, f"oci:{out}:t")
    bundle = tmp_path / "b"
    run("umoci", "unpack", "--image", f"{out}:t", str(bundle))
    ping = bundle / "rootfs" / "bin" / "ping"
    assert "cap_net_bind_service,cap_net_raw=ep" in run("getcap", str(ping))
    assert ping.stat().st_mode & 0o7777 == 0o4755
    assert os.getxattr(ping, "user.origin") == b"bale"


def test_corrupt_base_layer_is_refused(tmp_path: Path, bale_base: Path) -> None:
    manifest = manifest_of(bale_base, "v1")
    blob = bale_base / "blobs" / "sha256" / manifest["layers"][0]["digest"].split(":")[1]
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes()[:-8] + bytes(8))
    ctx = tmp_path / "c"
    ctx.mkdir()
    (ctx / "image.toml").write_text(f'[image]\nbase = "oci:{bale_base}:v1"\n')
    out = tmp_path / "o"
    assert main(["build", "-q", "-f", str(ctx / "image.toml"), "-o", f"oci:{out}"]) == 1
    assert not out.exists()


def test_malicious_tar_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import io
    import tarfile

    ctx = tmp_path / "c"
    ctx.mkdir()
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        evil = tarfile.TarInfo("../../etc/cron.d/x")
        tar.addfile(evil, io.BytesIO(b""))
    (ctx / "rootfs.tar.zst").write_bytes(data.getvalue())
    (ctx / "image.toml").write_text('[[layers]]\ntar = "rootfs.tar.zst"\n')
    out = tmp_path / "o"
    assert main(["build", "-q", "-f", str(ctx / "image.toml"), "-o", f"oci:{out}"]) == 1
    assert "member '../../etc/cron.d/x' contains '..'" in capsys.readouterr().err
    assert not out.exists()


def test_tar_import_layer(tmp_path: Path) -> None:
    import io
    import tarfile

    import zstandard

    ctx = tmp_path / "c"
    ctx.mkdir()
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        item = tarfile.TarInfo("opt/tool")
        item.size, item.mode, item.uid = 3, 0o755, 5
        tar.addfile(item, io.BytesIO(b"abc"))
    (ctx / "rootfs.tar").write_bytes(zstandard.ZstdCompressor().compress(data.getvalue()))
    (ctx / "image.toml").write_text('[[layers]]\ntar = "rootfs.tar"\n')
    out = tmp_path / "o"
    assert main(["build", "-q", "-f", str(ctx / "image.toml"), "-o", f"oci:{out}:t"]) == 0
    rootfs = unpack(out, "t", tmp_path / "b")
    assert (rootfs / "opt" / "tool").read_bytes() == b"abc"


def test_unknown_owner_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = tmp_path / "c"
    ctx.mkdir()
    (ctx / "image.toml").write_text(
        '[[layers]]\ncontent = [{ dst = "/a", text = "a", owner = "ghost" }]\n'
    )
    assert main(["build", "-q", "-f", str(ctx / "image.toml"), "-o", f"oci:{tmp_path}/o"]) == 1
    assert "user 'ghost' is not in the image's /etc/passwd" in capsys.readouterr().err


def test_runc_busybox_base(tmp_path: Path) -> None:
    """A busybox base made by bale, a layer deleting a file and adding a script, run by runc."""
    require_root()
    require_tool("runc")
    require_tool("umoci")
    busybox = Path(require_tool("busybox"))  # Debian's busybox-static: no libraries needed
    ctx = tmp_path / "base"
    (ctx / "bin").mkdir(parents=True)
    (ctx / "bin" / "busybox").write_bytes(busybox.read_bytes())
    (ctx / "bin" / "busybox").chmod(0o755)
    links = ", ".join(
        f'{{ path = "/bin/{name}", target = "busybox" }}' for name in ("sh", "ls", "cat", "echo")
    )
    base_toml = f"""
    [[layers]]
    files = [{{ src = "bin/busybox", dst = "/bin/busybox" }}]
    symlinks = [{links}]
    content = [{{ dst = "/etc/gone", text = "g" }}, {{ dst = "/etc/kept", text = "k" }}]
    """
    bale(ctx, base_toml, f"oci:{tmp_path / 'bb'}:base")
    app = tmp_path / "app"
    app.mkdir()
    app_toml = f"""
    [image]
    base = "oci:{tmp_path / "bb"}:base"
    [config]
    cmd = ["/bin/sh", "-c", "ls /etc; /app/run.sh"]
    [[layers]]
    delete = ["/etc/gone"]
    content = [{{ dst = "/app/run.sh", text = "#!/bin/sh\\necho script-ran\\n", mode = 0o755 }}]
    """
    bale(app, app_toml, f"oci:{tmp_path / 'out'}:app")
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--image", f"{tmp_path / 'out'}:app", str(bundle))
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    name = f"bale-bases-{os.getpid()}"
    with open(os.devnull, "rb") as stdin:
        result = subprocess.run(
            ["runc", "run", "--bundle", str(bundle), name],
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert "kept" in lines
    assert "gone" not in lines
    assert "script-ran" in lines


def test_zstd_base_is_reproducible(tmp_path: Path) -> None:
    """A zstd base layer is read (diff_id checked) and the result's digest is stable."""
    ctx = tmp_path / "b"
    ctx.mkdir()
    base_toml = """
    [image]
    compression = "zstd"
    [[layers]]
    content = [{ dst = "/etc/a", text = "a" }, { dst = "/etc/b", text = "b" }]
    """
    bale(ctx, base_toml, f"oci:{tmp_path / 'base'}:z")
    app = tmp_path / "a"
    app.mkdir()
    toml = f"""
    [image]
    base = "oci:{tmp_path / "base"}:z"
    [[layers]]
    delete = ["/etc/a"]
    """
    digests = set()
    for name in ("o1", "o2"):
        bale(app, toml, f"oci:{tmp_path / name}:t")
        digests.add(
            json.loads((tmp_path / name / "index.json").read_text())["manifests"][0]["digest"]
        )
    assert len(digests) == 1
    manifest = manifest_of(tmp_path / "o1", "t")
    assert manifest["layers"][0]["mediaType"].endswith("+zstd")


def test_json_names_the_step_of_each_base_layer(
    tmp_path: Path, bale_base: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ctx = tmp_path / "c"
    ctx.mkdir()
    spec = ctx / "image.toml"
    spec.write_text(
        f'[image]\nbase = "oci:{bale_base}:v1"\n[[layers]]\nname = "top"\n'
        'content = [{ dst = "/top", text = "t" }]\n'
    )
    assert main(["build", "--json", "-f", str(spec), "-o", f"oci:{tmp_path / 'o'}"]) == 0
    layers = json.loads(capsys.readouterr().out)["images"][0]["layers"]
    base_config = json.loads(run("skopeo", "inspect", "--config", f"oci:{bale_base}:v1"))
    made = [h["created_by"] for h in base_config["history"] if not h.get("empty_layer")]
    assert [layer["createdBy"] for layer in layers] == [*made, "bale: layer top"]


def test_users_are_added_to_the_base_shadow(tmp_path: Path) -> None:
    base_ctx, ctx = tmp_path / "bc", tmp_path / "c"
    base_ctx.mkdir()
    ctx.mkdir()
    base = tmp_path / "base"
    bale(
        base_ctx,
        """
        [[layers]]
        content = [
          { dst = "/etc/passwd", text = "root:x:0:0:root:/root:/bin/sh\\n" },
          { dst = "/etc/group", text = "root:x:0:\\nshadow:x:42:\\n" },
          { dst = "/etc/shadow", text = "root:*:19000:0:99999:7:::\\n", mode = 0o640, owner = "0:42" },
        ]
        """,
        f"oci:{base}:v1",
    )
    bale(
        ctx,
        f"""
        [image]
        base = "oci:{base}:v1"
        [[users]]
        name = "app"
        uid = 1000
        [[layers]]
        content = [{{ dst = "/home/app/.keep", text = "", owner = "app" }}]
        """,
        f"oci:{tmp_path / 'o'}:t",
    )
    require_root()  # a rootless unpack would drop the group of /etc/shadow
    rootfs = umoci_unpack(tmp_path / "o", "t", tmp_path / "b")
    shadow = rootfs / "etc/shadow"
    assert shadow.read_text() == "root:*:19000:0:99999:7:::\napp:!::0:99999:7:::\n"
    assert (shadow.stat().st_mode & 0o7777, shadow.stat().st_gid) == (0o640, 42)
    assert "app:x:1000:1000:" in (rootfs / "etc/passwd").read_text()


def test_users_on_scratch_survive_a_distro_imported_by_tar(tmp_path: Path) -> None:
    """The accounts layer goes above the tarball's /etc/passwd and merges into it."""
    ctx = tmp_path / "c"
    ctx.mkdir()
    files = {
        "etc/passwd": b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\n",
        "etc/group": b"root:x:0:\ndaemon:x:1:\n",
    }
    with tarfile.open(ctx / "distro.tar", "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    bale(
        ctx,
        """
        [[users]]
        name = "app"
        uid = 1000
        [[layers]]
        name = "distro"
        tar = "distro.tar"
        [[layers]]
        name = "app"
        content = [{ dst = "/home/app/.keep", text = "", owner = "app" }]
        """,
        f"oci:{tmp_path / 'o'}:t",
    )
    rootfs = unpack(tmp_path / "o", "t", tmp_path / "b")
    passwd = (rootfs / "etc/passwd").read_text()
    assert passwd.startswith("root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1::/:/bin/false\n")
    assert "app:x:1000:1000:" in passwd
    created = [h["created_by"] for h in manifest_config_history(tmp_path / "o", "t")]
    assert created == ["bale: layer distro", "bale: layer accounts", "bale: layer app"]


def manifest_config_history(layout: Path, tag: str) -> list[dict[str, Any]]:
    config = layout_doc(layout, manifest_of(layout, tag)["config"]["digest"])
    history: list[dict[str, Any]] = config["history"]
    return history
