"""RegistryClient against scripted HTTP exchanges (httpx.MockTransport)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from builder.errors import AuthError, DigestMismatch, RegistryError
from builder.model import OCI_LAYER, OCI_MANIFEST, Descriptor, Digest
from builder.registry.client import RegistryClient, RegistryOptions
from builder.registry.credentials import ANONYMOUS, Credentials
from builder.registry.endpoint import hostname, is_loopback
from builder.registry.failures import RetryPolicy, safe_url
from builder.registry.upload import with_query

Handler = Callable[[httpx.Request], httpx.Response]
DATA = bytes(range(256)) * 4
DESC = Descriptor(OCI_LAYER, Digest.of(DATA), len(DATA))


class Script:
    """Answers requests from a handler, recording them and every sleep."""

    def __init__(self, handler: Handler, ping: bool = True) -> None:
        self.handler = handler
        self.ping = ping
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []
        self.logged: list[tuple[str, str, int]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if self.ping and request.url.path == "/v2/" and not request.headers.get("Authorization"):
            return httpx.Response(200)
        return self.handler(request)

    def client(
        self, host: str = "reg.io", creds: Credentials = ANONYMOUS, **kw: object
    ) -> RegistryClient:
        options = RegistryOptions(
            retry=RetryPolicy(tries=3, base_delay=0.01),
            on_request=lambda *entry: self.logged.append(entry),
            **kw,  # type: ignore[arg-type]
        )
        http = httpx.Client(transport=httpx.MockTransport(self))
        return RegistryClient(host, creds, options, sleep=self.sleeps.append, http=http)

    def calls(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests if r.url.path != "/v2/"]


def sequence(*responses: httpx.Response | type[Exception]) -> Handler:
    queue: Iterator[httpx.Response | type[Exception]] = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        item = next(queue)
        if isinstance(item, type):
            raise item("scripted failure")
        return item

    return handler


@pytest.mark.parametrize(
    ("responses", "sleeps"),
    [
        ((httpx.Response(500), httpx.Response(200)), 1),
        ((httpx.Response(429, headers={"Retry-After": "1"}), httpx.Response(404)), 1),
        ((httpx.ConnectError, httpx.ReadTimeout, httpx.Response(200)), 2),
        ((httpx.Response(503), httpx.Response(502), httpx.Response(200)), 2),
    ],
)
def test_transient_failures_are_retried(
    responses: tuple[httpx.Response | type[Exception], ...], sleeps: int
) -> None:
    script = Script(sequence(*responses))
    script.client().blob_exists("a/b", DESC.digest)
    assert len(script.sleeps) == sleeps
    if responses[0].__class__ is httpx.Response and responses[0].status_code == 429:
        assert script.sleeps == [1.0]


def test_budget_exhausted_names_operation_and_status() -> None:
    script = Script(sequence(*[httpx.Response(503)] * 3))
    with pytest.raises(RegistryError) as info:
        script.client().blob_exists("a/b", DESC.digest)
    message = str(info.value)
    assert "after 3 tries" in message and "HTTP 503" in message and "reg.io/a/b" in message


def test_registry_error_body_is_reported() -> None:
    body = {"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]}
    script = Script(sequence(httpx.Response(404, json=body)))
    with pytest.raises(RegistryError) as info:
        script.client().get_manifest("a/b", "v1")
    assert "NAME_UNKNOWN: repository name not known" in str(info.value)
    assert len(script.requests) == 2


class UploadServer:
    """A registry upload endpoint that can fail once and report its offset."""

    def __init__(self, fail: str = "", range_style: str = "0-{}") -> None:
        self.received = b""
        self.fail = fail
        self.range_style = range_style
        self.put_url: httpx.URL | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        here = {"Location": "/upload/1?_state=opaque"}
        if request.method == "POST":
            return httpx.Response(202, headers=here)
        if request.method == "HEAD":
            return httpx.Response(404)
        if request.method == "GET":
            end = self.range_style.format(len(self.received) - 1)
            return httpx.Response(204, headers={**here, "Range": end})
        if request.method == self.fail:
            self.fail = ""
            self.received += request.content[:100]
            raise httpx.WriteError("connection dropped")
        self.received += request.content
        if request.method == "PATCH":
            return httpx.Response(202, headers={**here, "Range": f"0-{len(self.received) - 1}"})
        self.put_url = request.url
        return httpx.Response(201)


@pytest.mark.parametrize(
    ("threshold", "fail", "range_style"),
    [
        (4096, "", "0-{}"),
        (4096, "PUT", "0-{}"),
        (100, "", "0-{}"),
        (100, "PATCH", "0-{}"),
        (100, "PATCH", "bytes=0-{}"),
    ],
)
def test_upload_modes_and_resume(threshold: int, fail: str, range_style: str) -> None:
    server = UploadServer(fail, range_style)
    script = Script(server)
    client = script.client(chunk_threshold=threshold, chunk_size=300)
    client.push_blob("a/b", DESC, lambda: io.BytesIO(DATA))
    assert server.received == DATA
    assert server.put_url is not None
    assert str(server.put_url).endswith(f"/upload/1?_state=opaque&digest={DESC.digest}")
    methods = [r.method for r in script.requests if r.url.path != "/v2/"]
    assert ("PATCH" in methods) == (threshold < len(DATA))
    assert ("GET" in methods) == bool(fail)
    for request in script.requests:
        if request.method in ("PUT", "PATCH"):
            assert request.headers["Content-Type"] == "application/octet-stream"
            assert int(request.headers["Content-Length"]) == len(request.content)


def test_upload_restarts_when_session_is_gone() -> None:
    state = {"dropped": False}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "https://reg.io/up/x"})
        if request.method == "PUT" and not state["dropped"]:
            state["dropped"] = True
            raise httpx.RemoteProtocolError("server hung up")
        if request.method == "GET":
            return httpx.Response(404, json={"errors": [{"code": "BLOB_UPLOAD_UNKNOWN"}]})
        if request.method == "HEAD":
            return httpx.Response(404)
        assert request.content == DATA
        return httpx.Response(201)

    script = Script(handler)
    script.client().push_blob("a/b", DESC, lambda: io.BytesIO(DATA))
    assert [c.split()[0] for c in script.calls()] == ["POST", "PUT", "HEAD", "GET", "POST", "PUT"]


def test_manifest_push_and_get_verify_digests() -> None:
    body = b'{"schemaVersion":2}'
    good = str(Digest.of(body))
    bad = str(Digest.of(b"other"))
    script = Script(
        sequence(
            httpx.Response(201, headers={"Docker-Content-Digest": good}),
            httpx.Response(201, headers={"Docker-Content-Digest": bad}),
            httpx.Response(200, content=body, headers={"Content-Type": OCI_MANIFEST}),
            httpx.Response(200, content=body, headers={"Docker-Content-Digest": bad}),
            httpx.Response(200, content=b"tampered", headers={"Content-Type": OCI_MANIFEST}),
        )
    )
    client = script.client()
    assert client.push_manifest("a/b", "v1", OCI_MANIFEST, body) == Digest.of(body)
    with pytest.raises(DigestMismatch):
        client.push_manifest("a/b", "v1", OCI_MANIFEST, body)
    got = client.get_manifest("a/b", good)
    assert (got.data, got.media_type, str(got.digest)) == (body, OCI_MANIFEST, good)
    with pytest.raises(DigestMismatch):
        client.get_manifest("a/b", "v1")
    with pytest.raises(DigestMismatch):
        client.get_manifest("a/b", good)
    accept = script.requests[-1].headers["Accept"]
    assert OCI_MANIFEST in accept and "manifest.list.v2+json" in accept


def test_blob_redirect_drops_authorization_and_verifies() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "reg.io":
            if not request.headers.get("Authorization"):
                return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
            target = f"https://cdn.example{request.url.path}?sig=s3cr3t"
            return httpx.Response(307, headers={"Location": target})
        assert "Authorization" not in request.headers
        return httpx.Response(200, content=DATA if "good" in request.url.path else b"x" + DATA[1:])

    script = Script(handler)
    client = script.client(creds=Credentials("u", "pw"))
    out = io.BytesIO()
    client.get_blob("a/good", DESC, out)
    assert out.getvalue() == DATA
    bad = io.BytesIO(b"")
    with pytest.raises(DigestMismatch) as info:
        client.get_blob("a/bad", DESC, bad)
    assert bad.getvalue() == b"" and str(DESC.digest) in str(info.value)
    assert all("s3cr3t" not in url for _, url, _ in script.logged)


def test_basic_auth_never_over_plain_http_to_remote_host() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            raise httpx.ConnectError("no TLS here")
        return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})

    script = Script(handler, ping=False)
    client = script.client(host="remote.example:5000", creds=Credentials("u", "pw"), insecure=True)
    with pytest.raises(AuthError, match="plain HTTP"):
        client.blob_exists("a/b", DESC.digest)
    assert all("Authorization" not in r.headers for r in script.requests)


def test_loopback_falls_back_to_http_and_list_tags_pages() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "https":
            raise httpx.ConnectError("wrong version number")
        if request.url.params.get("last") == "b":
            return httpx.Response(200, json={"tags": ["c"]})
        link = '</v2/a/b/tags/list?n=2&last=b>; rel="next"'
        return httpx.Response(200, json={"tags": ["a", "b"]}, headers={"Link": link})

    script = Script(handler, ping=False)
    client = script.client(host="127.0.0.1:5000")
    assert client.list_tags("a/b") == ["a", "b", "c"]
    assert client.base_url == httpx.URL("http://127.0.0.1:5000/")


def test_mount_accepted_or_cancelled() -> None:
    script = Script(
        sequence(
            httpx.Response(201),
            httpx.Response(202, headers={"Location": "/v2/a/b/blobs/uploads/u1"}),
            httpx.Response(204),
        )
    )
    client = script.client()
    assert client.mount_blob("a/b", DESC.digest, "c/d") is True
    assert client.mount_blob("a/b", DESC.digest, "c/d") is False
    assert script.calls()[-1] == "DELETE /v2/a/b/blobs/uploads/u1"
    assert script.requests[1].url.params["from"] == "c/d"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://r.io/v2/a/blobs/uploads/1?_state=xyz&digest=sha256:ab",
            "https://r.io/v2/a/blobs/uploads/1?_state=<redacted>&digest=sha256:ab",
        ),
        ("https://cdn/x?X-Amz-Signature=abc", "https://cdn/x?X-Amz-Signature=<redacted>"),
        ("http://h:5000/v2/", "http://h:5000/v2/"),
    ],
)
def test_safe_url(url: str, shown: str) -> None:
    assert safe_url(httpx.URL(url)) == shown


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://r/u/1", "https://r/u/1?digest=d"),
        ("https://r/u/1?_state=a%3D", "https://r/u/1?_state=a%3D&digest=d"),
    ],
)
def test_with_query_keeps_opaque_location(url: str, expected: str) -> None:
    assert str(with_query(httpx.URL(url), "digest", "d")) == expected


@pytest.mark.parametrize(
    ("host", "name", "loopback"),
    [
        ("127.0.0.1:5000", "127.0.0.1", True),
        ("127.8.9.1", "127.8.9.1", True),
        ("localhost:80", "localhost", True),
        ("[::1]:5000", "::1", True),
        ("ghcr.io", "ghcr.io", False),
        ("10.0.0.1:5000", "10.0.0.1", False),
    ],
)
def test_loopback_detection(host: str, name: str, loopback: bool) -> None:
    assert hostname(host) == name
    assert is_loopback(host) is loopback


def test_request_log_has_no_secrets() -> None:
    header = 'Bearer realm="https://auth.example/token",service="s"'

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example":
            return httpx.Response(200, json={"token": "tok-SECRET"})
        if request.headers.get("Authorization") != "Bearer tok-SECRET":
            return httpx.Response(401, headers={"WWW-Authenticate": header})
        return httpx.Response(200, content=json.dumps({"tags": []}).encode())

    script = Script(handler)
    script.client(creds=Credentials("u", "pw-SECRET")).list_tags("a/b")
    text = repr(script.logged)
    assert "SECRET" not in text and "auth.example/token" in text
