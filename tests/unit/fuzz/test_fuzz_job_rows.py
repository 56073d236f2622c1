"""Fuzzing the batch side: S3 rows (JSON Lines, CSV), the row mappers of both jobs, job inputs and
queue message bodies. A bad row or message is reported (``problem``, ``InvalidRequest``,
``RowRejected``, ``PermanentFailure``); it never escapes as any other exception."""

from __future__ import annotations

import contextlib
import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aam_dcs.errors import InvalidRequest
from aam_dcs.jobs.planner import ContinueJob, JobInput, PlannedMessage, RowRejected
from aam_dcs.jobs.sources import SourceRow, csv_rows, json_lines_rows, parse_json_line
from aam_dcs.jobs.worker import PermanentFailure, message_body
from aam_dcs.segments.enrich_job import EnrichmentRows, parse_enrich_message
from aam_dcs.signals.job import SignalRows
from aam_dcs.signals.messages import parse_message
from aam_dcs.validation import parse_model
from tests.support.segments import bundle_settings
from tests.unit.fuzz import strategies as fuzz

NOW = 1_800_000_000.0
MID = "04512783304617290021837465019283746501"
SIGNAL_ROW_FIELDS = [
    "mid", "uuid", "region_id", "amcv", "cookies", "dcs_response", "customer_ids", "signals", "trait_ids",
    "consent", "event_id", "user_agent", "referer", "signal.c_color", "signal.d_mid", "customer_id",
    "data_source_id", "integration_code", "auth_state", "gdpr", "gdpr_consent", "mode", "mint",
]  # fmt: skip
ENRICH_ROW_FIELDS = [
    "mid", "uuid", "region_id", "amcv", "cookies", "dcs_response", "customer_ids", "customer_id",
    "data_source_id", "integration_code", "auth_state", "mint", "pk", "sk", "opted_out",
]  # fmt: skip
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

signal_mapper = SignalRows(bundle_settings(), clock=lambda: NOW)
enrich_mapper = EnrichmentRows(bundle_settings())


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def lines_of(values: list[Any]) -> bytes:
    return b"\n".join(fuzz.as_bytes(fuzz.dumps(value)) for value in values)


def check_rows(rows: list[SourceRow]) -> None:
    for row in rows:
        assert (row.data is None) != (row.problem is None), row
        assert row.data is None or isinstance(row.data, dict)
        assert set(row.position) <= {"key", "line"}


json_line_values = fuzz.json_values()
json_line_files = st.one_of(
    st.lists(json_line_values | fuzz.objects_with(SIGNAL_ROW_FIELDS), max_size=6).map(lines_of),
    st.binary(max_size=400),
    st.lists(st.one_of(fuzz.noise, st.sampled_from([b"\n", b"\r\n", b"{", b"}", b'"'])), max_size=20).map(b"".join),
)
csv_files = st.one_of(
    st.lists(st.lists(fuzz.text, max_size=5).map(",".join), max_size=6).map("\n".join).map(fuzz.as_bytes),
    st.lists(
        st.one_of(fuzz.printable, st.sampled_from(['"', '""', ",", "\n", "\r", "\x00", "mid,signal.c_x\n"])),
        max_size=25,
    )
    .map("".join)
    .map(fuzz.as_bytes),
    st.binary(max_size=300),
)
cuts = st.lists(st.integers(0, 500), max_size=5)


@FUZZ
@given(data=json_line_files, cuts=cuts)
def test_json_lines_files_give_rows_or_problems(data: bytes, cuts: list[int]) -> None:
    check_rows(list(json_lines_rows("k.jsonl", chunked(data, cuts), 0, 0)))


@FUZZ
@given(data=csv_files, cuts=cuts)
def test_csv_files_give_rows_or_problems(data: bytes, cuts: list[int]) -> None:
    check_rows(list(csv_rows("k.csv", chunked(data, cuts), 0, 0, None)))


def test_a_json_line_with_a_4400_digit_number_is_a_problem_row() -> None:
    data, problem = parse_json_line(f'{{"mid": {fuzz.HUGE_INTEGER_TEXT}}}'.encode(), first=True)
    assert data is None
    assert problem


