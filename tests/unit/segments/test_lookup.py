"""The lookup use case over fakes: cache hit/miss/bypass/stale, opt-out, identity rules, the DCS call."""

import re

import pytest

from aam_dcs.errors import DcsBadResponse, DcsRejected, DcsTimeout, DcsUnavailable, InvalidRequest, RateLimited
from aam_dcs.segments.models import LookupInput
from aam_dcs.store.profiles import SegmentRecord, mid_key
from tests.support.segments import (
    AMCV,
    MID,
    OPTED_OUT_AMCV,
    ORG,
    UUID,
    LookupKit,
    bundle_settings,
    counted_metrics,
    stuff_answer,
)

OUTAGES = [
    DcsUnavailable("down", codes=None),
    DcsTimeout("slow"),
    DcsBadResponse("garbage"),
]


def ask(kit, **fields):
    return kit.lookup.lookup(LookupInput(**fields))


@pytest.fixture
def kit():
    return LookupKit()


def test_a_first_lookup_asks_the_visitors_regional_dcs_for_the_identity_only(kit):
    kit.dcs.event_answers.append(stuff_answer("14612", "14623"))
    result = ask(kit, mid=MID, region_id=6)
    assert result.segments == ["14612", "14623"]
    assert (result.cache, result.segment_source, result.opted_out, result.stale) == ("miss", "stuff", False, False)
    assert (result.uuid, result.mid, result.region_id) == (UUID, MID, 6)
    request = kit.dcs.requests[0]
    assert request.target_host == "irl1.demdex.net"
    assert request.idempotent
    assert kit.dcs.params() == {"d_rtbd": ["json"], "d_jsonv": ["1"], "d_mid": [MID], "d_orgid": [ORG]}


def test_fetched_at_is_iso_8601_utc(kit):
    kit.dcs.event_answers.append(stuff_answer("1"))
    result = ask(kit, mid=MID)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", result.fetched_at)
    assert result.fetched_at == "2027-01-15T08:00:00.000Z"


def test_a_fresh_cached_entry_is_a_hit_without_a_dcs_call(kit):
    kit.dcs.event_answers.append(stuff_answer("1", "2"))
    first = ask(kit, mid=MID, region_id=9)
    kit.clock.advance(100)
    second = ask(kit, mid=MID, max_age_seconds=300)
    assert len(kit.dcs.requests) == 1
    assert (second.cache, second.segments, second.uuid, second.region_id) == ("hit", ["1", "2"], UUID, 9)
    assert second.fetched_at == first.fetched_at


def test_an_entry_older_than_max_age_is_a_miss(kit):
    kit.dcs.event_answers += [stuff_answer("1"), stuff_answer("1", "3")]
    ask(kit, mid=MID)
    kit.clock.advance(301)
    result = ask(kit, mid=MID, max_age_seconds=300)
    assert (result.cache, result.segments) == ("miss", ["1", "3"])
    assert len(kit.dcs.requests) == 2


def test_max_age_zero_always_asks_the_dcs(kit):
    ask(kit, mid=MID)
    assert ask(kit, mid=MID, max_age_seconds=0).cache == "miss"
    assert len(kit.dcs.requests) == 2


def test_refresh_bypasses_a_fresh_entry_and_stores_the_new_answer(kit):
    kit.dcs.event_answers += [stuff_answer("1"), stuff_answer("2")]
    ask(kit, mid=MID)
    refreshed = ask(kit, mid=MID, refresh=True)
    assert (refreshed.cache, refreshed.segments) == ("bypass", ["2"])
    assert ask(kit, mid=MID).segments == ["2"]


def test_an_entry_read_with_another_segment_source_is_not_a_hit(kit):
    kit.store.put_segments(mid_key(MID), SegmentRecord(("9",), "cts", kit.clock()), 3600)
    kit.dcs.event_answers.append(stuff_answer("1"))
    assert ask(kit, mid=MID).cache == "miss"


def test_without_a_table_every_lookup_is_a_miss():
    kit = LookupKit(with_store=False)
    assert [ask(kit, mid=MID).cache for _ in range(2)] == ["miss", "miss"]
    assert len(kit.dcs.requests) == 2


def test_cts_asks_d_cts_2_and_reads_the_segments_array():
    kit = LookupKit(settings=bundle_settings(AAM_SEGMENT_SOURCE="cts"))
    kit.dcs.event_answers.append({"uuid": UUID, "dcs_region": 9, "segments": [984263, 985264], "stuff": []})
    result = ask(kit, uuid=UUID, region_id=9)
    assert (result.segments, result.segment_source) == (["984263", "985264"], "cts")
    assert kit.dcs.params()["d_cts"] == ["2"]


