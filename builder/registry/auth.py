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
from typing import Any

import httpx

from builder.errors import AuthError, RegistryError
from builder.registry.answers import json_object
from builder.registry.credentials import Credentials, basic_header

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


CLIENT_ID = "bale"
DEFAULT_EXPIRY = 60
MAX_EXPIRY = 86400.0
_MARGIN = 5.0
# GCR answers a POST with 404, Artifactory with 401 and ACR with 400 (as containerd notes);
# all of them still serve the GET flow.
_PASSWORD_FALLBACK = frozenset({400, 401, 404, 405})
_REFRESH_FALLBACK = frozenset({404, 405})


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token and the monotonic time it stops being usable."""

    value: str
    expires_at: float

    def valid_at(self, now: float) -> bool:
        return now < self.expires_at - _MARGIN

    def __repr__(self) -> str:
        return f"Token(<hidden>, expires_at={self.expires_at:.0f})"

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """What to ask the token server for: challenge parameters, scopes, credentials."""

    challenge: Mapping[str, str]
    scopes: tuple[str, ...]
    credentials: Credentials

    @property
    def realm(self) -> httpx.URL:
        realm = self.challenge.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise AuthError(
                f"the registry's Bearer challenge has no usable realm ({realm!r}); "
                "the registry's auth configuration is broken"
            )
        return httpx.URL(realm)


def fetch_token(
    send: Callable[[httpx.Request], httpx.Response],
    request: TokenRequest,
    is_secure: Callable[[httpx.URL], bool],
    now: float,
) -> Token:
    """A fresh token for ``request``; raises AuthError saying who refused and why."""
    realm, creds = request.realm, request.credentials
    if not creds.anonymous and not is_secure(realm):
        raise AuthError(
            f"refusing to send credentials to token server {_where(realm)} over plain HTTP; "
            "the registry must use an HTTPS token realm"
        )
    response: httpx.Response | None = None
    if creds.identity_token or creds.password:
        response = send(_oauth_request(request))
        fallback = _REFRESH_FALLBACK if creds.identity_token else _PASSWORD_FALLBACK
        if response.status_code in fallback:
            response = None
    if response is None:
        response = send(_get_request(request))
    return _parse(response, request, now)


def _oauth_request(request: TokenRequest) -> httpx.Request:
    creds = request.credentials
    form: dict[str, str] = {"client_id": CLIENT_ID, "scope": " ".join(request.scopes)}
    if "service" in request.challenge:
        form["service"] = request.challenge["service"]
    if creds.identity_token:
        form.update(grant_type="refresh_token", refresh_token=creds.identity_token)
    else:
        form.update(grant_type="password", username=creds.username, password=creds.password)
    return httpx.Request("POST", request.realm, data=form)


def _get_request(request: TokenRequest) -> httpx.Request:
    creds = request.credentials
    params: list[tuple[str, str]] = []
    if "service" in request.challenge:
        params.append(("service", request.challenge["service"]))
    params.extend(("scope", scope) for scope in request.scopes)
    headers: dict[str, str] = {}
    if creds.username and creds.password:
        params.append(("account", creds.username))
        headers["Authorization"] = basic_header(creds)
    url = request.realm.copy_merge_params(tuple(params))
    return httpx.Request("GET", url, headers=headers)


def _parse(response: httpx.Response, request: TokenRequest, now: float) -> Token:
    if response.status_code != 200:
        raise _refused(response, request)
    try:
        data = json_object(response, "get a registry token")
    except RegistryError as error:
        raise AuthError(str(error)) from None
    value = data.get("token") or data.get("access_token")
    if not isinstance(value, str) or not value:
        raise AuthError(
            f"token server {_where(request.realm)} answered without a token; "
            "check the registry's auth configuration"
        )
    return Token(value, now + _lifetime(data.get("expires_in"), request))


def _lifetime(value: Any, request: TokenRequest) -> float:
    """Seconds a token lives: ``expires_in`` (a number), at least 60 s and at most a day."""
    if value is None or value == "":
        return DEFAULT_EXPIRY
    if isinstance(value, str) and value.isdigit():
        value = int(value[:12])
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise AuthError(
            f"token server {_where(request.realm)} answered with 'expires_in' that is not a "
            "number of seconds; check the registry's auth configuration"
        )
    return min(max(float(min(value, MAX_EXPIRY)), DEFAULT_EXPIRY), MAX_EXPIRY)


def _refused(response: httpx.Response, request: TokenRequest) -> AuthError:
    creds = request.credentials
    who = f"user '{creds.username}'" if creds.username else "anonymous access"
    if creds.identity_token:
        who = "the stored identity token"
    hint = (
        "check the username and password (bale login)"
        if response.status_code in (400, 401, 403)
        else "the token server may be down; try again later"
    )
    return AuthError(
        f"token server {_where(request.realm)} refused {who} for scope "
        f"'{' '.join(request.scopes) or '(none)'}' with HTTP {response.status_code}; {hint}"
    )


def _where(url: httpx.URL) -> str:
    """A URL without query or credentials, safe to show."""
    return f"{url.scheme}://{url.netloc.decode()}{url.path}"
