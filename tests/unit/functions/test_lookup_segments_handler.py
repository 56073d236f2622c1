"""The lookup_segments handler: API routes, direct invocation, scheduled jobs and the queue worker."""

import json

import pytest

from aam_dcs.errors import DcsTimeout, DcsUnavailable, FeatureDisabled, InvalidRequest
from aam_dcs.jobs.deadletter import InMemoryDeadLetters
from aam_dcs.jobs.publisher import InMemoryQueue
from aam_dcs.jobs.sources import SourceRow
from aam_dcs.jobs.visibility import InMemoryVisibility
from aam_dcs.segments.enrich_job import enrichment_planner
from tests.support.events import FakeLambdaContext, api_event, sqs_event
from tests.support.segments import AMCV, MID, ORG, UUID, LookupKit, bundle_settings, enrich_body, stuff_answer

ORG_COOKIE = f"AMCV_{ORG.replace('@', '%40')}"
COOKIE = f"other=1; {ORG_COOKIE}={AMCV.replace('|', '%7C')}"


@pytest.fixture
def kit():
    return LookupKit()


@pytest.fixture
def handler(load_function, monkeypatch, kit):
    module = load_function("lookup_segments")
    monkeypatch.setattr(module, "lookup", lambda: kit.lookup)
    return module


def invoke(handler, event, context=None):
    return handler.lambda_handler(event, context or FakeLambdaContext())


def body_of(response):
    return json.loads(response["body"])


def test_get_reads_the_cookie_header_and_query_parameters(handler, kit):
    kit.dcs.event_answers.append(stuff_answer("14612", "14623"))
    response = invoke(
        handler, api_event("GET", "/segments", headers={"Cookie": COOKIE}, query={"max_age_seconds": "60"})
    )
    assert response["statusCode"] == 200
    body = body_of(response)
    assert body["segments"] == ["14612", "14623"]
    assert (body["mid"], body["region_id"], body["uuid"], body["cache"]) == (MID, 9, UUID, "miss")
    assert set(body) >= {"segments", "segment_source", "cache", "region_id", "uuid", "opted_out", "fetched_at"}


def test_get_query_parameters_steer_the_cache(handler, kit):
    kit.dcs.event_answers += [stuff_answer("1"), stuff_answer("2")]
    query = {"mid": MID, "region_id": "6"}
    assert body_of(invoke(handler, api_event("GET", "/segments", query=query)))["cache"] == "miss"
    assert body_of(invoke(handler, api_event("GET", "/segments", query=query)))["cache"] == "hit"
    refreshed = body_of(invoke(handler, api_event("GET", "/segments", query={**query, "refresh": "true"})))
    assert (refreshed["cache"], refreshed["segments"]) == ("bypass", ["2"])
    assert kit.dcs.requests[0].target_host == "irl1.demdex.net"


def test_post_takes_the_lookup_input(handler, kit):
    kit.dcs.event_answers.append(stuff_answer("5"))
    body = {"uuid": UUID, "region_id": 9, "customer_ids": [{"integration_code": "crm", "id": "c0ffee42"}]}
    response = invoke(handler, api_event("POST", "/segments", body=body))
    assert body_of(response)["segments"] == ["5"]
    assert kit.dcs.params()["d_uuid"] == [UUID]


def test_post_uses_the_cookie_header_when_the_body_has_no_cookies(handler, kit):
    invoke(handler, api_event("POST", "/segments", body={"max_age_seconds": 0}, headers={"Cookie": COOKIE}))
    assert kit.dcs.params()["d_mid"] == [MID]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (api_event("GET", "/segments", query={"mid": "12345"}), "mid"),
        (api_event("GET", "/segments", query={"mid": MID, "region_id": "5"}), "region_id"),
        (api_event("GET", "/segments", query={"mid": MID, "max_age_seconds": "soon"}), "max_age_seconds"),
        (api_event("GET", "/segments", query={"mid": MID, "max_age_seconds": "-1"}), "max_age_seconds"),
        (api_event("GET", "/segments", query={"mid": MID, "refresh": "maybe"}), "refresh"),
        (api_event("GET", "/segments"), "identity"),
        (api_event("POST", "/segments", body={"region_id": 9}), "identity"),
        (api_event("POST", "/segments", body={"mid": MID, "unknown": 1}), "unknown"),
        (api_event("POST", "/segments", body="{"), "body"),
        (api_event("POST", "/segments", body=[1]), "body"),
        (api_event("POST", "/segments", body={"customer_ids": [{"id": "x"}]}), "customer_ids[0]"),
    ],
)
def test_bad_input_is_a_400_naming_the_field_never_a_5xx(handler, kit, event, field):
    response = invoke(handler, event)
    assert response["statusCode"] == 400
    body = body_of(response)
    assert (body["error"], body["field"]) == ("InvalidRequest", field)
    assert kit.dcs.requests == []


@pytest.mark.parametrize(("error", "status"), [(DcsUnavailable("down"), 502), (DcsTimeout("slow"), 504)])
def test_a_dcs_failure_without_a_cached_entry_is_a_502_or_504(handler, kit, error, status):
    kit.dcs.event_answers.append(error)
    response = invoke(handler, api_event("GET", "/segments", query={"mid": MID}))
    assert response["statusCode"] == status
    assert body_of(response)["error"] == type(error).__name__