def test_the_cookie_filter_of_the_settings_applies():
    kit = LookupKit(settings=bundle_settings(AAM_SEGMENT_COOKIE="aam_seg"))
    answer = stuff_answer("1")
    answer["stuff"].append({"cn": "other", "cv": "segs=5"})
    kit.dcs.event_answers.append(answer)
    assert ask(kit, mid=MID).segments == ["1"]


def test_an_opted_out_amcv_answers_empty_without_a_call(kit):
    result = ask(kit, amcv=OPTED_OUT_AMCV)
    assert (result.segments, result.opted_out, result.cache) == ([], True, "bypass")
    assert kit.dcs.requests == []


def test_an_opt_out_code_is_remembered_and_no_later_call_is_made(kit):
    kit.dcs.event_answers.append({"errors": [{"code": 171, "msg": "Encountered opt out tag"}]})
    first = ask(kit, mid=MID, region_id=9)
    assert (first.segments, first.opted_out) == ([], True)
    second = ask(kit, mid=MID, refresh=True)
    assert second.opted_out
    assert len(kit.dcs.requests) == 1


@pytest.mark.parametrize("code", [172, 173])
def test_other_opt_out_codes(kit, code):
    kit.dcs.event_answers.append({"uuid": UUID, "errors": [{"code": code, "msg": ""}], "stuff": []})
    assert ask(kit, uuid=UUID).opted_out


def test_an_opt_out_replaces_cached_segments(kit):
    kit.dcs.event_answers += [stuff_answer("1"), {"errors": [{"code": 171, "msg": ""}]}]
    ask(kit, mid=MID)
    ask(kit, mid=MID, refresh=True)
    assert kit.store.get_segments(mid_key(MID)).opted_out


@pytest.mark.parametrize("fields", [{}, {"region_id": 9}, {"cookies": "other=1"}, {"amcv": "T"}])
def test_a_visitor_without_any_id_is_refused_naming_the_identity(kit, fields):
    with pytest.raises(InvalidRequest) as info:
        ask(kit, **fields)
    assert info.value.field == "identity"
    assert kit.dcs.requests == []


def test_declared_ids_alone_identify_the_visitor(kit):
    kit.dcs.event_answers.append(stuff_answer("5"))
    result = ask(kit, customer_ids=[{"integration_code": "crm", "id": "c-1"}])
    assert result.segments == ["5"]
    assert kit.dcs.params()["d_cid_ic"] == ["crm\x01c-1\x010"]


def test_the_amcv_cookie_identifies_the_visitor_and_its_region(kit):
    kit.dcs.event_answers.append(stuff_answer("1"))
    result = ask(kit, cookies=f"AMCV_{ORG.replace('@', '%40')}={AMCV}")
    assert (result.mid, result.region_id) == (MID, 9)
    assert kit.dcs.requests[0].target_host == "usw2.demdex.net"


def test_mint_is_ignored(kit):
    kit.dcs.event_answers.append(stuff_answer("1"))
    ask(kit, mid=MID, mint=True)
    assert [r.path for r in kit.dcs.requests] == ["/event"]


def test_what_the_dcs_taught_is_remembered_for_the_next_lookup(kit):
    kit.dcs.event_answers.append(stuff_answer("1", uuid=UUID, region=7))
    first = ask(kit, mid=MID)
    assert kit.dcs.requests[0].target_host == "acme.demdex.net"
    assert (first.uuid, first.region_id) == (UUID, 7)
    remembered = kit.store.get_identity([mid_key(MID)])
    assert (remembered.uuid, remembered.region_id, remembered.region_source) == (UUID, 7, "partner")
    kit.dcs.event_answers.append(stuff_answer("2", uuid=UUID, region=7))
    ask(kit, mid=MID, refresh=True)
    assert kit.dcs.params() == {
        "d_rtbd": ["json"],
        "d_jsonv": ["1"],
        "d_uuid": [UUID],
        "d_mid": [MID],
        "d_orgid": [ORG],
    }
    assert kit.dcs.requests[1].target_host == "use.demdex.net"


def test_a_browser_region_beats_a_region_learned_through_the_alias(kit):
    kit.dcs.event_answers.append(stuff_answer("1", region=7))
    ask(kit, mid=MID)
    ask(kit, mid=MID, region_id=6, refresh=True)
    assert kit.dcs.requests[1].target_host == "irl1.demdex.net"


def test_a_visitor_known_by_declared_id_finds_its_cached_segments(kit):
    customer = [{"data_source_id": 123, "id": "c-9"}]
    kit.dcs.event_answers.append(stuff_answer("4", uuid=UUID))
    ask(kit, customer_ids=customer)
    result = ask(kit, customer_ids=customer)
    assert (result.cache, result.segments, result.uuid) == ("hit", ["4"], UUID)
    assert len(kit.dcs.requests) == 1


