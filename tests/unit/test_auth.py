"""Credentials lookup, login/logout, challenge parsing, token fetching and caching."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from builder.errors import AuthError
from builder.registry.auth import (
    Authenticator,
    Challenge,
    Token,
    TokenRequest,
    fetch_token,
    parse_challenges,
)
from builder.registry.credentials import ANONYMOUS, Credentials, find_credentials, login, logout
from builder.registry.endpoint import is_secure


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('Basic realm="reg"', [Challenge("basic", {"realm": "reg"})]),
        (
            'Bearer realm="https://a/token",service="reg.io",scope="repository:x/y:pull,push"',
            [
                Challenge(
                    "bearer",
                    {
                        "realm": "https://a/token",
                        "service": "reg.io",
                        "scope": "repository:x/y:pull,push",
                    },
                )
            ],
        ),
        (
            'bearer realm=https://a/t, error="invalid_token"',
            [Challenge("bearer", {"realm": "https://a/t", "error": "invalid_token"})],
        ),
        (
            'Bearer realm="r", Basic realm="b"',
            [Challenge("bearer", {"realm": "r"}), Challenge("basic", {"realm": "b"})],
        ),
        ('Basic realm="a \\"quoted\\" one"', [Challenge("basic", {"realm": 'a "quoted" one'})]),
        ("Negotiate", [Challenge("negotiate", {})]),
        ("", []),
    ],
)
def test_parse_challenges(header: str, expected: list[Challenge]) -> None:
    assert parse_challenges(header) == expected


@pytest.mark.parametrize(
    "creds", [Credentials("u", "hunter2"), Credentials(identity_token="hunter2")]
)
def test_credentials_repr_hides_secrets(creds: Credentials) -> None:
    assert "hunter2" not in repr(creds) and "hunter2" not in str(creds)
    assert "hunter2" not in repr(Token("hunter2", 1.0))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "docker").mkdir()
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    return tmp_path


def helper(env: Path, name: str, username: str, secret: str) -> Path:
    """A docker-credential-<name> that answers get and records store/erase input."""
    script = env / "bin" / f"docker-credential-{name}"
    script.write_text(
        "#!/bin/sh\n"
        f"cat > {env}/{name}.$1\n"
        f'[ "$1" = get ] && printf \'{{"Username":"{username}","Secret":"{secret}"}}\'\n'
        "exit 0\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("config", "host", "expected"),
    [
        (
            {"auths": {"https://index.docker.io/v1/": {"auth": b64("hub:pw")}}},
            "docker.io",
            Credentials("hub", "pw"),
        ),
        (
            {"auths": {"https://ghcr.io": {"auth": b64("g:p:w")}}},
            "ghcr.io",
            Credentials("g", "p:w"),
        ),
        (
            {"auths": {"reg:5000": {"auth": b64("u:p"), "identitytoken": "idt"}}},
            "reg:5000",
            Credentials("u", "p", "idt"),
        ),
        ({"auths": {"other.io": {"auth": b64("u:p")}}}, "ghcr.io", ANONYMOUS),
        ({}, "ghcr.io", ANONYMOUS),
    ],
)
def test_docker_config_auths(
    env: Path, config: dict[str, object], host: str, expected: Credentials
) -> None:
    write(env / "docker" / "config.json", config)
    assert find_credentials(host) == expected


@pytest.mark.parametrize(
    ("config", "username", "expected"),
    [
        ({"credHelpers": {"ghcr.io": "t"}}, "u", Credentials("u", "s3")),
        ({"credsStore": "t"}, "u", Credentials("u", "s3")),
        ({"credsStore": "t"}, "<token>", Credentials(identity_token="s3")),
    ],
)
def test_credential_helpers(
    env: Path, config: dict[str, object], username: str, expected: Credentials
) -> None:
    helper(env, "t", username, "s3")
    write(env / "docker" / "config.json", config)
    assert find_credentials("ghcr.io") == expected
    assert (env / "t.get").read_text() == "ghcr.io"


def test_missing_helper_is_clear(env: Path) -> None:
    write(env / "docker" / "config.json", {"credsStore": "absent"})
    with pytest.raises(AuthError, match=r"docker-credential-absent.*not on PATH"):
        find_credentials("ghcr.io")


def test_containers_auth_files(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(env / "run" / "containers" / "auth.json", {"auths": {"q.io": {"auth": b64("x:y")}}})
    assert find_credentials("q.io") == Credentials("x", "y")
    write(env / "a.json", {"auths": {"q.io": {"auth": b64("first:z")}}})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(env / "a.json"))
    assert find_credentials("q.io") == Credentials("first", "z")


def test_bad_auth_value_is_clear_and_secret_free(env: Path) -> None:
    write(env / "docker" / "config.json", {"auths": {"q.io": {"auth": b64("nocolon")}}})
    with pytest.raises(AuthError, match="not base64 'user:password'") as info:
        find_credentials("q.io")
    assert "nocolon" not in str(info.value)


def test_login_logout_file(env: Path) -> None:
    config = env / "docker" / "config.json"
    write(config, {"auths": {"keep.io": {"auth": b64("k:k")}}, "psFormat": "x"})
    login("docker.io", "me", "pw")
    data = json.loads(config.read_text())
    assert data["auths"]["https://index.docker.io/v1/"] == {"auth": b64("me:pw")}
    assert data["psFormat"] == "x" and "keep.io" in data["auths"]
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert find_credentials("index.docker.io") == Credentials("me", "pw")
    assert logout("docker.io") is True
    assert "https://index.docker.io/v1/" not in json.loads(config.read_text())["auths"]
    assert logout("docker.io") is False


def test_login_through_creds_store(env: Path) -> None:
    helper(env, "st", "u", "s")
    config = env / "docker" / "config.json"
    write(config, {"credsStore": "st"})
    login("reg.io", "me", "pw")
    assert json.loads(config.read_text())["auths"] == {"reg.io": {}}
    stored = json.loads((env / "st.store").read_text())
    assert stored == {"ServerURL": "reg.io", "Username": "me", "Secret": "pw"}
    assert "pw" not in config.read_text()
    assert logout("reg.io") is True
    assert (env / "st.erase").read_text() == "reg.io"


Handler = Callable[[httpx.Request], httpx.Response]


def recorder(
    handler: Handler,
) -> tuple[list[httpx.Request], Callable[[httpx.Request], httpx.Response]]:
    seen: list[httpx.Request] = []
    client = httpx.Client(transport=httpx.MockTransport(handler))

    def send(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return client.send(request)

    return seen, send


CHALLENGE = {"realm": "https://auth.example/token", "service": "reg"}
SCOPES = ("repository:a:pull", "repository:b:pull,push")


@pytest.mark.parametrize(
    ("creds", "post_status", "methods"),
    [
        (ANONYMOUS, 200, ["GET"]),
        (Credentials("u", "pw"), 200, ["POST"]),
        (Credentials("u", "pw"), 405, ["POST", "GET"]),
        (Credentials("u", "pw"), 401, ["POST", "GET"]),
        (Credentials(identity_token="idt"), 200, ["POST"]),
        (Credentials(identity_token="idt"), 404, ["POST", "GET"]),
    ],
)
def test_fetch_token_flows(creds: Credentials, post_status: int, methods: list[str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(post_status, json={"access_token": "tok-post"})
        return httpx.Response(200, json={"token": "tok-get", "expires_in": 300})

    seen, send = recorder(handler)
    token = fetch_token(send, TokenRequest(CHALLENGE, SCOPES, creds), is_secure, 1000.0)
    assert [r.method for r in seen] == methods
    assert token.value == ("tok-post" if methods == ["POST"] else "tok-get")
    assert token.expires_at == 1000.0 + (60 if methods == ["POST"] else 300)
    get = next((r for r in seen if r.method == "GET"), None)
    if get is not None:
        assert get.url.params.get_list("scope") == list(SCOPES)
        assert get.url.params["service"] == "reg"
        has_basic = get.headers.get("Authorization") == "Basic " + b64("u:pw")
        assert has_basic == bool(creds.password)
    post = next((r for r in seen if r.method == "POST"), None)
    if post is not None:
        form = parse_qs(post.content.decode())
        grant = "refresh_token" if creds.identity_token else "password"
        assert form["grant_type"] == [grant] and form["scope"] == [" ".join(SCOPES)]


def test_token_refusal_names_user_not_password() -> None:
    _, send = recorder(lambda r: httpx.Response(401, json={}))
    request = TokenRequest(CHALLENGE, SCOPES, Credentials("alice", "pw-secret"))
    with pytest.raises(AuthError) as info:
        fetch_token(send, request, is_secure, 0.0)
    message = str(info.value)
    assert "alice" in message and "pw-secret" not in message and "auth.example/token" in message


def test_no_credentials_to_plain_http_realm() -> None:
    _, send = recorder(lambda r: httpx.Response(200, json={"token": "t"}))
    challenge = {"realm": "http://auth.example/token"}
    with pytest.raises(AuthError, match="plain HTTP"):
        fetch_token(send, TokenRequest(challenge, (), Credentials("u", "p")), is_secure, 0.0)
    token = fetch_token(send, TokenRequest(challenge, (), ANONYMOUS), is_secure, 0.0)
    assert token.value == "t"


def bearer_401() -> httpx.Response:
    header = 'Bearer realm="https://auth.example/token",service="reg"'
    return httpx.Response(401, headers={"WWW-Authenticate": header})


def test_authenticator_caches_refreshes_and_retries() -> None:
    issued: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        issued.append(f"t{len(issued)}")
        return httpx.Response(200, json={"token": issued[-1], "expires_in": 100})

    now = [0.0]
    _, send = recorder(handler)
    auth = Authenticator("reg.io", ANONYMOUS, send, is_secure, clock=lambda: now[0])
    wanted = frozenset({"repository:a:pull"})
    first = httpx.Request("GET", "https://reg.io/v2/a/tags/list")
    response = bearer_401()
    response.request = first
    assert auth.handle_unauthorized(response, wanted) is True

    def authorize() -> str:
        request = httpx.Request("GET", "https://reg.io/v2/")
        auth.authorize(request, wanted)
        return request.headers["Authorization"]

    assert authorize() == "Bearer t0"
    assert authorize() == "Bearer t0"
    now[0] = 96.0
    assert authorize() == "Bearer t1"
    rejected = bearer_401()
    rejected.request = httpx.Request(
        "GET", "https://reg.io/v2/", headers={"Authorization": "Bearer t1"}
    )
    assert auth.handle_unauthorized(rejected, wanted) is True
    assert authorize() == "Bearer t2"
    assert auth.handle_unauthorized(rejected, wanted) is True
    assert auth.handle_unauthorized(rejected, wanted) is False


def test_authenticator_basic_rules() -> None:
    _, send = recorder(lambda r: httpx.Response(500))
    auth = Authenticator("reg.io", Credentials("u", "p"), send, is_secure)
    response = httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    response.request = httpx.Request("GET", "https://reg.io/v2/")
    assert auth.handle_unauthorized(response, frozenset()) is True
    secure = httpx.Request("GET", "https://reg.io/v2/")
    auth.authorize(secure, frozenset())
    assert secure.headers["Authorization"] == "Basic " + b64("u:p")
    with pytest.raises(AuthError, match="plain HTTP") as info:
        auth.authorize(httpx.Request("GET", "http://reg.io/v2/"), frozenset())
    assert "Basic" not in str(info.value)
    local = Authenticator("127.0.0.1:5000", Credentials("u", "p"), send, is_secure)
    local.learn(response)
    plain_loopback = httpx.Request("GET", "http://127.0.0.1:5000/v2/")
    local.authorize(plain_loopback, frozenset())
    assert "Authorization" in plain_loopback.headers
    sent = httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    sent.request = secure
    assert auth.handle_unauthorized(sent, frozenset()) is False


def test_parallel_requests_share_one_token_fetch() -> None:
    import threading
    import time as clock

    fetched: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        fetched.append(1)
        clock.sleep(0.05)  # long enough for every thread to ask while the first waits
        return httpx.Response(200, json={"token": "shared", "expires_in": 100})

    _, send = recorder(handler)
    auth = Authenticator("reg.io", ANONYMOUS, send, is_secure)
    wanted = frozenset({"repository:a:push,pull"})
    response = bearer_401()
    response.request = httpx.Request("GET", "https://reg.io/v2/a/blobs/x")
    assert auth.handle_unauthorized(response, wanted) is True
    headers: list[str] = []

    def upload() -> None:
        request = httpx.Request("PUT", "https://reg.io/v2/a/blobs/uploads/1")
        auth.authorize(request, wanted)
        headers.append(request.headers["Authorization"])

    threads = [threading.Thread(target=upload) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert headers == ["Bearer shared"] * 4
    assert len(fetched) == 1
