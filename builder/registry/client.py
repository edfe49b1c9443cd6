"""A client for one registry host speaking the OCI distribution API.

Blobs go before the manifests that name them; every body can be re-read so
any request can be retried; every digest the registry hands back is checked.
See docs/registries.md for the auth lookup order, TLS rules and retries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO

import httpx

from builder.errors import BaleError, DigestMismatch, RegistryError
from builder.model import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Descriptor, Digest
from builder.reference import DOCKER_HUB, DOCKER_HUB_API
from builder.registry import endpoint
from builder.registry.answers import ACCEPT_ENCODING, json_answer, json_object, wrong_type
from builder.registry.auth import Authenticator, Scopes, repository_scope, scopes
from builder.registry.credentials import Credentials, find_credentials
from builder.registry.download import download
from builder.registry.options import RegistryOptions, Timeouts
from builder.registry.transport import Call, Transport
from builder.registry.trust import LazyTrust
from builder.registry.upload import BlobUpload, UploadPlan, with_query

MANIFEST_ACCEPT = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
_MAX_TAG_PAGES = 1000
# 404 is what the spec says a registry without the referrers API answers; some
# answer 400, 405 or 501 to a path they do not know. All mean: use the tag.
_NO_REFERRERS_API = (400, 404, 405, 501)


@dataclass(frozen=True, slots=True)
class Manifest:
    """Manifest bytes exactly as served, their media type and verified digest."""

    data: bytes
    media_type: str
    digest: Digest


class RegistryClient:
    """The distribution API of one registry (``docker.io`` means registry-1.docker.io)."""

    def __init__(
        self,
        registry: str,
        credentials: Credentials | None = None,
        options: RegistryOptions | None = None,
        sleep: Callable[[float], None] = time.sleep,
        http: httpx.Client | None = None,
    ) -> None:
        """``http`` replaces the client built from ``options`` (tests, shared pools)."""
        self.options = options or RegistryOptions()
        self.registry = registry
        self.host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        creds = find_credentials(registry) if credentials is None else credentials
        trust = None if self.options.insecure else LazyTrust(self.options.ca_file)
        self._http = http or httpx.Client(
            verify=False if trust is None else trust.context,
            timeout=_timeout(self.options.timeouts),
            headers={"Accept-Encoding": ACCEPT_ENCODING},
        )
        auth = Authenticator(self.host, creds, self._send_token_request, endpoint.is_secure)
        self._t = Transport(
            self.host,
            self._http,
            auth,
            self.options.retry,
            self.options.on_request,
            sleep,
            self.options.timeouts,
            trust,
        )
        self._base: httpx.URL | None = None
        self._probe_failure: RegistryError | None = None
        # Upload threads share this client: one probe per registry, the others wait for it.
        self._probe_lock = threading.Lock()

    def _send_token_request(self, request: httpx.Request) -> httpx.Response:
        return self._t.send_once(request, f"get a token for {self.host}")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def base_url(self) -> httpx.URL:
        """``https://host/`` or, where allowed and needed, ``http://host/``."""
        with self._probe_lock:
            if self._probe_failure is not None:
                raise self._probe_failure
            if self._base is None:
                try:
                    self._base, answer = endpoint.connect(self._t, self.host, self.options.insecure)
                except RegistryError as error:
                    self._probe_failure = error
                    raise
                self._t.auth.learn(answer)
            return self._base

    def ping(self) -> None:
        """Check that the host speaks the v2 API and accepts our credentials."""
        self._call(f"check access to {self.host}", "GET", "/v2/", frozenset()).close()

    def blob_exists(self, repo: str, digest: Digest) -> bool:
        return self._head_blob(repo, digest).status_code == 200

    def manifest_exists(self, repo: str, digest: Digest | str) -> bool:
        """Whether the repository already holds the manifest or index ``digest`` (or tag)."""
        return self._head_manifest(repo, str(digest)).status_code == 200

    def blob_size(self, repo: str, digest: Digest) -> int | None:
        """The size the registry reports for a blob (HEAD), or None when it has none."""
        response = self._head_blob(repo, digest)
        if response.status_code != 200:
            return None
        length = response.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else None

    def manifest_digest(self, repo: str, reference: str) -> Digest | None:
        """The digest a tag points at now (HEAD), or None when the tag does not exist."""
        response = self._head_manifest(repo, reference)
        if response.status_code != 200:
            return None
        header = response.headers.get("Docker-Content-Digest", "")
        if header:
            return Digest.parse(header)
        return self.get_manifest(repo, reference).digest

    def _head_blob(self, repo: str, digest: Digest) -> httpx.Response:
        """A closed HEAD answer for a blob: 200 (it is there) or 404."""
        response = self._call(
            f"check blob {digest} in {self.host}/{repo}",
            "HEAD",
            f"/v2/{repo}/blobs/{digest}",
            _pull(repo),
            expect=(200, 404),
        )
        response.close()
        return response

    def _head_manifest(self, repo: str, reference: str) -> httpx.Response:
        """A closed HEAD answer for a manifest or index by digest or tag: 200 or 404."""
        response = self._call(
            f"check manifest {self.host}/{repo}:{reference}"
            if ":" not in reference
            else f"check manifest {reference} in {self.host}/{repo}",
            "HEAD",
            f"/v2/{repo}/manifests/{reference}",
            _pull(repo),
            headers={"Accept": ", ".join(MANIFEST_ACCEPT)},
            expect=(200, 404),
        )
        response.close()
        return response

    def mount_blob(self, repo: str, digest: Digest, from_repo: str) -> bool:
        """Ask the registry to link a blob from another repository; True if it did."""
        wanted = scopes(repository_scope(repo, "pull", "push"), repository_scope(from_repo, "pull"))
        url = self.base_url.join(f"/v2/{repo}/blobs/uploads/")
        url = with_query(with_query(url, "mount", str(digest)), "from", from_repo)
        operation = f"mount blob {digest} from {from_repo} into {self.host}/{repo}"
        call = Call(operation, "POST", url, wanted, (201, 202), {"Content-Length": "0"})
        response = self._t.request(call)
        response.close()
        if response.status_code == 202 and "Location" in response.headers:
            self._cancel(url.join(response.headers["Location"]), wanted, operation)
        return response.status_code == 201

    def _cancel(self, location: httpx.URL, wanted: Scopes, operation: str) -> None:
        """Abandon an upload session the registry opened instead of mounting."""
        call = Call(operation, "DELETE", location, wanted, range(200, 500))
        self._t.attempt(call).close()

    def push_blob(self, repo: str, descriptor: Descriptor, opener: Callable[[], BinaryIO]) -> None:
        """Upload a blob; ``opener`` must return a fresh stream at offset 0 on every call."""
        chunked = descriptor.size > self.options.chunk_threshold
        plan = UploadPlan(
            self.base_url, repo, descriptor, opener, _push(repo), self.options.chunk_size, chunked
        )
        BlobUpload(self._t, plan).run()

    def push_manifest(self, repo: str, reference: str, media_type: str, data: bytes) -> Digest:
        """PUT manifest bytes under a tag or digest; returns their (verified) digest."""
        return self._put_manifest(repo, reference, media_type, data)[0]

    def push_referrer(self, repo: str, media_type: str, data: bytes) -> bool:
        """PUT a manifest that has a ``subject``, by digest; True if the registry indexed it.

        A registry with the referrers API answers ``OCI-Subject``; without it the
        caller keeps the referrers tag itself.
        """
        _, response = self._put_manifest(repo, str(Digest.of(data)), media_type, data)
        return "OCI-Subject" in response.headers

    def _put_manifest(
        self, repo: str, reference: str, media_type: str, data: bytes
    ) -> tuple[Digest, httpx.Response]:
        digest = Digest.of(data)
        operation = f"push manifest {digest} to {self.host}/{repo}:{reference}"
        response = self._call(
            operation,
            "PUT",
            f"/v2/{repo}/manifests/{reference}",
            _push(repo),
            expect=(201,),
            headers={"Content-Type": media_type},
            content=data,
        )
        response.close()
        returned = response.headers.get("Docker-Content-Digest")
        if returned and returned != str(digest):
            raise DigestMismatch(
                f"{operation}: the registry reports digest {returned} for the bytes we sent; "
                "it rewrote the manifest, which breaks every reference to it"
            )
        return digest, response

    def referrers(self, repo: str, digest: Digest) -> list[dict[str, Any]] | None:
        """The referrers API's list for ``digest`` (every page), or None where it has none."""
        url: httpx.URL | None = self.base_url.join(f"/v2/{repo}/referrers/{digest}")
        found: list[dict[str, Any]] = []
        operation = f"list referrers of {digest} in {self.host}/{repo}"
        for _ in range(_MAX_TAG_PAGES):
            if url is None:
                return found
            headers = {"Accept": OCI_INDEX}
            call = Call(operation, "GET", url, _pull(repo), (200, *_NO_REFERRERS_API), headers)
            response = self._t.request(call)
            if response.status_code != 200 or not _is_index(response):
                return None
            manifests = json_object(response, operation).get("manifests")
            if not isinstance(manifests, (list, type(None))):
                raise wrong_type(response, operation, "manifests", "an array")
            found += [m for m in manifests or [] if isinstance(m, dict)]
            url = _next_link(response, url)
        raise RegistryError(f"{operation}: more than {_MAX_TAG_PAGES} pages")

    def get_manifest(
        self, repo: str, reference: str, accept: Collection[str] = MANIFEST_ACCEPT
    ) -> Manifest:
        """Fetch a manifest or index by tag or digest, verifying its digest."""
        operation = f"get manifest {self.host}/{repo}:{reference}"
        response = self._call(
            operation,
            "GET",
            f"/v2/{repo}/manifests/{reference}",
            _pull(repo),
            headers={"Accept": ", ".join(accept)},
        )
        data = response.content
        # A tag cannot contain ':', so a reference with one is a digest we asked for.
        expected = reference if ":" in reference else response.headers.get("Docker-Content-Digest")
        digest = _verify_manifest(operation, data, expected)
        declared = json_object(response, operation).get("mediaType")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return Manifest(data, media_type or (declared if isinstance(declared, str) else ""), digest)

    def get_blob(self, repo: str, descriptor: Descriptor, dest: BinaryIO) -> None:
        """Stream a blob into ``dest``, verifying size and digest (DigestMismatch if wrong)."""
        url = self.base_url.join(f"/v2/{repo}/blobs/{descriptor.digest}")
        operation = f"get blob {descriptor.digest} from {self.host}/{repo}"
        download(self._t, Call(operation, "GET", url, _pull(repo), stream=True), descriptor, dest)

    def list_tags(self, repo: str) -> list[str]:
        """Every tag of ``repo``, following ``Link: <...>; rel="next"`` pages."""
        tags: list[str] = []
        for page in self._tag_pages(repo):
            tags.extend(page)
        return tags

    def _tag_pages(self, repo: str) -> Iterator[list[str]]:
        url: httpx.URL | None = self.base_url.join(f"/v2/{repo}/tags/list")
        for _ in range(_MAX_TAG_PAGES):
            if url is None:
                return
            call = Call(f"list tags of {self.host}/{repo}", "GET", url, _pull(repo))
            response = self._t.request(call)
            tags = json_object(response, call.operation).get("tags") or []
            if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
                raise wrong_type(response, call.operation, "tags", "an array of strings")
            yield tags
            url = _next_link(response, url)
        raise RegistryError(f"list tags of {self.host}/{repo}: more than {_MAX_TAG_PAGES} pages")

    def _call(
        self,
        operation: str,
        method: str,
        path: str,
        wanted: Scopes,
        expect: Collection[int] = (200,),
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        url = self.base_url.join(path)
        call = Call(operation, method, url, wanted, expect, headers or {}, content)
        return self._t.request(call)


def _pull(repo: str) -> Scopes:
    return scopes(repository_scope(repo, "pull"))


def _push(repo: str) -> Scopes:
    return scopes(repository_scope(repo, "pull", "push"))


def _timeout(timeouts: Timeouts) -> httpx.Timeout:
    """Connect (TCP and TLS handshake) and read/write limits; no wait for the pool."""
    return httpx.Timeout(
        connect=timeouts.connect, read=timeouts.read, write=timeouts.read, pool=None
    )


def _verify_manifest(operation: str, data: bytes, expected: str | None) -> Digest:
    if expected is None:
        return Digest.of(data)
    try:
        want = Digest.parse(expected)
    except BaleError:
        raise RegistryError(f"{operation}: the registry sent a malformed digest") from None
    hasher = want.new_hasher()
    hasher.update(data)
    if hasher.hexdigest() != want.encoded:
        raise DigestMismatch(
            f"{operation}: the manifest bytes do not hash to {want}; the registry or a "
            "proxy altered them. Try again, or report it to the registry operator"
        )
    return want


def _is_index(response: httpx.Response) -> bool:
    """An image index answer, as the referrers API gives (not some HTML error page)."""
    kind = response.headers.get("Content-Type", "").split(";")[0].strip()
    if kind == OCI_INDEX:
        return True
    try:
        document = json_answer(response, "")
    except RegistryError:
        return False
    return isinstance(document, dict) and document.get("mediaType") == OCI_INDEX


def _next_link(response: httpx.Response, url: httpx.URL) -> httpx.URL | None:
    for part in response.headers.get("Link", "").split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
            return url.join(target.strip().strip("<>"))
    return None
