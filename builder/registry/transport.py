"""One HTTP exchange with a registry: authorisation, redirects, logging, retries.

``attempt`` makes a single try (answering auth challenges and following
redirects on the way) and raises TransientError for what a retry may cure;
``request`` wraps it in the retry budget. Uploads call ``attempt`` directly so
they can resume from the registry's offset instead of blindly resending.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

import httpx

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
from builder.registry.options import OnRequest

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
    ) -> None:
        self.host = host
        self.http = http
        self.auth = auth
        self.policy = policy
        self._on_request = on_request
        self._sleep = sleep

    def budget(self, operation: str) -> Budget:
        return Budget(self.policy, operation, self._sleep)

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
                if self.auth.handle_unauthorized(response, call.scopes):
                    response.close()
                    continue
            if status in _REDIRECTS and "Location" in response.headers:
                response.close()
                url = url.join(response.headers["Location"])
                continue
            return self._check(call, response)
        raise status_error(call.operation, self.host, response)

    def send_once(self, request: httpx.Request) -> httpx.Response:
        """Send without auth or retries (token requests); transport errors become transient."""
        return self._send(request, False, f"talking to {safe_url(request.url)}")

    def _exchange(self, call: Call, url: httpx.URL) -> httpx.Response:
        request = self._build(call, url)
        if self._same_host(url):
            self.auth.authorize(request, call.scopes)
        return self._send(request, call.stream, f"during {call.method} {safe_url(url)}")

    def _send(self, request: httpx.Request, stream: bool, doing: str) -> httpx.Response:
        """Send and log one request; a transport failure becomes a TransientError."""
        try:
            response = self.http.send(request, stream=stream)
        except httpx.TransportError as exc:
            self.log(request, 0)
            raise TransientError(f"{_describe(exc)} {doing}") from None
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
            return response
        response.read()
        response.close()
        if status in RETRY_STATUSES:
            raise TransientError(
                f"HTTP {status} from {call.method} {safe_url(response.request.url)}",
                parse_retry_after(response.headers.get("Retry-After")),
            )
        raise status_error(call.operation, self.host, response)

    def _same_host(self, url: httpx.URL) -> bool:
        return url.netloc.decode().lower() == self.host.lower()

    def log(self, request: httpx.Request, status: int) -> None:
        if self._on_request is not None:
            self._on_request(request.method, safe_url(request.url), status)


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return f"connection failed ({type(exc).__name__})"