@pytest.mark.parametrize("outage", OUTAGES, ids=lambda e: type(e).__name__)
def test_an_outage_answers_a_cached_entry_of_any_age_as_stale(kit, outage):
    kit.dcs.event_answers += [stuff_answer("1", "2"), outage]
    first = ask(kit, mid=MID, region_id=9)
    kit.clock.advance(10 * 24 * 3600)
    result = ask(kit, mid=MID)
    assert (result.cache, result.stale, result.segments) == ("stale", True, ["1", "2"])
    assert result.fetched_at == first.fetched_at


def test_an_outage_during_a_refresh_still_answers_stale(kit):
    kit.dcs.event_answers += [stuff_answer("1"), DcsUnavailable("down")]
    ask(kit, mid=MID)
    assert ask(kit, mid=MID, refresh=True).cache == "stale"


@pytest.mark.parametrize("outage", OUTAGES, ids=lambda e: type(e).__name__)
def test_an_outage_without_a_cached_entry_propagates(kit, outage):
    kit.dcs.event_answers.append(outage)
    with pytest.raises(type(outage)):
        ask(kit, mid=MID)


def test_transient_dcs_codes_count_as_an_outage(kit):
    kit.dcs.event_answers += [stuff_answer("1"), {"uuid": UUID, "errors": [{"code": 10, "msg": "Unable to evaluate"}]}]
    ask(kit, mid=MID)
    assert ask(kit, mid=MID, refresh=True).cache == "stale"
    kit.dcs.event_answers.append({"uuid": UUID, "errors": [{"code": 200, "msg": ""}]})
    with pytest.raises(DcsUnavailable):
        kit.lookup.run(LookupInput(mid=MID), refresh=True, serve_stale=False)


@pytest.mark.parametrize("code", [198, 306, 311])
def test_a_blocked_or_dropped_call_is_rejected_not_served_stale(kit, code):
    kit.dcs.event_answers += [stuff_answer("1"), {"errors": [{"code": code, "msg": ""}], "tid": "t1"}]
    ask(kit, mid=MID)
    with pytest.raises(DcsRejected) as info:
        ask(kit, mid=MID, refresh=True)
    assert info.value.codes == [code]
    assert info.value.tid == "t1"


def test_warnings_ride_along_with_the_segments(kit):
    answer = stuff_answer("1")
    answer["errors"] = [{"code": 309, "msg": "discarded"}]
    kit.dcs.event_answers.append(answer)
    assert ask(kit, mid=MID).segments == ["1"]


def test_metrics_count_lookups_cache_states_and_codes(kit):
    with counted_metrics() as counts:
        kit.dcs.event_answers += [
            {**stuff_answer("1"), "errors": [{"code": 309, "msg": ""}]},
            DcsUnavailable("down"),
        ]
        ask(kit, mid=MID)
        ask(kit, mid=MID)
        ask(kit, mid=MID, refresh=True)
        ask(kit, amcv=OPTED_OUT_AMCV)
        assert counts["SegmentLookups"] == 4
        assert (counts["SegmentCacheMiss"], counts["SegmentCacheHit"], counts["SegmentCacheStale"]) == (1, 1, 1)
        assert counts["SegmentLookupsOptedOut"] == 1
        assert counts["DcsCode309"] == 1


def test_the_denylist_guard_counts_dcs_calls_only_and_refusals_fall_back_to_the_cache():
    kit = LookupKit(settings=bundle_settings(AAM_USER_CALLS_PER_MINUTE="2"))
    kit.dcs.event_answers += [stuff_answer("1"), stuff_answer("1", "2")]
    ask(kit, mid=MID)
    for _ in range(5):
        assert ask(kit, mid=MID).cache == "hit"
    assert ask(kit, mid=MID, refresh=True).segments == ["1", "2"]
    refused = ask(kit, mid=MID, refresh=True)
    assert (refused.cache, refused.segments) == ("stale", ["1", "2"])
    assert len(kit.dcs.requests) == 2


def test_a_guard_refusal_without_a_cached_entry_is_rate_limited():
    kit = LookupKit(settings=bundle_settings(AAM_USER_CALLS_PER_MINUTE="1"))
    kit.dcs.event_answers.append({"errors": [{"code": 10, "msg": ""}]})
    with pytest.raises(DcsUnavailable):
        ask(kit, mid=MID)
    with pytest.raises(RateLimited) as info:
        ask(kit, mid=MID)
    assert 0 < info.value.retry_after <= 60
