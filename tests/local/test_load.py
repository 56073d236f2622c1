"""A short load run: the routes mixed, open loop, every request answered 200/202, every queued signal delivered.

It runs as ``make reliability`` does (``python -m tests.reliability.load``), only shorter: the DCS
simulator, moto and the stack each in their own process, the AWS side in memory.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from local.poller import InMemorySqsSource, SqsSourceConfig
from tests.reliability.load import MIX, markdown, measure

RATE = 100  # requests per second
SECONDS = 3


def test_a_short_mixed_load_in_memory_gets_no_error() -> None:
    report = measure("memory", rate=RATE, seconds=SECONDS)
    print(report.figures.table())
    print(markdown([report]))
    figures = report.figures
    assert figures.error_count == 0, figures.table()
    assert len(figures.samples) == RATE * SECONDS
    assert {sample.route for sample in figures.samples} == {route.name for route in MIX}
    assert figures.achieved_rate > RATE * 0.8, figures.table()
    async_requests = sum(1 for sample in figures.samples if sample.route == "POST /signals async")
    assert report.queue == {"sent": async_requests, "delivered": async_requests, "dead_lettered": 0, "pending": 0}
    assert report.cpu_seconds["stack"] > 0


@dataclass(frozen=True)
class Message:
    body: str
    group_id: str
    deduplication_id: str


def test_the_in_memory_queue_retries_in_group_order_and_dead_letters_after_the_last_receive() -> None:
    seen: list[tuple[str, str]] = []  # (body, receive count)
    lock = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            with lock:
                seen.append((record["body"], record["attributes"]["ApproximateReceiveCount"]))
            if json.loads(record["body"])["fail"]:
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    config = SqsSourceConfig(
        queue_url="http://127.0.0.1/q.fifo", queue_arn="arn:q.fifo", fifo=True, retry_delay_seconds=0, batch_size=1
    )
    source = InMemorySqsSource(config, handler, max_receive_count=2)
    source.send(Message(json.dumps({"n": 1, "fail": True}), "a", "1"))
    source.send(Message(json.dumps({"n": 2, "fail": False}), "a", "2"))
    source.send(Message(json.dumps({"n": 2, "fail": False}), "a", "2"))  # a duplicate: dropped
    source.start()
    try:
        assert source.wait_until_drained(timeout=10)
    finally:
        source.stop()
    first, second = json.dumps({"n": 1, "fail": True}), json.dumps({"n": 2, "fail": False})
    assert seen == [(first, "1"), (first, "2"), (second, "1")]  # the group waits for its first message
    assert [letter["body"] for letter in source.dead_letters] == [first]
    figures = source.as_dict()
    assert (figures["sent"], figures["duplicates"], figures["deleted"], figures["dead_lettered"]) == (2, 1, 1, 1)
    assert figures["depth"] == 0


def test_concurrent_containers_each_see_their_own_api_event() -> None:
    """Powertools keeps the current event on a class: containers (threads here) must not share it."""
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    from local.functions import isolate_powertools_routers

    isolate_powertools_routers()
    both_inside = threading.Barrier(2, timeout=10)
    answers: dict[str, str] = {}

    def container(visitor: str) -> None:
        app = APIGatewayRestResolver()

        @app.get("/who")
        def who() -> dict[str, Any]:
            both_inside.wait()  # the other container has resolved its own event by now
            return {"visitor": app.current_event.headers.get("x-visitor")}

        event = {
            "httpMethod": "GET",
            "path": "/who",
            "resource": "/who",
            "headers": {"x-visitor": visitor},
            "multiValueHeaders": {"x-visitor": [visitor]},
            "requestContext": {"requestId": visitor, "stage": "local", "path": "/who", "httpMethod": "GET"},
            "queryStringParameters": None,
            "body": None,
            "isBase64Encoded": False,
        }
        answers[visitor] = json.loads(app.resolve(event, None)["body"])["visitor"]

    threads = [threading.Thread(target=container, args=(visitor,)) for visitor in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert answers == {"a": "a", "b": "b"}
