"""Scrubbing secrets, the blob-location cache, Retry-After, budgets and verbose lines."""

from __future__ import annotations

import base64
import json
import threading
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from builder.errors import RegistryError
from builder.registry import locations
from builder.registry.failures import (
    RESTART_WAIT,
    Budget,
    RetryPolicy,
    TransientError,
    parse_retry_after,
    status_error,
)
from builder.registry.locations import BlobLocations
from builder.registry.options import RegistryConfig
from builder.registry.scrub import REDACTED, scrub

USER, PASSWORD, TOKEN = "alice", "Sup3r-secret", "eyJhbGciOi.JzdWIiOiJ.sig-value"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    "shown",
    [
        f"Basic {BASIC}",
        BASIC,
        f"{USER}:{PASSWORD}",
        PASSWORD,
        quote(f"{USER}:{PASSWORD}"),
        BASIC.lower(),
    ],
)
def test_every_form_of_a_basic_secret_is_scrubbed(shown: str) -> None:
    text = scrub(f"denied: got '{shown}' from you", [f"Basic {BASIC}"])
    assert PASSWORD.lower() not in text.lower() and BASIC.lower() not in text.lower()
    assert REDACTED in text and text.startswith("denied: got '")


def test_bearer_token_and_status_error_are_scrubbed() -> None:
    request = httpx.Request("PUT", "https://r.example/v2/a/manifests/v1")
    request.headers["Authorization"] = f"Bearer {TOKEN}"
    body = {"errors": [{"code": "DENIED", "message": f"token {TOKEN} lacks push; pw {PASSWORD}"}]}
    response = httpx.Response(403, json=body, request=request)
    message = str(status_error("push", "r.example", response, [PASSWORD]))
    assert TOKEN not in message and PASSWORD not in message
    assert "DENIED" in message and "HTTP 403" in message


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(formatdate(now + 12, usegmt=True), now) == 12.0
    assert parse_retry_after(formatdate(now - 50, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None


def test_progress_gives_fresh_tries_within_a_ceiling() -> None:
    sleeps: list[float] = []
    budget = Budget(RetryPolicy(tries=3, base_delay=0.01), "push x", sleeps.append, ceiling=6)
    error = TransientError("HTTP 503", kind="status")
    for _ in range(2):
        budget.spend(error)
        budget.spend(error)
        budget.progress()
    with pytest.raises(RegistryError, match=r"after 6 tries.*--retries"):
        budget.spend(error)
        budget.spend(error)


def test_refusals_are_waited_out_before_they_count_as_tries() -> None:
    """A registry restarting refuses connections: up to RESTART_WAIT seconds of waits
    (the usual backoff) are free; refusals after that use up the tries."""
    sleeps: list[float] = []
    budget = Budget(RetryPolicy(tries=2, base_delay=0.5, max_delay=10), "push x", sleeps.append)
    refused = TransientError("127.0.0.1:5000 refused the connection", kind="refused")
    while sum(sleeps) < RESTART_WAIT:
        budget.spend(refused)
    assert sum(sleeps) == pytest.approx(RESTART_WAIT)
    assert 4 <= len(sleeps) <= 7 and sleeps[1] > sleeps[0]
    assert budget.failures == 0
    with pytest.raises(RegistryError, match=r"after 2 tries; last error: .*refused"):
        budget.spend(refused)
        budget.spend(refused)


def test_progress_gives_a_fresh_restart_window() -> None:
    sleeps: list[float] = []
    budget = Budget(RetryPolicy(tries=1, base_delay=1, max_delay=1), "push x", sleeps.append)
    refused = TransientError("refused", kind="refused")
    for _ in range(2):
        for _ in range(int(RESTART_WAIT)):
            budget.spend(refused)
        budget.progress()
    assert len(sleeps) == 2 * RESTART_WAIT and budget.total == 0


class Recorder:
    """A stderr that remembers each write separately."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_verbose_lines_from_threads_are_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr("sys.stderr", recorder)
    log = RegistryConfig(verbose=True).options("r.example").on_request
    assert log is not None

    def many(n: int) -> None:
        for i in range(200):
            log("PATCH", f"https://r.example/v2/t{n}/blobs/uploads/{i}", 202)

    threads = [threading.Thread(target=many, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(recorder.writes) == 1200
    assert all(
        w.startswith("registry: PATCH ") and w.endswith(" -> 202\n") for w in recorder.writes
    )


def test_locations_remember_and_merge(tmp_path: Path) -> None:
    path = tmp_path / "blob-locations.json"
    first = BlobLocations(path)
    first.record(DIGEST, "r.example", "team/a")
    first.save()
    second = BlobLocations(path)
    second.record(DIGEST, "r.example", "team/b")
    second.record(DIGEST, "other.example", "team/c")
    second.save()
    again = BlobLocations(path)
    assert again.repositories(DIGEST, "r.example") == ["team/b", "team/a"]
    assert again.repositories(DIGEST, "other.example") == ["team/c"]
    assert [p.name for p in tmp_path.iterdir()] == ["blob-locations.json"]
    assert path.stat().st_mode & 0o077 == 0


def test_locations_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locations, "MAX_DIGESTS", 5)
    path = tmp_path / "blob-locations.json"
    cache = BlobLocations(path)
    for n in range(9):
        cache.record(f"sha256:{n:064x}", "r.example", f"repo{n}")
    for n in range(12):
        cache.record(DIGEST, "r.example", f"many{n}")
    cache.save()
    blobs = json.loads(path.read_text())["blobs"]
    assert len(blobs) == 5 and len(blobs[DIGEST]) == locations.MAX_PER_DIGEST
    assert blobs[DIGEST][0] == ["r.example", "many11"]


@pytest.mark.parametrize(
    "text",
    ["not json", '{"version": 1, "blobs": []}', '{"version": 1, "blobs": {"x": 5}}', "[" * 100000],
)
def test_a_damaged_locations_file_is_an_empty_cache(tmp_path: Path, text: str) -> None:
    path = tmp_path / "blob-locations.json"
    path.write_text(text)
    cache = BlobLocations(path)
    assert cache.repositories(DIGEST, "r.example") == []
    cache.record(DIGEST, "r.example", "team/a")
    cache.save()
    assert BlobLocations(path).repositories(DIGEST, "r.example") == ["team/a"]


def test_locations_refuse_names_that_are_not_names(tmp_path: Path) -> None:
    cache = BlobLocations(tmp_path / "l.json")
    cache.record(DIGEST, f"{USER}:{PASSWORD}@r.example", "team/a")
    cache.record(DIGEST, "r.example", "team a")
    cache.save()
    assert not (tmp_path / "l.json").exists()
