"""The generic planner over fakes: counting, rejected rows with positions, checkpoints, continuations."""

import json

import pytest

from aam_dcs.errors import InvalidRequest
from aam_dcs.jobs.planner import JobPlanner, PlannedMessage, RowRejected, dedup_id
from aam_dcs.jobs.publisher import InMemoryQueue
from aam_dcs.jobs.sources import SourceRow
from tests.support.segments import CountdownContext, counted_metrics

JOB = {"job": "demo", "source": {"s3": "s3://bucket/rows.jsonl"}}


class ListSource:
    """Rows ``{"n": i}`` (or a problem) at positions ``{"line": i}``; the cursor is the line."""

    def __init__(self, rows):
        self.items = rows
        self.cursors = []

    def rows(self, cursor=None):
        self.cursors.append(cursor)
        start = cursor["line"] if cursor else 0
        for line, data in enumerate(self.items[start:], start=start + 1):
            problem = data if isinstance(data, str) else None
            yield SourceRow(
                data=None if problem else data, position={"line": line}, cursor={"line": line}, problem=problem
            )


def map_row(row):
    if row.get("skip"):
        return None
    if row.get("bad"):
        raise InvalidRequest("bad", field="user", rule="must be a user")
    if row.get("odd"):
        raise RowRejected("odd row")
    return PlannedMessage(body={"kind": "demo", "user": row["n"]}, group_id=f"user:{row['n']}", dedup_key=str(row["n"]))


def planner_for(rows, queue=None, **options):
    source = ListSource(rows)
    planner = JobPlanner(
        job="demo", map_row=map_row, publisher=queue or InMemoryQueue(), open_source=lambda spec: source, **options
    )
    return planner, source


def bodies(queue):
    return [json.loads(m.body) for m in queue.messages]


def test_every_good_row_becomes_one_message_with_its_group_and_dedup_id():
    queue = InMemoryQueue()
    planner, _ = planner_for([{"n": 1}, {"n": 2}, {"n": 3}], queue)
    summary = planner.plan({**JOB, "job_id": "j1"}, None)
    assert [m.group_id for m in queue.messages] == ["user:1", "user:2", "user:3"]
    assert queue.messages[0].deduplication_id == dedup_id("j1", "1")
    assert bodies(queue)[0] == {"kind": "demo", "user": 1}
    assert summary == {
        "job": "demo",
        "job_id": "j1",
        "read": 3,
        "queued": 3,
        "rejected": 0,
        "skipped": 0,
        "failed": 0,
        "errors": [],
        "errors_dropped": 0,
        "complete": True,
        "checkpoint": None,
        "runs": 1,
    }


def test_rejected_rows_are_counted_and_reported_with_position_and_reason_never_values():
    rows = [{"n": 1}, {"bad": "secret-customer-id"}, "not valid JSON", {"odd": 1}, {"skip": 1}, {"n": 2}]
    planner, _ = planner_for(rows)
    summary = planner.plan(JOB, None)
    assert (summary["read"], summary["queued"], summary["rejected"], summary["skipped"]) == (6, 2, 3, 1)
    assert summary["errors"] == [
        {"position": {"line": 2}, "reason": "must be a user", "field": "user"},
        {"position": {"line": 3}, "reason": "not valid JSON"},
        {"position": {"line": 4}, "reason": "odd row", "field": "row"},
    ]
    assert "secret-customer-id" not in json.dumps(summary)


def test_errors_past_the_cap_are_counted_not_listed():
    planner, _ = planner_for([{"bad": 1}] * 120)
    summary = planner.plan(JOB, None)
    assert (summary["rejected"], len(summary["errors"]), summary["errors_dropped"]) == (120, 100, 20)


def test_rows_the_queue_refuses_are_counted_as_failed_and_reported():
    queue = InMemoryQueue(fail={"user:2": "InvalidParameterValue"})
    planner, _ = planner_for([{"n": 1}, {"n": 2}], queue)
    summary = planner.plan(JOB, None)
    assert (summary["queued"], summary["failed"]) == (1, 1)
    assert summary["errors"] == [
        {"position": {"line": 2}, "reason": "the queue refused the message (InvalidParameterValue)"}
    ]


def test_the_job_id_defaults_to_the_job_and_request_id():
    planner, _ = planner_for([{"n": 1}])
    assert planner.plan(JOB, CountdownContext(900_000, request_id="abc"))["job_id"] == "demo-abc"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"job": "other", "source": {"s3": "s3://bucket/k"}}, "job"),
        ({"job": "demo"}, "source"),
        ({"job": "demo", "source": {"s3": "http://b/k"}}, "source.s3"),
        ({"job": "demo", "source": {"s3": "s3://bucket/k", "table": "tbl"}}, "source"),
        ({"job": "demo", "source": {"table": "t!"}}, "source.table"),
        ({"job": "demo", "source": {"table": "tbl", "format": "csv"}}, "source"),
        ({"job": "demo", "source": {"s3": "s3://bucket/k"}, "extra": 1}, "extra"),
        ({"job": "demo", "source": {"s3": "s3://bucket/k"}, "job_id": "has space"}, "job_id"),
    ],
)
def test_bad_job_input_is_an_invalid_request_naming_the_field(event, field):
    planner, _ = planner_for([])
    with pytest.raises(InvalidRequest) as info:
        planner.plan(event, None)
    assert info.value.field == field


