"""moto in server mode on loopback, with the template's resources created from their own definitions.

Every AWS resource the functions use (the profiles table, the FIFO queues and their dead-letter
queues, the event bus) is created through boto3 from its ``template.yaml`` properties, so a key
schema, a TTL attribute or a redrive policy changed in the template changes the local stack too.
Two local-only resources are added: the ``local-jobs`` bucket (sources of batch jobs) and a "tap"
queue with an EventBridge rule on the bus, so the local stack can show ``SegmentsChanged`` events.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from local.template import LOCAL_ACCOUNT, LOCAL_REGION, Evaluator, Queue, Template

log = logging.getLogger("local.aws")

LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
JOBS_BUCKET = "local-jobs"
TAP_QUEUE = "local-events-tap"
TAP_RULE = "local-events-tap"
TAP_PATTERN = {"detail-type": ["SegmentsChanged"]}
DEMO_JOBS_DIR = Path(__file__).resolve().parent / "demo" / "jobs"


def patch_moto_sqs() -> None:
    """Make moto's SQS safe under concurrent calls and its ReceiveMessage cost independent of queue length.

    The local stack calls SQS from many threads at once (pollers deleting and releasing messages,
    handlers sending), and moto 5.2 is not thread-safe there:

    - ``DeleteMessage`` rebuilds the queue's message list without a lock, so a delete or a send that
      runs at the same moment is lost (a deleted message comes back after its visibility timeout, or
      a sent one disappears);
    - ``ReceiveMessage`` and ``ChangeMessageVisibility`` iterate and change the same sets unlocked.

    These three now hold the queue's own lock (the one ``SendMessage`` already takes; ``ReceiveMessage``
    still releases it while long polling). And moto checks each received message's retention by
    computing every attribute of its queue, several of which scan all its messages (one
    ReceiveMessage on a queue of 1,000 messages took about a second); the replacement reads the
    retention period alone. Behaviour is unchanged. Applies to moto in this process (server mode and
    ``mock_aws`` alike); idempotent.
    """
    import functools

    from moto.core.utils import unix_time
    from moto.sqs.models import Queue as MotoQueue
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend, "_local_patched", False):
        return

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        queue = self.get_queue(queue_name)
        return bool(int(queue.message_retention_period) + message.sent_timestamp / 1000 > unix_time())

    def locked_by_queue(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
            with self.get_queue(queue_name)._messages_lock:
                return method(self, queue_name, *args, **kwargs)

        return wrapper

    def locked(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            with self._messages_lock:
                return method(self, *args, **kwargs)

        return wrapper

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period  # type: ignore[method-assign]
    SQSBackend.receive_message = locked_by_queue(SQSBackend.receive_message)  # type: ignore[method-assign]
    SQSBackend.change_message_visibility = locked_by_queue(SQSBackend.change_message_visibility)  # type: ignore[method-assign]
    MotoQueue.delete_message = locked(MotoQueue.delete_message)  # type: ignore[method-assign]
    SQSBackend._local_patched = True  # type: ignore[attr-defined]


class MotoServer:
    """moto's threaded server on loopback; port 0 picks a free port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.server import ThreadedMotoServer

        # werkzeug logs every request at INFO: keep the console for the stack's own output.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self.endpoint = ""

    def start(self) -> str:
        patch_moto_sqs()
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        # moto keeps its state per process: start every stack from a clean account.
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()
        return self.endpoint

    def stop(self) -> None:
        if self.endpoint:
            self._server.stop()
            self.endpoint = ""


def client(service: str, endpoint: str, region: str = LOCAL_REGION) -> Any:
    """A boto3 client for the local endpoint (explicit, independent of the process environment)."""
    session: Any = boto3.session.Session()  # any service name: the stubs only type literal ones
    return session.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
    )


@dataclass
class QueueInfo:
    logical_id: str
    name: str
    url: str
    arn: str
    fifo: bool
    attributes: dict[str, str]
    dead_letter_queue_id: str | None = None
    max_receive_count: int | None = None


@dataclass
class Resources:
    """What was created in moto, by logical ID, plus the local extras."""

    endpoint: str
    tables: dict[str, str] = field(default_factory=dict)  # logical ID -> table name
    queues: dict[str, QueueInfo] = field(default_factory=dict)
    event_buses: dict[str, str] = field(default_factory=dict)  # logical ID -> bus name
    buckets: dict[str, str] = field(default_factory=dict)  # logical ID -> bucket name
    jobs_bucket: str = JOBS_BUCKET
    tap_queue_url: str = ""

    @property
    def physical_ids(self) -> dict[str, str]:
        ids: dict[str, str] = {}
        ids.update(self.tables)
        ids.update({q.logical_id: q.url for q in self.queues.values()})
        ids.update(self.event_buses)
        ids.update(self.buckets)
        return ids

    @property
    def attributes(self) -> dict[tuple[str, str], str]:
        attrs: dict[tuple[str, str], str] = {}
        for q in self.queues.values():
            attrs[(q.logical_id, "Arn")] = q.arn
            attrs[(q.logical_id, "QueueName")] = q.name
            attrs[(q.logical_id, "QueueUrl")] = q.url
        return attrs


