"""Builders for send_signals tests: a sender and a worker wired to fakes, metric counts, SQS records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aam_dcs.config import Settings, settings_from_env
from aam_dcs.ids.resolver import IdentityResolver
from aam_dcs.jobs.deadletter import InMemoryDeadLetters
from aam_dcs.jobs.idempotency import InMemoryIdempotency
from aam_dcs.jobs.signal_queue import InMemorySignalQueue
from aam_dcs.observability import metrics
from aam_dcs.signals.messages import QueueMessage
from aam_dcs.signals.send import SignalSender
from aam_dcs.signals.worker import Backoff, SignalWorker
from aam_dcs.store.memory import InMemoryProfileStore
from tests.support.fakes import FakeDcs

ORG = "0123456789ABCDEF01234567@AdobeOrg"
MID = "04512783304617290021837465019283746501"
UUID = "22920112968019678612904394744954398990"
OPTED_OUT_AMCV = f"1585540135|MCMID|{MID}|MCAAMLH-1728004800|9|MCOPTOUT-1727407200s|true"
AMCV = f"1585540135|MCMID|{MID}|MCAAMLH-1728004800|9|MCAAMB-1728004800|Zm9vYmFy|MCOPTOUT-1727407200s|NONE"
NOW = 1_800_000_000.0


def bundle_settings(**env: str) -> Settings:
    return settings_from_env({"AAM_PARTNER": "acme", "AAM_ORG_ID": ORG, **env})


def make_sender(
    settings: Settings | None = None,
    *,
    dcs: FakeDcs | None = None,
    store: InMemoryProfileStore | None = None,
    queue: InMemorySignalQueue | None = None,
    clock: Any = None,
    segments: Any = None,
) -> SignalSender:
    settings = settings or bundle_settings()
    tick = clock or (lambda: NOW)
    return SignalSender(
        settings=settings,
        resolver=IdentityResolver(settings=settings, store=store, clock=tick),
        gateway=dcs or FakeDcs(),
        store=store,
        queue=queue,
        clock=tick,
        segments=segments,
    )


def make_worker(sender: SignalSender, **overrides: Any) -> SignalWorker:
    values: dict[str, Any] = {
        "idempotency": InMemoryIdempotency(),
        "queue": sender.queue,
        "dead_letters": InMemoryDeadLetters(),
        "backoff": Backoff(base_seconds=30, max_seconds=900),
    }
    values.update(overrides)
    return SignalWorker(sender=sender, **values)


def message_id(message: QueueMessage) -> str:
    """A message keeps its ID across redeliveries: here it is derived from the message itself."""
    return f"message-{message.deduplication_id[:12]}"


def receipt_handle(message: QueueMessage) -> str:
    return f"handle-{message.deduplication_id[:12]}"


def sqs_records(messages: list[QueueMessage], *, receive_count: int = 1) -> dict[str, Any]:
    """An SQS FIFO event with the queued messages, as Lambda delivers them."""
    records = []
    for index, message in enumerate(messages):
        records.append(
            {
                "messageId": message_id(message),
                "receiptHandle": receipt_handle(message),
                "body": message.body,
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "MessageGroupId": message.group_id,
                    "MessageDeduplicationId": message.deduplication_id,
                    "SequenceNumber": str(100 + index),
                    "SentTimestamp": "1800000000000",
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-west-2:123456789012:signals.fifo",
                "awsRegion": "us-west-2",
            }
        )
    return {"Records": records}


def body_of(message: QueueMessage) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(message.body)
    return data


class MetricCounts:
    """Sums of the Powertools metrics added since the last ``reset``."""

    def reset(self) -> None:
        metrics.clear_metrics()

    def __getitem__(self, name: str) -> float:
        entry = metrics.metric_set.get(name)
        return float(sum(entry["Value"])) if entry else 0.0


@contextmanager
def metric_counts() -> Iterator[MetricCounts]:
    counts = MetricCounts()
    counts.reset()
    try:
        yield counts
    finally:
        counts.reset()
