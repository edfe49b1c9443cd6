"""Fixtures shared by the signing tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def no_passwords(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No passphrase in the environment; the test sets the one it means."""
    monkeypatch.delenv("BALE_SIGN_PASSWORD", raising=False)
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    return monkeypatch
