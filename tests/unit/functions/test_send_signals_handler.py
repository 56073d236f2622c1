"""The send_signals handler: API (200/202, 4xx naming the field, never a 5xx for bad input),
direct invocation with typed errors, and the SQS worker path."""

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aam_dcs.config import get_settings
from aam_dcs.errors import DcsTimeout, DcsUnavailable, FeatureDisabled, InvalidRequest, RateLimited
from aam_dcs.jobs.planner import JobPlanner
from aam_dcs.jobs.publisher import InMemoryQueue
from aam_dcs.jobs.signal_queue import InMemorySignalQueue, SqsSignalQueue
from aam_dcs.jobs.sources import SourceRow
from aam_dcs.signals.job import SignalRows
from aam_dcs.signals.messages import QueueMessage
from tests.support.events import FakeLambdaContext, api_event
from tests.support.fakes import FakeDcs
from tests.support.signals import AMCV, MID, UUID, make_sender, make_worker, sqs_records

EVENTS = Path(__file__).resolve().parents[3] / "events" / "send_signals"
ORG_COOKIE = "AMCV_0123456789ABCDEF01234567%40AdobeOrg"


@pytest.fixture
def dcs():
    return FakeDcs()


@pytest.fixture
def queue():
    return InMemorySignalQueue()


@pytest.fixture
def handler(load_function, monkeypatch, dcs, queue):
    module = load_function("send_signals")
    sender = make_sender(get_settings(), dcs=dcs, queue=queue, segments=lambda response: list(response.segments))
    monkeypatch.setattr(module, "sender", lambda: sender)
    monkeypatch.setattr(module, "worker", lambda: make_worker(sender))
    module.the_sender = sender
    return module


def invoke(handler, event):
    return handler.lambda_handler(event, FakeLambdaContext())


def post(handler, body, headers=None):
    response = invoke(handler, api_event("POST", "/signals", body=body, headers=headers))
    return response["statusCode"], json.loads(response["body"]), response


def test_a_sync_post_answers_the_result(handler, dcs):
    dcs.event_answers.append({"uuid": UUID, "dcs_region": 9, "tid": "t-1"})
    status, body, _ = post(handler, {"amcv": AMCV, "signals": {"c_color": "blue"}})
    assert status == 200
    assert body == {"status": "sent", "region_id": 9, "tid": "t-1", "warnings": [], "opted_out": False}


def test_a_browser_post_uses_its_cookie_header(handler, dcs):
    status, _, _ = post(handler, {"signals": {"c_x": "1"}}, headers={"Cookie": f"{ORG_COOKIE}={AMCV}"})
    assert status == 200
    assert dcs.params()["d_mid"] == [MID]


def test_an_async_post_is_a_202_and_queues(handler, queue):
    status, body, _ = post(handler, {"mid": MID, "signals": {"c_x": "1"}, "mode": "async"})
    assert (status, body["status"]) == (202, "queued")
    assert len(queue.messages) == 1


def test_async_without_a_queue_is_a_503_naming_the_setting(handler, monkeypatch, dcs):
    monkeypatch.setattr(handler, "sender", lambda: make_sender(get_settings(), dcs=dcs, queue=None))
    status, body, _ = post(handler, {"mid": MID, "signals": {"c_x": "1"}, "mode": "async"})
    assert (status, body["error"], body["setting"]) == (503, "FeatureDisabled", "SIGNAL_QUEUE_URL")