def provision(template: Template, evaluator: Evaluator, endpoint: str, *, seed_jobs: bool = True) -> Resources:
    """Create the template's tables, queues, buses and buckets in moto, plus the local extras."""
    region = evaluator.region
    resources = Resources(endpoint=endpoint)

    dynamodb = client("dynamodb", endpoint, region)
    for table in template.tables(evaluator):
        _create_table(dynamodb, table.name, table.properties)
        resources.tables[table.logical_id] = table.name

    resources.queues.update(create_queues(template, evaluator, endpoint))
    sqs = client("sqs", endpoint, region)

    events = client("events", endpoint, region)
    for bus in template.event_buses(evaluator):
        events.create_event_bus(Name=bus.name)
        resources.event_buses[bus.logical_id] = bus.name

    s3 = client("s3", endpoint, region)
    for bucket in template.buckets(evaluator):
        _create_bucket(s3, bucket.name, region)
        resources.buckets[bucket.logical_id] = bucket.name
    _create_bucket(s3, JOBS_BUCKET, region)
    if seed_jobs and DEMO_JOBS_DIR.is_dir():
        for path in sorted(DEMO_JOBS_DIR.rglob("*")):
            if path.is_file():
                s3.put_object(
                    Bucket=JOBS_BUCKET, Key=path.relative_to(DEMO_JOBS_DIR).as_posix(), Body=path.read_bytes()
                )

    # The tap: every SegmentsChanged event on each bus is copied to a plain queue the stack reads.
    tap_url = sqs.create_queue(QueueName=TAP_QUEUE)["QueueUrl"]
    tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for bus_name in resources.event_buses.values():
        events.put_rule(Name=TAP_RULE, EventBusName=bus_name, EventPattern=json.dumps(TAP_PATTERN), State="ENABLED")
        events.put_targets(Rule=TAP_RULE, EventBusName=bus_name, Targets=[{"Id": "local-tap", "Arn": tap_arn}])
    resources.tap_queue_url = tap_url
    return resources


def create_queues(template: Template, evaluator: Evaluator, endpoint: str) -> dict[str, QueueInfo]:
    """Create the template's queues (dead-letter queues first), by logical ID."""
    sqs = client("sqs", endpoint, evaluator.region)
    return {queue.logical_id: _create_queue(sqs, queue) for queue in template.queues(evaluator)}


def _create_table(dynamodb: Any, name: str, props: dict[str, Any]) -> None:
    request: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = _throughput(props.get("ProvisionedThroughput"))
    for index_kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        indexes = props.get(index_kind)
        if indexes:
            request[index_kind] = [
                {k: v for k, v in index.items() if k != "ContributorInsightsSpecification"} for index in indexes
            ]
    if props.get("StreamSpecification"):
        request["StreamSpecification"] = {
            "StreamEnabled": True,
            "StreamViewType": props["StreamSpecification"]["StreamViewType"],
        }
    sse = props.get("SSESpecification")
    if sse:
        request["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled"))}
    dynamodb.create_table(**request)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled") in (True, "true"):
        # moto stores the TTL setting but never deletes expired items (nor does DynamoDB, promptly).
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr and pitr.get("PointInTimeRecoveryEnabled") in (True, "true"):
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )


def _throughput(value: dict[str, Any] | None) -> dict[str, int]:
    value = value or {}
    return {
        "ReadCapacityUnits": int(value.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(value.get("WriteCapacityUnits", 5)),
    }


def _create_queue(sqs: Any, queue: Queue) -> QueueInfo:
    url = sqs.create_queue(QueueName=queue.name, Attributes=queue.attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return QueueInfo(
        logical_id=queue.logical_id,
        name=queue.name,
        url=url,
        arn=arn,
        fifo=queue.fifo,
        attributes=dict(queue.attributes),
        dead_letter_queue_id=queue.dead_letter_queue_id,
        max_receive_count=queue.max_receive_count,
    )


def _create_bucket(s3: Any, name: str, region: str) -> None:
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})


def process_environment(endpoint: str, region: str = LOCAL_REGION) -> dict[str, str | None]:
    """The AWS part of the in-process handlers' environment (None: remove the variable).

    boto3 honours ``AWS_ENDPOINT_URL`` for every service; service-specific endpoint variables and
    profiles that could send a call elsewhere are removed.
    """
    env: dict[str, str | None] = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"],
        "AWS_SESSION_TOKEN": None,
        "AWS_SECURITY_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_DEFAULT_PROFILE": None,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_XRAY_SDK_ENABLED": "false",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    for name in os.environ:
        if name.startswith("AWS_ENDPOINT_URL_"):
            env[name] = None
    return env


class EventTap:
    """Reads the tap queue in the background and keeps the last events seen on the bus."""

    def __init__(self, endpoint: str, queue_url: str, *, keep: int = 200, echo: bool = False) -> None:
        self._sqs = client("sqs", endpoint)
        self._queue_url = queue_url
        self._events: deque[dict[str, Any]] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._echo = echo

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="local-event-tap", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def events(self) -> list[dict[str, Any]]:
        self.drain()
        with self._lock:
            return list(self._events)

    def drain(self) -> None:
        """Read what is waiting now (also used by the background thread)."""
        self._receive(wait_seconds=0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._receive(wait_seconds=1)
            except Exception:  # moto stopped under us, or a transient error
                if self._stop.wait(0.5):
                    return

    def _receive(self, wait_seconds: int) -> None:
        while True:
            answer = self._sqs.receive_message(
                QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
            )
            messages = answer.get("Messages") or []
            if not messages:
                return
            for message in messages:
                try:
                    event = json.loads(message["Body"])
                except json.JSONDecodeError:
                    event = {"body": message["Body"]}
                with self._lock:
                    self._events.append(event)
                if self._echo:
                    detail = json.dumps(event.get("detail"), separators=(",", ":"))
                    print(f"[events] {event.get('detail-type')} from {event.get('source')}: {detail}", flush=True)
                self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
            wait_seconds = 0


__all__ = [
    "JOBS_BUCKET",
    "LOCAL_ACCOUNT",
    "EventTap",
    "MotoServer",
    "QueueInfo",
    "Resources",
    "client",
    "create_queues",
    "patch_moto_sqs",
    "process_environment",
    "provision",
]
