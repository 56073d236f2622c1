"""Enrichment: change detection against the announced baseline, events only on change, failures."""

import json

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from aam_dcs.errors import DcsRejected, DcsTimeout, DcsUnavailable
from aam_dcs.ids.models import IdentityInput
from aam_dcs.jobs.events import InMemoryEventSink
from aam_dcs.jobs.worker import PermanentFailure
from aam_dcs.segments.enrich import SegmentChange, SegmentEnricher, VisitorOptedOut, baseline_key
from aam_dcs.segments.models import LookupInput
from aam_dcs.store.profiles import SegmentRecord, customer_key, mid_key
from tests.support.events import sqs_event
from tests.support.segments import MID, OPTED_OUT_AMCV, UUID, LookupKit, counted_metrics, enrich_body, stuff_answer

CUSTOMER = {"integration_code": "crm", "id": "raw-crm-id-42"}


@pytest.fixture
def kit():
    return LookupKit()


@pytest.fixture
def enricher(kit):
    return SegmentEnricher(lookup=kit.lookup, store=kit.store, events=InMemoryEventSink(), clock=kit.clock)


def enrich(enricher, **fields):
    return enricher.enrich(IdentityInput(**fields))


def details(enricher):
    return [dict(event.detail) for event in enricher.events.events]


def test_change_between_a_baseline_and_new_segments():
    baseline = SegmentRecord(("1", "2", "3"), "stuff", 0.0)
    change = SegmentChange.between(baseline, ["3", "4", "1"])
    assert (change.added, change.removed, change.segments, change.first) == (("4",), ("2",), ("3", "4", "1"), False)
    assert change.changed
    assert not SegmentChange.between(baseline, ["3", "2", "1"]).changed


def test_a_first_lookup_with_segments_is_announced(kit, enricher):
    kit.dcs.event_answers.append(stuff_answer("1", "2"))
    change = enrich(enricher, mid=MID, region_id=9)
    assert change.changed
    assert change.first
    (event,) = enricher.events.events
    assert (event.source, event.detail_type) == ("aam-dcs", "SegmentsChanged")
    assert event.detail["added"] == ["1", "2"]
    assert event.detail["removed"] == []
    assert event.detail["segments"] == ["1", "2"]
    assert event.detail["first_lookup"] is True
    assert event.detail["identity"] == {"mid": MID, "uuid": UUID, "region_id": 9, "customer_keys": []}


def test_a_first_lookup_without_segments_announces_nothing(kit, enricher):
    kit.dcs.event_answers.append(stuff_answer())
    assert not enrich(enricher, mid=MID).changed
    assert enricher.events.events == []


def test_an_unchanged_second_run_announces_nothing(kit, enricher):
    kit.dcs.event_answers += [stuff_answer("1", "2"), stuff_answer("2", "1")]
    enrich(enricher, mid=MID)
    enrich(enricher, mid=MID)
    assert len(enricher.events.events) == 1


def test_a_change_announces_what_was_added_and_removed(kit, enricher):
    kit.dcs.event_answers += [stuff_answer("1", "2"), stuff_answer("2", "3"), stuff_answer()]
    enrich(enricher, mid=MID)
    enrich(enricher, mid=MID)
    enrich(enricher, mid=MID)
    changes = [(d["added"], d["removed"], d["first_lookup"]) for d in details(enricher)]
    assert changes == [(["1", "2"], [], True), (["3"], ["1"], False), ([], ["2", "3"], False)]


def test_enrichment_always_asks_the_dcs_and_refreshes_the_cache(kit, enricher):
    kit.dcs.event_answers += [stuff_answer("1"), stuff_answer("1", "5")]
    kit.lookup.lookup(LookupInput(mid=MID))
    enrich(enricher, mid=MID)
    assert len(kit.dcs.requests) == 2
    assert kit.store.get_segments(mid_key(MID)).segments == ("1", "5")


def test_changes_seen_first_by_page_views_are_still_announced(kit, enricher):
    kit.dcs.event_answers += [stuff_answer("1"), stuff_answer("1", "2"), stuff_answer("1", "2")]
    enrich(enricher, mid=MID)
    kit.lookup.lookup(LookupInput(mid=MID, refresh=True))  # a landing page sees the new segment first
    enrich(enricher, mid=MID)
    assert [d["added"] for d in details(enricher)] == [["1"], ["2"]]


def test_events_name_declared_ids_only_by_their_hashed_keys(kit, enricher):
    kit.dcs.event_answers.append(stuff_answer("1"))
    enrich(enricher, customer_ids=[CUSTOMER])
    (detail,) = details(enricher)
    assert detail["identity"]["customer_keys"] == [customer_key("ic:crm", "raw-crm-id-42")]
    assert "raw-crm-id-42" not in json.dumps(detail)


def test_an_event_failure_leaves_the_baseline_so_a_retry_announces_again(kit, enricher):
    class Failing(InMemoryEventSink):
        def put(self, events):
            raise RuntimeError("bus down")

    working = enricher.events
    enricher.events = Failing()
    kit.dcs.event_answers += [stuff_answer("1"), stuff_answer("1")]
    with pytest.raises(RuntimeError):
        enrich(enricher, mid=MID)
    enricher.events = working
    enrich(enricher, mid=MID)
    assert [d["added"] for d in details(enricher)] == [["1"]]


