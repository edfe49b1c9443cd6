"""A tiny token server for the registry's ``auth.token`` mode.

It checks Basic credentials (GET) or the OAuth2 password grant (POST) and
signs an RS256 JWT granting every requested action, with the signing
certificate in the ``x5c`` header as distribution 2.8 expects.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt

from tests.integration.pki import KeyPair

ISSUER = "bale-test-issuer"
SERVICE = "bale-test-registry"


class TokenServer:
    def __init__(self, signer: KeyPair, username: str, password: str) -> None:
        self.signer, self.username, self.password = signer, username, password
        self.requests: Counter[str] = Counter()
        self.scopes: list[list[str]] = []
        self.expires_in = 300
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/token"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def issue(self, subject: str, scopes: list[str]) -> dict[str, object]:
        now = int(time.time())
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        claims = {
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + self.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        x5c = [base64.b64encode(self.signer.der()).decode()]
        token = jwt.encode(claims, self.signer.key, algorithm="RS256", headers={"x5c": x5c})
        return {"token": token, "access_token": token, "expires_in": self.expires_in}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def do_GET(self) -> None:
                server.requests["GET"] += 1
                query = parse_qs(urlsplit(self.path).query)
                if not self._basic_ok():
                    self._answer(401, {"errors": [{"code": "UNAUTHORIZED"}]})
                    return
                server.scopes.append(query.get("scope", []))
                self._answer(200, server.issue(server.username, query.get("scope", [])))

            def do_POST(self) -> None:
                server.requests["POST"] += 1
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode())
                ok = (
                    form.get("grant_type") == ["password"]
                    and form.get("username") == [server.username]
                    and form.get("password") == [server.password]
                )
                if not ok:
                    self._answer(401, {"error": "invalid_grant"})
                    return
                scopes = " ".join(form.get("scope", [])).split()
                server.scopes.append(scopes)
                self._answer(200, server.issue(server.username, scopes))

            def _basic_ok(self) -> bool:
                header = self.headers.get("Authorization", "")
                want = f"{server.username}:{server.password}".encode()
                return header == "Basic " + base64.b64encode(want).decode()

            def _answer(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
