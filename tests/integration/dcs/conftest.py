"""The DCS client against a scripted HTTP server on loopback (real sockets, no mocks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aam_dcs.config import Settings
from aam_dcs.dcs.http import DcsClient
from aam_dcs.dcs.policy import RetryPolicy
from tests.support.http_server import ScriptedServer

#: Tiny waits so the suite stays fast; Retry-After values in tests stay under the cap.
FAST = RetryPolicy(backoff_factor=0.01, backoff_jitter=0.01, backoff_max=0.05, retry_after_cap=1.0)
TIMEOUT_MS = 600  # generous: a loaded CI machine must not turn a normal answer into a timeout


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
def make_client(server: ScriptedServer) -> Iterator[Callable[..., DcsClient]]:
    """Build a client pointed at the scripted server; ``overrides`` go to the settings."""
    clients: list[DcsClient] = []

    def build(*, endpoint: str | None = None, policy: RetryPolicy = FAST, **overrides: Any) -> DcsClient:
        values: dict[str, Any] = {
            "partner": "acme",
            "org_id": "ABC123@AdobeOrg",
            "dcs_endpoint": endpoint or server.base_url,
            "timeout_ms": TIMEOUT_MS,
            **overrides,
        }
        client = DcsClient(Settings(**values), retry_policy=policy)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., DcsClient]) -> DcsClient:
    return make_client()
