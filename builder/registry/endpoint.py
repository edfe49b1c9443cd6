"""Choosing how to reach a registry host: HTTPS, or plain HTTP where allowed.

Like Docker, HTTPS is always tried first. Plain HTTP is a fallback only for
hosts marked insecure and for loopback hosts (127.0.0.0/8, ::1, localhost),
and only when the HTTPS attempt failed to connect rather than failed to
verify: a certificate problem is reported, never silently downgraded.
"""

from __future__ import annotations

import ipaddress
import ssl

import httpx

from builder.errors import RegistryError
from builder.registry.failures import TransientError
from builder.registry.transport import Transport


def hostname(host: str) -> str:
    """``host:port`` → host (IPv6 brackets removed)."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback(host: str) -> bool:
    name = hostname(host).lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_secure(url: httpx.URL) -> bool:
    """May secrets travel over this URL? HTTPS always, plain HTTP only to loopback."""
    return url.scheme == "https" or is_loopback(url.host)


def schemes(host: str, insecure: bool) -> tuple[str, ...]:
    return ("https", "http") if insecure or is_loopback(host) else ("https",)


def probe(transport: Transport, host: str, insecure: bool) -> tuple[httpx.URL, httpx.Response]:
    """The base URL that answers ``GET /v2/``, and its (unauthenticated) answer."""
    options = schemes(host, insecure)
    for scheme in options:
        base = httpx.URL(f"{scheme}://{host}/")
        request = httpx.Request("GET", base.join("/v2/"))
        try:
            response = transport.http.send(request)
        except httpx.TransportError as exc:
            transport.log(request, 0)
            problem = _verify_failure(exc)
            if problem is not None:
                raise RegistryError(
                    f"TLS verification failed for {host}: {problem}. Give the registry's CA "
                    "certificate (--ca-cert FILE) or, for a test registry, allow --insecure"
                ) from None
            if scheme == options[-1]:
                raise TransientError(
                    f"cannot connect to {host} ({type(exc).__name__}); is the registry running?"
                ) from None
            continue
        transport.log(request, response.status_code)
        return base, response
    raise AssertionError("unreachable")


def _verify_failure(exc: BaseException) -> str | None:
    """The certificate problem behind a failed connection, if that is what it was."""
    cause: BaseException | None = exc
    for _ in range(10):
        if cause is None:
            return None
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause.verify_message or "certificate verify failed"
        cause = cause.__cause__ or cause.__context__
    return None
