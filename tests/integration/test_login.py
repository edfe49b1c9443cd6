"""``bale login`` / ``bale logout`` against a real TLS registry with htpasswd auth."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from builder.cli.main import main
from tests.integration.registry_fixtures import RunningRegistry


def login(reg: RunningRegistry, password: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    args = ["login", reg.host, "-u", reg.username, "--password-stdin"]
    return main([*args, "--ca-cert", str(reg.ca_path)])


def test_login_push_logout(
    tls_registry: RunningRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    config = tmp_path / "docker" / "config.json"
    assert login(tls_registry, "wrong-password", monkeypatch) == 1
    assert not config.exists()
    err = capsys.readouterr().err
    assert "wrong-password" not in err
    assert login(tls_registry, tls_registry.password, monkeypatch) == 0
    assert config.stat().st_mode & 0o777 == 0o600
    assert tls_registry.host in json.loads(config.read_text())["auths"]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "image.toml").write_text('[[layers]]\ncontent = [{ dst = "/a", text = "a" }]\n')
    target = f"docker://{tls_registry.host}/login/app:v1"
    ca = ["--ca-cert", str(tls_registry.ca_path)]
    assert main(["build", "-q", "-f", str(ctx / "image.toml"), "-o", target, *ca]) == 0
    assert main(["logout", tls_registry.host]) == 0
    assert json.loads(config.read_text())["auths"] == {}
    assert main(["inspect", target, *ca]) == 1
    assert "bale login" in capsys.readouterr().err
