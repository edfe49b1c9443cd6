"""A small in-memory registry that speaks the OCI 1.1 referrers API (a fake, for tests).

Debian's docker-registry 2.8.2 has no referrers API and no Debian or PyPI
package ships zot or distribution 3, so the API path is tested against this:
plain HTTP, no auth, monolithic and chunked blob uploads, manifests by tag or
digest, ``GET /v2/<name>/referrers/<digest>`` and ``OCI-Subject`` on a push
with a subject. ``refuse_artifacts`` makes it answer MANIFEST_INVALID to any
manifest with a ``subject``, as a registry without OCI 1.1 support may.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

INDEX = "application/vnd.oci.image.index.v1+json"
_ROUTE = re.compile(
    r"^/v2/(?P<name>.+)/(?P<kind>blobs/uploads|blobs|manifests|referrers|tags)/?(?P<ref>[^/]*)$"
)


class ReferrersRegistry:
    """State shared by the handler threads: blobs, manifests, tags, pending uploads."""

    def __init__(self, refuse_artifacts: bool = False) -> None:
        self.refuse_artifacts = refuse_artifacts
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[str, bytes]] = {}
        self.tags: dict[tuple[str, str], str] = {}
        self.uploads: dict[str, bytearray] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def tag_names(self, name: str) -> list[str]:
        return sorted(tag for (repo, tag) in self.tags if repo == name)

    def referrers(self, subject: str) -> list[dict[str, Any]]:
        found = []
        for digest, (media_type, data) in sorted(self.manifests.items()):
            document = json.loads(data)
            if (document.get("subject") or {}).get("digest") != subject:
                continue
            kind = document.get("artifactType") or document["config"]["mediaType"]
            entry = {"mediaType": media_type, "digest": digest, "size": len(data)}
            entry["artifactType"] = kind
            if document.get("annotations"):
                entry["annotations"] = document["annotations"]
            found.append(entry)
        return found

    @contextmanager
    def running(self) -> Iterator[ReferrersRegistry]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _handler(state: ReferrersRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            state.requests.append(
                f"{getattr(self, 'command', '')} {getattr(self, 'path', '')} {format % args}"
            )

        def _send(
            self, status: int, body: bytes = b"", headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
            self._send(status, body, {"Content-Type": "application/json"})

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _route(self) -> tuple[str, str, str, dict[str, list[str]]] | None:
            url = urlsplit(self.path)
            if url.path == "/v2/":
                self._send(200, b"{}", {"Content-Type": "application/json"})
                return None
            match = _ROUTE.match(url.path)
            if match is None:
                self._error(404, "NAME_UNKNOWN", "no such route")
                return None
            return match["name"], match["kind"], match["ref"], parse_qs(url.query)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            route = self._route()
            if route is None:
                return
            name, kind, ref, _ = route
            with state.lock:
                if kind == "blobs" and ref in state.blobs:
                    data = state.blobs[ref]
                    self._send(200, data, {"Docker-Content-Digest": ref})
                elif kind == "manifests":
                    digest = state.tags.get((name, ref), ref)
                    if digest not in state.manifests:
                        self._error(404, "MANIFEST_UNKNOWN", "manifest unknown")
                        return
                    media_type, data = state.manifests[digest]
                    headers = {"Content-Type": media_type, "Docker-Content-Digest": digest}
                    self._send(200, data, headers)
                elif kind == "referrers":
                    index = {
                        "schemaVersion": 2,
                        "mediaType": INDEX,
                        "manifests": state.referrers(ref),
                    }
                    self._send(200, json.dumps(index).encode(), {"Content-Type": INDEX})
                elif kind == "tags":
                    body = json.dumps({"name": name, "tags": state.tag_names(name)}).encode()
                    self._send(200, body, {"Content-Type": "application/json"})
                else:
                    self._error(404, "BLOB_UNKNOWN", "blob unknown")

        def do_POST(self) -> None:
            route = self._route()
            if route is None:
                return
            name, _, _, _ = route
            self._body()
            session = uuid.uuid4().hex
            with state.lock:
                state.uploads[session] = bytearray()
            location = f"/v2/{name}/blobs/uploads/{session}"
            self._send(202, b"", {"Location": location, "Range": "0-0"})

        def do_PATCH(self) -> None:
            route = self._route()
            if route is None:
                return
            name, _, session, _ = route
            data = self._body()
            with state.lock:
                state.uploads[session] += data
                end = len(state.uploads[session]) - 1
            location = f"/v2/{name}/blobs/uploads/{session}"
            self._send(202, b"", {"Location": location, "Range": f"0-{end}"})

        def do_PUT(self) -> None:
            route = self._route()
            if route is None:
                return
            name, kind, ref, query = route
            data = self._body()
            if kind == "blobs/uploads":
                with state.lock:
                    whole = bytes(state.uploads.pop(ref, bytearray()) + data)
                    if _digest(whole) != query.get("digest", [""])[0]:
                        self._error(400, "DIGEST_INVALID", "digest mismatch")
                        return
                    state.blobs[_digest(whole)] = whole
                self._send(201, b"", {"Location": f"/v2/{name}/blobs/{_digest(whole)}"})
                return
            self._put_manifest(name, ref, data)

        def _put_manifest(self, name: str, ref: str, data: bytes) -> None:
            document = json.loads(data)
            subject = (document.get("subject") or {}).get("digest")
            if subject and state.refuse_artifacts:
                self._error(400, "MANIFEST_INVALID", "artifacts with a subject are not accepted")
                return
            digest = _digest(data)
            media_type = self.headers.get("Content-Type", "")
            with state.lock:
                state.manifests[digest] = (media_type, data)
                if not ref.startswith("sha256:"):
                    state.tags[(name, ref)] = digest
            headers = {
                "Docker-Content-Digest": digest,
                "Location": f"/v2/{name}/manifests/{digest}",
            }
            if subject:
                headers["OCI-Subject"] = subject
            self._send(201, b"", headers)

    return Handler
