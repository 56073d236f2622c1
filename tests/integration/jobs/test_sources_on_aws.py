"""Job sources and the queue/bus adapters against moto: S3 JSON Lines and CSV (object and prefix),
DynamoDB parallel scans, resuming from cursors, SendMessageBatch and PutEvents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from aam_dcs.jobs.events import DomainEvent, EventBridgeSink
from aam_dcs.jobs.publisher import QueueMessage, QueuePublisher
from aam_dcs.jobs.sources import JobSourceError, S3Source, SourceSpec, TableSource, open_source
from tests.support.segments_stack import BUCKET, SegmentsStack

pytestmark = pytest.mark.integration


@pytest.fixture
def stack() -> Iterator[SegmentsStack]:
    with mock_aws():
        yield SegmentsStack.create()


def read(source: Any, cursor: dict[str, Any] | None = None) -> list[Any]:
    return list(source.rows(cursor))


def s3_source(url: str, **kwargs: Any) -> Any:
    return open_source(SourceSpec(s3=url, **kwargs), profiles_table=None)


MIXED_JSONL = [
    {"mid": "1" * 38},
    "{not json",
    {"mid": "2" * 38, "customer_ids": [{"integration_code": "crm", "id": "ü-1"}]},
    "",
    "[1, 2]",
    {"uuid": "3" * 38},
]


def test_a_jsonl_object_gives_good_and_unreadable_rows_with_their_lines(stack):
    rows = read(s3_source(stack.put_jsonl("in/users.jsonl", MIXED_JSONL)))
    assert [(r.position["line"], r.problem) for r in rows] == [
        (1, None),
        (2, "not valid JSON"),
        (3, None),
        (5, "not a JSON object"),
        (6, None),
    ]
    assert rows[2].data["customer_ids"][0]["id"] == "ü-1"
    assert {r.position["key"] for r in rows} == {"in/users.jsonl"}


def test_a_jsonl_object_resumes_at_the_byte_offset_of_its_cursor(stack):
    source = s3_source(stack.put_jsonl("users.jsonl", [{"n": n} for n in range(50)]))
    everything = read(source)
    rest = read(source, everything[19].cursor)
    assert [r.data["n"] for r in rest] == list(range(20, 50))
    assert [r.position["line"] for r in rest] == list(range(21, 51))
    assert read(source, everything[-1].cursor) == []


def test_a_csv_object_resumes_with_its_header(stack):
    rows = [[f"{n:038d}", f"c{n}", "crm"] for n in range(30)]
    source = s3_source(stack.put_csv("users.csv", ["mid", "customer_id", "integration_code"], rows))
    everything = read(source)
    assert everything[0].data == {"mid": f"{0:038d}", "customer_id": "c0", "integration_code": "crm"}
    assert everything[0].position == {"key": "users.csv", "line": 2}
    rest = read(source, everything[9].cursor)
    assert [r.data["customer_id"] for r in rest] == [f"c{n}" for n in range(10, 30)]


def test_the_format_is_sniffed_without_an_extension(stack):
    stack.s3.put_object(Bucket=BUCKET, Key="a/jsonish", Body=b'{"n": 1}\n')
    stack.s3.put_object(Bucket=BUCKET, Key="a/csvish", Body=b"n\n1\n")
    assert read(s3_source(f"s3://{BUCKET}/a/jsonish"))[0].data == {"n": 1}
    assert read(s3_source(f"s3://{BUCKET}/a/csvish"))[0].data == {"n": "1"}
    assert read(s3_source(f"s3://{BUCKET}/a/jsonish", format="csv")) == []  # its one line is taken as a header


def test_a_prefix_reads_every_object_in_key_order_and_resumes_across_objects(stack):
    stack.put_jsonl("batch/2.jsonl", [{"n": 3}, {"n": 4}])
    stack.put_csv("batch/1.csv", ["n"], [[1], [2]])
    stack.put_jsonl("batch/3.jsonl", [{"n": 5}])
    stack.s3.put_object(Bucket=BUCKET, Key="batch/", Body=b"")
    stack.s3.put_object(Bucket=BUCKET, Key="batch/_SUCCESS", Body=b"")
    stack.put_jsonl("other/9.jsonl", [{"n": 99}])
    source = s3_source(f"s3://{BUCKET}/batch/")
    everything = read(source)
    assert [str(r.data["n"]) for r in everything] == ["1", "2", "3", "4", "5"]
    assert [r.position["key"] for r in everything] == ["batch/1.csv"] * 2 + ["batch/2.jsonl"] * 2 + ["batch/3.jsonl"]
    assert [r.data["n"] for r in read(source, everything[2].cursor)] == [4, 5]
    assert [r.data["n"] for r in read(source, everything[3].cursor)] == [5]


def test_a_large_object_is_streamed_in_chunks(stack):
    url = stack.put_jsonl("big.jsonl", [{"n": n, "pad": "x" * 200} for n in range(20_000)])
    source = S3Source(BUCKET, "big.jsonl", client=stack.s3, chunk_bytes=64 * 1024)
    count = 0
    for count, row in enumerate(source.rows(), start=1):  # noqa: B007
        assert row.data is not None
    assert count == 20_000
    assert url.endswith("big.jsonl")


def put_items(stack: SegmentsStack, table: str, count: int, start: int = 0) -> None:
    with boto3.resource("dynamodb", region_name="us-west-2").Table(table).batch_writer() as batch:
        for n in range(start, start + count):
            batch.put_item(Item={"pk": f"user-{n:04d}", "sk": "crm", "n": n, "tags": {"a", "b"}, "score": "1.5"})


@pytest.fixture
def crm_table(stack) -> str:
    from tests.support.aws import create_profiles_table

    name = create_profiles_table(stack.dynamodb, "crm-users")
    put_items(stack, name, 250)
    return name


@pytest.mark.parametrize("segments", [1, 3])
def test_a_table_is_scanned_page_by_page_every_item_once(stack, crm_table, segments):
    source = TableSource(crm_table, total_segments=segments, page_size=40, client=stack.dynamodb)
    rows = read(source)
    assert sorted(r.data["n"] for r in rows) == list(range(250))
    assert rows[0].data["tags"] == ["a", "b"]
    assert {r.position["segment"] for r in rows} == set(range(segments))
    assert all("pk" not in json.dumps(r.position) for r in rows)


@pytest.mark.parametrize("segments", [1, 3])
def test_a_table_scan_resumes_after_the_last_item_even_while_the_table_grows(stack, crm_table, segments):
    source = TableSource(crm_table, total_segments=segments, page_size=40, client=stack.dynamodb)
    first = read(source)[:101]
    cursor = first[-1].cursor
    put_items(stack, crm_table, 100, start=1000)
    rest = read(TableSource(crm_table, total_segments=segments, page_size=40, client=stack.dynamodb), cursor)
    seen = [r.data["n"] for r in first + rest]
    assert sorted(n for n in seen if n < 1000) == list(range(250))
    assert len(seen) == len(set(seen))
    assert json.loads(json.dumps(cursor)) == cursor


def test_profiles_names_the_configured_table(stack):
    source = open_source(SourceSpec(table="profiles"), profiles_table=stack.table, dynamodb_client=stack.dynamodb)
    assert source.name == stack.table
    assert read(source) == []


def test_the_publisher_sends_batches_to_the_fifo_queue_and_sqs_deduplicates(stack):
    publisher = QueuePublisher(stack.queue_url)
    messages = [QueueMessage(json.dumps({"n": n}), f"user:{n}", f"job1:{n}") for n in range(25)]
    assert publisher.publish(messages) == []
    assert publisher.publish(messages[:5]) == []
    queued = stack.queued()
    assert sorted(json.loads(m["Body"])["n"] for m in queued) == list(range(25))


def test_the_event_sink_puts_events_on_the_bus(stack):
    EventBridgeSink(stack.bus).put([DomainEvent("SegmentsChanged", {"added": [str(n)]}) for n in range(12)])
    events = stack.announced()
    assert sorted(e["detail"]["added"][0] for e in events) == sorted(str(n) for n in range(12))
    assert {(e["source"], e["detail-type"]) for e in events} == {("aam-dcs", "SegmentsChanged")}


@pytest.mark.parametrize(
    "spec",
    [
        {"s3": f"s3://{BUCKET}/missing.jsonl"},
        {"s3": "s3://no-such-bucket/x/"},
        {"table": "no-such-table"},
    ],
)
def test_a_source_that_does_not_exist_is_a_job_source_error(stack, spec):
    source = open_source(SourceSpec(**spec), profiles_table=None)
    with pytest.raises(JobSourceError) as info:
        read(source)
    assert info.value.details["code"] in {"NoSuchKey", "NoSuchBucket", "ResourceNotFoundException"}
