"""The synchronous send: resolve, refuse or skip, dry-run, guard, one DCS call, read the answer, learn."""

import pytest

from aam_dcs.errors import DcsTimeout, DcsUnavailable, InvalidRequest, PayloadTooLarge, RateLimited
from aam_dcs.ids.models import IdentityInput
from aam_dcs.signals.models import SendSignalsInput
from aam_dcs.store.memory import InMemoryProfileStore
from tests.support.fakes import FakeDcs
from tests.support.signals import AMCV, MID, NOW, OPTED_OUT_AMCV, UUID, bundle_settings, make_sender

ORG_COOKIE = "AMCV_0123456789ABCDEF01234567%40AdobeOrg"


def send(sender, **fields):
    return sender.send(SendSignalsInput(**fields))


def test_a_sync_send_calls_the_visitor_region_once_and_reads_the_answer(counts):
    dcs = FakeDcs(event_answers=[{"uuid": UUID, "dcs_region": 9, "tid": "t-1", "errors": [{"code": 309, "msg": "x"}]}])
    result = send(make_sender(dcs=dcs), amcv=AMCV, signals={"c_color": "blue"})
    assert result.model_dump(exclude_none=True) == {
        "status": "sent",
        "region_id": 9,
        "tid": "t-1",
        "warnings": [{"code": 309, "msg": "x"}],
        "opted_out": False,
    }
    (request,) = dcs.requests
    assert request.target_host == "usw2.demdex.net"
    assert dcs.params()["d_mid"] == [MID]
    assert dcs.params()["d_blob"] == ["Zm9vYmFy"]
    assert (counts["SignalsSent"], counts["DcsCode_309"]) == (1, 1)


def test_nothing_to_send_is_a_400_naming_signals_and_makes_no_call():
    dcs = FakeDcs()
    with pytest.raises(InvalidRequest) as info:
        send(make_sender(dcs=dcs), mid=MID, signals={})
    assert info.value.field == "signals"
    assert dcs.requests == []


def test_a_visitor_nothing_identifies_is_refused():
    with pytest.raises(InvalidRequest) as info:
        send(make_sender(), signals={"c_x": "1"})
    assert info.value.field == "mid"


def test_an_opted_out_visitor_is_skipped_without_a_call(counts):
    dcs = FakeDcs()
    for fields in ({"amcv": OPTED_OUT_AMCV}, {"cookies": f"{ORG_COOKIE}={OPTED_OUT_AMCV}"}):
        result = send(make_sender(dcs=dcs), signals={"c_x": "1"}, dry_run=True, **fields)
        assert (result.status, result.opted_out) == ("skipped_opted_out", True)
    assert dcs.requests == []
    assert counts["SignalsSkippedOptedOut"] == 2


def test_a_visitor_the_store_knows_opted_out_is_skipped():
    store = InMemoryProfileStore(clock=lambda: NOW)
    dcs = FakeDcs(event_answers=[{"errors": [{"code": 171, "msg": "opted out"}]}])
    sender = make_sender(dcs=dcs, store=store)
    first = send(sender, uuid=UUID, signals={"c_x": "1"})
    assert (first.status, first.opted_out, [w.code for w in first.warnings]) == ("discarded", True, [171])
    assert send(sender, uuid=UUID, signals={"c_x": "2"}).status == "skipped_opted_out"
    assert len(dcs.requests) == 1


def test_dry_run_answers_the_masked_call_and_makes_none(counts):
    dcs = FakeDcs()
    result = send(make_sender(dcs=dcs), mid=MID, region_id=6, signals={"c_x": "a b"}, dry_run=True)
    assert result.status == "dry_run"
    assert result.request == (
        "https://irl1.demdex.net/event?d_rtbd=json&d_jsonv=1&d_mid=***"
        "&d_orgid=0123456789ABCDEF01234567%40AdobeOrg&c_x=a%20b"
    )
    assert dcs.requests == []
    assert counts["SignalsDryRun"] == 1


@pytest.mark.parametrize("codes", [[171], [172], [173], [198], [199], [311], [303], [306, 307]])
def test_a_discarded_call_says_so_with_the_codes(codes, counts):
    dcs = FakeDcs(event_answers=[{"tid": "t", "errors": [{"code": c, "msg": ""} for c in codes]}])
    result = send(make_sender(dcs=dcs), mid=MID, signals={"c_x": "1"})
    assert result.status == "discarded"
    assert [w.code for w in result.warnings] == codes
    assert counts["SignalsDiscarded"] == 1
    assert all(counts[f"DcsCode_{code}"] == 1 for code in codes)


