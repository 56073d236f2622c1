"""Fault injection: latency, 5xx, hang, reset, malformed JSON, down, 429, path targeting, determinism."""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time

import pytest
import requests

from local.dcs_simulator import DcsSimulator, FaultConfigError, server
from local.dcs_simulator.faults import FaultConfig, FaultInjector
from tests.simulator.helpers import ORG, Client

UUID = "1234567890123456789" * 2
HEADERS = {"Host": "acme.demdex.net", "X-Forwarded-Host": "usw2.demdex.net"}


def event(sim: DcsSimulator, query: str = "", timeout: float = 5.0) -> requests.Response:
    return requests.get(f"{sim.url}/event?d_rtbd=json&{query}", headers=HEADERS, timeout=timeout)


def id_call(sim: DcsSimulator) -> requests.Response:
    headers = {"Host": "acme.demdex.net", "X-Forwarded-Host": "dpm.demdex.net"}
    return requests.get(f"{sim.url}/id", params={"d_ver": "2", "d_orgid": ORG}, headers=headers, timeout=5)


def test_connections_are_not_held_back_by_nagle(sim, monkeypatch):
    """Every connection has TCP_NODELAY: with Nagle's algorithm on, each keep-alive answer's body
    waits for the client's delayed ACK of its headers (about 40 ms a call)."""
    no_delay = []
    real_setup = server._Handler.setup

    def setup(self):
        real_setup(self)
        no_delay.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(server._Handler, "setup", setup)
    for _ in range(2):  # two connections
        with requests.Session() as session:
            assert session.get(f"{sim.url}/event?d_rtbd=json", headers=HEADERS, timeout=2).status_code == 200
    assert len(no_delay) == 2
    assert all(no_delay)


def test_fixed_latency_delays_each_answer(sim):
    sim.set_faults(latency={"kind": "fixed", "ms": 150})
    started = time.monotonic()
    assert event(sim).status_code == 200
    assert time.monotonic() - started >= 0.15
    call = sim.calls()[-1]
    assert call["fault"] == "latency"
    assert call["duration_ms"] >= 150


def test_uniform_latency_follows_the_seeded_rng(sim):
    sim.set_faults(seed=5, latency={"kind": "uniform", "min_ms": 20, "max_ms": 120})
    rng = random.Random(5)
    expected = [rng.uniform(20, 120) for _ in range(4)]
    for want in expected:
        event(sim)
        got = sim.calls()[-1]["duration_ms"]
        assert want <= got < want + 80


def test_normal_latency_is_clipped_at_zero():
    injector = FaultInjector(FaultConfig.from_dict({"latency": {"kind": "normal", "mean_ms": 0, "stddev_ms": 30}}))
    draws = [injector.decide("/event", time.time()).latency_seconds for _ in range(200)]
    assert min(draws) == 0.0
    assert 0 < max(draws) < 0.2
    assert sum(d == 0.0 for d in draws) > 50  # about half the draws are negative, clipped


def test_error_rate_answers_the_configured_5xx_without_processing(sim):
    sim.set_faults(error_rate=1.0, error_status=502)
    response = event(sim, f"d_uuid={UUID}&c_category=tents")
    assert response.status_code == 502
    assert sim.profile(UUID) is None
    call = sim.calls()[-1]
    assert (call["status"], call["fault"]) == (502, "error")
    assert sim.stats()["faults_applied"] == {"error": 1}


def test_error_rate_is_deterministic_for_a_seed(sim):
    sim.set_faults(seed=7, error_rate=0.5)
    first = [event(sim).status_code for _ in range(16)]
    sim.set_faults(seed=7, error_rate=0.5)
    second = [event(sim).status_code for _ in range(16)]
    rng = random.Random(7)
    expected = [503 if rng.random() < 0.5 else 200 for _ in range(16)]
    assert first == second == expected
    assert {200, 503} <= set(first)


def test_hang_processes_the_call_but_never_answers(sim):
    sim.set_faults(hang_rate=1.0, hang_seconds=5)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        event(sim, f"d_uuid={UUID}&c_category=tents", timeout=0.3)
    assert time.monotonic() - started < 3  # the client's timeout, not the 5 s hang
    assert sim.profile(UUID)["traits"]["1001"]["count"] == 1  # the DCS did the work
    call = sim.calls()[-1]
    assert (call["fault"], call["outcome"], call["status"]) == ("hang", "hang", None)
    assert call["withheld_response"]["uuid"] == UUID