def test_a_dcs_outage_with_a_cached_entry_answers_stale(handler, kit):
    kit.dcs.event_answers += [stuff_answer("1"), DcsUnavailable("down")]
    invoke(handler, api_event("GET", "/segments", query={"mid": MID}))
    body = body_of(invoke(handler, api_event("GET", "/segments", query={"mid": MID, "refresh": "1"})))
    assert (body["cache"], body["stale"], body["segments"]) == ("stale", True, ["1"])


def test_direct_invocation_returns_plain_json(handler, kit):
    kit.dcs.event_answers.append(stuff_answer("9"))
    result = invoke(handler, {"mid": MID, "region_id": 9, "refresh": True})
    assert (result["segments"], result["cache"]) == (["9"], "bypass")


def test_direct_invocation_raises_typed_errors(handler, kit):
    with pytest.raises(InvalidRequest) as info:
        invoke(handler, {"uuid": "not-an-id"})
    assert info.value.field == "uuid"
    with pytest.raises(InvalidRequest) as info:
        invoke(handler, {"region_id": 9})
    assert info.value.field == "identity"
    kit.dcs.event_answers.append(DcsTimeout("slow"))
    with pytest.raises(DcsTimeout):
        invoke(handler, {"mid": MID})


def test_the_sample_direct_event_is_accepted(handler, kit):
    with open("events/lookup_segments/direct.json") as sample:
        result = invoke(handler, json.load(sample))
    assert result["cache"] == "bypass"


def use_planner(monkeypatch, handler, rows):
    settings = bundle_settings(ENRICH_QUEUE_URL="https://sqs/enrich.fifo", PROFILES_TABLE="profiles")
    planner = enrichment_planner(settings)
    planner.publisher = InMemoryQueue()

    class Source:
        def rows(self, cursor=None):
            for line, data in enumerate(rows, start=1):
                yield SourceRow(data, {"key": "users.jsonl", "line": line}, {"line": line})

    planner.open_source = lambda spec: Source()
    monkeypatch.setattr(handler, "planner", lambda: planner)
    return planner.publisher


def test_a_scheduled_job_plans_the_enrichment_and_answers_its_summary(handler, monkeypatch):
    queue = use_planner(monkeypatch, handler, [{"mid": MID}, {"mid": "x"}])
    with open("events/lookup_segments/schedule_s3.json") as sample:
        summary = invoke(handler, json.load(sample))
    assert (summary["job"], summary["read"], summary["queued"], summary["rejected"]) == ("enrich_segments", 2, 1, 1)
    assert summary["errors"] == [
        {"position": {"key": "users.jsonl", "line": 2}, "reason": summary["errors"][0]["reason"], "field": "mid"}
    ]
    assert json.loads(queue.messages[0].body) == {"kind": "enrich_segments", "request": {"mid": MID}}


def test_a_job_of_another_function_is_refused_by_name(handler, monkeypatch):
    use_planner(monkeypatch, handler, [])
    with pytest.raises(InvalidRequest) as info:
        invoke(handler, {"job": "send_signals", "source": {"s3": "s3://bucket/x.jsonl"}})
    assert info.value.field == "job"


def test_a_job_without_a_queue_names_the_missing_setting(handler):
    with pytest.raises(FeatureDisabled) as info:
        invoke(handler, {"job": "enrich_segments", "source": {"table": "profiles"}})
    assert info.value.setting == "ENRICH_QUEUE_URL"


def test_the_queue_worker_reports_retryable_failures_and_dead_letters_permanent_ones(handler, monkeypatch, kit):
    worker, events = kit.enrichment_worker()
    dead = worker.dead_letters = InMemoryDeadLetters()
    visibility = worker.queue = InMemoryVisibility()
    monkeypatch.setattr(handler, "worker", lambda: worker)
    other_mid = "1" * 38

    def answer(request):
        params = dict(request.params)
        if params.get("d_mid") == other_mid:
            raise DcsUnavailable("down")
        return stuff_answer("3")

    kit.dcs.default_event = answer
    kit.dcs.event_answers.clear()
    event = sqs_event(
        [
            (f"mid:{MID}", enrich_body({"mid": MID})),
            (f"mid:{other_mid}", enrich_body({"mid": other_mid})),
            (f"mid:{other_mid}", enrich_body({"mid": other_mid, "region_id": 9})),
            ("mid:bad", "not json"),
        ],
        queue="enrich.fifo",
    )
    result = invoke(handler, event)
    ids = [record["messageId"] for record in event["Records"]]
    assert result == {"batchItemFailures": [{"itemIdentifier": ids[1]}, {"itemIdentifier": ids[2]}]}
    assert [(body, reason) for _, body, reason, _ in dead.messages] == [("not json", "invalid_message")]
    assert [e.detail["identity"]["mid"] for e in events.events] == [MID]
    # The outage's message and the one behind it in its group come back after the first backoff.
    assert visibility.delays == {"handle-1": 30, "handle-2": 30}


def test_the_sample_sqs_event_is_processed(handler, monkeypatch, kit):
    worker, events = kit.enrichment_worker()
    worker.dead_letters = InMemoryDeadLetters()
    monkeypatch.setattr(handler, "worker", lambda: worker)
    kit.dcs.default_event = stuff_answer("1")
    with open("events/lookup_segments/sqs.json") as sample:
        assert invoke(handler, json.load(sample)) == {"batchItemFailures": []}
    assert len(events.events) == 3
