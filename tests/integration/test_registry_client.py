"""RegistryClient against real registries, judged by skopeo and the registry's own log."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.errors import AuthError, DigestMismatch, RegistryError
from builder.model import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, Descriptor, Digest, canonical_json
from builder.registry.client import RegistryClient, RegistryOptions
from builder.registry.credentials import ANONYMOUS, Credentials
from builder.registry.failures import RetryPolicy
from builder.registry.options import Timeouts
from tests.integration.fault_proxy import Fault, FaultProxy
from tests.integration.registry_fixtures import PASSWORD, USERNAME, RunningRegistry, require_tool

FAST = RetryPolicy(tries=4, base_delay=0.01, max_delay=0.05)


def blob(data: bytes, media_type: str = OCI_LAYER) -> Descriptor:
    return Descriptor(media_type, Digest.of(data), len(data))


def opener(data: bytes):  # type: ignore[no-untyped-def]
    return lambda: io.BytesIO(data)


def client(reg: RunningRegistry, **options: object) -> RegistryClient:
    creds = Credentials(reg.username, reg.password) if reg.username else ANONYMOUS
    opts = RegistryOptions(ca_file=reg.ca_path, retry=FAST, **options)  # type: ignore[arg-type]
    return RegistryClient(reg.host, creds, opts)


def push_image(c: RegistryClient, repo: str, tag: str, layer: bytes) -> bytes:
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [str(Digest.of(layer))]},
        }
    )
    for data, kind in ((layer, OCI_LAYER), (config, OCI_CONFIG)):
        if not c.blob_exists(repo, Digest.of(data)):
            c.push_blob(repo, blob(data, kind), opener(data))
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": blob(config, OCI_CONFIG).to_json(),
            "layers": [blob(layer).to_json()],
        }
    )
    assert c.push_manifest(repo, tag, OCI_MANIFEST, manifest) == Digest.of(manifest)
    return manifest


def skopeo_raw(reg: RunningRegistry, ref: str) -> bytes:
    args = [require_tool("skopeo"), "inspect", "--raw"]
    if reg.cert_dir is not None:
        args += ["--cert-dir", str(reg.cert_dir)]
    else:
        args += ["--tls-verify=false"]
    if reg.username:
        args += ["--creds", f"{reg.username}:{reg.password}"]
    run = subprocess.run(
        [*args, f"docker://{reg.host}/{ref}"], capture_output=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr.decode()
    return run.stdout


@pytest.mark.parametrize("size,threshold", [(3000, 1 << 20), (5000, 1024)])
def test_push_and_pull_plain(plain_registry: RunningRegistry, size: int, threshold: int) -> None:
    layer = os.urandom(size)
    repo = f"plain/img{size}"
    with client(plain_registry, chunk_threshold=threshold, chunk_size=1500) as c:
        manifest = push_image(c, repo, "v1", layer)
        assert skopeo_raw(plain_registry, f"{repo}:v1") == manifest
        got = c.get_manifest(repo, "v1")
        assert (got.data, got.media_type) == (manifest, OCI_MANIFEST)
        assert c.get_manifest(repo, str(got.digest)).data == manifest
        out = io.BytesIO()
        c.get_blob(repo, blob(layer), out)
        assert out.getvalue() == layer
        assert c.list_tags(repo) == ["v1"]
    chunked = "PATCH /v2/" + repo in plain_registry.log()
    assert chunked == (size > threshold)


def test_second_push_finds_blobs(plain_registry: RunningRegistry) -> None:
    layer = os.urandom(1000)
    with client(plain_registry) as c:
        push_image(c, "plain/again", "a", layer)
        before = plain_registry.log().count("PUT /v2/plain/again/blobs/uploads")
        push_image(c, "plain/again", "b", layer)
        assert plain_registry.log().count("PUT /v2/plain/again/blobs/uploads") == before
        assert sorted(c.list_tags("plain/again")) == ["a", "b"]


def test_cross_repo_mount(plain_registry: RunningRegistry) -> None:
    layer = os.urandom(800)
    digest = Digest.of(layer)
    with client(plain_registry) as c:
        push_image(c, "plain/source", "v1", layer)
        assert c.mount_blob("plain/target", digest, "plain/source")
        assert c.blob_exists("plain/target", digest)
        assert not c.mount_blob("plain/target2", Digest.of(b"nowhere"), "plain/source")
    log = plain_registry.log()
    assert f"mount={digest}" in log and "from=plain" in log


def test_tls_basic_push_pull(tls_registry: RunningRegistry) -> None:
    layer = os.urandom(1200)
    with client(tls_registry) as c:
        c.ping()
        assert c.base_url.scheme == "https"
        manifest = push_image(c, "secure/app", "v1", layer)
    assert skopeo_raw(tls_registry, "secure/app:v1") == manifest


def test_tls_without_ca_is_a_clear_error(tls_registry: RunningRegistry) -> None:
    opts = RegistryOptions(retry=FAST)
    with (
        RegistryClient(tls_registry.host, ANONYMOUS, opts) as c,
        pytest.raises(RegistryError) as info,
    ):
        c.ping()
    assert "TLS verification failed" in str(info.value) and "--ca-cert" in str(info.value)


def test_wrong_password(tls_registry: RunningRegistry) -> None:
    wrong = "definitely-Wrong-pw"
    opts = RegistryOptions(ca_file=tls_registry.ca_path, retry=FAST)
    c = RegistryClient(tls_registry.host, Credentials(USERNAME, wrong), opts)
    with c, pytest.raises(AuthError) as info:
        c.blob_exists("secure/app", Digest.of(b"x"))
    message = str(info.value)
    assert "401" in message and tls_registry.host in message and "bale login" in message
    assert wrong not in message and PASSWORD not in message


def test_token_auth(token_registry: RunningRegistry) -> None:
    assert token_registry.token_server is not None
    layer = os.urandom(900)
    with client(token_registry) as c:
        manifest = push_image(c, "tok/app", "v1", layer)
        assert c.get_manifest("tok/app", "v1").data == manifest
        assert c.mount_blob("tok/other", Digest.of(layer), "tok/app")
    granted = token_registry.token_server.scopes
    assert ["repository:tok/app:pull,push"] in granted
    assert ["repository:tok/app:pull", "repository:tok/other:pull,push"] in granted
    assert skopeo_raw(token_registry, "tok/app:v1") == manifest


def test_token_auth_wrong_password(token_registry: RunningRegistry) -> None:
    opts = RegistryOptions(retry=FAST)
    bad = Credentials(USERNAME, "nope-Nope-nope")
    with RegistryClient(token_registry.host, bad, opts) as c, pytest.raises(AuthError) as info:
        c.blob_exists("tok/app", Digest.of(b"x"))
    assert "refused user 'bale-user'" in str(info.value) and "nope-Nope" not in str(info.value)


@pytest.fixture
def helper_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    bindir, confdir = tmp_path / "bin", tmp_path / "docker"
    bindir.mkdir()
    confdir.mkdir()
    script = bindir / "docker-credential-test"
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = get ] || exit 1\nread server\necho "$server" > {tmp_path}/asked\n'
        f'printf \'{{"ServerURL":"%s","Username":"{USERNAME}","Secret":"{PASSWORD}"}}\' "$server"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("DOCKER_CONFIG", str(confdir))
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    yield confdir


def test_credential_helper(tls_registry: RunningRegistry, helper_config: Path) -> None:
    config = {"credHelpers": {tls_registry.host: "test"}}
    (helper_config / "config.json").write_text(json.dumps(config))
    opts = RegistryOptions(ca_file=tls_registry.ca_path, retry=FAST)
    with RegistryClient(tls_registry.host, None, opts) as c:
        c.ping()
        assert not c.blob_exists("secure/helper", Digest.of(b"none"))
    assert (helper_config.parent / "asked").read_text().strip() == tls_registry.host


def test_dropped_chunk_resumes(plain_registry: RunningRegistry, fault_proxy: FaultProxy) -> None:
    layer = os.urandom(6000)
    fault_proxy.arm(Fault("drop", "PATCH", "/plain/resume/", after=700))
    proxied = RunningRegistry(fault_proxy.host, "http", plain_registry.log_path)
    with client(proxied, chunk_threshold=1024, chunk_size=2000) as c:
        c.push_blob("plain/resume", blob(layer), opener(layer))
        out = io.BytesIO()
        c.get_blob("plain/resume", blob(layer), out)
    assert out.getvalue() == layer
    assert fault_proxy.fired["drop"] == 1
    # We ask where the session stands; registry 2.8 drops a session whose PATCH was cut
    # (status GET answers 404), so the client opens a fresh one and completes there.
    asked = [m for m, path in fault_proxy.requests if "/blobs/uploads/" in path and m == "GET"]
    sessions = [m for m, path in fault_proxy.requests if path.endswith("/blobs/uploads/")]
    assert len(asked) == 1 and len(sessions) == 2


def test_dropped_monolithic_put_recovers(
    plain_registry: RunningRegistry, fault_proxy: FaultProxy
) -> None:
    layer = os.urandom(3000)
    fault_proxy.arm(Fault("drop", "PUT", "/plain/mono/", after=1000))
    proxied = RunningRegistry(fault_proxy.host, "http", plain_registry.log_path)
    with client(proxied) as c:
        c.push_blob("plain/mono", blob(layer), opener(layer))
        assert c.blob_exists("plain/mono", Digest.of(layer))
    assert fault_proxy.fired["drop"] == 1


@pytest.mark.parametrize(
    "fault",
    [
        Fault("status", "HEAD", "/blobs/", times=2, status=500),
        Fault("status", "HEAD", "/blobs/", times=1, status=429, retry_after="1"),
        Fault("status", "POST", "/uploads/", times=2, status=503),
    ],
    ids=["500", "429", "503"],
)
def test_transient_statuses_are_retried(
    plain_registry: RunningRegistry, fault_proxy: FaultProxy, fault: Fault
) -> None:
    expected = fault.times
    fault_proxy.arm(fault)
    proxied = RunningRegistry(fault_proxy.host, "http", plain_registry.log_path)
    layer = os.urandom(500)
    with client(proxied) as c:
        push_image(c, "plain/retry", "v1", layer)
    assert fault_proxy.fired["status"] == expected


def test_retry_budget_exhausted(plain_registry: RunningRegistry, fault_proxy: FaultProxy) -> None:
    fault_proxy.arm(Fault("status", "HEAD", "/blobs/", times=100, status=502))
    proxied = RunningRegistry(fault_proxy.host, "http", plain_registry.log_path)
    with client(proxied) as c, pytest.raises(RegistryError) as info:
        c.blob_exists("plain/down", Digest.of(b"x"))
    message = str(info.value)
    assert "after 4 tries" in message and "HTTP 502" in message and "plain/down" in message
    assert fault_proxy.fired["status"] == 4


def test_stall_times_out_and_retries(
    plain_registry: RunningRegistry, fault_proxy: FaultProxy
) -> None:
    fault_proxy.arm(Fault("stall", "HEAD", "/blobs/", seconds=2.0))
    proxied = RunningRegistry(fault_proxy.host, "http", plain_registry.log_path)
    with client(proxied, timeouts=Timeouts(0.5, 0.5)) as c:
        assert not c.blob_exists("plain/stall", Digest.of(b"x"))
    assert fault_proxy.fired["stall"] == 1


def test_corrupted_download(plain_registry: RunningRegistry, fault_proxy: FaultProxy) -> None:
    layer = os.urandom(700)
    with client(plain_registry) as c:
        c.push_blob("plain/corrupt", blob(layer), opener(layer))
    fault_proxy.arm(Fault("corrupt", "GET", "/blobs/sha256", times=100))
    proxied = RunningRegistry(fault_proxy.host, "http", plain_registry.log_path)
    out = io.BytesIO()
    with client(proxied) as c, pytest.raises(DigestMismatch) as info:
        c.get_blob("plain/corrupt", blob(layer), out)
    assert str(Digest.of(layer)) in str(info.value)
    assert out.getvalue() == b""