def test_a_short_hang_ends_in_a_closed_connection(sim):
    sim.set_faults(hang_rate=1.0, hang_seconds=0.2)
    with pytest.raises(requests.exceptions.ConnectionError):
        event(sim, timeout=3)


def test_stop_interrupts_a_long_hang(make_sim):
    sim = make_sim()
    sim.set_faults(hang_rate=1.0, hang_seconds=30)
    client = Client(sim.url)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.event("", timeout=10)
        except Exception as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    deadline = time.monotonic() + 2
    while not sim.calls() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim.calls()[0]["outcome"] == "hang"  # the call is being held
    time.sleep(0.1)
    assert thread.is_alive()
    started = time.monotonic()
    sim.stop()
    thread.join(3)
    assert time.monotonic() - started < 3  # not the 30 s hang
    assert not thread.is_alive()
    (error,) = errors
    assert isinstance(error, http.client.RemoteDisconnected | ConnectionError), error  # closed, no answer


def test_reset_closes_the_connection_without_answering(sim):
    sim.set_faults(reset_rate=1.0)
    with pytest.raises(requests.exceptions.ConnectionError):
        event(sim, f"d_uuid={UUID}&c_category=tents")
    assert sim.profile(UUID) is None
    call = sim.calls()[-1]
    assert (call["fault"], call["outcome"], call["status"]) == ("reset", "reset", None)


def test_malformed_json_is_a_truncated_200(sim):
    sim.set_faults(malformed_rate=1.0)
    response = event(sim, f"d_uuid={UUID}&c_category=tents")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.text.startswith('{"stuff":')
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    assert sim.profile(UUID) is not None  # processed


def test_down_answers_503_on_event_and_id_only(sim):
    sim.set_faults(down=True)
    assert event(sim).status_code == 503
    assert id_call(sim).status_code == 503
    client = Client(sim.url)
    assert client.optout(f"d_uuid={UUID}").status == 200
    assert client.admin("GET", "health").status == 200
    sim.set_faults()
    assert event(sim).status_code == 200


def test_faults_can_target_one_path(sim):
    sim.set_faults(error_rate=1.0, paths=["/id"])
    assert event(sim).status_code == 200
    assert id_call(sim).status_code == 503
    sim.set_faults(error_rate=1.0, paths=["/event"])
    assert event(sim).status_code == 503
    assert id_call(sim).status_code == 200


def test_rate_limit_answers_429_with_retry_after(sim):
    sim.set_faults(rate_limit_per_second=3, retry_after_seconds=2)
    responses = [event(sim, f"d_uuid={UUID}&c_category=tents") for _ in range(5)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429, 429]
    assert responses[3].headers["Retry-After"] == "2"
    assert sim.profile(UUID)["traits"]["1001"]["count"] == 3  # rejected calls were not processed
    time.sleep(1.05)
    assert event(sim).status_code == 200


def test_faults_from_the_config_file(make_sim):
    sim = make_sim(faults={"error_rate": 1.0, "paths": ["/event"]})
    assert event(sim).status_code == 503
    sim.reset()  # back to the config: still faulty
    assert event(sim).status_code == 503
    sim.set_faults()
    assert event(sim).status_code == 200


def test_fault_admin_endpoint(sim):
    client = Client(sim.url)
    answer = client.admin(
        "POST", "faults", {"error_rate": 0.25, "latency": {"kind": "uniform", "min_ms": 1, "max_ms": 2}}
    )
    assert answer.status == 200
    current = client.admin("GET", "faults").json()
    assert current["error_rate"] == 0.25
    assert current["latency"] == {"kind": "uniform", "min_ms": 1.0, "max_ms": 2.0}
    assert current["paths"] == ["/event", "/id"]
    assert client.admin("POST", "faults", {}).json()["error_rate"] == 0.0
    assert sim.faults()["latency"] == {"kind": "fixed", "ms": 0.0}


@pytest.mark.parametrize(
    "bad",
    [
        {"error_rate": 2},
        {"error_status": 404},
        {"paths": ["/other"]},
        {"latency": {"kind": "weird"}},
        {"latency": {"kind": "fixed", "min_ms": 1}},
        {"latency": {"kind": "uniform", "min_ms": 5, "max_ms": 1}},
        {"unknown": 1},
        {"down": "yes"},
        {"hang_seconds": -1},
    ],
)
def test_invalid_fault_settings_are_refused(sim, bad):
    assert Client(sim.url).admin("POST", "faults", bad).status == 400
    with pytest.raises(FaultConfigError):
        sim.set_faults(**bad)
