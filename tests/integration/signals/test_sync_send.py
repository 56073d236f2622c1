"""A synchronous send arrives at the DCS exactly as built: the simulator's call log is the proof."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aam_dcs.dcs.http import DEFAULT_USER_AGENT
from tests.support.events import FakeLambdaContext, api_event
from tests.support.signals import MID

pytestmark = pytest.mark.integration

ORG_COOKIE = "AMCV_0123456789ABCDEF01234567%40AdobeOrg"
OPTED_OUT_UUID = "11111111111111111111111111111111111171"
AMCV = f"1585540135%7CMCMID%7C{MID}%7CMCAAMLH-1728004800%7C6%7CMCOPTOUT-1727407200s%7CNONE"


def post(function: Any, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    response = function.lambda_handler(api_event("POST", "/signals", body=body, headers=headers), FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_the_call_arrives_exactly_as_built(function, sim):
    status, result = post(
        function,
        {
            "mid": MID,
            "region_id": 9,
            "customer_ids": [
                {"data_source_id": 123, "id": "a&b=c d%+", "auth_state": 1},
                {"integration_code": "loyalty", "id": "ü@x.io"},
            ],
            "signals": {
                "c_phrase": "a b&c=d",
                "c_pct": "100%",
                "c_plus": "1+1",
                "c_utf8": "Zürich 日本",
                "c_sizes": ["m", "l"],
                "p_age": 23,
            },
            "trait_ids": [1001],
            "consent": {"gdpr": True, "gdpr_consent": "CPzHq4APzHq4A"},
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        },
    )
    assert (status, result["status"], result["region_id"]) == (200, "sent", 9)
    assert result["tid"]
    (call,) = sim.calls("/event")
    assert call["method"] == "GET"
    assert call["query"] == (
        f"d_rtbd=json&d_jsonv=1&d_mid={MID}&d_orgid=0123456789ABCDEF01234567%40AdobeOrg"
        "&d_cid=123%01a%26b%3Dc%20d%25%2B%011&d_cid_ic=loyalty%01%C3%BC%40x.io%010"
        "&c_phrase=a%20b%26c%3Dd&c_pct=100%25&c_plus=1%2B1&c_utf8=Z%C3%BCrich%20%E6%97%A5%E6%9C%AC"
        "&c_sizes=m&c_sizes=l&p_age=<private>&d_sid=1001&gdpr=1&gdpr_consent=CPzHq4APzHq4A"
    )
    assert ["c_utf8", "Zürich 日本"] in call["params"]
    assert ["d_cid", "123\x01a&b=c d%+\x011"] in call["params"]
    assert call["headers"]["Host"] == "acme.demdex.net"
    assert call["headers"]["X-Forwarded-Host"] == "usw2.demdex.net"
    assert call["headers"]["User-Agent"] == "Mozilla/5.0 (X11; Linux x86_64)"
    assert "Cookie" not in call["headers"]
    assert (call["target_host"], call["region"], call["status"]) == ("usw2.demdex.net", 9, 200)
    assert call["response"].get("errors", []) == []


def test_the_browser_cookie_steers_the_region_but_is_never_forwarded(function, sim):
    status, result = post(function, {"signals": {"c_x": "1"}}, headers={"Cookie": f"{ORG_COOKIE}={AMCV}; demdex=123"})
    assert (status, result["region_id"]) == (200, 6)
    (call,) = sim.calls("/event")
    assert call["headers"]["X-Forwarded-Host"] == "irl1.demdex.net"
    assert call["headers"]["User-Agent"] == DEFAULT_USER_AGENT
    assert "Cookie" not in call["headers"]
    assert sim.stats()["calls_with_cookie"] == 0


def test_an_unknown_region_goes_to_the_partner_alias(function, sim):
    post(function, {"uuid": "2" * 38, "signals": {"c_x": "1"}})
    (call,) = sim.calls("/event")
    assert call["headers"]["X-Forwarded-Host"] == "acme.demdex.net"
    assert call["target_kind"] == "alias"


def test_a_large_call_is_a_form_post(function, sim):
    status, _ = post(function, {"mid": MID, "region_id": 9, "signals": {f"c_k{i}": "v" * 1000 for i in range(9)}})
    assert status == 200
    (call,) = sim.calls("/event")
    assert (call["method"], call["headers"]["Content-Type"]) == ("POST", "application/x-www-form-urlencoded")
    assert call["body"].startswith(f"d_rtbd=json&d_jsonv=1&d_mid={MID}&")


def test_what_the_dcs_teaches_is_remembered_in_the_table(function, sim):
    post(function, {"mid": MID, "region_id": 9, "signals": {"c_x": "1"}})
    post(function, {"mid": MID, "signals": {"c_x": "2"}})
    first, second = sim.calls("/event")
    uuid = first["response"]["uuid"]
    assert ["d_uuid", uuid] in second["params"]
    assert second["headers"]["X-Forwarded-Host"] == "usw2.demdex.net"


def test_an_opted_out_visitor_is_discarded_then_skipped(function, sim):
    status, first = post(function, {"uuid": OPTED_OUT_UUID, "signals": {"c_x": "1"}})
    assert (status, first["status"], first["opted_out"]) == (200, "discarded", True)
    assert [w["code"] for w in first["warnings"]] == [171]
    status, second = post(function, {"uuid": OPTED_OUT_UUID, "signals": {"c_x": "2"}})
    assert (status, second["status"]) == (200, "skipped_opted_out")
    assert len(sim.calls("/event")) == 1


def test_dry_run_calls_nothing(function, sim):
    status, result = post(function, {"mid": MID, "region_id": 9, "signals": {"c_x": "a b"}, "dry_run": True})
    assert (status, result["status"]) == (200, "dry_run")
    assert result["request"] == (
        "https://usw2.demdex.net/event?d_rtbd=json&d_jsonv=1&d_mid=***"
        "&d_orgid=0123456789ABCDEF01234567%40AdobeOrg&c_x=a%20b"
    )
    assert sim.calls() == []


def test_a_read_timeout_is_a_504_and_is_never_retried(function, sim):
    sim.set_faults(hang_rate=1.0, hang_seconds=3)
    status, result = post(function, {"mid": MID, "region_id": 9, "signals": {"c_x": "1"}})
    assert (status, result["error"], result["may_have_processed"]) == (504, "DcsTimeout", True)
    assert len(sim.calls("/event")) == 1


def test_a_dcs_that_stays_down_is_a_502(function, sim):
    sim.set_faults(down=True)
    status, result = post(function, {"mid": MID, "region_id": 9, "signals": {"c_x": "1"}})
    assert (status, result["error"], result["status"]) == (502, "DcsUnavailable", 503)
    assert len(sim.calls("/event")) == 3  # 5xx are retried: the DCS did not take the call


def test_the_guard_answers_429_before_the_dcs_sees_a_burst(function, sim, monkeypatch):
    monkeypatch.setenv("AAM_USER_CALLS_PER_MINUTE", "3")
    from aam_dcs.config import get_settings

    get_settings.cache_clear()
    function.sender.cache_clear()
    answers = [post(function, {"mid": MID, "region_id": 9, "signals": {"c_n": str(n)}}) for n in range(5)]
    assert [status for status, _ in answers] == [200, 200, 200, 429, 429]
    assert answers[3][1]["error"] == "RateLimited"
    assert len(sim.calls("/event")) == 3
