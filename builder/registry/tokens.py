"""Fetching a bearer token from a registry's token server.

With credentials we try the OAuth2 form POST first (``refresh_token`` grant for
an identity token, ``password`` grant otherwise) and fall back to the classic
GET with Basic auth when the server does not speak OAuth2. Anonymous requests
use the GET directly. See the distribution token and OAuth2 auth specs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from builder.errors import AuthError
from builder.registry.credentials import Credentials, basic_header

CLIENT_ID = "bale"
DEFAULT_EXPIRY = 60
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
        data: Any = json.loads(response.content)
        value = data.get("token") or data.get("access_token")
        expires_in = int(data.get("expires_in") or DEFAULT_EXPIRY)
    except (ValueError, AttributeError, TypeError):
        value = None
    if not isinstance(value, str) or not value:
        raise AuthError(
            f"token server {_where(request.realm)} answered without a token; "
            "check the registry's auth configuration"
        )
    return Token(value, now + max(expires_in, DEFAULT_EXPIRY))


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
