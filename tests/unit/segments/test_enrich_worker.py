"""The enrichment worker's retries: a failed customer comes back after a backoff, not the 30-minute
visibility timeout; what retrying cannot fix goes to the dead-letter queue at once, undelayed."""

import pytest

from aam_dcs.errors import CircuitOpen, DcsUnavailable, RateLimited
from aam_dcs.jobs.deadletter import InMemoryDeadLetters
from aam_dcs.jobs.retries import Backoff
from aam_dcs.jobs.visibility import InMemoryVisibility, SqsVisibility
from aam_dcs.segments.enrich_worker import default_worker
from tests.support.events import FakeLambdaContext, sqs_event
from tests.support.segments import MID, LookupKit, bundle_settings, enrich_body, stuff_answer

OTHER_MID = "1" * 38


@pytest.fixture
def kit():
    return LookupKit()


@pytest.fixture
def worker(kit):
    worker, _ = kit.enrichment_worker()
    worker.queue = InMemoryVisibility()
    worker.dead_letters = InMemoryDeadLetters()
    return worker


def batch(*mids, receive_count=1):
    event = sqs_event([(f"mid:{mid}", enrich_body({"mid": mid})) for mid in mids], queue="enrich.fifo")
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
    return event


def fail_for(kit, mid, error):
    def answer(request):
        if ("d_mid", mid) in request.params:
            raise error
        return stuff_answer("1")

    kit.dcs.default_event = answer


@pytest.mark.parametrize(("receive_count", "delay"), [(1, 30), (2, 60), (3, 120), (6, 900), (40, 900)])
def test_an_outage_brings_the_customer_back_after_a_growing_backoff(kit, worker, receive_count, delay):
    fail_for(kit, OTHER_MID, DcsUnavailable("503", status=503))
    event = batch(MID, OTHER_MID, receive_count=receive_count)
    answer = worker.process(event, FakeLambdaContext())
    assert answer == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert worker.queue.delays == {"handle-1": delay}


def test_the_rest_of_a_failed_customers_group_comes_back_with_it(kit, worker):
    fail_for(kit, OTHER_MID, DcsUnavailable("503", status=503))
    event = batch(OTHER_MID, OTHER_MID)
    answer = worker.process(event, FakeLambdaContext())
    assert len(answer["batchItemFailures"]) == 2
    assert worker.queue.delays == {"handle-0": 30, "handle-1": 30}
    assert len(kit.dcs.requests) == 1  # the second waited for the first


@pytest.mark.parametrize(
    ("error", "delay"),
    [
        (DcsUnavailable("429", status=429, retry_after=90.2), 91),  # longer than the backoff: honoured
        (DcsUnavailable("429", status=429, retry_after=3), 30),  # shorter: the backoff still applies
        (CircuitOpen("open", dcs_host="usw2.demdex.net", retry_after=29.5), 30),
        (RateLimited("cap", retry_after=12.5), 13),  # the guard's window, however short
    ],
)
def test_a_wait_asked_for_comes_first(kit, worker, error, delay):
    fail_for(kit, MID, error)
    worker.process(batch(MID), FakeLambdaContext())
    assert worker.queue.delays == {"handle-0": delay}


def test_what_retrying_cannot_fix_is_dead_lettered_not_delayed(worker):
    event = sqs_event([("mid:bad", "not json")], queue="enrich.fifo")
    assert worker.process(event, FakeLambdaContext()) == {"batchItemFailures": []}
    assert worker.queue.delays == {}
    assert [reason for _, _, reason, _ in worker.dead_letters.messages] == ["invalid_message"]


def test_a_batch_without_failures_changes_no_visibility(worker):
    assert worker.process(batch(MID, OTHER_MID), FakeLambdaContext()) == {"batchItemFailures": []}
    assert worker.queue.delays == {}


def test_without_a_queue_a_failure_waits_for_the_visibility_timeout(kit, worker):
    worker.queue = None
    fail_for(kit, MID, DcsUnavailable("503", status=503))
    assert len(worker.process(batch(MID), FakeLambdaContext())["batchItemFailures"]) == 1


def test_the_backoff_is_the_workers_own(kit, worker):
    worker.backoff = Backoff(base_seconds=5, max_seconds=20)
    fail_for(kit, MID, DcsUnavailable("503", status=503))
    worker.process(batch(MID, receive_count=4), FakeLambdaContext())
    assert worker.queue.delays == {"handle-0": 20}


def test_the_containers_worker_delays_on_the_enrichment_queue_and_dead_letters_on_its_dlq(kit):
    settings = bundle_settings(
        ENRICH_QUEUE_URL="https://sqs.us-west-2.amazonaws.com/123456789012/enrich.fifo",
        ENRICH_DLQ_URL="https://sqs.us-west-2.amazonaws.com/123456789012/enrich-dlq.fifo",
        AAM_MAX_RECEIVES="10",
    )
    worker = default_worker(settings, lookup=kit.lookup)
    assert isinstance(worker.queue, SqsVisibility)
    assert worker.queue.queue_url == settings.enrich_queue_url
    assert worker.dead_letters.queue_url == settings.enrich_dlq_url
    assert worker.max_receives == 10


def test_without_queue_settings_the_worker_has_neither(kit):
    worker = default_worker(bundle_settings(), lookup=kit.lookup)
    assert (worker.queue, worker.dead_letters, worker.max_receives) == (None, None, None)
