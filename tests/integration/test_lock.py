"""``bale lock`` and ``--locked``: registry bases pinned to digests in image.lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder.cli.main import main
from tests.helpers import write_toml
from tests.integration.registry_fixtures import RunningRegistry

BASE = '[image]\ntags = ["v1"]\n[[layers]]\ncontent = [{{ dst = "/etc/v", text = "{v}" }}]\n'


def push(reg: RunningRegistry, tmp_path: Path, version: str) -> str:
    ctx = tmp_path / f"base-{version}"
    ctx.mkdir()
    write_toml(ctx, BASE.format(v=version))
    ref = f"{reg.host}/lock/base:latest"
    assert main(["build", "-q", "-f", str(ctx / "image.toml"), "-o", f"docker://{ref}"]) == 0
    return ref


def app(tmp_path: Path, base: str) -> Path:
    ctx = tmp_path / "app"
    ctx.mkdir(exist_ok=True)
    text = f'[image]\nbase = "{base}"\n[[layers]]\ncontent = [{{ dst = "/a", text = "a" }}]\n'
    return write_toml(ctx, text)


def built(spec: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str]:
    out = spec.parent / "out"
    capsys.readouterr()
    code = main(["build", "--json", "-f", str(spec), "-o", f"oci:{out}", *flags])
    captured = capsys.readouterr()
    return code, captured.out if code == 0 else captured.err


def test_lock_pins_the_base_until_relocked(
    plain_registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = push(plain_registry, tmp_path, "one")
    spec = app(tmp_path, ref)
    code, err = built(spec, capsys, "--locked")
    assert code == 1 and "image.lock does not exist" in err
    assert main(["lock", "-f", str(spec)]) == 0
    lock = spec.parent / "image.lock"
    first = lock.read_bytes()
    document = json.loads(first)
    assert document["base"]["reference"] == ref
    assert list(document["base"]["platforms"]) == ["linux/amd64"]
    assert main(["lock", "-f", str(spec)]) == 0
    assert lock.read_bytes() == first  # deterministic bytes
    assert lock.stat().st_mode & 0o777 == 0o644  # a file to commit, readable by all
    code, out = built(spec, capsys, "--locked")
    assert code == 0
    pinned = json.loads(out)["digest"]
    # The tag moves; the locked build does not.
    push(plain_registry, tmp_path, "two")
    code, out = built(spec, capsys, "--locked")
    assert code == 0 and json.loads(out)["digest"] == pinned
    assert main(["lock", "-f", str(spec)]) == 0
    code, out = built(spec, capsys)
    assert code == 0 and json.loads(out)["digest"] != pinned


def test_locked_fails_when_image_toml_disagrees(
    plain_registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ref = push(plain_registry, tmp_path, "x")
    spec = app(tmp_path, ref)
    assert main(["lock", "-f", str(spec)]) == 0
    app(tmp_path, ref.replace(":latest", ":other"))
    code, err = built(spec, capsys, "--locked")
    assert code == 1 and "--locked" in err and "bale lock" in err
    code, out = built(spec, capsys)
    assert code == 1  # without --locked the unlocked tag is resolved, and it does not exist
    assert "other" in out


def test_lock_of_a_scratch_image(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = tmp_path / "s"
    ctx.mkdir()
    spec = write_toml(ctx, '[[layers]]\ncontent = [{ dst = "/a", text = "a" }]\n')
    assert main(["lock", "-f", str(spec)]) == 0
    assert json.loads((ctx / "image.lock").read_text()) == {"base": None, "version": 1}
    code, _ = built(spec, capsys, "--locked")
    assert code == 0
