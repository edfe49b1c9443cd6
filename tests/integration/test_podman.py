"""A second runtime as judge: podman loads and runs what bale writes (runc underneath)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from builder.cli.main import main
from tests.helpers import write_toml
from tests.integration.registry_fixtures import RunningRegistry

BUSYBOX = """
[image]
tags = ["run"]
compression = "{codec}"
[config]
entrypoint = ["/bin/busybox"]
cmd = ["sh", "-c", "echo hello; ls /etc"]
[[layers]]
name = "busybox"
files = [{{ src = "busybox", dst = "/bin/busybox" }}]
content = [{{ dst = "/etc/keep", text = "k" }}, {{ dst = "/etc/gone", text = "g" }}]
[[layers]]
name = "cleanup"
delete = ["/etc/gone"]
"""


def _context(tmp_path: Path, codec: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    shutil.copy("/bin/busybox", ctx / "busybox")
    return write_toml(ctx, BUSYBOX.format(codec=codec))


def _run(podman: list[str], image: str) -> str:
    limits = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096"]
    run = subprocess.run(
        [*podman, "run", "--rm", "--runtime", "runc", *limits, "--network", "none", image],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def _pull(podman: list[str], ref: str) -> None:
    """podman pulls ``ref`` from the plain-HTTP loopback registry."""
    pull = subprocess.run(
        [*podman, "pull", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert pull.returncode == 0, pull.stderr


def _check(output: str) -> None:
    """The script ran; the kept file is there and the deleted one is not (podman adds
    hosts, hostname and mtab to /etc)."""
    first, *listing = output.split()
    assert first == "hello"
    assert "keep" in listing and "gone" not in listing


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_podman_runs_the_oci_layout(podman: list[str], tmp_path: Path, codec: str) -> None:
    spec = _context(tmp_path, codec)
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{tmp_path / 'oci'}:run"]) == 0
    _check(_run(podman, f"oci:{tmp_path / 'oci'}:run"))


def test_podman_loads_the_docker_archive(podman: list[str], tmp_path: Path) -> None:
    spec = _context(tmp_path, "gzip")
    archive = tmp_path / "image.tar"
    assert (
        main(["build", "-q", "-f", str(spec), "-o", f"docker-archive:{archive}:bale-test:run"]) == 0
    )
    load = subprocess.run(
        [*podman, "load", "-i", str(archive)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert load.returncode == 0, load.stderr
    assert "bale-test:run" in load.stdout
    _check(_run(podman, "bale-test:run"))


def test_podman_pulls_and_runs_a_pushed_image(
    podman: list[str], plain_registry: RunningRegistry, tmp_path: Path
) -> None:
    spec = _context(tmp_path, "zstd")
    ref = f"{plain_registry.host}/podman/run:v1"
    assert main(["build", "-q", "-f", str(spec), "-o", f"docker://{ref}"]) == 0
    _pull(podman, ref)
    _check(_run(podman, ref))


@pytest.mark.parametrize("example", ["hello", "multiarch"])
def test_podman_runs_each_example(podman: list[str], tmp_path: Path, example: str) -> None:
    """podman picks this machine's image (from the index for multiarch) and runs it offline."""
    from builder.model import Platform

    arch = Platform.host().architecture
    examples = Path(__file__).resolve().parents[2] / "examples"
    if not (examples / example / "bin" / arch).is_dir():
        pytest.skip(f"examples/{example} has no program for {arch}")
    spec = examples / example / "image.toml"
    assert main(["build", "-q", "-f", str(spec), "-o", f"oci:{tmp_path / 'oci'}"]) == 0
    assert _run(podman, f"oci:{tmp_path / 'oci'}:latest") == f"hello from bale on linux/{arch}\n"


def test_podman_pulls_and_runs_a_signed_image(
    podman: list[str], plain_registry: RunningRegistry, tmp_path: Path
) -> None:
    """Signature referrers (and their sha256-<hex> tag) beside the image change nothing for podman."""
    from tests.supply.keys import make_key

    spec = _context(tmp_path, "gzip")
    key, _ = make_key(tmp_path, "p256")
    ref = f"{plain_registry.host}/podman/signed:v1"
    assert (
        main(["build", "-q", "-f", str(spec), "-o", f"docker://{ref}", "--sign-key", str(key)]) == 0
    )
    _pull(podman, ref)
    _check(_run(podman, ref))
