"""One HTTP exchange with a registry: authorisation, redirects, logging, retries.

``attempt`` makes a single try (answering auth challenges and following
redirects on the way) and raises TransientError for what a retry may cure;
``request`` wraps it in a per-request retry budget. Uploads call ``attempt``
directly so they can resume from the registry's offset instead of blindly
resending. A transport failure becomes a TransientError whose ``kind`` names
it (refused, dns, tls, timeout, reset, connection) with a one-line reason.

Every answer is streamed; unless the Call asks for the stream (blob
downloads), its body is read here under answers.py's bounds, so callers get a
response whose ``content`` is at most MAX_ANSWER bytes (an error answer's is
cut to MAX_ERROR_BODY).
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

import httpx

from builder.registry.answers import MAX_ANSWER, MAX_ERROR_BODY, buffered, read_limited
from builder.registry.auth import Authenticator, Scopes
from builder.registry.failures import (
    RETRY_STATUSES,
    Budget,
    RetryPolicy,
    TransientError,
    parse_retry_after,
    safe_url,
    status_error,
)
from builder.registry.options import OnRequest, Timeouts
from builder.registry.trust import LazyTrust

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_MAX_AUTH_ROUNDS = 2
_READ_SIZE = 1 << 16


@dataclass(frozen=True, slots=True)
class Body:
    """``length`` bytes from ``offset`` of a stream that ``opener`` opens afresh each try."""

    opener: Callable[[], BinaryIO]
    offset: int
    length: int

    def chunks(self) -> Iterator[bytes]:
        with self.opener() as stream:
            stream.seek(self.offset)
            left = self.length
            while left > 0:
                data = stream.read(min(_READ_SIZE, left))
                if not data:
                    raise OSError(f"the blob stream ended {left} bytes early")
                left -= len(data)
                yield data


@dataclass(frozen=True, slots=True)
class Call:
    """One request: what it is for (for errors), and what it needs."""

    operation: str
    method: str
    url: httpx.URL
    scopes: Scopes
    expect: Collection[int] = (200,)
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | Body | None = None
    stream: bool = False


class Transport:
    """Sends Calls to one registry host through an httpx client."""

    def __init__(
        self,
        host: str,
        http: httpx.Client,
        auth: Authenticator,
        policy: RetryPolicy,
        on_request: OnRequest | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeouts: Timeouts | None = None,
        trust: LazyTrust | None = None,
    ) -> None:
        """``trust`` is the verifying context of ``http``, loaded before any HTTPS request."""
        self.host = host
        self.trust = trust
        self.http = http
        self.auth = auth
        self.policy = policy
        self.timeouts = timeouts or Timeouts()
        self._on_request = on_request
        self._sleep = sleep

    def secrets(self) -> tuple[str, ...]:
        """Credentials that must never appear in what we print."""
        creds = self.auth.credentials
        return tuple(s for s in (creds.password, creds.identity_token) if s)

    def budget(self, operation: str, ceiling: int | None = None) -> Budget:
        return Budget(self.policy, operation, self._sleep, ceiling)

    def request(self, call: Call) -> httpx.Response:
        """``attempt`` with retries; raises RegistryError once the budget is spent."""
        budget = self.budget(call.operation)
        while True:
            try:
                return self.attempt(call)
            except TransientError as error:
                budget.spend(error)

    def attempt(self, call: Call) -> httpx.Response:
        """One try: the response if its status is expected, else an error."""
        url, auth_rounds = call.url, 0
        for _ in range(_MAX_REDIRECTS + 1):
            response = self._exchange(call, url)
            status = response.status_code
            if status == 401 and auth_rounds < _MAX_AUTH_ROUNDS and self._same_host(url):
                auth_rounds += 1
                if self._answer_challenge(call, response):
                    self.buffer(response, call.operation, MAX_ERROR_BODY, cut=True)
                    continue
            if status in _REDIRECTS and "Location" in response.headers:
                self.buffer(response, call.operation, MAX_ERROR_BODY, cut=True)
                url = url.join(response.headers["Location"])
                continue
            return self._check(call, response)
        response = self.buffer(response, call.operation, MAX_ERROR_BODY, cut=True)
        raise status_error(call.operation, self.host, response, self.secrets())

    def _answer_challenge(self, call: Call, response: httpx.Response) -> bool:
        """Let the authenticator answer a 401 (closing the answer if that fails)."""
        try:
            return self.auth.handle_unauthorized(response, call.scopes)
        except BaseException:
            response.close()
            raise

    def send_once(self, request: httpx.Request, operation: str) -> httpx.Response:
        """Send without auth or retries (token requests), the answer read under the bounds;
        transport errors become transient."""
        response = self._send(request, f"talking to {safe_url(request.url)}")
        return self.buffer(response, operation, MAX_ANSWER)

    def buffer(
        self, response: httpx.Response, operation: str, limit: int, cut: bool = False
    ) -> httpx.Response:
        """``response`` with its body read (at most ``limit`` bytes) and the stream closed."""
        try:
            data = read_limited(response, operation, limit, cut)
        except httpx.TransportError as exc:
            kind, what = describe(exc, response.request.url, self.timeouts)
            raise TransientError(f"{what} while reading its answer", kind=kind) from None
        return buffered(response, data)

    def _exchange(self, call: Call, url: httpx.URL) -> httpx.Response:
        request = self._build(call, url)
        if self._same_host(url):
            self.auth.authorize(request, call.scopes)
        return self._send(request, f"during {call.method} {safe_url(url)}")

    def _send(self, request: httpx.Request, doing: str) -> httpx.Response:
        """Send and log one request (its answer streamed, its body not yet read);
        a transport failure becomes a TransientError."""
        if request.url.scheme == "https" and self.trust is not None:
            self.trust.load()
        try:
            response = self.http.send(request, stream=True)
        except httpx.TransportError as exc:
            self.log(request, 0)
            kind, what = describe(exc, request.url, self.timeouts)
            raise TransientError(f"{what} {doing}", kind=kind) from None
        self.log(request, response.status_code)
        return response

    def _build(self, call: Call, url: httpx.URL) -> httpx.Request:
        headers = dict(call.headers)
        if isinstance(call.content, Body):
            headers["Content-Length"] = str(call.content.length)
            return httpx.Request(call.method, url, headers=headers, content=call.content.chunks())
        return httpx.Request(call.method, url, headers=headers, content=call.content)

    def _check(self, call: Call, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if status in call.expect:
            return response if call.stream else self.buffer(response, call.operation, MAX_ANSWER)
        response = self.buffer(response, call.operation, MAX_ERROR_BODY, cut=True)
        if status in RETRY_STATUSES:
            raise TransientError(
                f"HTTP {status} from {call.method} {safe_url(response.request.url)}",
                parse_retry_after(response.headers.get("Retry-After")),
                kind="status",
            )
        raise status_error(call.operation, self.host, response, self.secrets())

    def _same_host(self, url: httpx.URL) -> bool:
        return url.netloc.decode().lower() == self.host.lower()

    def log(self, request: httpx.Request, status: int) -> None:
        if self._on_request is not None:
            self._on_request(request.method, safe_url(request.url), status)


def describe(exc: httpx.TransportError, url: httpx.URL, timeouts: Timeouts) -> tuple[str, str]:
    """The kind of a transport failure and a short phrase for it (no final period)."""
    where = url.netloc.decode()
    if isinstance(exc, httpx.ConnectTimeout):
        return "timeout", f"connecting to {where} timed out after {timeouts.connect:g} s"
    if isinstance(exc, httpx.WriteTimeout):
        return "timeout", f"{where} stopped reading for {timeouts.read:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", f"{where} did not answer within {timeouts.read:g} s"
    cause = _root_cause(exc)
    if isinstance(cause, ConnectionRefusedError):
        return "refused", f"{where} refused the connection"
    if isinstance(cause, socket.gaierror):
        return "dns", f"cannot resolve the host name {url.host} ({cause.strerror})"
    if isinstance(cause, ssl.SSLError):
        reason = cause.reason or type(cause).__name__
        return "tls", f"the TLS handshake with {where} failed ({reason})"
    if isinstance(cause, ConnectionResetError) or isinstance(exc, httpx.RemoteProtocolError):
        return "reset", f"{where} closed the connection early"
    return "connection", f"the connection to {where} failed ({type(exc).__name__})"


def _root_cause(exc: BaseException) -> BaseException:
    cause = exc
    for _ in range(10):
        nxt = cause.__cause__ or cause.__context__
        if nxt is None:
            break
        cause = nxt
    return cause
