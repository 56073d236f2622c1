"""Admin endpoints, the Python API, the call log and per-user in-flight tracking."""

from __future__ import annotations

import re
import threading
import time

import pytest

from local.dcs_simulator import DcsSimulator
from tests.simulator.helpers import ORG, Client

UUID = "1234567890123456789" * 2
OTHER = "1111111111111111111" + "2222222222222222222"


def test_call_log_records_the_request_and_the_answer(sim, client):
    result = client.event(
        f"d_uuid={UUID}&c_category=tents&c_sizes=m,l",
        headers={"User-Agent": "demo-agent/1.0", "Referer": "https://shop.example/tents", "Cookie": "a=b"},
    )
    (call,) = client.admin("GET", "calls").json()["calls"]
    assert call["seq"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", call["time"])
    assert (call["method"], call["path"]) == ("GET", "/event")
    assert call["query"] == f"d_rtbd=json&d_jsonv=1&d_uuid={UUID}&c_category=tents&c_sizes=m,l"
    assert call["params"] == [
        ["d_rtbd", "json"],
        ["d_jsonv", "1"],
        ["d_uuid", UUID],
        ["c_category", "tents"],
        ["c_sizes", "m,l"],
    ]
    assert call["headers"] == {
        "Host": "acme.demdex.net",
        "X-Forwarded-Host": "usw2.demdex.net",
        "User-Agent": "demo-agent/1.0",
        "Referer": "https://shop.example/tents",
        "Cookie": "a=b",
    }
    assert call["body"] is None
    assert (call["target_host"], call["region"]) == ("usw2.demdex.net", 9)
    assert call["status"] == 200
    assert call["response"] == result.json()
    assert call["response_headers"]["Content-Type"] == "application/json"
    assert call["fault"] is None
    assert call["uuid"] == UUID
    assert call["user_keys"] == [f"uuid:{UUID}"]


def test_admin_calls_are_never_logged_and_filters_work(sim, client):
    client.event("")
    client.id(f"d_ver=2&d_orgid={ORG.replace('@', '%40')}")
    client.admin("GET", "health")
    client.admin("GET", "stats")
    calls = client.admin("GET", "calls").json()
    assert calls["count"] == 2
    assert [c["path"] for c in calls["calls"]] == ["/event", "/id"]
    assert [c["path"] for c in client.admin("GET", "calls?path=/id").json()["calls"]] == ["/id"]
    assert [c["seq"] for c in client.admin("GET", "calls?since=1").json()["calls"]] == [2]
    assert [c["path"] for c in sim.calls(path="/event")] == ["/event"]


def test_clearing_the_log_keeps_the_sequence(sim, client):
    client.event("")
    assert client.admin("DELETE", "calls").json() == {"cleared": True}
    assert sim.calls() == []
    client.event("")
    assert [c["seq"] for c in sim.calls()] == [2]
    sim.clear_calls()
    assert sim.calls() == []


def test_reset_restores_everything_from_the_config(sim, client):
    uuid = client.event("c_category=tents").json()["uuid"]
    client.optout(f"d_uuid={uuid}")
    sim.set_faults(latency={"kind": "fixed", "ms": 1})
    sim.set_rules({"traits": [], "segments": []})
    assert client.admin("POST", "reset").json() == {"reset": True}
    assert sim.profile(uuid) is None
    assert sim.calls() == []
    assert sim.faults()["latency"] == {"kind": "fixed", "ms": 0.0}
    assert sim.stats()["calls_total"] == 0
    assert f"uuid:{uuid}" not in sim.stats()["opted_out"]
    assert "uuid:11111111111111111111111111111111111171" in sim.stats()["opted_out"]  # from the config
    assert "errors" not in client.event(f"d_uuid={uuid}").json()
    assert client.event("c_category=tents&d_cts=2").json()["segments"] == [2001]


def test_health_config_and_unknown_admin_routes(sim, client):
    health = client.admin("GET", "health").json()
    assert health["status"] == "ok"
    assert health["partners"] == ["acme"]
    assert health["config"].endswith("rules.toml")
    config = client.admin("GET", "config").json()
    assert config["simulator"]["gslb_region"] == 9
    assert config["partners"] == [{"alias": "acme", "org_ids": [ORG]}]
    assert client.admin("GET", "nope").status == 404
    assert client.admin("POST", "faults", None).status == 200  # no body: {} clears
    assert client.request("POST", "/_admin/faults", body="{not json").status == 400


def test_stats_count_calls(sim, client):
    client.event("")
    client.event("c_x=%")
    client.request("GET", "/event", headers={"X-Forwarded-Host": "evil.example.com"})
    stats = sim.stats()
    assert stats["calls_total"] == 3
    assert stats["calls_by_path"] == {"/event": 3}
    assert stats["calls_by_status"] == {"200": 2, "421": 1}
    assert stats["profiles"] == 1
    assert stats["max_in_flight_per_user"] == 0
    assert stats["in_flight_now"] == 0


def _concurrently(sim: DcsSimulator, queries: list[str]) -> None:
    """Send the calls from one thread each, all at once; every one must be answered 200."""
    client = Client(sim.url)
    statuses: list[int] = []

    def send(query: str) -> None:
        statuses.append(client.event(query).status)

    threads = [threading.Thread(target=send, args=(q,)) for q in queries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert statuses == [200] * len(queries)


def test_two_calls_in_flight_for_one_user_are_detected(sim):
    sim.set_faults(latency={"kind": "fixed", "ms": 200})
    _concurrently(sim, [f"d_uuid={UUID}", f"d_uuid={UUID}&c_category=tents"])
    stats = Client(sim.url).admin("GET", "stats").json()
    assert stats["max_in_flight_per_user"] == 2
    (violation,) = stats["concurrent_violations"]
    assert violation["users"] == [f"uuid:{UUID}"]
    assert violation["path"] == "/event"
    assert len(violation["concurrent_with"]) == 1
    assert violation["concurrent_with"][0] != violation["seq"]


def test_a_mid_and_its_uuid_are_the_same_user(sim, client):
    org = ORG.replace("@", "%40")
    mid = "7" * 38
    uuid = client.event(f"d_mid={mid}&d_orgid={org}").json()["uuid"]
    sim.set_faults(latency={"kind": "fixed", "ms": 200})
    _concurrently(sim, [f"d_mid={mid}&d_orgid={org}", f"d_uuid={uuid}"])
    (violation,) = sim.stats()["concurrent_violations"]
    assert violation["users"] == [f"uuid:{uuid}"]


def test_different_users_in_parallel_are_fine(sim):
    sim.set_faults(latency={"kind": "fixed", "ms": 200})
    _concurrently(sim, [f"d_uuid={UUID}", f"d_uuid={OTHER}", "d_cid=123%01a", "d_cid=123%01b"])
    stats = sim.stats()
    assert stats["max_in_flight_per_user"] == 1
    assert stats["max_in_flight_total"] == 4
    assert stats["concurrent_violations"] == []


def test_back_to_back_calls_for_one_user_are_not_concurrent(sim):
    """The answer goes out after the call left the in-flight set: a client that calls again at once is fine."""
    session_client = Client(sim.url)
    for _ in range(30):
        session_client.event(f"d_uuid={UUID}")
    assert sim.stats()["concurrent_violations"] == []
    assert sim.stats()["max_in_flight_per_user"] == 1


def test_reset_while_a_call_is_in_flight_keeps_the_counters_sane(sim):
    sim.set_faults(latency={"kind": "fixed", "ms": 300})
    thread = threading.Thread(target=Client(sim.url).event, args=(f"d_uuid={UUID}",))
    thread.start()
    time.sleep(0.1)
    assert sim.stats()["in_flight_now"] == 1
    sim.reset()
    thread.join(5)
    stats = sim.stats()
    assert (stats["in_flight_now"], stats["calls_total"], stats["calls_by_status"]) == (0, 0, {})
    sim.set_faults(latency={"kind": "fixed", "ms": 200})
    _concurrently(sim, [f"d_uuid={UUID}", f"d_uuid={UUID}"])
    assert sim.stats()["max_in_flight_per_user"] == 2


def test_python_api_lifecycle(base_config):
    sim = DcsSimulator(config=base_config, host="127.0.0.1", port=0)
    with pytest.raises(RuntimeError):
        _ = sim.url
    url = sim.start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        assert sim.url == url
        assert sim.start() == url  # idempotent
        assert sim.running
    finally:
        sim.stop()
    sim.stop()  # idempotent
    assert not sim.running
    with DcsSimulator(config=base_config) as again:
        assert Client(again.url).admin("GET", "health").status == 200
    assert not again.running


def test_simulator_defaults_to_the_bundled_rules():
    with DcsSimulator() as sim:
        assert Client(sim.url).event("c_category=tents&d_cts=2").json()["segments"] == [2001]


def test_stop_is_quick_with_idle_keep_alive_connections(base_config):
    import requests

    sim = DcsSimulator(config=base_config)
    sim.start()
    session = requests.Session()
    session.get(f"{sim.url}/_admin/health", timeout=2)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 3  # not stop()'s 5 s wait for the handler thread
    session.close()
