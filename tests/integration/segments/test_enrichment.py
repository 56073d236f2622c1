"""The enrichment job end to end: planner -> FIFO queue -> worker -> profiles table and event bus.

The handler's own paths run in process: the scheduled job event plans, and the SQS path works the
queue as Lambda's event source would (batches of 10, partial failures made visible again).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from aam_dcs.jobs.retries import Backoff
from aam_dcs.observability import logger
from aam_dcs.store.profiles import customer_key
from local.poller import lambda_sqs_record
from tests.support.segments import CountdownContext
from tests.support.segments_stack import REGION, SegmentsStack, SimulatorSeeder

pytestmark = pytest.mark.integration

OPTED_OUT_CUSTOMER = {"integration_code": "crm", "id": "opted-out-customer"}
REQUEST_IDS = itertools.count(1)


def mid_of(n: int) -> str:
    return f"{7 * 10**37 + n:038d}"


def customer_row(n: int) -> dict[str, Any]:
    return {"mid": mid_of(n), "customer_ids": [{"integration_code": "crm", "id": f"crm-{n:06d}"}]}


@pytest.fixture(autouse=True)
def cheap_sqs_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's SQS reads the clock through several datetime conversions for every message of a queue
    on every call; a plain ``time.time()`` gives the same milliseconds for a fraction of the CPU."""
    monkeypatch.setattr("moto.sqs.models.unix_time_millis", lambda *args: time.time() * 1000.0)


def fresh_context() -> CountdownContext:
    """A Lambda context short of time after each page of 100 rows: the planner hands over after every
    page, so the job goes on in continuations and the queue never holds much more than 100 messages
    (moto's FIFO queues slow down with their depth)."""
    return CountdownContext(remaining_ms=25_000, request_id=f"req-{next(REQUEST_IDS):04d}")


def run_job(handler: Any, stack: SegmentsStack, source: dict[str, Any], context: Callable[[], Any] = fresh_context):
    """Plan the job, work the queue dry; the job's final summary (logged by its last run)."""
    with capture_logs() as records:
        summary = handler.lambda_handler({"job": "enrich_segments", "source": source}, context())
        stack.drain(handler.lambda_handler, context)
    if summary["complete"]:
        return summary
    (finished,) = [r for r in records if r.getMessage() == "job finished" and r.job_id == summary["job_id"]]
    counts = ("read", "queued", "rejected", "skipped", "failed", "errors")
    return {**{name: getattr(finished, name) for name in counts}, "complete": True, "runs": finished.run}


@contextmanager
def capture_logs() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep(level=logging.INFO)
    logger.addHandler(keep)
    try:
        yield records
    finally:
        logger.removeHandler(keep)


