"""The DCS circuit breaker's state machine, with a clock the tests move (no sleeps)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from aam_dcs import api
from aam_dcs.config import ConfigurationError, Settings, settings_from_env
from aam_dcs.dcs.breaker import BreakerBoard, CircuitBreaker, CircuitBreakerGateway, State, get_gateway
from aam_dcs.dcs.http import DcsClient, reset_client
from aam_dcs.dcs.query import DcsRequest
from aam_dcs.dcs.response import DcsResponse
from aam_dcs.errors import CircuitOpen, DcsBadResponse, DcsRejected, DcsTimeout, DcsUnavailable
from local.template import Template
from tests.support.breaker import ManualClock
from tests.support.fakes import FakeDcs
from tests.support.signals import metric_counts

ORG = "0123456789ABCDEF01234567@AdobeOrg"
MID = "04512783304617290021837465019283746501"
SETTINGS = Settings(partner="acme", org_id=ORG)
FAILURES = 3
OPEN_SECONDS = 30


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def dcs() -> FakeDcs:
    return FakeDcs()


@pytest.fixture
def gateway(dcs: FakeDcs, clock: ManualClock) -> CircuitBreakerGateway:
    board = BreakerBoard(failure_threshold=FAILURES, open_seconds=OPEN_SECONDS, clock=clock)
    return CircuitBreakerGateway(dcs, board)


def event(region_id: int | None = 9) -> DcsRequest:
    return DcsRequest.event(SETTINGS, [("d_rtbd", "json"), ("d_mid", MID)], region_id=region_id)


def id_call() -> DcsRequest:
    return DcsRequest.id_call(SETTINGS, [("d_ver", "2"), ("d_rtbd", "json"), ("d_orgid", ORG)])


def down() -> DcsUnavailable:
    return DcsUnavailable("the DCS answered HTTP 503 (attempts: 3)", status=503, attempts=3)


def fail(gateway: CircuitBreakerGateway, dcs: FakeDcs, error: Exception, times: int = 1) -> None:
    for _ in range(times):
        dcs.event_answers.append(error)
        with pytest.raises(type(error)):
            gateway.send(event())


def state(gateway: CircuitBreakerGateway, host: str = "usw2.demdex.net") -> State:
    return gateway.board.breaker_for(host).state


# --- closed ------------------------------------------------------------------------------------------------


def test_calls_go_through_until_the_threshold_of_outages_in_a_row(gateway, dcs):
    fail(gateway, dcs, down(), times=FAILURES - 1)
    assert state(gateway) is State.CLOSED
    assert gateway.send(event()).uuid
    assert len(dcs.requests) == FAILURES


def test_the_threshold_of_outages_in_a_row_opens_it(gateway, dcs):
    fail(gateway, dcs, down(), times=FAILURES - 1)
    fail(gateway, dcs, DcsTimeout("the DCS did not answer within 2 s", attempts=1))
    assert state(gateway) is State.OPEN


def test_an_answer_in_between_starts_the_count_again(gateway, dcs):
    fail(gateway, dcs, down(), times=FAILURES - 1)
    gateway.send(event())
    fail(gateway, dcs, down(), times=FAILURES - 1)
    assert state(gateway) is State.CLOSED
    assert gateway.board.breaker_for("usw2.demdex.net").failures == FAILURES - 1


@pytest.mark.parametrize(
    "answered",
    [
        DcsRejected("the DCS refused the request as invalid", codes=[102], tid="t"),
        DcsRejected("the DCS refused the request with HTTP 400", status=400),
        DcsBadResponse("the DCS answered with a body that is not JSON", status=200),
    ],
    ids=["invalid-codes", "http-4xx", "garbled-body"],
)
def test_a_refusal_or_garbled_answer_is_an_answer_not_an_outage(gateway, dcs, answered):
    for _ in range(2):
        fail(gateway, dcs, down(), times=FAILURES - 1)
        fail(gateway, dcs, answered)
    assert state(gateway) is State.CLOSED


def test_error_codes_in_a_200_body_are_an_answer(gateway, dcs):
    fail(gateway, dcs, down(), times=FAILURES - 1)
    dcs.event_answers.append({"errors": [{"code": 0, "msg": "unknown error"}], "tid": "t"})
    response: DcsResponse = gateway.send(event())
    assert response.codes == [0]
    fail(gateway, dcs, down(), times=FAILURES - 1)
    assert state(gateway) is State.CLOSED


# --- open --------------------------------------------------------------------------------------------------


def test_an_open_breaker_fails_at_once_without_calling_the_dcs(gateway, dcs, clock):
    fail(gateway, dcs, down(), times=FAILURES)
    calls = len(dcs.requests)
    clock.advance(10)
    with pytest.raises(CircuitOpen) as refused:
        gateway.send(event())
    assert len(dcs.requests) == calls
    error = refused.value
    assert isinstance(error, DcsUnavailable)
    assert (error.http_status, error.retryable, error.dcs_host) == (503, True, "usw2.demdex.net")
    assert error.retry_after == pytest.approx(OPEN_SECONDS - 10)
    assert error.to_dict() == {
        "error": "CircuitOpen",
        "message": "the DCS host usw2.demdex.net failed 3 calls in a row; calls to it are paused for up to 30 s",
        "retry_after": 20.0,
        "dcs_host": "usw2.demdex.net",
    }


def test_each_host_has_its_own_breaker(gateway, dcs):
    fail(gateway, dcs, down(), times=FAILURES)
    assert gateway.send(event(region_id=6)).uuid  # irl1.demdex.net
    assert gateway.send(event(region_id=None)).uuid  # the partner alias
    assert gateway.send_id(id_call()).d_mid
    with pytest.raises(CircuitOpen):
        gateway.send(event(region_id=9))


def test_the_id_service_trips_its_own_breaker(gateway, dcs):
    for _ in range(FAILURES):
        dcs.id_answers.append(down())
        with pytest.raises(DcsUnavailable):
            gateway.send_id(id_call())
    with pytest.raises(CircuitOpen) as refused:
        gateway.send_id(id_call())
    assert refused.value.dcs_host == "dpm.demdex.net"
    assert gateway.send(event()).uuid


def test_a_call_that_started_before_it_opened_does_not_close_it(dcs, clock):
    breaker = CircuitBreaker("usw2.demdex.net", failure_threshold=FAILURES, open_seconds=OPEN_SECONDS, clock=clock)
    in_flight = breaker.admit()
    for _ in range(FAILURES):
        breaker.record_outage(trial=breaker.admit())
    breaker.record_answer(trial=in_flight)
    assert breaker.state is State.OPEN


# --- half-open and recovery ---------------------------------------------------------------------------------


def test_after_the_interval_one_trial_goes_through_and_its_answer_closes_it(gateway, dcs, clock):
    fail(gateway, dcs, down(), times=FAILURES)
    clock.advance(OPEN_SECONDS)
    calls = len(dcs.requests)
    assert gateway.send(event()).uuid
    assert state(gateway) is State.CLOSED
    assert gateway.send(event()).uuid
    assert len(dcs.requests) == calls + 2


def test_a_failed_trial_opens_it_for_a_new_interval(gateway, dcs, clock):
    fail(gateway, dcs, down(), times=FAILURES)
    clock.advance(OPEN_SECONDS + 5)
    fail(gateway, dcs, down())
    assert state(gateway) is State.OPEN
    clock.advance(OPEN_SECONDS - 1)
    with pytest.raises(CircuitOpen) as refused:
        gateway.send(event())
    assert refused.value.retry_after == pytest.approx(1)
    clock.advance(1)
    assert gateway.send(event()).uuid


def test_while_the_trial_is_in_flight_the_other_calls_fail_at_once(gateway, dcs, clock):
    fail(gateway, dcs, down(), times=FAILURES)
    clock.advance(OPEN_SECONDS)
    refusals: list[CircuitOpen] = []

    def trial(request: DcsRequest) -> dict[str, Any]:
        with pytest.raises(CircuitOpen) as refused:
            gateway.send(event())
        refusals.append(refused.value)
        return {"uuid": "22920112968019678612904394744954398990", "dcs_region": 9}

    dcs.event_answers.append(trial)
    gateway.send(event())
    assert refusals[0].retry_after == 1.0
    assert "a trial call to it is in flight" in refusals[0].message
    assert state(gateway) is State.CLOSED


def test_a_trial_that_ends_in_a_bug_lets_the_next_call_be_the_trial(gateway, dcs, clock):
    fail(gateway, dcs, down(), times=FAILURES)
    clock.advance(OPEN_SECONDS)
    fail(gateway, dcs, ValueError("not a DCS failure"))
    assert state(gateway) is State.OPEN
    assert gateway.send(event()).uuid
    assert state(gateway) is State.CLOSED


# --- threads -----------------------------------------------------------------------------------------------


def test_concurrent_outages_open_it_once_and_concurrent_calls_get_one_trial(clock):
    breaker = CircuitBreaker("usw2.demdex.net", failure_threshold=5, open_seconds=OPEN_SECONDS, clock=clock)
    with metric_counts() as counts, ThreadPoolExecutor(max_workers=10) as pool:
        in_flight = threading.Barrier(10)
        list(pool.map(lambda _: _outage_in_flight(in_flight, breaker), range(10)))
        assert (breaker.state, breaker.failures, counts["DcsCircuitOpened"]) == (State.OPEN, 5, 1)
        clock.advance(OPEN_SECONDS)
        together = threading.Barrier(10)
        admitted = list(pool.map(lambda _: _admit_together(together, breaker), range(10)))
    assert admitted.count("trial") == 1
    assert admitted.count("refused") == 9


def _outage_in_flight(in_flight: threading.Barrier, breaker: CircuitBreaker) -> None:
    """Ten calls admitted while closed, all failing at about the same time."""
    trial = breaker.admit()
    in_flight.wait()
    breaker.record_outage(trial=trial)


def _admit_together(together: threading.Barrier, breaker: CircuitBreaker) -> str:
    together.wait()
    try:
        return "trial" if breaker.admit() else "call"
    except CircuitOpen:
        return "refused"


# --- metrics, logs, settings, the API ----------------------------------------------------------------------


def test_opening_and_closing_are_counted_and_logged_without_visitor_ids(gateway, dcs, clock, caplog):
    with metric_counts() as counts:
        fail(gateway, dcs, down(), times=FAILURES)
        with pytest.raises(CircuitOpen):
            gateway.send(event())
        clock.advance(OPEN_SECONDS)
        gateway.send(event())
        assert (counts["DcsCircuitOpened"], counts["DcsCircuitClosed"], counts["DcsCallsShortCircuited"]) == (1, 1, 1)
    records = [record for record in caplog.records if "DCS circuit" in record.getMessage()]
    assert [(record.getMessage(), record.__dict__["breaker_state"]) for record in records] == [
        ("DCS circuit opened", "open"),
        ("DCS circuit half-open: one trial call goes through", "half_open"),
        ("DCS circuit closed", "closed"),
    ]
    assert {record.__dict__["dcs_host"] for record in records} == {"usw2.demdex.net"}
    assert all(MID not in str(vars(record)) for record in records)


def test_settings_default_to_5_failures_and_30_seconds():
    settings = settings_from_env({"AAM_PARTNER": "acme", "AAM_ORG_ID": ORG})
    assert (settings.breaker_failures, settings.breaker_open_seconds) == (5, 30)
    tuned = settings_from_env(
        {"AAM_PARTNER": "acme", "AAM_ORG_ID": ORG, "AAM_BREAKER_FAILURES": "2", "AAM_BREAKER_OPEN_SECONDS": "90"}
    )
    board = BreakerBoard.from_settings(tuned)
    assert (board.failure_threshold, board.open_seconds) == (2, 90)


@pytest.mark.parametrize(("name", "value"), [("AAM_BREAKER_FAILURES", "0"), ("AAM_BREAKER_OPEN_SECONDS", "0")])
def test_settings_refuse_a_breaker_that_could_never_close_or_open(name, value):
    with pytest.raises(ConfigurationError, match=name):
        settings_from_env({"AAM_PARTNER": "acme", "AAM_ORG_ID": ORG, name: value})


def test_the_api_answers_503_with_retry_after_and_the_host():
    error = CircuitOpen("paused", dcs_host="usw2.demdex.net", retry_after=12.2)
    response = api.error_response(error)
    assert (response.status_code, response.headers["Retry-After"]) == (503, "13")
    assert json.loads(str(response.body)) == {
        "error": "CircuitOpen",
        "message": "paused",
        "retry_after": 12.2,
        "dcs_host": "usw2.demdex.net",
    }


def test_the_container_gateway_wraps_its_client_and_follows_a_new_one(monkeypatch):
    monkeypatch.setenv("AAM_PARTNER", "acme")
    monkeypatch.setenv("AAM_ORG_ID", ORG)
    reset_client()
    try:
        first = get_gateway()
        assert isinstance(first.inner, DcsClient)
        assert get_gateway() is first
        reset_client()
        assert get_gateway() is not first
    finally:
        reset_client()


def test_gateways_built_concurrently_are_one(monkeypatch):
    monkeypatch.setenv("AAM_PARTNER", "acme")
    monkeypatch.setenv("AAM_ORG_ID", ORG)
    reset_client()
    build: Callable[[int], object] = lambda _: get_gateway()  # noqa: E731
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            assert len({id(gateway) for gateway in pool.map(build, range(32))}) == 1
    finally:
        reset_client()


def test_the_template_sets_the_breaker_from_parameters_with_the_same_defaults():
    template = Template.load()
    env = template.globals["Function"]["Environment"]["Variables"]
    defaults = Settings(partner="acme", org_id=ORG)
    for variable, parameter, default in (
        ("AAM_BREAKER_FAILURES", "BreakerFailures", defaults.breaker_failures),
        ("AAM_BREAKER_OPEN_SECONDS", "BreakerOpenSeconds", defaults.breaker_open_seconds),
    ):
        assert env[variable] == {"Ref": parameter}
        assert template.parameters[parameter]["Default"] == default
