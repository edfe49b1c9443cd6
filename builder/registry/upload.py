"""Uploading one blob: monolithic below a threshold, chunked above it, resumable.

The upload is a small state machine over an upload session (its Location):
PATCH chunks while bytes remain (chunked mode), then PUT ``?digest=`` with
whatever is left. After a transient failure we ask the registry where the
session stands (``GET <Location>`` → 204 + ``Range``) and carry on from its
offset; if the session is gone we check whether the blob already landed, and
otherwise start a new session. Every byte is re-read through the opener.

Tries are counted per request: the PATCH or PUT that failed gets the retry
policy's tries, and a chunk the registry accepted earns fresh ones. The
recovery requests (session status, HEAD, a new session) carry their own
retries and never use up the data request's. As a registry may drop a whole
session when one PATCH is cut (distribution 2.8 does), progress is counted
within the session; so that this cannot go on forever, one blob stops after
``tries * max(2, chunks + 1)`` failures in all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import httpx

from builder.errors import RegistryError
from builder.model import Descriptor
from builder.registry.auth import Scopes
from builder.registry.failures import TransientError, error_details
from builder.registry.transport import Body, Call, Transport

_RANGE = re.compile(r"^(?:bytes=)?0-(-?\d+)$")
_LOST_SESSION = ("BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID")
OCTET_STREAM = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class UploadPlan:
    """What to upload, where, and how."""

    base: httpx.URL
    repository: str
    descriptor: Descriptor
    opener: Callable[[], BinaryIO]
    scopes: Scopes
    chunk_size: int
    chunked: bool

    @property
    def operation(self) -> str:
        return (
            f"push blob {self.descriptor.digest} to {self.base.netloc.decode()}/{self.repository}"
        )


class BlobUpload:
    """Runs one UploadPlan to completion or raises RegistryError."""

    def __init__(self, transport: Transport, plan: UploadPlan) -> None:
        self._t = transport
        self._plan = plan
        self.sessions = 0

    def run(self) -> None:
        budget = self._t.budget(self._plan.operation, self._t.policy.tries * self._chunks())
        location: httpx.URL | None = self._start()
        lost, offset = location, 0
        while True:
            try:
                if location is None:
                    if self._landed():
                        return
                    location, offset = self._resume(lost) or (self._start(), 0)
                    continue
                step = self._step(location, offset)
                if step is None:
                    return
                if step[1] > offset:
                    budget.progress()
                location, offset = step
            except TransientError as error:
                budget.spend(error)
                lost, location = location or lost, None

    def _chunks(self) -> int:
        """How many requests carry the blob (at least 2, so a small blob gets a margin)."""
        if not self._plan.chunked:
            return 2
        return max(2, -(-self._plan.descriptor.size // self._plan.chunk_size) + 1)

    def _start(self) -> httpx.URL:
        self.sessions += 1
        url = self._plan.base.join(f"/v2/{self._plan.repository}/blobs/uploads/")
        call = self._call("POST", url, (202,), {"Content-Length": "0"})
        response = self._t.request(call)
        return _location(response, url)

    def _step(self, location: httpx.URL, offset: int) -> tuple[httpx.URL, int] | None:
        """Send the next piece; None when the blob is complete."""
        size = self._plan.descriptor.size
        if self._plan.chunked and offset < size:
            return self._patch(location, offset, min(size - offset, self._plan.chunk_size))
        self._put(location, offset)
        return None

    def _patch(self, location: httpx.URL, offset: int, length: int) -> tuple[httpx.URL, int]:
        headers = {
            "Content-Type": OCTET_STREAM,
            "Content-Range": f"{offset}-{offset + length - 1}",
        }
        body = Body(self._plan.opener, offset, length)
        response = self._session_call("PATCH", location, (202,), headers, body)
        end = _range_end(response.headers.get("Range"))
        return _location(response, location), offset + length if end is None else end

    def _put(self, location: httpx.URL, offset: int) -> None:
        length = self._plan.descriptor.size - offset
        body: Body | bytes = Body(self._plan.opener, offset, length) if length else b""
        url = with_query(location, "digest", str(self._plan.descriptor.digest))
        headers = {"Content-Type": OCTET_STREAM, "Content-Length": str(length)}
        self._session_call("PUT", url, (201,), headers, body)

    def _session_call(
        self,
        method: str,
        url: httpx.URL,
        expect: tuple[int, ...],
        headers: dict[str, str],
        body: Body | bytes,
    ) -> httpx.Response:
        """A request inside the session; a lost session is transient (we restart)."""
        response = self._t.attempt(self._call(method, url, (*expect, 400, 404, 416), headers, body))
        response.close()
        if response.status_code in expect:
            return response
        details = error_details(response, self._t.secrets())
        if response.status_code == 400 and not any(code in details for code in _LOST_SESSION):
            raise RegistryError(f"{self._plan.operation}: the registry refused it ({details})")
        raise TransientError(f"upload session lost (HTTP {response.status_code} {details})")

    def _resume(self, location: httpx.URL | None) -> tuple[httpx.URL, int] | None:
        """Where the registry says the session stands, or None if it is gone."""
        if location is None:
            return None
        response = self._t.request(self._call("GET", location, (204, 400, 404, 416)))
        response.close()
        if response.status_code != 204:
            return None
        end = _range_end(response.headers.get("Range"))
        if end == 1:
            # distribution answers "0-0" both for an empty session and after one byte:
            # the offset is unknown, so a fresh session is the only safe way on.
            return None
        return _location(response, location), end or 0

    def _landed(self) -> bool:
        digest = self._plan.descriptor.digest
        url = self._plan.base.join(f"/v2/{self._plan.repository}/blobs/{digest}")
        response = self._t.request(self._call("HEAD", url, (200, 404)))
        response.close()
        return response.status_code == 200

    def _call(
        self,
        method: str,
        url: httpx.URL,
        expect: tuple[int, ...],
        headers: dict[str, str] | None = None,
        content: Body | bytes | None = None,
    ) -> Call:
        return Call(
            self._plan.operation, method, url, self._plan.scopes, expect, headers or {}, content
        )


def with_query(url: httpx.URL, key: str, value: str) -> httpx.URL:
    """Append ``key=value`` to an opaque URL without re-encoding its query."""
    text = str(url)
    separator = "&" if "?" in text else "?"
    return httpx.URL(f"{text}{separator}{key}={value}")


def _location(response: httpx.Response, request_url: httpx.URL) -> httpx.URL:
    location = response.headers.get("Location")
    if not location:
        raise RegistryError(
            f"{response.request.method} {request_url.path} answered "
            f"{response.status_code} without a Location header; the registry is not "
            "following the distribution API"
        )
    return request_url.join(location)


def _range_end(value: str | None) -> int | None:
    """The next offset from ``Range: 0-<last>`` (or legacy ``bytes=0-<last>``)."""
    match = _RANGE.match((value or "").strip())
    return None if match is None else max(int(match.group(1)) + 1, 0)
