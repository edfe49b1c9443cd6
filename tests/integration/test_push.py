"""``bale build --push`` / ``--output docker://`` against real registries, skopeo as judge."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from builder.cli.main import main
from builder.commands.build import BuildOptions, build
from builder.errors import RegistryError
from builder.registry.failures import RetryPolicy
from builder.registry.options import Clients, RegistryConfig, Timeouts
from builder.spec.locations import parse_output
from tests.helpers import check_layout, write_toml
from tests.integration.fault_proxy import Fault, FaultProxy
from tests.integration.registry_fixtures import RunningRegistry, require_tool

FAST = RetryPolicy(tries=3, base_delay=0.01, max_delay=0.05)
IMAGE = """
[image]
tags = ["v1"]
[[layers]]
content = [{{ dst = "/etc/hello", text = "{text}" }}]
"""


def image(tmp_path: Path, text: str = "hi", extra: str = "") -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    return write_toml(ctx, extra + IMAGE.format(text=text))


def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, document: object) -> None:
    conf = tmp_path / "docker"
    conf.mkdir()
    (conf / "config.json").write_text(json.dumps(document))
    monkeypatch.setenv("DOCKER_CONFIG", str(conf))


def logged_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reg: RunningRegistry) -> str:
    """A Docker config holding the registry's user and password; returns the auth value."""
    secret = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    docker_config(tmp_path, monkeypatch, {"auths": {reg.host: {"auth": secret}}})
    return secret


def skopeo(reg: RunningRegistry, *args: str) -> subprocess.CompletedProcess[str]:
    flags = ["--tls-verify=false"] if reg.cert_dir is None else ["--cert-dir", str(reg.cert_dir)]
    if reg.username:
        flags += ["--creds", f"{reg.username}:{reg.password}"]
    command = [require_tool("skopeo"), args[0], *flags, *args[1:]]
    run = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    return run


def uploads(reg: RunningRegistry, repo: str) -> int:
    """Blob bodies the registry received for ``repo`` (monolithic PUTs and chunk PATCHes)."""
    log = reg.log()
    return log.count(f"PUT /v2/{repo}/blobs/uploads") + log.count(f"PATCH /v2/{repo}/blobs/")


