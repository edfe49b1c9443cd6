"""Python wheels for tests, fetched once per machine, served by a local PEP 503 simple index.

``wheelhouse()`` runs ``pip download`` on first use (the only time the public
index is reached) into ``/var/tmp/bale-tests`` (or ``BALE_TEST_WHEELS``) and
reuses it later. ``SimpleIndex`` serves a directory of files on 127.0.0.1,
optionally behind basic auth, and can serve wrong bytes for named files.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from tests.conftest import made_once

# What the tests install: pure (click), a C extension for both machines
# (MarkupSafe, cp311 as Debian bookworm's Python is 3.11), a console script
# (pyflakes), and build backends for test projects and sdists.
PURE = (
    "click==8.1.7",
    "pyflakes==3.2.0",
    "flit_core==3.9.0",
    "setuptools==69.5.1",
    "wheel==0.43.0",
)
BINARY = ("markupsafe==2.1.5",)
MACHINES = ("manylinux2014_x86_64", "manylinux2014_aarch64")
VERSION = "v1"


def wheelhouse() -> Path:
    """The downloaded wheels, made on first use and shared by later test sessions."""
    base = Path(os.environ.get("BALE_TEST_WHEELS", "/var/tmp/bale-tests"))
    return made_once(base, f"wheels-{VERSION}", _download)


def _download(root: Path) -> str:
    root.mkdir()
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(root)]
    commands = [[*pip, "--only-binary=:all:", *PURE]]
    for machine in MACHINES:
        target = ["--platform", machine, "--python-version", "3.11", "--abi", "cp311"]
        commands.append([*pip, "--only-binary=:all:", *target, "--implementation", "cp", *BINARY])
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            pytest.fail(f"pip download failed:\n{result.stderr[-2000:]}")
    return "\n".join(PURE + BINARY) + "\n"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def project_of(filename: str) -> str:
    if filename.endswith(".whl"):
        return str(parse_wheel_filename(filename)[0])
    return str(parse_sdist_filename(filename)[0])


class SimpleIndex:
    """A PEP 503 index of ``dirs`` on 127.0.0.1 (``url`` ends in /simple)."""

    def __init__(self, *dirs: Path, auth: tuple[str, str] | None = None) -> None:
        self.files = {
            p.name: p
            for d in dirs
            for p in sorted(d.iterdir())
            if p.suffix in (".whl", ".gz", ".zip")
        }
        self.auth = auth
        self.tampered: set[str] = set()
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/simple"

    def file_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/files/{name}"

    def page(self, project: str) -> bytes | None:
        links = [
            f'<a href="/files/{html.escape(n)}#sha256={sha256(p)}">{html.escape(n)}</a><br/>'
            for n, p in self.files.items()
            if canonicalize_name(project_of(n)) == project
        ]
        if not links:
            return None
        return ("<!DOCTYPE html><html><body>" + "\n".join(links) + "</body></html>").encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        index = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                index.requests.append(f"{self.path} {self.headers.get('Authorization', '')}")
                if index.auth is not None:
                    token = base64.b64encode(":".join(index.auth).encode()).decode()
                    if self.headers.get("Authorization") != f"Basic {token}":
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="test"')
                        self.end_headers()
                        return
                body = self._body()
                if body is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                kind = (
                    "text/html" if self.path.startswith("/simple") else "application/octet-stream"
                )
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes | None:
                parts = self.path.strip("/").split("/")
                if len(parts) == 2 and parts[0] == "simple":
                    return index.page(parts[1])
                if len(parts) == 2 and parts[0] == "files" and parts[1] in index.files:
                    data = index.files[parts[1]].read_bytes()
                    return data[:-1] + bytes([data[-1] ^ 1]) if parts[1] in index.tampered else data
                return None

        return Handler

    @contextmanager
    def running(self) -> Iterator[SimpleIndex]:
        self.thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
