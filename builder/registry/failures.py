"""Registry failures: which are worth another try, how long to wait, and the
message a user can act on when one is final.

Connection errors, timeouts and the statuses in RETRY_STATUSES are transient;
anything else is the registry's final answer. Tries are counted per request:
each request gets ``RetryPolicy.tries`` attempts, and an upload that moved
forward earns a fresh count. Waits grow exponentially with jitter, and a
``Retry-After`` (seconds or an HTTP date) from the registry is honoured.

A refused connection once the registry has answered (the probe treats a
refusal as final) means it is restarting: refusals are waited out, with the
same backoff, for up to RESTART_WAIT seconds of waiting before they count as
tries, so a restart does not use up a request's tries.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from builder.errors import AuthError, ImageError, RegistryError
from builder.image.documents import parse_json
from builder.registry.scrub import scrub

if TYPE_CHECKING:
    import httpx

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0
RETRIES_HINT = "--retries N or BALE_RETRIES"
RESTART_WAIT = 30.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """At most ``tries`` attempts per request; waits ``base_delay * 2**n`` (+ up to 50%)."""

    tries: int = 5
    base_delay: float = 0.5
    max_delay: float = 10.0

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER)
        backoff: float = self.base_delay * 2.0 ** (failures - 1)
        return min(backoff * (1 + random.random() / 2), self.max_delay)


class TransientError(RegistryError):
    """A failure that another try may cure (dropped connection, 5xx, 429, timeout)."""

    def __init__(self, reason: str, retry_after: float | None = None, kind: str = "status") -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.kind = kind


class Budget:
    """Counts the consecutive transient failures of one request and sleeps between them.

    ``ceiling`` bounds the failures of the whole operation, progress or not.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        operation: str,
        sleep: Callable[[float], None] = time.sleep,
        ceiling: int | None = None,
    ) -> None:
        self._policy = policy
        self._operation = operation
        self._sleep = sleep
        self._ceiling = ceiling
        self.failures = 0
        self.total = 0
        self.refusals = 0
        self.refused_wait = 0.0

    def spend(self, error: TransientError) -> None:
        """Wait before the next try, or raise RegistryError once the tries are used up."""
        if error.kind == "refused" and self.refused_wait < RESTART_WAIT:
            self.refusals += 1
            delay = min(self._policy.delay(self.refusals), RESTART_WAIT - self.refused_wait)
            self.refused_wait += delay
            self._sleep(delay)
            return
        self.failures += 1
        self.total += 1
        spent = self._ceiling is not None and self.total >= self._ceiling
        if self.failures >= self._policy.tries or spent:
            raise RegistryError(
                f"{self._operation} failed after {self.total} tries; last error: "
                f"{error.reason.rstrip('.')}. The registry may be overloaded or unreachable: "
                f"try again later, or allow more tries ({RETRIES_HINT})"
            ) from None
        self._sleep(self._policy.delay(self.failures, error.retry_after))

    def progress(self) -> None:
        """The operation moved forward: the next failure starts a fresh count."""
        self.failures = 0
        self.refusals = 0
        self.refused_wait = 0.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if value is None:
        return None
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


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


def error_details(response: httpx.Response, secrets: Iterable[str] = ()) -> str:
    """``CODE: message`` items from a ``{"errors":[...]}`` body, else a short text excerpt,
    with the request's credentials (and ``secrets``) scrubbed out. The body is read
    under the JSON document limits; one that breaks them is shown as text."""
    try:
        body: Any = parse_json(response.content, "")
        items = body["errors"]
        text = "; ".join(_describe(item) for item in items[:20] if isinstance(item, dict))
    except (ImageError, KeyError, TypeError):
        text = response.text[:200].strip() if _is_text(response) else ""
    return scrub(" ".join(text.split()), _request_secrets(response, secrets))


def _request_secrets(response: httpx.Response, secrets: Iterable[str]) -> list[str]:
    sent = response.request.headers.get("Authorization", "")
    return [*secrets, sent] if sent else list(secrets)


def _describe(item: dict[str, Any]) -> str:
    code = _short(item.get("code", ""))
    message = _short(item.get("message", ""))
    return f"{code}: {message}" if code and message else code or message


def _short(value: Any) -> str:
    """A field of an error item as text: a string (cut), else nothing."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value.strip()[:300] if isinstance(value, str) else ""


def _is_text(response: httpx.Response) -> bool:
    kind: str = response.headers.get("Content-Type", "")
    return kind.startswith(("text/", "application/json"))


def status_error(
    operation: str, host: str, response: httpx.Response, secrets: Iterable[str] = ()
) -> RegistryError:
    """The error for a final, unexpected status (server text scrubbed of credentials)."""
    status = response.status_code
    known = _request_secrets(response, secrets)
    details = error_details(response, known)
    request = response.request
    message = (
        f"{operation}: {request.method} {safe_url(request.url)} answered "
        f"HTTP {status} {scrub(response.reason_phrase, known)}".rstrip()
    )
    if details:
        message += f" ({details})"
    hint = _HINTS.get(status)
    if hint:
        message += "; " + hint.format(host=host)
    return AuthError(message) if status == 401 else RegistryError(message)
