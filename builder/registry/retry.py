"""Retry policy: which failures are worth another try, and how long to wait.

Connection errors, timeouts and the statuses in RETRY_STATUSES are transient;
anything else is the registry's final answer. Waits grow exponentially with
jitter, and a ``Retry-After`` (seconds) from the registry is honoured.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from builder.errors import RegistryError

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """At most ``tries`` attempts; waits ``base_delay * 2**n`` (+ up to 50% jitter)."""

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

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Budget:
    """Counts transient failures of one operation and sleeps between them."""

    def __init__(
        self,
        policy: RetryPolicy,
        operation: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._policy = policy
        self._operation = operation
        self._sleep = sleep
        self.failures = 0

    def spend(self, error: TransientError) -> None:
        """Wait before the next try, or raise RegistryError once the budget is gone."""
        self.failures += 1
        if self.failures >= self._policy.tries:
            raise RegistryError(
                f"{self._operation} failed after {self.failures} tries; last error: "
                f"{error.reason}. The registry may be overloaded or unreachable: "
                "try again later, or raise the retry count"
            ) from None
        self._sleep(self._policy.delay(self.failures, error.retry_after))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; HTTP dates are ignored (we back off instead)."""
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None