def by_mid(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for event in events:
        mid = event["detail"]["identity"]["mid"]
        assert mid not in found, "one event per customer and run"
        found[mid] = event["detail"]
    return found


def change_rules(sim: Any) -> None:
    """Segment 2002 now qualifies on trait 1001; segment 2003 on trait 1005 only."""
    sim.set_rules(
        {
            "segments": [
                {"id": 2001, "name": "Campers", "rule": "1001"},
                {"id": 2002, "name": "Campers too", "rule": "1001"},
                {"id": 2003, "name": "Big spenders", "rule": "1005"},
                {"id": 2004, "name": "Returning campers", "rule": "(1001 OR 1007) AND 1006"},
            ]
        }
    )


def test_enrichment_from_s3_writes_segments_announces_changes_and_dead_letters_opt_outs(
    handler, stack, seeder, segments_sim
):
    for n in range(6):
        seeder.realize([1001] if n % 2 == 0 else [1004], mid=mid_of(n))
    rows = [customer_row(n) for n in range(8)] + [{"mid": "123"}, {"customer_ids": [OPTED_OUT_CUSTOMER]}]
    summary = run_job(handler, stack, {"s3": stack.put_jsonl("crm/users.jsonl", rows)})
    assert (summary["read"], summary["queued"], summary["rejected"], summary["complete"]) == (10, 9, 1, True)
    (error,) = summary["errors"]
    assert (error["position"], error["field"]) == ({"key": "crm/users.jsonl", "line": 9}, "mid")

    items = stack.segments_items()
    for n in range(8):
        expected = ["2001"] if n < 6 and n % 2 == 0 else ["2003"] if n < 6 else []
        assert [s["S"] for s in items[f"mid#{mid_of(n)}"]["segments"]["L"]] == expected, n
    events = by_mid(stack.announced())
    assert set(events) == {mid_of(n) for n in range(6)}
    first = events[mid_of(0)]
    assert (first["added"], first["removed"], first["first_lookup"]) == (["2001"], [], True)
    assert first["identity"]["customer_keys"] == [customer_key("ic:crm", "crm-000000")]
    assert "crm-000000" not in json.dumps(first)

    (dead,) = stack.dead_letters()
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "opted_out"

    assert run_job(handler, stack, {"s3": stack.put_jsonl("crm/users.jsonl", rows[:8])})["queued"] == 8
    assert stack.announced() == []

    change_rules(segments_sim)
    run_job(handler, stack, {"s3": stack.put_jsonl("crm/users.jsonl", rows[:8])})
    changes = {mid: (d["added"], d["removed"]) for mid, d in by_mid(stack.announced()).items()}
    assert changes == {
        **{mid_of(n): (["2002"], []) for n in (0, 2, 4)},
        **{mid_of(n): ([], ["2003"]) for n in (1, 3, 5)},
    }


def test_enrichment_from_a_csv_prefix(handler, stack, seeder):
    seeder.realize([1001], mid=mid_of(1))
    stack.put_csv("daily/a.csv", ["mid", "customer_id", "integration_code"], [[mid_of(1), "crm-1", "crm"]])
    stack.put_csv("daily/b.csv", ["mid", "region_id"], [[mid_of(2), "9"], ["bad", ""]])
    summary = run_job(handler, stack, {"s3": "s3://jobs-bucket/daily/"})
    assert (summary["read"], summary["queued"], summary["rejected"]) == (3, 2, 1)
    assert summary["errors"][0]["position"] == {"key": "daily/b.csv", "line": 3}
    assert set(by_mid(stack.announced())) == {mid_of(1)}
    assert f"mid#{mid_of(2)}" in stack.segments_items()


def test_enrichment_of_the_profiles_table_reads_each_visitor_once(handler, stack, seeder):
    for n in range(3):
        seeder.realize([1001], mid=mid_of(n))
        handler.lambda_handler(
            {"mid": mid_of(n), "customer_ids": [{"data_source_id": 123, "id": f"c{n}"}]}, fresh_context()
        )
    summary = run_job(handler, stack, {"table": "profiles"})
    assert (summary["queued"], summary["rejected"]) == (3, 0)
    assert summary["skipped"] == summary["read"] - 3
    assert set(by_mid(stack.announced())) == {mid_of(n) for n in range(3)}


def test_a_dcs_outage_leaves_messages_for_a_retry(handler, stack, seeder, segments_sim):
    seeder.realize([1001], mid=mid_of(1))
    handler.lambda_handler(
        {"job": "enrich_segments", "source": {"s3": stack.put_jsonl("u.jsonl", [customer_row(1)])}}, fresh_context()
    )
    segments_sim.set_faults(down=True)
    messages = stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])
    stack._invoke(handler.lambda_handler, fresh_context(), messages["Messages"])
    assert stack.stats.failures == 1
    segments_sim.set_faults()
    stack.drain(handler.lambda_handler, fresh_context)
    assert set(by_mid(stack.announced())) == {mid_of(1)}
    assert stack.dead_letters() == []