def test_dry_run_answers_the_masked_request(handler, dcs):
    status, body, _ = post(handler, {"uuid": UUID, "region_id": 6, "signals": {"c_x": "1"}, "dry_run": True})
    assert status == 200
    assert body["status"] == "dry_run"
    assert body["request"].startswith("https://irl1.demdex.net/event?d_rtbd=json&d_jsonv=1&d_uuid=***&")
    assert dcs.requests == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{", "body"),
        ("[]", "body"),
        ({"mid": MID}, "signals"),
        ({"mid": MID, "signals": {"d_uuid": "1"}}, "signals.d_uuid"),
        ({"mid": MID, "signals": {"c_x": {"a": 1}}}, "signals.c_x"),
        ({"mid": "123", "signals": {"c_x": "1"}}, "mid"),
        ({"mid": MID, "signals": {"c_x": "1"}, "unknown": 1}, "unknown"),
        ({"mid": MID, "signals": {"c_x": "1"}, "mode": "later"}, "mode"),
        ({"mid": MID, "trait_ids": [-1]}, "trait_ids"),
        ({"mid": MID, "signals": {"c_x": "1"}, "consent": {"gdpr": True}}, "consent.gdpr_consent"),
        ({"mid": MID, "signals": {"c_x": "1"}, "event_id": "has space"}, "event_id"),
        ({"signals": {"c_x": "1"}}, "mid"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(handler, dcs, body, field):
    status, answer, _ = post(handler, body)
    assert (status, answer["error"], answer["field"]) == (400, "InvalidRequest", field)
    assert answer["rule"]
    assert dcs.requests == []


def test_a_call_too_large_for_the_dcs_is_a_413(handler):
    status, answer, _ = post(handler, {"mid": MID, "signals": {f"c_k{i}": "v" * 1000 for i in range(40)}})
    assert (status, answer["error"], answer["field"]) == (413, "PayloadTooLarge", "signals")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
fields = st.sampled_from(
    [
        "mid",
        "uuid",
        "region_id",
        "amcv",
        "cookies",
        "customer_ids",
        "signals",
        "trait_ids",
        "consent",
        "event_id",
        "mode",
        "dry_run",
        "return_segments",
        "x",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.dictionaries(fields, json_values, max_size=6))
def test_no_input_ever_gets_a_5xx(handler, body):
    body = {**body, "dry_run": True}  # never a DCS call: the fake would answer anyway
    status, answer, _ = post(handler, body)
    assert status < 500, answer


def test_the_rate_limit_is_a_429_with_retry_after(handler, monkeypatch, dcs):
    def refuse(request):
        raise RateLimited("too many calls", retry_after=12.4, limit=30)

    monkeypatch.setattr(handler.the_sender, "send", refuse)
    status, body, response = post(handler, {"mid": MID, "signals": {"c_x": "1"}})
    assert (status, body["error"]) == (429, "RateLimited")
    assert response["multiValueHeaders"]["Retry-After"] == ["13"]  # rounded up


@pytest.mark.parametrize(
    ("error", "status"), [(DcsTimeout("late"), 504), (DcsUnavailable("down", codes=[0], tid="t"), 502)]
)
def test_dcs_failures_are_502_or_504_with_the_codes(handler, dcs, error, status):
    dcs.event_answers.append(error)
    found, body, _ = post(handler, {"mid": MID, "signals": {"c_x": "1"}})
    assert (found, body["error"]) == (status, type(error).__name__)
    if isinstance(error, DcsUnavailable):
        assert (body["codes"], body["tid"]) == ([0], "t")


def test_direct_invocation_is_plain_json(handler, dcs):
    result = invoke(handler, {"mid": MID, "signals": {"c_x": "1"}})
    assert result["status"] == "sent"
    assert "request" not in result
    assert "segments" not in result


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ({"mid": MID}, InvalidRequest),
        ({"mid": MID, "signals": {"c_x": "1"}, "bogus": True}, InvalidRequest),
        ([1, 2], InvalidRequest),
    ],
)
def test_direct_invocation_raises_typed_errors(handler, event, error):
    with pytest.raises(error):
        invoke(handler, event)


def test_direct_invocation_raises_dcs_errors_by_class(handler, dcs):
    dcs.event_answers.append(DcsTimeout("late", may_have_processed=True))
    with pytest.raises(DcsTimeout):
        invoke(handler, {"mid": MID, "signals": {"c_x": "1"}})


def test_direct_async_without_a_queue_raises_feature_disabled(handler, monkeypatch, dcs):
    monkeypatch.setattr(handler, "sender", lambda: make_sender(get_settings(), dcs=dcs, queue=None))
    with pytest.raises(FeatureDisabled):
        invoke(handler, {"mid": MID, "signals": {"c_x": "1"}, "mode": "async"})


def test_sqs_batches_go_to_the_worker(handler, dcs, queue):
    invoke(handler, {"mid": MID, "signals": {"c_x": "1"}, "mode": "async"})
    answer = invoke(handler, sqs_records(queue.messages))
    assert answer == {"batchItemFailures": []}
    assert len(dcs.requests) == 1


def sample(name):
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def test_the_sample_events_run(handler, dcs, queue):
    sync = invoke(handler, sample("api_post"))
    assert (sync["statusCode"], json.loads(sync["body"])["status"]) == (200, "sent")
    queued = invoke(handler, sample("api_post_async"))
    assert (queued["statusCode"], json.loads(queued["body"])["status"]) == (202, "queued")
    assert invoke(handler, sample("direct"))["status"] == "dry_run"
    assert invoke(handler, sample("sqs")) == {"batchItemFailures": []}


def test_the_default_wiring_follows_the_settings(load_function, monkeypatch):
    monkeypatch.setenv("SIGNAL_QUEUE_URL", "https://sqs.us-west-2.amazonaws.com/123456789012/signals.fifo")
    monkeypatch.setenv("PROFILES_TABLE", "profiles")
    module = load_function("send_signals")
    sender = module.sender()
    assert isinstance(sender.queue, SqsSignalQueue)
    assert sender.store is not None
    assert type(module.worker().idempotency).__name__ == "PowertoolsIdempotency"
    module.sender.cache_clear()
    module.worker.cache_clear()
    monkeypatch.delenv("SIGNAL_QUEUE_URL")
    monkeypatch.delenv("PROFILES_TABLE")
    get_settings.cache_clear()
    bare = load_function("send_signals")
    assert bare.sender().queue is None
    assert type(bare.worker().idempotency).__name__ == "NoIdempotency"
    bare.sender.cache_clear()
    bare.worker.cache_clear()


def test_an_opted_out_visitor_is_skipped(handler, dcs):
    status, body, _ = post(handler, {"amcv": AMCV.replace("NONE", "true"), "signals": {"c_x": "1"}})
    assert (status, body["status"], body["opted_out"]) == (200, "skipped_opted_out", True)
    assert dcs.requests == []


def test_a_scheduled_job_without_a_queue_raises_feature_disabled(handler):
    with pytest.raises(FeatureDisabled) as info:
        invoke(handler, sample("schedule"))
    assert info.value.setting == "SIGNAL_QUEUE_URL"


class OneFileSource:
    def __init__(self, rows):
        self.items = rows

    def rows(self, cursor=None):
        start = 0 if cursor is None else cursor["line"]
        for line, item in enumerate(self.items[start:], start + 1):
            yield SourceRow(data=item, position={"key": "a.jsonl", "line": line}, cursor={"line": line})


def test_a_scheduled_job_answers_its_summary_and_continues_through_the_queue(handler, monkeypatch, queue):
    published = InMemoryQueue()
    source = OneFileSource([{"mid": MID, "signals": {"c_n": str(n)}} for n in range(3)] + [{"mid": MID}])
    planner = JobPlanner(
        job="send_signals",
        map_row=SignalRows(get_settings()),
        publisher=published,
        open_source=lambda spec: source,
        page_size=2,
    )
    monkeypatch.setattr(handler, "planner", lambda: planner)
    summary = invoke(handler, {**sample("schedule"), "job_id": "j-1"})
    assert {k: summary[k] for k in ("job", "read", "queued", "rejected", "complete")} == {
        "job": "send_signals",
        "read": 4,
        "queued": 3,
        "rejected": 1,
        "complete": True,
    }
    assert summary["errors"][0]["field"] == "signals"
    short = FakeLambdaContext(remaining_ms=1_000)
    handler.lambda_handler({**sample("schedule"), "job_id": "j-2"}, short)
    continuation = next(m for m in published.messages if m.group_id == "job#j-2")
    message = QueueMessage(body=continuation.body, group_id=continuation.group_id, deduplication_id="c")
    monkeypatch.setattr(
        handler, "worker", lambda: make_worker(handler.the_sender, other_kinds={"continue_job": handler.continue_job})
    )
    assert handler.lambda_handler(sqs_records([message]), short) == {"batchItemFailures": []}
    assert len([m for m in published.messages if m.group_id == f"mid:{MID}"]) == 6
