"""The batch signal job on moto: S3 rows (JSON Lines and CSV; good, bad and mixed) are validated,
queued on the template's FIFO queue, continued from a checkpoint, and sent by the queue worker."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from aam_dcs.config import get_settings
from aam_dcs.errors import FeatureDisabled
from tests.integration.signals.conftest import run_as_event_source
from tests.support.events import FakeLambdaContext
from tests.support.signals import MID, UUID

pytestmark = pytest.mark.integration

BUCKET = "signal-jobs"
OPTED_OUT_AMCV = f"1585540135|MCMID|{MID}|MCAAMLH-1728004800|9|MCOPTOUT-1727407200s|true"


@pytest.fixture
def s3(aws: Any) -> Any:
    client = boto3.client("s3", region_name="us-west-2")
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    return client


def put(s3: Any, key: str, text: str) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=text.encode("utf-8"))
    return f"s3://{BUCKET}/{key}"


def jsonl(*rows: Any) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def run_job(function: Any, url: str, remaining_ms: int = 60_000) -> dict[str, Any]:
    event = {"job": "send_signals", "source": {"s3": url}, "job_id": "test-job"}
    result: dict[str, Any] = function.lambda_handler(event, FakeLambdaContext(remaining_ms))
    return result


def drain(function: Any, aws: Any, remaining_ms: int = 60_000) -> list[str]:
    """Lambda's event source, by hand: batches of 10 until the queue is empty; returns the bodies seen.

    Failed messages are made visible again at once (a loaded machine can reset a connection now and
    then: the message is retried, as SQS would).
    """
    seen: list[str] = []
    for _ in range(500):
        messages = aws.sqs.receive_message(
            QueueUrl=aws.queue_url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return seen
        seen += [m["Body"] for m in messages]
        run_as_event_source(function, aws, messages, remaining_ms)
    raise AssertionError("the queue never drained")


def test_good_rows_are_queued_and_sent(function, sim, aws, s3):
    url = put(
        s3,
        "signals/2026-11-22/part-1.jsonl",
        jsonl(
            {"mid": MID, "region_id": 9, "signals": {"c_color": "blue"}, "event_id": "row-1"},
            {"uuid": UUID, "region_id": 6, "signals": {"c_sizes": ["m", "l"]}, "trait_ids": [1001]},
        ),
    )
    summary = run_job(function, url)
    assert {k: summary[k] for k in ("job", "read", "queued", "rejected", "errors", "complete")} == {
        "job": "send_signals",
        "read": 2,
        "queued": 2,
        "rejected": 0,
        "errors": [],
        "complete": True,
    }
    bodies = [json.loads(body) for body in drain(function, aws)]
    assert {body["kind"] for body in bodies} == {"send_signals"}
    calls = sim.calls("/event")
    by_host = {c["headers"]["X-Forwarded-Host"]: c for c in calls}
    assert sorted(by_host) == ["irl1.demdex.net", "usw2.demdex.net"]
    assert ["c_sizes", "m"] in by_host["irl1.demdex.net"]["params"]
    assert ["d_sid", "1001"] in by_host["irl1.demdex.net"]["params"]


def test_bad_rows_are_counted_and_reported_never_silently_dropped(function, sim, aws, s3):
    url = put(
        s3,
        "bad.jsonl",
        jsonl(
            {"mid": MID},  # nothing to send
            {"mid": MID, "signals": {"d_uuid": "x"}},  # reserved key
            "{not json",
            {"mid": "123", "signals": {"c_x": "1"}},
            {"signals": {"c_x": "1"}},  # nobody
        ),
    )
    summary = run_job(function, url)
    assert (summary["read"], summary["queued"], summary["rejected"]) == (5, 0, 5)
    assert [(e["position"]["line"], e.get("field")) for e in summary["errors"]] == [
        (1, "signals"),
        (2, "signals.d_uuid"),
        (3, None),
        (4, "mid"),
        (5, "mid"),
    ]
    assert "123" not in json.dumps(summary)
    assert drain(function, aws) == []


def test_mixed_csv_rows(function, sim, aws, s3):
    csv_text = (
        "uuid,region_id,signal.c_color,signal.c_note,trait_ids,customer_id,data_source_id,event_id,amcv\n"
        f'{UUID},9,blue,a b&c=d%,"12,34",crm-1,123,csv-1,\n'
        f"{UUID},9,,,,,,csv-2,\n"
        f"{UUID},5,red,,,,,csv-3,\n"
        f",,green,,,,,csv-4,{OPTED_OUT_AMCV}\n"
        f"{UUID},6,green,,,,,csv-5,\n"
    )
    summary = run_job(function, put(s3, "mixed.csv", csv_text))
    assert {k: summary[k] for k in ("read", "queued", "rejected", "skipped")} == {
        "read": 5,
        "queued": 2,
        "rejected": 2,
        "skipped": 1,
    }
    assert [(e["position"]["line"], e["field"]) for e in summary["errors"]] == [(3, "signals"), (4, "region_id")]
    drain(function, aws)
    first, second = sim.calls("/event")
    assert first["query"].endswith("&d_cid=123%01crm-1%010&c_color=blue&c_note=a%20b%26c%3Dd%25&d_sid=12%2C34")
    assert ["d_cid", "123\x01crm-1\x010"] in first["params"]
    assert second["headers"]["X-Forwarded-Host"] == "irl1.demdex.net"


def test_a_job_short_of_time_continues_from_its_checkpoint(function, sim, aws, s3):
    rows = [
        {"mid": f"{n + 1:019d}{n:019d}", "region_id": 9, "signals": {"c_seq": str(n)}, "event_id": f"seq-{n}"}
        for n in range(150)
    ]
    url = put(s3, "big.jsonl", jsonl(*rows))
    first = run_job(function, url, remaining_ms=1_000)  # below the planner's safety margin: one page per run
    assert (first["complete"], first["read"], first["queued"], first["runs"]) == (False, 100, 100, 1)
    assert first["checkpoint"] is not None
    bodies = [json.loads(body) for body in drain(function, aws, remaining_ms=1_000)]
    continuations = [body for body in bodies if body["kind"] == "continue_job"]
    assert {c["run"] for c in continuations} == {2}
    assert continuations[0]["totals"]["queued"] == 100
    sent = sorted(int(v) for call in sim.calls("/event") for k, v in call["params"] if k == "c_seq")
    assert sent == list(range(150))


def test_a_job_without_a_queue_is_refused_by_name(function, monkeypatch, aws, s3):
    monkeypatch.delenv("SIGNAL_QUEUE_URL")
    get_settings.cache_clear()
    function.planner.cache_clear()
    with pytest.raises(FeatureDisabled) as info:
        run_job(function, put(s3, "x.jsonl", jsonl({"mid": MID, "signals": {"c_x": "1"}})))
    assert info.value.setting == "SIGNAL_QUEUE_URL"
