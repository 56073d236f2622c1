"""lookup_segments through its handler while the DCS simulator is down: with the circuit breaker open,
a cached profile is still answered (stale), an unknown one gets 503 at once, and nothing reaches the DCS."""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any

import pytest

from tests.support.breaker import ManualClock, breaker_clock
from tests.support.events import FakeLambdaContext, api_event
from tests.support.segments import MID

pytestmark = pytest.mark.integration

FAILURES = 3
OPEN_SECONDS = 30
UNKNOWN_MIDS = [f"3123456789012345678901234567890123456{n}" for n in range(FAILURES + 1)]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    return breaker_clock(monkeypatch)


@pytest.fixture
def handler(configure: Any, clock: ManualClock) -> ModuleType:
    module: ModuleType = configure(AAM_BREAKER_FAILURES=str(FAILURES), AAM_BREAKER_OPEN_SECONDS=str(OPEN_SECONDS))
    return module


def get(handler: Any, **query: str) -> tuple[int, dict[str, Any], dict[str, list[str]]]:
    response = handler.lambda_handler(api_event("GET", "/segments", query=query), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"]), response.get("multiValueHeaders") or {}


def event_calls(sim: Any) -> int:
    return len(sim.calls("/event"))


def trip(handler: Any, sim: Any) -> None:
    """The DCS goes down; ``FAILURES`` lookups of visitors with nothing cached fail (502)."""
    sim.set_faults(down=True)
    statuses = [get(handler, mid=mid, region_id="9")[0] for mid in UNKNOWN_MIDS[:FAILURES]]
    assert statuses == [502] * FAILURES


def test_a_cached_profile_is_answered_stale_while_it_is_open(handler, seeder, segments_sim):
    seeder.realize([1001], mid=MID)
    assert get(handler, mid=MID, region_id="9")[1]["cache"] == "miss"
    trip(handler, segments_sim)
    calls = event_calls(segments_sim)

    code, stale, _ = get(handler, mid=MID, refresh="true")
    assert (code, stale["cache"], stale["stale"], stale["segments"]) == (200, "stale", True, ["2001"])
    code, body, headers = get(handler, mid=UNKNOWN_MIDS[-1], region_id="9")
    assert (code, body["error"], headers["Retry-After"]) == (503, "CircuitOpen", [str(OPEN_SECONDS)])
    assert event_calls(segments_sim) == calls


def test_lookups_reach_the_dcs_again_after_the_interval(handler, seeder, segments_sim, clock):
    seeder.realize([1001], mid=MID)
    trip(handler, segments_sim)
    segments_sim.set_faults()
    assert get(handler, mid=MID, region_id="9")[0] == 503  # back, but the interval is not over
    clock.advance(OPEN_SECONDS)
    code, fresh, _ = get(handler, mid=MID, region_id="9")
    assert (code, fresh["cache"], fresh["segments"]) == (200, "miss", ["2001"])
    assert get(handler, mid=UNKNOWN_MIDS[-1], region_id="9")[0] == 200
