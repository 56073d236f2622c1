"""Segment lookups through the real DCS client, profiles table (moto) and the simulator's rules."""

from __future__ import annotations

import json

import pytest

from aam_dcs.errors import DcsUnavailable
from tests.support.events import FakeLambdaContext, api_event
from tests.support.segments import MID, ORG

pytestmark = pytest.mark.integration

OPTED_OUT_MID = "22222222222222222222222222222222222171"
OTHER_MID = "31234567890123456789012345678901234567"
AMCV_COOKIE = f"AMCV_{ORG.replace('@', '%40')}"


def amcv(mid: str, region: int, optout: str = "NONE") -> str:
    return f"1585540135%7CMCMID%7C{mid}%7CMCAAMLH-1728004800%7C{region}%7CMCOPTOUT-1727407200s%7C{optout}"


def look_up(handler, **data):
    return handler.lambda_handler(data, FakeLambdaContext())


def event_calls(sim):
    return sim.calls("/event")


def test_miss_then_hit_then_refresh(handler, seeder, segments_sim, stack):
    seeder.realize([1001, 1004], mid=MID)
    calls_before = len(event_calls(segments_sim))
    first = look_up(handler, mid=MID, region_id=9)
    assert (first["segments"], first["cache"], first["region_id"]) == (["2001", "2003"], "miss", 9)
    assert first["uuid"] is not None
    call = event_calls(segments_sim)[-1]
    assert call["target_host"] == "usw2.demdex.net"
    assert call["headers"].get("Host", call["headers"].get("host")) == "acme.demdex.net"
    assert "c_" not in call["query"]
    assert "d_sid" not in call["query"]

    second = look_up(handler, mid=MID)
    assert (second["cache"], second["segments"], second["uuid"]) == ("hit", ["2001", "2003"], first["uuid"])
    assert len(event_calls(segments_sim)) == calls_before + 1

    seeder.realize([1002, 1003], mid=MID)
    refreshed = look_up(handler, mid=MID, refresh=True)
    assert (refreshed["cache"], refreshed["segments"]) == ("bypass", ["2001", "2002", "2003"])
    items = stack.segments_items()
    assert items[f"mid#{MID}"]["segments"]["L"] == [{"S": "2001"}, {"S": "2002"}, {"S": "2003"}]
    assert "updated_at" in items[f"mid#{MID}"]


def test_a_lookup_never_realizes_traits(handler, seeder, segments_sim):
    seeder.realize([1001], mid=MID)
    look_up(handler, mid=MID, refresh=True)
    assert event_calls(segments_sim)[-1].get("realized_traits") in ([], None)


def test_an_outage_answers_the_cached_entry_as_stale_and_fails_without_one(handler, seeder, segments_sim):
    seeder.realize([1001], mid=MID)
    look_up(handler, mid=MID)
    segments_sim.set_faults(down=True)
    stale = look_up(handler, mid=MID, refresh=True)
    assert (stale["cache"], stale["stale"], stale["segments"]) == ("stale", True, ["2001"])
    with pytest.raises(DcsUnavailable):
        look_up(handler, mid=OTHER_MID)
    response = handler.lambda_handler(api_event("GET", "/segments", query={"mid": OTHER_MID}), FakeLambdaContext())
    assert response["statusCode"] == 502


def test_cts_reads_the_segments_array(configure, seeder, segments_sim):
    handler = configure(AAM_SEGMENT_SOURCE="cts")
    seeder.realize([1002, 1003], mid=MID)
    result = look_up(handler, mid=MID)
    assert (result["segments"], result["segment_source"]) == (["2002"], "cts")
    assert "d_cts=2" in event_calls(segments_sim)[-1]["query"]


def test_the_cookie_filter_and_key_select_one_destination(configure, seeder, segments_sim):
    segments_sim.set_rules(
        {
            "destinations": {
                "cookie": [
                    {"id": 501, "name": "Site", "cookie_name": "aam_seg", "key": "segs", "separator": ",",
                     "ttl_days": 30, "domain": "aam-api.com", "mappings": {"2001": "2001", "2003": "2003"}},
                    {"id": 502, "name": "Other", "cookie_name": "partner", "key": "segs", "separator": ",",
                     "ttl_days": 30, "domain": "aam-api.com", "mappings": {"2001": "campers"}},
                ],
                "url": [],
            }
        }
    )  # fmt: skip
    seeder.realize([1001, 1004], mid=MID)
    every = look_up(configure(), mid=MID, max_age_seconds=0)
    assert every["segments"] == ["2001", "2003", "campers"]
    filtered = look_up(configure(AAM_SEGMENT_COOKIE="aam_seg"), mid=MID, max_age_seconds=0)
    assert filtered["segments"] == ["2001", "2003"]


def test_the_dcs_opt_out_is_answered_and_remembered(handler, segments_sim):
    result = look_up(handler, mid=OPTED_OUT_MID, region_id=9)
    assert (result["segments"], result["opted_out"]) == ([], True)
    calls = len(event_calls(segments_sim))
    again = look_up(handler, mid=OPTED_OUT_MID, refresh=True)
    assert again["opted_out"]
    assert len(event_calls(segments_sim)) == calls


def test_an_opted_out_amcv_makes_no_call(handler, segments_sim):
    event = api_event("GET", "/segments", headers={"Cookie": f"{AMCV_COOKIE}={amcv(MID, 9, 'true')}"})
    body = json.loads(handler.lambda_handler(event, FakeLambdaContext())["body"])
    assert (body["segments"], body["opted_out"]) == ([], True)
    assert event_calls(segments_sim) == []


def test_the_api_reads_the_amcv_and_calls_the_visitors_region(handler, seeder, segments_sim):
    seeder.realize([1001], mid=MID)
    event = api_event("GET", "/segments", headers={"Cookie": f"{AMCV_COOKIE}={amcv(MID, 6)}"})
    response = handler.lambda_handler(event, FakeLambdaContext())
    body = json.loads(response["body"])
    assert (response["statusCode"], body["segments"], body["region_id"]) == (200, ["2001"], 6)
    assert event_calls(segments_sim)[-1]["target_host"] == "irl1.demdex.net"


def test_a_declared_id_finds_the_visitor_and_later_lookups_hit(handler, seeder, segments_sim):
    seeder.realize([1001], mid=MID)
    customer = [{"integration_code": "crm", "id": "crm-0001"}]
    first = look_up(handler, mid=MID, customer_ids=customer)
    second = look_up(handler, customer_ids=customer)
    assert (first["segments"], second["segments"], second["cache"]) == (["2001"], ["2001"], "hit")
    assert second["uuid"] == first["uuid"]
