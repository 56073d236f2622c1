"""The lookup_segments stack for integration tests: moto (in process) resources and a Lambda-like SQS driver.

``SegmentsStack.create()`` (inside ``mock_aws``) makes what the template gives the function: the
profiles table, the enrichment FIFO queue (high throughput) and its DLQ, the segments event bus, plus
a jobs bucket and a standard "tap" queue that receives every ``SegmentsChanged`` event through a
bus rule, so tests can read what was announced. ``environment()`` is the function's settings.

``drain(handler)`` plays Lambda's SQS event source: receive up to 10 messages, invoke the handler
with them as one event, delete what succeeded and make the reported failures visible again, until
the queue is empty.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import boto3
import urllib3

from local.poller import lambda_sqs_record
from tests.support.aws import create_profiles_table
from tests.support.segments import ORG

REGION = "us-west-2"
BUCKET = "jobs-bucket"
ContextFactory = Callable[[], Any]


@dataclass
class DrainStats:
    invocations: int = 0
    messages: int = 0
    failures: int = 0


@dataclass
class SegmentsStack:
    table: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    bus: str
    tap_url: str
    sqs: Any
    s3: Any
    dynamodb: Any
    stats: DrainStats = field(default_factory=DrainStats)
    events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(cls, prefix: str = "t") -> SegmentsStack:
        sqs = boto3.client("sqs", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        table = create_profiles_table(dynamodb, f"{prefix}-profiles")
        dlq_url = sqs.create_queue(QueueName=f"{prefix}-enrich-dlq.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
        queue_url = sqs.create_queue(QueueName=f"{prefix}-enrich.fifo", Attributes=_fifo_attributes(sqs, dlq_url))[
            "QueueUrl"
        ]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = events.create_event_bus(Name=f"{prefix}-segments")["EventBusArn"].rsplit("/", 1)[1]
        tap_url = _tap(sqs, events, bus, f"{prefix}-tap")
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        return cls(table, queue_url, queue_arn, dlq_url, bus, tap_url, sqs, s3, dynamodb)

    def environment(self, dcs_url: str, **extra: str) -> dict[str, str]:
        return {
            "AAM_PARTNER": "acme",
            "AAM_ORG_ID": ORG,
            "AAM_DCS_ENDPOINT": dcs_url,
            "AAM_TIMEOUT_MS": "2000",
            "AAM_MAX_ATTEMPTS": "2",
            "PROFILES_TABLE": self.table,
            "ENRICH_QUEUE_URL": self.queue_url,
            "ENRICH_DLQ_URL": self.dlq_url,
            "EVENT_BUS_NAME": self.bus,
            **extra,
        }

    # --- job sources ------------------------------------------------------------------------------

    def put_jsonl(self, key: str, rows: Iterable[Any]) -> str:
        lines = (row if isinstance(row, str) else json.dumps(row) for row in rows)
        self.s3.put_object(Bucket=BUCKET, Key=key, Body="\n".join(lines).encode() + b"\n")
        return f"s3://{BUCKET}/{key}"

    def put_csv(self, key: str, header: list[str], rows: Iterable[list[Any]]) -> str:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows(rows)
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=text.getvalue().encode())
        return f"s3://{BUCKET}/{key}"

    # --- the queue --------------------------------------------------------------------------------

    def drain(self, handler: Callable[[Any, Any], Any], context: ContextFactory, max_batches: int = 100_000) -> None:
        """Feed the queue to the handler in batches of 10, as Lambda would, until it is empty.

        The tap is read as it goes (moto's queues slow down with their depth)."""
        for batch in range(max_batches):
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                self.events += self._read_tap()
                return
            self._invoke(handler, context(), messages)
            if batch % 10 == 9:
                self.events += self._read_tap()
        raise AssertionError("the queue did not drain")

    def _invoke(self, handler: Callable[[Any, Any], Any], context: Any, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [lambda_sqs_record(m, queue_arn=self.queue_arn, region=REGION) for m in messages]}
        result = handler(event, context)
        failed = {item["itemIdentifier"] for item in result["batchItemFailures"]}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start:][:10])]
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        for message in messages:
            if message["MessageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        self.stats.invocations += 1
        self.stats.messages += len(messages)
        self.stats.failures += len(failed)

    def queued(self) -> list[dict[str, Any]]:
        """Every message now visible on the queue (received, then made visible again)."""
        found = []
        while batch := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages"):
            found += batch
        for message in found:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        return found

    def dead_letters(self) -> list[dict[str, Any]]:
        found = []
        while batch := self.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages"):
            found += batch
        return found

    def announced(self) -> list[dict[str, Any]]:
        """The ``SegmentsChanged`` events put since the last call (read off the tap queue)."""
        events, self.events = self.events + self._read_tap(), []
        return events

    def _read_tap(self) -> list[dict[str, Any]]:
        events = []
        while batch := self.sqs.receive_message(QueueUrl=self.tap_url, MaxNumberOfMessages=10).get("Messages"):
            events += [json.loads(m["Body"]) for m in batch]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
            self.sqs.delete_message_batch(QueueUrl=self.tap_url, Entries=entries)
        return events

    def segments_of(self, keys: list[str]) -> dict[str, list[str]]:
        """The cached segments under each visitor key (BatchGetItem, 100 keys a call)."""
        found: dict[str, list[str]] = {}
        for start in range(0, len(keys), 100):
            request = {
                self.table: {"Keys": [{"pk": {"S": k}, "sk": {"S": "segments"}} for k in keys[start : start + 100]]}
            }
            while request:
                answer = self.dynamodb.batch_get_item(RequestItems=request)
                for item in answer["Responses"].get(self.table, []):
                    found[item["pk"]["S"]] = [value["S"] for value in item["segments"]["L"]]
                request = answer.get("UnprocessedKeys") or {}
        return found

    def segments_items(self) -> dict[str, dict[str, Any]]:
        """Every ``segments`` item of the profiles table, by ``pk``."""
        items: dict[str, dict[str, Any]] = {}
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=self.table):
            for item in page["Items"]:
                if item["sk"]["S"] == "segments":
                    items[item["pk"]["S"]] = item
        return items


def _fifo_attributes(sqs: Any, dlq_url: str) -> dict[str, str]:
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {
        "FifoQueue": "true",
        "ContentBasedDeduplication": "false",
        "DeduplicationScope": "messageGroup",
        "FifoThroughputLimit": "perMessageGroupId",
        "VisibilityTimeout": "1800",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
    }


def _tap(sqs: Any, events: Any, bus: str, name: str) -> str:
    tap_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"detail-type": ["SegmentsChanged"]}))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "tap", "Arn": tap_arn}])
    return str(tap_url)


class SimulatorSeeder:
    """Realizes traits for visitors straight on the simulator (``d_sid``), as earlier site visits would."""

    def __init__(self, sim_url: str) -> None:
        self.sim_url = sim_url
        self.pool = urllib3.PoolManager(maxsize=4)

    def realize(self, trait_ids: Iterable[int], *, mid: str | None = None, uuid: str | None = None) -> dict[str, Any]:
        params = [("d_rtbd", "json"), ("d_jsonv", "1"), ("d_sid", ",".join(str(t) for t in trait_ids))]
        if uuid:
            params.append(("d_uuid", uuid))
        if mid:
            params += [("d_mid", mid), ("d_orgid", ORG)]
        response = self.pool.request(
            "GET",
            f"{self.sim_url}/event?{urlencode(params, quote_via=quote)}",
            headers={"Host": "acme.demdex.net", "X-Forwarded-Host": "usw2.demdex.net"},
        )
        answer: dict[str, Any] = json.loads(response.data)
        return answer
