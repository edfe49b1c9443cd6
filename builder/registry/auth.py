"""Registry authentication: challenges, bearer tokens, and a per-host token cache.

A registry answers 401 with ``WWW-Authenticate``. For ``Basic`` we send the
credentials straight back; for ``Bearer`` we ask the token server named by
``realm`` for a token covering the scopes the request needs, cache it per set
of scopes until it expires, and drop it when the registry rejects it.
Secrets are only ever sent over HTTPS or to a loopback host.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import httpx

from builder.errors import AuthError
from builder.registry.credentials import Credentials, basic_header
from builder.registry.tokens import Token, TokenRequest, fetch_token

Scopes = frozenset[str]
Send = Callable[[httpx.Request], httpx.Response]
IsSecure = Callable[[httpx.URL], bool]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_BACKSLASH = re.compile(r"\\(.)")
_BARE = re.compile(r"[^,\s\"]+")  # lenient: servers send unquoted URLs as values


@dataclass(frozen=True, slots=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: a lowercase scheme and its parameters."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges in a header value, e.g. ``Bearer realm="x",scope="a:b:c,d"``."""
    found: list[Challenge] = []
    scheme, params, pos = "", {}, 0
    while pos < len(header):
        if header[pos] in " \t,":
            pos += 1
            continue
        word = _TOKEN.match(header, pos)
        if word is None:
            break
        pos = _skip_spaces(header, word.end())
        if pos < len(header) and header[pos] == "=":
            value, pos = _value(header, _skip_spaces(header, pos + 1))
            if scheme:
                params[word.group().lower()] = value
            continue
        if scheme:
            found.append(Challenge(scheme, params))
        scheme, params = word.group().lower(), {}
    if scheme:
        found.append(Challenge(scheme, params))
    return found


def _skip_spaces(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _value(text: str, pos: int) -> tuple[str, int]:
    quoted = _QUOTED.match(text, pos)
    if quoted is not None:
        return _BACKSLASH.sub(r"\1", quoted.group(1)), quoted.end()
    bare = _BARE.match(text, pos)
    if bare is not None:
        return bare.group(), bare.end()
    return "", pos


def repository_scope(repository: str, *actions: str) -> str:
    return f"repository:{repository}:{','.join(actions)}"


def scopes(*items: str) -> Scopes:
    return frozenset(items)


class Authenticator:
    """Adds Authorization to requests for one registry host, learning from 401s."""

    def __init__(
        self,
        host: str,
        credentials: Credentials,
        send: Send,
        is_secure: IsSecure,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._host = host
        self._credentials = credentials
        self._send = send
        self._is_secure = is_secure
        self._clock = clock
        self._challenge: Challenge | None = None
        self._tokens: dict[Scopes, Token] = {}
        # Parallel uploads share this object: one token fetch per scope, not one per thread.
        self._token_lock = threading.Lock()

    @property
    def credentials(self) -> Credentials:
        return self._credentials

    def authorize(self, request: httpx.Request, wanted: Scopes) -> None:
        """Set Authorization on ``request`` when we know how to authenticate."""
        challenge = self._challenge
        if challenge is None:
            return
        if challenge.scheme == "basic":
            self._authorize_basic(request)
        elif challenge.scheme == "bearer":
            token = self._token(challenge, wanted)
            request.headers["Authorization"] = f"Bearer {token.value}"

    def handle_unauthorized(self, response: httpx.Response, wanted: Scopes) -> bool:
        """Learn from a 401; True when retrying the request may now succeed."""
        offered = _pick(parse_challenges(response.headers.get("WWW-Authenticate", "")))
        if offered is None:
            return False
        sent = response.request.headers.get("Authorization", "")
        self._challenge = offered
        if not sent:
            return offered.scheme == "bearer" or not self._credentials.anonymous
        if sent.lower().startswith("bearer ") and offered.scheme == "bearer":
            return self._tokens.pop(wanted, None) is not None
        return False

    def learn(self, response: httpx.Response) -> None:
        """Remember the challenge of a ping's 401 so the first real request is authorised."""
        if response.status_code == 401:
            self._challenge = _pick(parse_challenges(response.headers.get("WWW-Authenticate", "")))

    def _authorize_basic(self, request: httpx.Request) -> None:
        if self._credentials.anonymous or self._credentials.identity_token:
            return
        if not self._is_secure(request.url):
            raise AuthError(
                f"refusing to send the password for {self._host} over plain HTTP; "
                "use HTTPS (give the registry's CA with --ca-cert) or a loopback address"
            )
        request.headers["Authorization"] = basic_header(self._credentials)

    def _token(self, challenge: Challenge, wanted: Scopes) -> Token:
        with self._token_lock:
            cached = self._tokens.get(wanted)
            if cached is not None and cached.valid_at(self._clock()):
                return cached
            request = TokenRequest(challenge.params, tuple(sorted(wanted)), self._credentials)
            token = fetch_token(self._send, request, self._is_secure, self._clock())
            self._tokens[wanted] = token
            return token


def _pick(challenges: Iterable[Challenge]) -> Challenge | None:
    """Prefer Bearer over Basic, ignore schemes we do not speak."""
    known = {c.scheme: c for c in challenges if c.scheme in ("bearer", "basic")}
    return known.get("bearer") or known.get("basic")
