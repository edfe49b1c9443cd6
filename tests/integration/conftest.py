"""Fixtures: real registries (module-shared) and a fresh fault proxy per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration import registry_fixtures as rf
from tests.integration.fault_proxy import FaultProxy


@pytest.fixture(scope="session")
def plain_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rf.RunningRegistry]:
    yield from rf.plain_registry(tmp_path_factory.mktemp("plain-registry"))


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rf.RunningRegistry]:
    yield from rf.tls_basic_registry(tmp_path_factory.mktemp("tls-registry"))


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[rf.RunningRegistry]:
    yield from rf.token_registry(tmp_path_factory.mktemp("token-registry"))


@pytest.fixture
def fault_proxy(plain_registry: rf.RunningRegistry) -> Iterator[FaultProxy]:
    yield from rf.fault_proxy(plain_registry)
