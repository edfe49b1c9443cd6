"""A registry that echoes what it was sent must not get the credentials printed.

The server here answers every authorised request with 403 and a body that
repeats the Authorization header, raw and decoded, as JSON errors or as
plain text (the way some proxies and registries do).
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from builder.cli.main import main
from tests.helpers import write_toml

USER, PASSWORD, TOKEN = "alice", "echo-Pa55-word", "tok.en-VALUE-0123456789"


class Echo(BaseHTTPRequestHandler):
    scheme = "basic"
    as_json = True

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        sent = self.headers.get("Authorization", "")
        if self.path.startswith("/token"):
            return self._send(200, json.dumps({"token": TOKEN}), "application/json")
        if not sent:
            host = self.headers["Host"]
            challenge = (
                'Basic realm="echo"'
                if self.scheme == "basic"
                else f'Bearer realm="http://{host}/token",service="echo"'
            )
            return self._send(401, "", "text/plain", {"WWW-Authenticate": challenge})
        decoded = ""
        if sent.startswith("Basic "):
            decoded = base64.b64decode(sent[6:]).decode()
        echo = f"you sent {sent} ({decoded}) token={sent.split(' ', 1)[1]}"
        if self.as_json:
            body = json.dumps({"errors": [{"code": "DENIED", "message": echo}]})
            return self._send(403, body, "application/json")
        return self._send(403, echo, "text/plain")

    def _send(
        self, status: int, body: str, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        data = body.encode()
        self.send_response(status, f"Forbidden {self.headers.get('Authorization', '')}")
        for name, value in {"Content-Type": kind, **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = _answer


def serve(scheme: str, as_json: bool) -> Iterator[str]:
    handler = type("Handler", (Echo,), {"scheme": scheme, "as_json": as_json})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=[("basic", True), ("basic", False), ("bearer", True), ("bearer", False)])
def echo(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from serve(*request.param)


def secrets_shown(text: str) -> list[str]:
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return [s for s in (PASSWORD, basic, TOKEN) if s.lower() in text.lower()]


def test_login_error_hides_echoed_credentials(
    echo: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    monkeypatch.setenv("DOCKER_CONFIG", "/nonexistent-bale-test")
    assert main(["login", echo, "-u", USER, "--password-stdin"]) == 1
    err = capsys.readouterr().err
    assert "HTTP 403" in err and "<redacted>" in err
    assert secrets_shown(err) == []


def test_push_error_hides_echoed_credentials(
    echo: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {echo: {"auth": auth}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    spec = write_toml(tmp_path, '[image]\n[[layers]]\ncontent = [{ dst = "/x", text = "x" }]\n')
    assert main(["build", "-q", "-f", str(spec), "-o", f"docker://{echo}/team/app:v1"]) == 1
    err = capsys.readouterr().err
    assert "HTTP 403" in err
    assert secrets_shown(err) == []
