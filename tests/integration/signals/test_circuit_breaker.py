"""send_signals through its handler while the DCS simulator keeps failing: the circuit breaker fails
calls fast with 503, never stops the queueing, never dead-letters a message, and recovers by itself.

The simulator's call log proves what reached the DCS; the breaker's clock is moved by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from aam_dcs.config import get_settings
from aam_dcs.dcs.http import reset_client
from aam_dcs.errors import CircuitOpen
from tests.integration.signals.conftest import load_function, run_as_event_source
from tests.support.breaker import ManualClock, breaker_clock
from tests.support.events import FakeLambdaContext, api_event
from tests.support.signals import MID

pytestmark = pytest.mark.integration

FAILURES = 3
OPEN_SECONDS = 30
SIGNAL = {"mid": MID, "region_id": 9, "signals": {"c_color": "blue"}}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    return breaker_clock(monkeypatch)


@pytest.fixture
def function(monkeypatch: pytest.MonkeyPatch, bundle: dict[str, str], clock: ManualClock) -> Iterator[ModuleType]:
    """The handler with a breaker of 3 failures and 30 s, and a timeout short enough for hangs."""
    monkeypatch.setenv("AAM_BREAKER_FAILURES", str(FAILURES))
    monkeypatch.setenv("AAM_BREAKER_OPEN_SECONDS", str(OPEN_SECONDS))
    monkeypatch.setenv("AAM_TIMEOUT_MS", "300")
    get_settings.cache_clear()
    reset_client()
    yield load_function()
    reset_client()


def post(function: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, list[str]]]:
    response = function.lambda_handler(api_event("POST", "/signals", body=body), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"]), response.get("multiValueHeaders") or {}


def event_calls(sim: Any) -> int:
    return len(sim.calls("/event"))


def trip(function: Any, sim: Any, **faults: Any) -> list[int]:
    """The DCS fails ``FAILURES`` sync sends in a row; returns their statuses."""
    sim.set_faults(**faults)
    return [post(function, SIGNAL)[0] for _ in range(FAILURES)]


def receive(aws: Any) -> list[dict[str, Any]]:
    answer = aws.sqs.receive_message(
        QueueUrl=aws.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    )
    messages: list[dict[str, Any]] = answer.get("Messages", [])
    return messages


@pytest.mark.parametrize(
    ("faults", "status", "calls_per_failure"),
    [
        ({"down": True}, 502, 3),  # 503 from the DCS, retried within the call
        ({"error_rate": 1.0, "error_status": 500}, 502, 3),
        ({"hang_rate": 1.0, "hang_seconds": 1}, 504, 1),  # a signal call that timed out is never retried
    ],
    ids=["down", "5xx", "hangs"],
)
def test_a_dcs_that_keeps_failing_gets_503_at_once_without_a_call(function, sim, faults, status, calls_per_failure):
    assert trip(function, sim, **faults) == [status] * FAILURES
    calls = event_calls(sim)
    assert calls == FAILURES * calls_per_failure

    code, body, headers = post(function, SIGNAL)

    assert (code, body["error"], body["dcs_host"]) == (503, "CircuitOpen", "usw2.demdex.net")
    assert headers["Retry-After"] == [str(OPEN_SECONDS)]
    assert body["retry_after"] == OPEN_SECONDS
    assert event_calls(sim) == calls  # fails fast: no call, so no retry or timeout to wait for


def test_direct_invocation_raises_circuit_open_by_name(function, sim):
    trip(function, sim, down=True)
    with pytest.raises(CircuitOpen) as refused:
        function.lambda_handler(dict(SIGNAL), FakeLambdaContext())
    assert refused.value.retry_after == OPEN_SECONDS


def test_async_sends_are_still_queued_while_it_is_open(function, sim, aws):
    trip(function, sim, down=True)
    assert post(function, SIGNAL)[0] == 503
    calls = event_calls(sim)
    code, body, _ = post(function, {**SIGNAL, "mode": "async", "event_id": "while-open"})
    assert (code, body["status"]) == (202, "queued")
    (message,) = receive(aws)
    assert json.loads(message["Body"])["request"]["event_id"] == "while-open"
    assert event_calls(sim) == calls


def test_the_worker_retries_a_message_while_it_is_open_and_sends_it_after(function, sim, aws, clock):
    post(function, {**SIGNAL, "mode": "async", "event_id": "queued-first"})
    trip(function, sim, down=True)
    calls = event_calls(sim)

    messages = receive(aws)
    assert run_as_event_source(function, aws, messages) == {messages[0]["MessageId"]}
    assert event_calls(sim) == calls  # the worker did not call a DCS known to be down
    assert dead_letters(aws) == []

    sim.set_faults()
    clock.advance(OPEN_SECONDS)
    assert run_as_event_source(function, aws, receive(aws)) == set()
    (delivered,) = sim.calls("/event")[calls:]
    assert ["c_color", "blue"] in delivered["params"]
    assert receive(aws) == []
    assert dead_letters(aws) == []


def test_it_recovers_by_itself_after_the_interval(function, sim, clock):
    trip(function, sim, down=True)
    sim.set_faults()
    clock.advance(OPEN_SECONDS - 1)
    assert post(function, SIGNAL)[0] == 503  # the DCS is back, but the interval is not over
    calls = event_calls(sim)

    clock.advance(1)
    code, body, _ = post(function, SIGNAL)
    assert (code, body["status"]) == (200, "sent")
    assert post(function, SIGNAL)[0] == 200
    assert event_calls(sim) == calls + 2


def test_a_failed_trial_opens_it_for_another_interval(function, sim, clock):
    trip(function, sim, down=True)
    clock.advance(OPEN_SECONDS)
    assert post(function, SIGNAL)[0] == 502  # the trial call reached the DCS, which is still down
    calls = event_calls(sim)
    code, _, headers = post(function, SIGNAL)
    assert (code, headers["Retry-After"], event_calls(sim)) == (503, [str(OPEN_SECONDS)], calls)


def dead_letters(aws: Any) -> list[dict[str, Any]]:
    answer = aws.sqs.receive_message(QueueUrl=aws.dlq_url, MaxNumberOfMessages=10)
    messages: list[dict[str, Any]] = answer.get("Messages", [])
    return messages