def planned_or_refused(mapper: Any, row: dict[str, Any]) -> None:
    planned = fuzz.attempt(lambda: mapper(row), InvalidRequest, RowRejected)
    if isinstance(planned, InvalidRequest | RowRejected):
        assert planned.field
    elif isinstance(planned, PlannedMessage):
        json.dumps(planned.body)  # the body goes on the queue as JSON
        assert planned.group_id.startswith(("mid:", "uuid:", "cid:"))
        assert planned.dedup_key
    else:
        assert planned is None


csv_cells = st.one_of(fuzz.text, fuzz.json_values().map(fuzz.dumps))


def rows_for(fields: list[str], base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Arbitrary rows, and good rows with a few fields replaced (to get past the first check)."""
    arbitrary = fuzz.objects_with(fields) | st.dictionaries(st.sampled_from(fields), csv_cells)
    return arbitrary | arbitrary.map(lambda changes: {**base, **changes})


@FUZZ
@given(row=rows_for(SIGNAL_ROW_FIELDS, {"mid": MID, "signals": {"c_color": "blue"}}))
def test_a_signal_job_row_is_planned_or_refused(row: dict[str, Any]) -> None:
    planned_or_refused(signal_mapper, row)


@FUZZ
@given(row=rows_for(ENRICH_ROW_FIELDS, {"mid": MID}))
def test_an_enrichment_job_row_is_planned_or_refused(row: dict[str, Any]) -> None:
    planned_or_refused(enrich_mapper, row)


def test_a_csv_json_cell_with_a_4400_digit_number_is_refused_not_a_crash() -> None:
    cell = f"[{fuzz.HUGE_INTEGER_TEXT}]"
    for mapper, column in ((signal_mapper, "signals"), (enrich_mapper, "customer_ids")):
        with pytest.raises(RowRejected):
            mapper({"mid": MID, column: cell})


@FUZZ
@given(event=fuzz.objects_with(["job", "source", "job_id", "s3", "table", "format", "segments"]))
def test_a_job_input_is_parsed_or_refused(event: dict[str, Any]) -> None:
    parsed = fuzz.attempt(lambda: parse_model(JobInput, event), InvalidRequest)
    assert isinstance(parsed, JobInput) or (isinstance(parsed, InvalidRequest) and parsed.field)


@FUZZ
@given(message=fuzz.objects_with(["kind", "job", "checkpoint", "totals", "run", "source", "key", "offset"]))
def test_a_continuation_message_is_parsed_or_refused(message: dict[str, Any]) -> None:
    with contextlib.suppress(ValueError):  # pydantic's ValidationError: the planner makes it InvalidRequest
        ContinueJob.model_validate(message)


queue_bodies = st.one_of(
    fuzz.json_values().map(fuzz.dumps),
    fuzz.text,
    st.just(fuzz.deep(10_000)),
)


@FUZZ
@given(queue_bodies)
def test_a_queue_message_body_is_an_object_or_a_permanent_failure(raw: str) -> None:
    body = fuzz.attempt(lambda: message_body(raw), PermanentFailure)
    assert isinstance(body, dict) or (isinstance(body, PermanentFailure) and body.reason == "invalid_message")


def test_a_queue_message_with_a_4400_digit_number_is_a_permanent_failure() -> None:
    with pytest.raises(PermanentFailure):
        message_body(f'{{"kind": {fuzz.HUGE_INTEGER_TEXT}}}')


signal_messages = fuzz.objects_with(["kind", "request", "enqueued_at", "blob"])


@FUZZ
@given(st.one_of(signal_messages.map(fuzz.dumps), queue_bodies))
def test_a_queued_signal_message_is_parsed_or_invalid(raw: str) -> None:
    parsed = fuzz.attempt(lambda: parse_message(raw), InvalidRequest)
    assert not isinstance(parsed, InvalidRequest) or parsed.field


@FUZZ
@given(
    st.one_of(
        fuzz.objects_with(["kind", "request"]),
        st.fixed_dictionaries({"kind": st.just("enrich_segments"), "request": fuzz.objects_with(ENRICH_ROW_FIELDS)}),
    )
)
def test_an_enrichment_message_is_parsed_or_invalid(body: dict[str, Any]) -> None:
    parsed = fuzz.attempt(lambda: parse_enrich_message(body), InvalidRequest)
    assert not isinstance(parsed, InvalidRequest) or parsed.field
