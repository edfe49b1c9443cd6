"""The network edge for Python files: index pages listed, files downloaded into the cache.

A file is streamed to a temp file beside the cache, hashed on the way, and
renamed to ``blobs/sha256/<hex>`` only when its sha256 is the locked one, so
a file with a wrong hash is never cached nor installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urldefrag, urljoin

from builder.atomic import atomic_write
from builder.errors import PackageError
from builder.layer.cache import hash_file
from builder.layer.python.indexes import Index, shown

if TYPE_CHECKING:
    import httpx

_JSON = "application/vnd.pypi.simple.v1+json"
_ACCEPT = f"{_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
TIMEOUT = (60.0, 15.0)  # read, connect


def _http_error() -> tuple[type[Exception], ...]:
    """What httpx raises for a failed exchange or a URL it cannot use."""
    import httpx

    return (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError)


@dataclass(frozen=True, slots=True)
class IndexFile:
    """One file an index lists: its name, absolute URL, sha256 (when given) and index.

    A file remembered from an earlier build has no URL: it is used only while
    its blob is in the cache.
    """

    filename: str
    url: str
    sha256: str
    index: Index | None = None


class _Links(HTMLParser):
    """The anchors of a PEP 503 project page: (href, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href") or ""

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.links.append((self._href, data.strip()))
            self._href = None


class Fetcher:
    """Lists project files on the indexes and fetches locked files into ``cache``."""

    def __init__(self, indexes: tuple[Index, ...], cache: Path, where: str) -> None:
        self.indexes, self.where = indexes, where
        self.blobs = cache / "blobs" / "sha256"
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        """Made on first use: a warm build asks no index."""
        if self._client is None:
            import httpx  # only when an index is asked: a warm build does without

            timeout = httpx.Timeout(TIMEOUT[0], connect=TIMEOUT[1])
            self._client = httpx.Client(timeout=timeout, follow_redirects=True)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _get(self, url: str, index: Index | None, **headers: str) -> httpx.Response:
        auth = index.auth_for(url) if index is not None else None
        try:
            response = self.client.get(url, auth=auth, headers=headers)
        except _http_error() as exc:
            raise PackageError(
                f"{self.where}: cannot reach {shown(url)}: {type(exc).__name__}"
            ) from None
        if response.status_code in (401, 403):
            raise PackageError(
                f"{self.where}: {shown(url)} answered {response.status_code}: give credentials "
                "for this index in ~/.netrc (or NETRC) or in the index URL"
            )
        return response

    def files(self, project: str) -> list[IndexFile]:
        """Every file of ``project`` on every index, in index order."""
        found: list[IndexFile] = []
        for index in self.indexes:
            page = f"{index.url}/{project}/"
            response = self._get(page, index, accept=_ACCEPT)
            if response.status_code == 404:
                continue
            if response.status_code != 200:
                raise PackageError(f"{self.where}: {shown(page)} answered {response.status_code}")
            try:
                found += _parse(response, index)
            except (ValueError, KeyError, TypeError, AttributeError):
                raise PackageError(
                    f"{self.where}: {shown(page)} is not a simple index page (PEP 503 or 691)"
                ) from None
        return found

    def _listing(self, project: str, version: str, hashes: list[str]) -> Path:
        key = json.dumps([[i.url for i in self.indexes], project, version, sorted(hashes)])
        return (
            self.blobs.parent.parent / "python" / f"{hashlib.sha256(key.encode()).hexdigest()}.json"
        )

    def remembered(self, project: str, version: str, hashes: list[str]) -> list[IndexFile]:
        """The files an earlier build found for this pin (names and hashes only, no URLs)."""
        try:
            rows = json.loads(self._listing(project, version, hashes).read_bytes())
            return [IndexFile(str(name), "", str(sha)) for name, sha in rows]
        except (OSError, ValueError, TypeError, RecursionError):
            return []

    def remember(
        self, project: str, version: str, hashes: list[str], files: list[IndexFile]
    ) -> None:
        """Keep the names and hashes of ``files`` so a warm build asks no index."""
        path = self._listing(project, version, hashes)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, sync=False) as out:
            out.write(json.dumps(sorted([f.filename, f.sha256] for f in files)).encode())

    def cached(self, sha256: str) -> Path | None:
        """The cached file of this hash, re-hashed (a damaged one is removed)."""
        path = self.blobs / sha256
        if not path.exists():
            return None
        if hash_file(path)[0] == sha256:
            os.utime(path)  # used: `bale cache prune` keeps it
            return path
        path.unlink(missing_ok=True)
        return None

    def fetch(self, url: str, sha256: str, index: Index | None, name: str) -> Path:
        """The file at ``url`` in the cache: downloaded when missing, kept only if its hash fits."""
        hit = self.cached(sha256)
        if hit is not None:
            return hit
        self.blobs.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".python-", suffix=".tmp", dir=self.blobs)
        try:
            hasher = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, self._stream(url, index) as response:
                for chunk in response.iter_bytes(1 << 20):
                    hasher.update(chunk)
                    out.write(chunk)
            if hasher.hexdigest() != sha256:
                raise PackageError(
                    f"{self.where}: {name} from {shown(url)} has sha256 {hasher.hexdigest()}, "
                    f"but the lock says {sha256}; the file changed or the lock is wrong: "
                    "lock again, and check where the file comes from"
                )
            os.replace(tmp, self.blobs / sha256)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return self.blobs / sha256

    @contextlib.contextmanager
    def _stream(self, url: str, index: Index | None) -> Iterator[httpx.Response]:
        auth = index.auth_for(url) if index is not None else None
        try:
            with self.client.stream("GET", url, auth=auth) as response:
                if response.status_code != 200:
                    raise PackageError(
                        f"{self.where}: {shown(url)} answered {response.status_code}"
                    )
                yield response
        except _http_error() as exc:
            raise PackageError(
                f"{self.where}: cannot download {shown(url)}: {type(exc).__name__}"
            ) from None


def _parse(response: httpx.Response, index: Index) -> list[IndexFile]:
    base = str(response.url)
    if response.headers.get("content-type", "").startswith(_JSON):
        files = response.json().get("files", [])
        return [
            IndexFile(
                f["filename"], urljoin(base, f["url"]), f.get("hashes", {}).get("sha256", ""), index
            )
            for f in files
            if isinstance(f, dict) and "filename" in f and "url" in f
        ]
    parser = _Links()
    parser.feed(response.text)
    result = []
    for href, text in parser.links:
        url, fragment = urldefrag(urljoin(base, href))
        sha = fragment.split("=", 1)[1] if fragment.startswith("sha256=") else ""
        name = text or url.rsplit("/", 1)[-1]
        result.append(IndexFile(name, url, sha, index))
    return result