def test_push_plain_then_skopeo_copies_it(
    plain_registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = image(tmp_path)
    target = f"docker://{plain_registry.host}/push/plain:v1"
    assert main(["build", "-f", str(spec), "-o", target]) == 0
    out = capsys.readouterr().out.split()
    digest = out[-1]
    assert out[0] == f"{plain_registry.host}/push/plain:v1@{digest}"
    ref = f"docker://{plain_registry.host}/push/plain:v1"
    inspected = json.loads(skopeo(plain_registry, "inspect", ref).stdout)
    assert inspected["Digest"] == digest
    layout = tmp_path / "copy"
    skopeo(plain_registry, "copy", ref, f"oci:{layout}:v1")
    check_layout(layout)
    # The same build again: every blob and the manifest are found by HEAD, no
    # body is sent; only the tag is written again.
    before = uploads(plain_registry, "push/plain")
    assert before >= 2
    log_lines = len(plain_registry.log().splitlines())
    assert main(["build", "-q", "-f", str(spec), "-o", target]) == 0
    assert capsys.readouterr().out.strip() == digest
    assert uploads(plain_registry, "push/plain") == before
    again = plain_registry.log().splitlines()[log_lines:]
    puts = [line for line in again if "PUT /v2/push/plain/manifests/" in line]
    assert len(puts) == 1 and "manifests/v1" in puts[0], puts


def test_push_uses_repository_and_tags_and_json(
    plain_registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = image(tmp_path, "json", f'[image]\nrepository = "{plain_registry.host}/push/repo"\n')
    text = spec.read_text().replace("[image]\ntags", "tags", 1)
    spec.write_text(text)
    assert main(["build", "--json", "-f", str(spec), "--push", "-t", "a", "-t", "b"]) == 0
    summary = json.loads(capsys.readouterr().out)
    digest = summary["digest"]
    name = f"{plain_registry.host}/push/repo"
    assert summary["pushed"] == [f"{name}:a@{digest}", f"{name}:b@{digest}"]
    assert summary["outputs"] == [f"docker://{name}"]
    for tag in ("a", "b"):
        got = json.loads(skopeo(plain_registry, "inspect", f"docker://{name}:{tag}").stdout)
        assert got["Digest"] == digest
    assert not (spec.parent / "bale-out").exists()


def test_push_without_repository_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", "-f", str(image(tmp_path)), "--push"]) == 2
    assert "[image] repository" in capsys.readouterr().err


def test_by_digest_pushes_no_tag(
    plain_registry: RunningRegistry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"{plain_registry.host}/push/bydigest"
    args = ["build", "-f", str(image(tmp_path)), "-o", f"docker://{name}", "--by-digest"]
    assert main(args) == 0
    out = capsys.readouterr().out.split()
    assert out == [f"{name}@{out[-1]}", out[-1]]
    raw = skopeo(plain_registry, "inspect", "--raw", f"docker://{out[0]}").stdout
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == out[-1]
    # No tag was written: the repository's tag list does not exist.
    assert "PUT /v2/push/bydigest/manifests/v1" not in plain_registry.log()


def test_push_tls_basic_with_docker_config(
    tls_registry: RunningRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = logged_in(tmp_path, monkeypatch, tls_registry)
    target = f"docker://{tls_registry.host}/push/tls:v1"
    spec = str(image(tmp_path))
    assert main(["build", "-f", spec, "-o", target, "--verbose", "--json"]) == 1
    assert "--ca-cert" in capsys.readouterr().err
    args = ["build", "-f", spec, "-o", target, "--ca-cert", str(tls_registry.ca_path)]
    assert main([*args, "--verbose", "--json"]) == 0
    captured = capsys.readouterr()
    digest = json.loads(captured.out)["digest"]
    assert "registry: PUT https://" in captured.err
    for text in (captured.out, captured.err):
        assert tls_registry.password not in text and secret not in text
    got = json.loads(skopeo(tls_registry, "inspect", target).stdout)
    assert got["Digest"] == digest


def test_push_tls_with_ssl_cert_file(
    tls_registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged_in(tmp_path, monkeypatch, tls_registry)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_registry.ca_path))
    target = f"docker://{tls_registry.host}/push/sslenv:v1"
    assert main(["build", "-q", "-f", str(image(tmp_path)), "-o", target]) == 0


def test_insecure_registry_skips_verification_for_that_host_only(
    tls_registry: RunningRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    logged_in(tmp_path, monkeypatch, tls_registry)
    target = f"docker://{tls_registry.host}/push/insecure:v1"
    spec = str(image(tmp_path))
    other = ["--insecure-registry", "other.example:5000"]
    assert main(["build", "-q", "-f", spec, "-o", target, *other]) == 1
    assert "--ca-cert" in capsys.readouterr().err
    insecure = ["--insecure-registry", tls_registry.host]
    assert main(["build", "-q", "-f", spec, "-o", target, *insecure]) == 0
    digest = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(skopeo(tls_registry, "inspect", target).stdout)["Digest"] == digest


def test_registry_base_pushed_to_another_registry(
    plain_registry: RunningRegistry,
    tls_registry: RunningRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base_ctx = tmp_path / "base"
    base_ctx.mkdir()
    base_ref = f"{plain_registry.host}/cross/base:v1"
    write_toml(base_ctx, IMAGE.format(text="from the base"))
    assert (
        main(["build", "-q", "-f", str(base_ctx / "image.toml"), "-o", f"docker://{base_ref}"]) == 0
    )
    logged_in(tmp_path, monkeypatch, tls_registry)
    spec = image(tmp_path, text="app", extra=f'[image]\nbase = "{base_ref}"\n')
    spec.write_text(spec.read_text().replace("[image]\ntags", "tags", 1))
    target = f"docker://{tls_registry.host}/cross/app:v1"
    args = ["build", "-q", "-f", str(spec), "-o", target, "--ca-cert", str(tls_registry.ca_path)]
    assert main(args) == 0
    pushed = json.loads(skopeo(tls_registry, "inspect", target).stdout)
    base = json.loads(skopeo(plain_registry, "inspect", f"docker://{base_ref}").stdout)
    assert len(pushed["Layers"]) == 2 and pushed["Layers"][0] == base["Layers"][0]
    assert "PUT /v2/cross/app/blobs/uploads" in tls_registry.log()


def test_push_with_credential_helper(
    tls_registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-test"
    answer = json.dumps({"Username": tls_registry.username, "Secret": tls_registry.password})
    helper.write_text(f"#!/bin/sh\nread server\necho '{answer}'\n")
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    docker_config(tmp_path, monkeypatch, {"credHelpers": {tls_registry.host: "test"}})
    target = f"docker://{tls_registry.host}/push/helper:v1"
    args = ["build", "-q", "-f", str(image(tmp_path)), "-o", target]
    assert main([*args, "--ca-cert", str(tls_registry.ca_path)]) == 0
    skopeo(tls_registry, "inspect", target)


def test_push_token_auth(
    token_registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged_in(tmp_path, monkeypatch, token_registry)
    target = f"docker://{token_registry.host}/push/token:v1"
    assert main(["build", "-q", "-f", str(image(tmp_path)), "-o", target]) == 0
    assert main(["inspect", "--raw", target]) == 0


def test_token_mount_asks_pull_on_the_source(
    token_registry: RunningRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged_in(tmp_path, monkeypatch, token_registry)
    base_ref = f"{token_registry.host}/tok/base:v1"
    base_ctx = tmp_path / "base"
    base_ctx.mkdir()
    write_toml(base_ctx, IMAGE.format(text="base"))
    assert (
        main(["build", "-q", "-f", str(base_ctx / "image.toml"), "-o", f"docker://{base_ref}"]) == 0
    )
    spec = image(tmp_path, text="app")
    spec.write_text(f'[image]\nbase = "{base_ref}"\n' + spec.read_text().replace("[image]\n", ""))
    target = f"docker://{token_registry.host}/tok/app:v1"
    before = len(token_registry.log().splitlines())
    assert main(["build", "-q", "-f", str(spec), "-o", target]) == 0
    requests = token_registry.log().splitlines()[before:]
    assert any("POST /v2/tok/app/blobs/uploads/?mount=sha256:" in line for line in requests)
    server = token_registry.token_server
    assert server is not None
    asked = [scope for request in server.scopes for scope in request]
    assert any(s.startswith("repository:tok/base:") and "pull" in s for s in asked)
    assert any(s.startswith("repository:tok/app:") and "push" in s for s in asked)


def test_push_token_without_credentials_fails_clearly(
    token_registry: RunningRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    docker_config(tmp_path, monkeypatch, {})
    target = f"docker://{token_registry.host}/push/anon:v1"
    assert main(["build", "-q", "-f", str(image(tmp_path)), "-o", target]) == 1
    assert "bale login" in capsys.readouterr().err


def proxied_build(tmp_path: Path, proxy: FaultProxy, repo: str, **config: object) -> str:
    clients = Clients(RegistryConfig(retry=FAST, **config))  # type: ignore[arg-type]
    options = BuildOptions(
        spec_path=image(tmp_path, os.urandom(3000).hex()),
        outputs=(parse_output(f"docker://{proxy.host}/{repo}:v1"),),
        clients=clients,
    )
    try:
        return str(build(options).root.digest)
    finally:
        clients.close()


@pytest.mark.parametrize(
    "fault",
    [
        Fault("drop", "PATCH", "/blobs/uploads/", after=300),
        Fault("status", "PUT", "/blobs/uploads/", times=2, status=500),
        Fault("status", "HEAD", "/blobs/", times=1, status=429, retry_after="1"),
        Fault("stall", "PUT", "/manifests/", seconds=2.0),
    ],
    ids=["drop-chunk", "500", "429", "stall"],
)
def test_push_survives_faults(
    plain_registry: RunningRegistry, fault_proxy: FaultProxy, tmp_path: Path, fault: Fault
) -> None:
    kind = fault.kind
    fault_proxy.arm(fault)
    digest = proxied_build(
        tmp_path,
        fault_proxy,
        "push/faults",
        chunk_threshold=1024,
        chunk_size=1024,
        timeouts=Timeouts(1.0, 1.0),
    )
    assert fault_proxy.fired[kind] >= 1
    ref = f"docker://{plain_registry.host}/push/faults:v1"
    assert json.loads(skopeo(plain_registry, "inspect", ref).stdout)["Digest"] == digest
    skopeo(plain_registry, "copy", ref, f"oci:{tmp_path / 'copy'}:v1")
    check_layout(tmp_path / "copy")


def test_push_past_budget_leaves_no_tag(
    plain_registry: RunningRegistry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    fault_proxy.arm(Fault("status", "PUT", "/blobs/uploads/", times=100, status=503))
    with pytest.raises(RegistryError) as info:
        proxied_build(tmp_path, fault_proxy, "push/broken")
    assert re.search(r"after 3 tries.*HTTP 503", str(info.value)), str(info.value)
    assert "PUT /v2/push/broken/manifests" not in plain_registry.log()
