"""Choosing how to reach a registry host: HTTPS, or plain HTTP where allowed.

Like Docker, HTTPS is always tried first. Plain HTTP is a fallback only for
hosts marked insecure and for loopback hosts (127.0.0.0/8, ::1, localhost),
and only when the HTTPS attempt failed to connect rather than failed to
verify: a certificate problem is reported, never silently downgraded.

``connect`` probes a host once per run. A refused connection, an unknown host
name or a TLS failure ends it at once; a host that accepts connections but
never answers gets ``SILENT_TRIES`` tries (so a silent registry fails within
that many connect + read timeouts); other failures get the retry policy.
"""

from __future__ import annotations

import ipaddress
import ssl

import httpx

from builder.errors import RegistryError
from builder.registry.answers import MAX_ERROR_BODY
from builder.registry.failures import TransientError
from builder.registry.transport import Transport, describe

SILENT_TRIES = 2
_FINAL = {
    "refused": "is the registry running, and on that port?",
    "dns": "check the registry's host name",
    "tls": "check that the registry speaks HTTPS on that port",
}


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


def connect(transport: Transport, host: str, insecure: bool) -> tuple[httpx.URL, httpx.Response]:
    """``probe`` with its retries: the base URL and the registry's answer to ``GET /v2/``."""
    budget = transport.budget(f"connect to {host}")
    timeouts = 0
    while True:
        try:
            return probe(transport, host, insecure)
        except TransientError as error:
            hint = _FINAL.get(error.kind)
            if hint is not None:
                raise RegistryError(f"{error.reason}; {hint}") from None
            timeouts += error.kind == "timeout"
            if timeouts >= SILENT_TRIES:
                raise RegistryError(
                    f"{error.reason} ({timeouts} tries); the registry accepts connections "
                    "but does not answer. Check it, or allow more time "
                    "(--connect-timeout, --read-timeout)"
                ) from None
            budget.spend(error)


def probe(transport: Transport, host: str, insecure: bool) -> tuple[httpx.URL, httpx.Response]:
    """The base URL that answers ``GET /v2/``, and its (unauthenticated) answer."""
    options = schemes(host, insecure)
    for scheme in options:
        base = httpx.URL(f"{scheme}://{host}/")
        request = httpx.Request("GET", base.join("/v2/"))
        try:
            response = _send_probe(transport, request, len(options) > 1)
        except httpx.TransportError as exc:
            transport.log(request, 0)
            problem = _verify_failure(exc)
            if problem is not None:
                raise RegistryError(
                    f"TLS verification failed for {host}: {problem}. Give the registry's CA "
                    "certificate (--ca-cert FILE) or, for a test registry, allow "
                    "--insecure-registry"
                ) from None
            kind, what = describe(exc, request.url, transport.timeouts)
            if scheme == options[-1] or kind in ("refused", "dns"):
                raise TransientError(what, kind=kind) from None
            continue
        transport.log(request, response.status_code)
        return base, transport.buffer(response, f"connect to {host}", MAX_ERROR_BODY, cut=True)
    raise AssertionError("unreachable")


def _send_probe(transport: Transport, request: httpx.Request, lazy: bool) -> httpx.Response:
    """Send the probe. Where plain HTTP may follow, HTTPS is first tried without the CA
    certificates: a plain-HTTP host fails the handshake before any certificate is sent,
    so it never costs their loading; a host that speaks TLS gets them and a second try."""
    trust = transport.trust
    if request.url.scheme != "https" or trust is None:
        return transport.http.send(request, stream=True)
    if not lazy:
        trust.load()
        return transport.http.send(request, stream=True)
    try:
        return transport.http.send(request, stream=True)
    except httpx.TransportError as exc:
        if trust.loaded or _verify_failure(exc) is None:
            raise
    trust.load()
    return transport.http.send(request, stream=True)


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
