"""Source readers without AWS: line splitting with byte offsets, JSON Lines and CSV rows, resuming."""

import pytest
from pydantic import ValidationError

from aam_dcs.errors import FeatureDisabled
from aam_dcs.jobs.sources import (
    MAX_ROW_BYTES,
    SourceSpec,
    csv_rows,
    format_for_key,
    json_lines_rows,
    plain_value,
    split_lines,
    table_name,
)


def chunked(data: bytes, size: int):
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_lines_keep_their_byte_ranges_whatever_the_chunking(size):
    data = b"ab\r\ncde\n\nf"
    lines = list(split_lines(chunked(data, size), 0, 0))
    assert [(line.text, line.start, line.end, line.number) for line in lines] == [
        (b"ab", 0, 4, 1),
        (b"cde", 4, 8, 2),
        (b"", 8, 9, 3),
        (b"f", 9, 10, 4),
    ]


def test_a_line_longer_than_the_cap_is_reported_and_the_next_line_read():
    data = b"x" * (MAX_ROW_BYTES + 10) + b"\nok\n"
    lines = list(split_lines(chunked(data, 4096), 0, 0))
    assert [(line.text, line.number) for line in lines] == [(None, 1), (b"ok", 2)]
    assert lines[1].start == MAX_ROW_BYTES + 11


def rows_of(data: bytes, reader=json_lines_rows, **kwargs):
    return list(reader("k.jsonl", chunked(data, 5), 0, 0, **kwargs))


def test_json_lines_rows_with_positions_and_cursors():
    data = '\ufeff{"a": 1}\n\n  \n{"b": "é"}\n'.encode()
    rows = rows_of(data)
    assert [r.data for r in rows] == [{"a": 1}, {"b": "é"}]
    assert [r.position for r in rows] == [{"key": "k.jsonl", "line": 1}, {"key": "k.jsonl", "line": 4}]
    assert rows[1].cursor == {"key": "k.jsonl", "offset": len(data), "line": 4}


def test_unreadable_json_lines_come_out_with_their_problem():
    data = b'{"a": 1}\n{oops\n[1, 2]\n\xff\xfe{}\n{"z": 0}'
    rows = rows_of(data)
    assert [(r.position["line"], r.problem) for r in rows] == [
        (1, None),
        (2, "not valid JSON"),
        (3, "not a JSON object"),
        (4, "not UTF-8 text"),
        (5, None),
    ]


def test_json_lines_resume_from_a_cursor():
    data = b'{"n": 1}\n{"n": 2}\n{"n": 3}\n'
    cursor = rows_of(data)[0].cursor
    rest = list(json_lines_rows("k", [data[cursor["offset"] :]], cursor["offset"], cursor["line"]))
    assert [(r.data, r.position["line"]) for r in rest] == [({"n": 2}, 2), ({"n": 3}, 3)]


CSV = ('\ufeffmid, customer_id ,integration_code\r\n1,"multi\nline",crm\r\n\r\n,,\r\n3,c3,crm\r\n').encode()


def test_csv_rows_use_the_header_and_report_the_line_each_record_starts_on():
    rows = rows_of(CSV, csv_rows, header=None)
    assert [r.data for r in rows] == [
        {"mid": "1", "customer_id": "multi\nline", "integration_code": "crm"},
        {"mid": "3", "customer_id": "c3", "integration_code": "crm"},
    ]
    assert [r.position["line"] for r in rows] == [2, 6]
    assert rows[-1].cursor["offset"] == len(CSV)


def test_csv_resumes_with_the_header_given():
    first = rows_of(CSV, csv_rows, header=None)[0]
    offset, line = first.cursor["offset"], first.cursor["line"]
    rest = list(csv_rows("k.csv", [CSV[offset:]], offset, line, ["mid", "customer_id", "integration_code"]))
    assert [(r.data["mid"], r.position["line"]) for r in rest] == [("3", 6)]


def test_bad_csv_records_come_out_with_their_problem():
    data = b'a,b\n1,2,3\n"x"y,2\n\xff,1\n4,5\n'
    rows = rows_of(data, csv_rows, header=None)
    problems = [(r.position["line"], r.problem is not None) for r in rows]
    assert problems == [(2, True), (3, True), (4, True), (5, False)]
    assert rows[0].problem == "3 cells, the header has 2"
    assert rows[-1].data == {"a": "4", "b": "5"}


def test_short_csv_records_leave_the_missing_columns_out():
    assert rows_of(b"a,b,c\n1\n", csv_rows, header=None)[0].data == {"a": "1"}


@pytest.mark.parametrize(
    ("key", "expected"),
    [("x/users.jsonl", "jsonl"), ("u.NDJSON", "jsonl"), ("u.json", "jsonl"), ("a/b.CSV", "csv"), ("u.txt", None)],
)
def test_format_by_extension(key, expected):
    assert format_for_key(key) == expected


def test_source_specs():
    assert SourceSpec(s3="s3://bucket/a/b.csv").key == "a/b.csv"
    assert not SourceSpec(s3="s3://bucket/a/b.csv").is_prefix
    assert SourceSpec(s3="s3://bucket/a/").is_prefix
    assert SourceSpec(s3="s3://bucket").is_prefix
    assert SourceSpec(s3="s3://bucket/").bucket == "bucket"


@pytest.mark.parametrize(
    "spec", [{"s3": "s3://bucket\n"}, {"s3": "s3://bucket/key\n"}, {"table": "crm\n"}, {"table": "crm-table\n"}]
)
def test_a_source_name_ending_in_a_line_feed_is_refused(spec):
    with pytest.raises(ValidationError):  # the planner answers it as InvalidRequest
        SourceSpec(**spec)


def test_profiles_is_the_configured_table():
    assert table_name("profiles", "stack-ProfilesTable-1") == "stack-ProfilesTable-1"
    assert table_name("crm-users", None) == "crm-users"
    with pytest.raises(FeatureDisabled) as info:
        table_name("profiles", None)
    assert info.value.setting == "PROFILES_TABLE"


def test_plain_values_from_dynamodb():
    from decimal import Decimal

    from boto3.dynamodb.types import Binary

    assert plain_value(Decimal("9")) == 9
    assert plain_value(Decimal("1.5")) == 1.5
    assert plain_value({"a": [Decimal("1"), {"b"}]}) == {"a": [1, ["b"]]}
    assert plain_value(Binary(b"\x00\x01")) == "AAE="
