"""skopeo and umoci as independent judges of both archive kinds."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from builder.commands.build import BuildResult

MakeImage = Callable[..., BuildResult]


def run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def tree(root: Path) -> dict[str, tuple[str, int, str]]:
    """Every path under root: (type, permission bits, content or link target)."""
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            rel = str(path.relative_to(root))
            mode = path.lstat().st_mode & 0o7777
            if path.is_symlink():
                found[rel] = ("link", 0, os.readlink(path))
            elif path.is_dir():
                found[rel] = ("dir", mode, "")
            else:
                found[rel] = ("file", mode, path.read_text())
    return found


def unpack(umoci: str, image: str, bundle: Path) -> dict[str, tuple[str, int, str]]:
    run(umoci, "unpack", "--rootless", "--image", image, str(bundle))
    return tree(bundle / "rootfs")


def test_skopeo_reads_and_copies_both_archives(
    make_image: MakeImage, tmp_path: Path, skopeo: str, umoci: str
) -> None:
    oci, docker = tmp_path / "o.tar", tmp_path / "d.tar"
    result = make_image(
        [f"oci:{tmp_path / 'layout'}:t1", f"oci-archive:{oci}", f"docker-archive:{docker}:app:v1"]
    )
    image = result.images[0]
    diff_ids = [str(layer.diff_id) for layer in image.layers]

    seen = json.loads(run(skopeo, "inspect", f"oci-archive:{oci}:t1"))
    assert seen["Digest"] == str(result.root.digest)
    assert seen["Env"][0] == "GREETING=hello"
    seen = json.loads(run(skopeo, "inspect", f"docker-archive:{docker}"))
    assert seen["Layers"] == diff_ids
    assert seen["Labels"] == {"org.example.team": "core"}
    assert json.loads(run(skopeo, "inspect", "--config", f"docker-archive:{docker}")) == json.loads(
        image.config.data
    )

    expected = unpack(umoci, f"{tmp_path / 'layout'}:t1", tmp_path / "b0")
    assert expected["bin/run"] == ("file", 0o755, "#!/bin/sh\necho hi\n")
    for number, source in enumerate([f"oci-archive:{oci}:t1", f"docker-archive:{docker}"], 1):
        copy = tmp_path / f"copy{number}"
        run(skopeo, "copy", "-q", source, f"oci:{copy}:c")
        assert unpack(umoci, f"{copy}:c", tmp_path / f"b{number}") == expected