def test_a_failed_customer_comes_back_after_the_workers_backoff_not_the_visibility_timeout(
    handler, stack, seeder, segments_sim
):
    seeder.realize([1001], mid=mid_of(1))
    handler.lambda_handler(
        {"job": "enrich_segments", "source": {"s3": stack.put_jsonl("u.jsonl", [customer_row(1)])}}, fresh_context()
    )
    handler.worker().backoff = Backoff(base_seconds=0, max_seconds=0)  # a test cannot wait 30 s
    segments_sim.set_faults(down=True)
    (message,) = receive(stack)
    event = {"Records": [lambda_sqs_record(message, queue_arn=stack.queue_arn, region=REGION)]}
    assert len(handler.lambda_handler(event, fresh_context())["batchItemFailures"]) == 1
    # The queue's visibility timeout is 30 minutes; the worker's ChangeMessageVisibility brought it back.
    (again,) = receive(stack)
    assert (again["MessageId"], again["Attributes"]["ApproximateReceiveCount"]) == (message["MessageId"], "2")


def receive(stack: SegmentsStack) -> list[dict[str, Any]]:
    answer = stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])
    return answer.get("Messages", [])


@pytest.mark.parametrize(
    "scale",
    [
        pytest.param(120, id="120-customers"),
        pytest.param(10_000, id="10000-customers", marks=pytest.mark.slow),
    ],
)
def test_enrichment_at_scale(handler, stack, segments_sim, scale, request):
    """``scale`` customers from S3: every customer's segments land in the table; a rerun announces
    nothing; a rules change announces exactly the customers it changes.

    The 10,000-customer run is slow: about 40 ms of CPU per customer and run, nearly all of it in
    moto (every AWS call costs milliseconds of Python; a customer costs ~5 table calls per run plus
    its share of the queue's), so 30,000 customer-runs take ~21 minutes of CPU (measured: 28 min on
    two busy cores). It runs only when slow tests are asked for (``-m slow``); the 120-customer run
    takes the same paths (continuations included) in the default suite."""
    if scale > 1000 and "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("the 10,000-customer run needs -m slow")
    seeder = SimulatorSeeder(segments_sim.url)
    started, cpu = time.perf_counter(), time.process_time()
    campers = set(range(0, scale, 7))
    spenders = set(range(3, scale, 11))
    for n in sorted(campers | spenders):
        seeder.realize([1001] * (n in campers) + [1004] * (n in spenders), mid=mid_of(n))
    url = stack.put_jsonl("crm/all.jsonl", (customer_row(n) for n in range(scale)))
    seeded = time.perf_counter()

    first = run_job(handler, stack, {"s3": url})
    first_done = time.perf_counter()
    assert (first["read"], first["queued"], first["rejected"], first["complete"]) == (scale, scale, 0, True)
    stored = stack.segments_of([f"mid#{mid_of(n)}" for n in range(scale)])
    assert len(stored) == scale
    for n in range(scale):
        assert stored[f"mid#{mid_of(n)}"] == ["2001"] * (n in campers) + ["2003"] * (n in spenders), n
    assert set(by_mid(stack.announced())) == {mid_of(n) for n in campers | spenders}

    second = run_job(handler, stack, {"s3": url})
    second_done = time.perf_counter()
    assert second["queued"] == scale
    assert stack.announced() == []

    change_rules(segments_sim)
    run_job(handler, stack, {"s3": url})
    done = time.perf_counter()
    changes = {mid: (d["added"], d["removed"]) for mid, d in by_mid(stack.announced()).items()}
    expected = {mid_of(n): (["2002"] * (n in campers), ["2003"] * (n in spenders)) for n in campers | spenders}
    assert changes == expected
    assert stack.dead_letters() == []
    print(
        f"\nenrichment at scale: {scale} customers, {len(campers | spenders)} seeded;"
        f" seed {seeded - started:.1f}s, run 1 {first_done - seeded:.1f}s,"
        f" run 2 {second_done - first_done:.1f}s, run 3 {done - second_done:.1f}s"
        f" (CPU {time.process_time() - cpu:.1f}s);"
        f" {stack.stats.invocations} SQS invocations, {stack.stats.messages} messages, {first['runs']} planner runs"
    )