def test_what_the_dcs_teaches_is_remembered():
    store = InMemoryProfileStore(clock=lambda: NOW)
    dcs = FakeDcs(event_answers=[{"uuid": UUID, "dcs_region": 9}])
    sender = make_sender(dcs=dcs, store=store)
    send(sender, mid=MID, region_id=9, signals={"c_x": "1"})
    # A later call that knows only the MID finds the UUID and the region.
    resolved = sender.resolver.resolve(IdentityInput(mid=MID))
    assert (resolved.uuid, resolved.region_id) == (UUID, 9)


def test_segments_come_back_when_asked_for():
    dcs = FakeDcs(event_answers=[{"uuid": UUID, "dcs_region": 9, "segments": ["14612"]}] * 2)
    sender = make_sender(dcs=dcs, segments=lambda response: list(response.segments))
    assert send(sender, mid=MID, signals={"c_x": "1"}, return_segments=True).segments == ["14612"]
    assert send(sender, mid=MID, signals={"c_x": "1"}).segments is None


def test_a_discarded_call_has_no_segments():
    dcs = FakeDcs(event_answers=[{"errors": [{"code": 171}], "segments": ["1"]}])
    sender = make_sender(dcs=dcs, segments=lambda response: list(response.segments))
    assert send(sender, mid=MID, signals={"c_x": "1"}, return_segments=True).segments == []


def test_cts_segment_source_asks_for_d_cts():
    dcs = FakeDcs()
    sender = make_sender(bundle_settings(AAM_SEGMENT_SOURCE="cts"), dcs=dcs, segments=lambda r: [])
    send(sender, mid=MID, signals={"c_x": "1"}, return_segments=True)
    assert dcs.params()["d_cts"] == ["2"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (DcsTimeout("no answer", may_have_processed=True), 504),
        (DcsUnavailable("down", status=503), 502),
    ],
)
def test_dcs_failures_reach_the_caller_typed_and_are_never_retried_here(error, status, counts):
    dcs = FakeDcs(event_answers=[error])
    with pytest.raises(type(error)) as info:
        send(make_sender(dcs=dcs), mid=MID, signals={"c_x": "1"})
    assert info.value.http_status == status
    assert len(dcs.requests) == 1
    assert counts[f"DcsError_{type(error).__name__}"] == 1
    assert counts["SignalsFailed"] == 1


def test_a_transient_code_in_the_answer_is_a_502():
    dcs = FakeDcs(event_answers=[{"tid": "t", "errors": [{"code": 0, "msg": "unspecified"}]}])
    with pytest.raises(DcsUnavailable) as info:
        send(make_sender(dcs=dcs), mid=MID, signals={"c_x": "1"})
    assert (info.value.codes, info.value.tid) == ([0], "t")


def test_a_call_too_large_for_the_dcs_is_a_413_before_any_call():
    dcs = FakeDcs()
    with pytest.raises(PayloadTooLarge):
        send(make_sender(dcs=dcs), mid=MID, signals={f"c_k{i}": "v" * 1000 for i in range(40)})
    assert dcs.requests == []


def test_the_guard_refuses_calls_past_the_cap_with_retry_after(counts):
    store = InMemoryProfileStore(clock=lambda: NOW)
    dcs = FakeDcs()
    sender = make_sender(bundle_settings(AAM_USER_CALLS_PER_MINUTE="2"), dcs=dcs, store=store)
    send(sender, mid=MID, signals={"c_x": "1"})
    send(sender, mid=MID, signals={"c_x": "2"})
    with pytest.raises(RateLimited) as info:
        send(sender, mid=MID, signals={"c_x": "3"})
    assert 0 < info.value.retry_after <= 60
    assert len(dcs.requests) == 2
    assert counts["DenylistGuardRefusals"] == 1


def test_dry_runs_do_not_count_against_the_guard():
    store = InMemoryProfileStore(clock=lambda: NOW)
    sender = make_sender(bundle_settings(AAM_USER_CALLS_PER_MINUTE="1"), store=store)
    for _ in range(3):
        send(sender, mid=MID, signals={"c_x": "1"}, dry_run=True)
    assert send(sender, mid=MID, signals={"c_x": "1"}).status == "sent"


def test_a_region_read_back_from_the_store_keeps_its_origin_when_more_is_learned():
    from aam_dcs.ids.sources import StoredIdentity
    from aam_dcs.store.profiles import mid_key

    store = InMemoryProfileStore(clock=lambda: NOW)
    store.put_identity([mid_key(MID)], StoredIdentity(mid=MID, region_id=7, region_source="id_service"), 600)
    sender = make_sender(dcs=FakeDcs(event_answers=[{"uuid": UUID, "dcs_region": 7}]), store=store)
    send(sender, mid=MID, signals={"c_x": "1"})
    stored = store.get_identity([mid_key(MID)])
    assert stored is not None
    assert (stored.uuid, stored.region_id, stored.region_source) == (UUID, 7, "id_service")