def test_running_out_of_time_leaves_a_continuation_on_the_queue():
    queue = InMemoryQueue()
    planner, source = planner_for([{"n": i} for i in range(1, 11)], queue, page_size=3, safety_margin_ms=30_000)
    context = CountdownContext(remaining_ms=35_000, step_ms=10_000)
    summary = planner.plan({**JOB, "job_id": "j2"}, context)
    assert (summary["complete"], summary["read"], summary["queued"]) == (False, 6, 6)
    assert summary["checkpoint"] == {"line": 6}
    continuation = queue.messages[-1]
    assert continuation.group_id == "job#j2"
    body = json.loads(continuation.body)
    assert body["kind"] == "continue_job"
    assert body["job"] == {**JOB, "job_id": "j2", "source": {"s3": "s3://bucket/rows.jsonl", "segments": 1}}
    assert (body["checkpoint"], body["run"], body["totals"]["queued"]) == ({"line": 6}, 2, 6)

    resumed = planner.resume(body, CountdownContext(900_000))
    assert source.cursors[-1] == {"line": 6}
    assert (resumed["complete"], resumed["read"], resumed["queued"], resumed["runs"]) == (True, 10, 10, 2)
    users = [b["user"] for b in bodies(queue) if b["kind"] == "demo"]
    assert users == list(range(1, 11))


def test_every_run_makes_progress_even_when_short_of_time():
    queue = InMemoryQueue()
    planner, _ = planner_for([{"n": i} for i in range(1, 5)], queue, page_size=2)
    summary = planner.plan(JOB, CountdownContext(remaining_ms=1))
    assert (summary["read"], summary["complete"]) == (2, False)


def test_totals_and_errors_carry_across_runs():
    queue = InMemoryQueue()
    planner, _ = planner_for([{"bad": 1}, {"n": 2}, {"bad": 1}, {"n": 4}], queue, page_size=2)
    first = planner.plan(JOB, CountdownContext(remaining_ms=1))
    body = json.loads(queue.messages[-1].body)
    final = planner.resume(body, None)
    assert (first["rejected"], final["rejected"], final["queued"], final["read"]) == (1, 2, 2, 4)
    assert [e["position"] for e in final["errors"]] == [{"line": 1}, {"line": 3}]


def test_a_table_cursor_is_shown_without_its_item_key():
    class TableLike(ListSource):
        def rows(self, cursor=None):
            for row in super().rows(cursor):
                yield SourceRow(row.data, row.position, {**row.cursor, "after": {"pk": {"S": "customer-42"}}})

    queue = InMemoryQueue()
    source = TableLike([{"n": 1}, {"n": 2}])
    planner = JobPlanner(job="demo", map_row=map_row, publisher=queue, open_source=lambda spec: source, page_size=1)
    summary = planner.plan({"job": "demo", "source": {"table": "crm"}}, CountdownContext(remaining_ms=1))
    assert summary["checkpoint"] == {"line": 1}
    assert json.loads(queue.messages[-1].body)["checkpoint"]["after"] == {"pk": {"S": "customer-42"}}


@pytest.mark.parametrize(
    "message",
    [
        {"kind": "continue_job", "job": {"job": "other", "source": {"s3": "s3://bucket/k"}}, "checkpoint": {}},
        {"kind": "continue_job", "job": {"job": "demo"}, "checkpoint": {}},
        {"kind": "continue_job", "job": JOB},
        {"kind": "continue_job", "job": JOB, "checkpoint": {}, "totals": {"read": "many"}},
        {"kind": "continue_job", "job": JOB, "checkpoint": {}, "totals": {"queued": [1]}},
    ],
)
def test_a_bad_continuation_is_an_invalid_request(message):
    planner, _ = planner_for([])
    with pytest.raises(InvalidRequest):
        planner.resume(message, None)


def test_metrics_count_job_progress():
    with counted_metrics() as counts:
        planner, _ = planner_for([{"n": 1}, {"bad": 1}, {"n": 2}], page_size=2)
        planner.plan(JOB, None)
        assert (counts["JobRowsRead"], counts["JobRowsQueued"], counts["JobRowsRejected"]) == (3, 2, 1)
        assert counts["JobsCompleted"] == 1


def test_a_job_whose_last_page_ends_short_of_time_finishes_without_a_continuation():
    queue = InMemoryQueue()
    planner, _ = planner_for([{"n": 1}, {"n": 2}], queue, page_size=2)
    summary = planner.plan(JOB, CountdownContext(remaining_ms=1))
    assert (summary["complete"], summary["queued"], len(queue.messages)) == (True, 2, 2)
