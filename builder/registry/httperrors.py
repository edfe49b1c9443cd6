"""Turning a registry's error response into a message a user can act on."""

from __future__ import annotations

import json
from typing import Any

import httpx

from builder.errors import AuthError, RegistryError

SAFE_QUERY_KEYS = frozenset({"digest", "mount", "from", "n", "last", "service", "scope"})

_HINTS = {
    401: "check the credentials for {host} (bale login {host})",
    403: "the account may lack permission for this repository",
    404: "check the repository name and tag or digest",
    413: "the registry refused the size of the upload",
    416: "the upload went out of order; it will be restarted",
}


def safe_url(url: httpx.URL) -> str:
    """The URL with every query value we do not know to be harmless redacted."""
    base = f"{url.scheme}://{url.netloc.decode()}{url.path}"
    if not url.query:
        return base
    parts = [
        f"{key}={value if key in SAFE_QUERY_KEYS else '<redacted>'}"
        for key, value in url.params.multi_items()
    ]
    return base + "?" + "&".join(parts)


def error_details(response: httpx.Response) -> str:
    """``CODE: message`` items from a ``{"errors":[...]}`` body, else a short text excerpt."""
    try:
        body: Any = json.loads(response.content)
        items = body["errors"]
        text = "; ".join(_describe(item) for item in items if isinstance(item, dict))
    except (ValueError, KeyError, TypeError):
        text = response.text[:200].strip() if _is_text(response) else ""
    return text


def _describe(item: dict[str, Any]) -> str:
    code = str(item.get("code", "")).strip()
    message = str(item.get("message", "")).strip()
    return f"{code}: {message}" if code and message else code or message


def _is_text(response: httpx.Response) -> bool:
    kind: str = response.headers.get("Content-Type", "")
    return kind.startswith(("text/plain", "application/json"))


def status_error(operation: str, host: str, response: httpx.Response) -> RegistryError:
    """The error for a final, unexpected status."""
    status = response.status_code
    details = error_details(response)
    request = response.request
    message = (
        f"{operation}: {request.method} {safe_url(request.url)} answered "
        f"HTTP {status} {response.reason_phrase}"
    )
    if details:
        message += f" ({details})"
    hint = _HINTS.get(status)
    if hint:
        message += "; " + hint.format(host=host)
    return AuthError(message) if status == 401 else RegistryError(message)