def test_without_a_bus_changes_are_still_recorded(kit):
    enricher = SegmentEnricher(lookup=kit.lookup, store=kit.store, events=None, clock=kit.clock)
    kit.dcs.event_answers += [stuff_answer("1"), stuff_answer("1")]
    assert enricher.enrich(IdentityInput(mid=MID)).changed
    assert not enricher.enrich(IdentityInput(mid=MID)).changed


def test_an_unchanged_baseline_is_rewritten_only_when_old(kit, enricher):
    kit.dcs.event_answers += [stuff_answer("1")] * 3
    enrich(enricher, mid=MID)
    key = baseline_key(kit.lookup.resolver.resolve(IdentityInput(mid=MID, uuid=UUID)))
    written = kit.store.get_segments(key).fetched_at
    kit.clock.advance(3600)
    enrich(enricher, mid=MID)
    assert kit.store.get_segments(key).fetched_at == written
    kit.clock.advance(enricher.baseline_refresh_seconds)
    enrich(enricher, mid=MID)
    assert kit.store.get_segments(key).fetched_at == kit.clock.now


def test_an_outage_raises_even_with_a_cached_entry(kit, enricher):
    kit.dcs.event_answers += [stuff_answer("1"), DcsUnavailable("down")]
    enrich(enricher, mid=MID)
    with pytest.raises(DcsUnavailable):
        enrich(enricher, mid=MID)


def test_an_opted_out_customer_is_refused(kit, enricher):
    with pytest.raises(VisitorOptedOut):
        enrich(enricher, amcv=OPTED_OUT_AMCV)
    assert enricher.events.events == []


def test_metrics_count_changes_and_events(kit, enricher):
    with counted_metrics() as counts:
        kit.dcs.event_answers += [stuff_answer("1"), stuff_answer("1")]
        enrich(enricher, mid=MID)
        enrich(enricher, mid=MID)
        assert (counts["EnrichmentChanged"], counts["EnrichmentUnchanged"], counts["SegmentsChangedEvents"]) == (
            1,
            1,
            1,
        )


# --- the queue worker ---------------------------------------------------------------------------


def record(body, group="mid:1"):
    return SQSRecord(sqs_event([(group, body)], queue="enrich.fifo")["Records"][0])


@pytest.fixture
def worker(kit):
    worker, _events = kit.enrichment_worker()
    return worker


def test_the_worker_enriches_a_customer_message(kit, worker):
    kit.dcs.event_answers.append(stuff_answer("7"))
    worker.handle(record(enrich_body({"mid": MID, "region_id": 9})), None)
    assert kit.store.get_segments(mid_key(MID)).segments == ("7",)
    assert [d["added"] for d in details(worker.enricher)] == [["7"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", "body"),
        ("[1, 2]", "body"),
        (json.dumps({"kind": "send_signals", "request": {}}), "body"),
        (enrich_body({"mid": "123"}), "mid"),
        (enrich_body({"mid": MID, "max_age_seconds": 5}), "max_age_seconds"),
        (enrich_body({"region_id": 9}), "identity"),
    ],
)
def test_invalid_messages_are_permanent_failures_naming_the_field(kit, worker, body, field):
    with pytest.raises(PermanentFailure) as info:
        worker.handle(record(body), None)
    assert info.value.reason == "invalid_message"
    assert info.value.details["field"] == field
    assert kit.dcs.requests == []


def test_an_opted_out_customer_is_a_permanent_failure(kit, worker):
    kit.dcs.event_answers.append({"errors": [{"code": 171, "msg": ""}]})
    with pytest.raises(PermanentFailure) as info:
        worker.handle(record(enrich_body({"mid": MID})), None)
    assert info.value.reason == "opted_out"


def test_a_dcs_refusal_is_a_permanent_failure_with_codes(kit, worker):
    kit.dcs.event_answers.append(DcsRejected("no", codes=[102], tid="t9"))
    with pytest.raises(PermanentFailure) as info:
        worker.handle(record(enrich_body({"mid": MID})), None)
    assert (info.value.reason, info.value.details) == ("dcs_rejected", {"codes": [102], "tid": "t9"})


@pytest.mark.parametrize("error", [DcsUnavailable("down"), DcsTimeout("slow")], ids=lambda e: type(e).__name__)
def test_transient_dcs_errors_are_raised_for_a_retry(kit, worker, error):
    kit.dcs.event_answers.append(error)
    with pytest.raises(type(error)):
        worker.handle(record(enrich_body({"mid": MID})), None)


def test_a_continuation_goes_to_the_planner(kit):
    resumed = []

    class Planner:
        def resume(self, body, context):
            resumed.append((body["kind"], context))

    worker, _ = kit.enrichment_worker(planner=Planner)
    worker.handle(record(json.dumps({"kind": "continue_job", "job": {}}), group="job#x"), "ctx")
    assert resumed == [("continue_job", "ctx")]


def test_a_continuation_whose_source_is_gone_is_a_permanent_failure(kit):
    from aam_dcs.jobs.sources import JobSourceError

    class Planner:
        def resume(self, body, context):
            raise JobSourceError("gone", source="s3://bucket/x.jsonl", code="NoSuchKey")

    worker, _ = kit.enrichment_worker(planner=Planner)
    with pytest.raises(PermanentFailure) as info:
        worker.handle(record(json.dumps({"kind": "continue_job"}), group="job#x"), None)
    assert (info.value.reason, info.value.details["code"]) == ("job_source", "NoSuchKey")
