"""Batch job sources: S3 objects (JSON Lines or CSV) and DynamoDB tables, read in pages, resumable.

A job names its source in its input (``source``)::

    {"s3": "s3://bucket/users.jsonl"}      one object
    {"s3": "s3://bucket/exports/"}         every object under the prefix, in key order
    {"s3": "s3://bucket/users", "format": "csv"}
    {"table": "profiles"}                  a DynamoDB table ("profiles": the configured PROFILES_TABLE)
    {"table": "crm-users", "segments": 4}  a table read as 4 parallel-scan segments, one after the other

Every source yields :class:`SourceRow` s: the row as a dict, where it is (``position``, for error
reports: ``{"key", "line"}`` or ``{"segment", "item"}``, never a row's values) and where to resume
after it (``cursor``, JSON, for a continuation). ``rows(cursor)`` starts right after that row.

S3 objects are streamed (a ranged ``GetObject`` from the cursor's byte offset, read in chunks and
split into lines): memory stays flat whatever the object's size. The format comes from ``format``,
else the extension (``.jsonl``, ``.ndjson`` and ``.json`` are JSON Lines: one object per line;
``.csv`` is CSV), else the first byte (``{`` means JSON Lines). CSV needs a header row; empty
cells are ``""``. Blank lines are skipped. A row that cannot be read (bad JSON, not an object,
not UTF-8, longer than ``MAX_ROW_BYTES``, more cells than the header) still comes out, with
``data=None`` and ``problem`` saying why, so the job can count and report it. Under a prefix,
folder markers and empty objects are skipped.

Tables are scanned page by page (``Limit`` = ``page_size``), each segment in turn. Items come out
as plain JSON values (numbers as int or float, sets as sorted lists, binary as base64). A
cursor resumes after the last item handed out (its key as ``ExclusiveStartKey``), so rows are
never skipped or repeated within a segment even while the table changes.

A source that does not exist, or that the function may not read, raises ``JobSourceError``.
"""

from __future__ import annotations

import base64
import csv
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aam_dcs.aws import new_client
from aam_dcs.errors import AamDcsError, FeatureDisabled

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_s3.client import S3Client

Cursor = dict[str, Any]
RowFormat = Literal["jsonl", "csv"]

PROFILES_TABLE_ALIAS: Final = "profiles"
MAX_ROW_BYTES: Final = 256 * 1024
CHUNK_BYTES: Final = 256 * 1024
HEAD_BYTES: Final = 64 * 1024
DEFAULT_PAGE_SIZE: Final = 100
FORMAT_BY_EXTENSION: Final[dict[str, RowFormat]] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
}

_S3_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<key>.*))?\Z")
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}\Z")


MISSING_OR_FORBIDDEN: Final = frozenset(
    {"NoSuchKey", "NoSuchBucket", "AccessDenied", "ResourceNotFoundException", "AccessDeniedException"}
)


class JobSourceError(AamDcsError):
    """The job's source cannot be read: no such object, bucket or table, or no permission to read it."""

    http_status = 422


@contextmanager
def readable(source: str) -> Iterator[None]:
    """Turn "missing or forbidden" AWS errors into ``JobSourceError`` naming the source (other errors pass)."""
    from botocore.exceptions import ClientError  # noqa: PLC0415 - lazy, with boto3

    try:
        yield
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code not in MISSING_OR_FORBIDDEN:
            raise
        raise JobSourceError(f"cannot read the job source {source} ({code})", source=source, code=code) from None


# --- the source spec ------------------------------------------------------------------------------


class SourceSpec(BaseModel):
    """A job's ``source``: exactly one of ``s3`` and ``table``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    s3: str | None = None
    table: str | None = None
    format: RowFormat | None = None
    segments: int = Field(default=1, ge=1, le=64)

    @field_validator("s3")
    @classmethod
    def _s3_url(cls, value: str | None) -> str | None:
        if value is not None and not _S3_URL.match(value):
            raise ValueError("must be s3://bucket/key or s3://bucket/prefix/")
        return value

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str | None) -> str | None:
        if value is not None and not _TABLE_NAME.match(value):
            raise ValueError("must be a DynamoDB table name (3-255 characters: letters, digits, _ . -)")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> SourceSpec:
        if (self.s3 is None) == (self.table is None):
            raise ValueError("give exactly one of s3 and table")
        if self.table is not None and self.format is not None:
            raise ValueError("format applies to s3 sources only")
        if self.s3 is not None and self.segments != 1:
            raise ValueError("segments applies to table sources only")
        return self

    @property
    def bucket(self) -> str:
        return self._s3_parts()[0]

    @property
    def key(self) -> str:
        """The object key, or the prefix (empty, or ending in ``/``)."""
        return self._s3_parts()[1]

    @property
    def is_prefix(self) -> bool:
        return self.s3 is not None and (self.key == "" or self.key.endswith("/"))

    def _s3_parts(self) -> tuple[str, str]:
        match = _S3_URL.match(self.s3 or "")
        if match is None:
            raise ValueError("not an S3 source")
        return match["bucket"], match["key"] or ""


# --- rows -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRow:
    """One row: its data (``None`` when unreadable, see ``problem``), where it is, where to resume after it."""

    data: dict[str, Any] | None
    position: Cursor
    cursor: Cursor
    problem: str | None = None


class JobSource(Protocol):
    def rows(self, cursor: Cursor | None = None) -> Iterator[SourceRow]:
        """Rows in order, starting right after ``cursor`` (from the start without one)."""
        ...


def open_source(
    spec: SourceSpec,
    *,
    profiles_table: str | None,
    s3_client: S3Client | None = None,
    dynamodb_client: DynamoDBClient | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> JobSource:
    """The reader for a spec. ``{"table": "profiles"}`` means the configured profiles table."""
    if spec.s3 is not None:
        return S3Source(spec.bucket, spec.key, row_format=spec.format, client=s3_client)
    return TableSource(
        table_name(spec.table or "", profiles_table),
        total_segments=spec.segments,
        page_size=page_size,
        client=dynamodb_client,
    )


def table_name(name: str, profiles_table: str | None) -> str:
    """``profiles`` is the logical name of the configured table; any other name is used as is."""
    if name != PROFILES_TABLE_ALIAS:
        return name
    if not profiles_table:
        raise FeatureDisabled("the profiles table is not configured", setting="PROFILES_TABLE")
    return profiles_table


# --- S3 -------------------------------------------------------------------------------------------


@dataclass
class S3Source:
    """One object, or every object under a prefix (a key that is empty or ends in ``/``)."""

    bucket: str
    key: str
    row_format: RowFormat | None = None
    client: S3Client | None = None
    chunk_bytes: int = CHUNK_BYTES

    @cached_property
    def s3(self) -> S3Client:
        if self.client is not None:
            return self.client
        return new_client("s3")

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    def rows(self, cursor: Cursor | None = None) -> Iterator[SourceRow]:
        start_key = str(cursor["key"]) if cursor else None
        with readable(f"s3://{self.bucket}/{self.key}"):
            for key in self._keys(start_key):
                resume = cursor if cursor and key == start_key else None
                yield from self.object_rows(key, resume)

    def object_rows(self, key: str, cursor: Cursor | None = None) -> Iterator[SourceRow]:
        offset = int(cursor["offset"]) if cursor else 0
        line = int(cursor["line"]) if cursor else 0
        row_format = self.row_format or format_for_key(key) or self._sniff(key)
        if row_format == "csv":
            header = None if offset == 0 else self._csv_header(key)
            return csv_rows(key, self._chunks(key, offset), offset, line, header)
        return json_lines_rows(key, self._chunks(key, offset), offset, line)

    def _keys(self, start_key: str | None) -> Iterator[str]:
        if not self.is_prefix:
            yield self.key
            return
        if start_key is not None:
            yield start_key
        listing: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.key}
        if start_key is not None:
            listing["StartAfter"] = start_key
        for page in self.s3.get_paginator("list_objects_v2").paginate(**listing):
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/") and item.get("Size", 0) > 0:
                    yield item["Key"]

    def _chunks(self, key: str, offset: int) -> Iterator[bytes]:
        from botocore.exceptions import ClientError  # noqa: PLC0415 - lazy, with boto3

        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if offset:
            request["Range"] = f"bytes={offset}-"
        try:
            body = self.s3.get_object(**request)["Body"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "InvalidRange":
                return  # resumed at the end of the object: nothing left
            raise
        try:
            yield from body.iter_chunks(self.chunk_bytes)
        finally:
            body.close()

    def _head(self, key: str) -> bytes:
        body = self.s3.get_object(Bucket=self.bucket, Key=key, Range=f"bytes=0-{HEAD_BYTES - 1}")["Body"]
        try:
            return body.read()
        finally:
            body.close()

    def _sniff(self, key: str) -> RowFormat:
        return "jsonl" if self._head(key).lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") else "csv"

    def _csv_header(self, key: str) -> list[str]:
        first_line = self._head(key).split(b"\n", 1)[0]
        return read_header(first_line.decode("utf-8-sig", errors="replace"))


def format_for_key(key: str) -> RowFormat | None:
    name = key.rsplit("/", 1)[-1].lower()
    return next((fmt for ext, fmt in FORMAT_BY_EXTENSION.items() if name.endswith(ext)), None)


@dataclass(frozen=True)
class Line:
    """A line without its end of line; ``text`` is ``None`` when it was longer than the cap."""

    text: bytes | None
    start: int
    end: int
    number: int


def split_lines(chunks: Iterable[bytes], offset: int, line: int, max_bytes: int = MAX_ROW_BYTES) -> Iterator[Line]:
    """Lines of a byte stream that starts at ``offset`` (after ``line`` lines), with their byte ranges."""
    pending = b""
    base = offset
    too_long = False
    for chunk in chunks:
        data = pending + chunk
        start = 0
        while (newline := data.find(b"\n", start)) >= 0:
            line += 1
            text = None if too_long or newline - start > max_bytes else data[start:newline].removesuffix(b"\r")
            yield Line(text, base + start, base + newline + 1, line)
            too_long = False
            start = newline + 1
        base += start
        pending = data[start:]
        if len(pending) > max_bytes:
            too_long = True
            base += len(pending)
            pending = b""
    if pending or too_long:
        yield Line(None if too_long else pending.removesuffix(b"\r"), base, base + len(pending), line + 1)


def json_lines_rows(key: str, chunks: Iterable[bytes], offset: int, line: int) -> Iterator[SourceRow]:
    for item in split_lines(chunks, offset, line):
        if item.text is not None and not item.text.strip():
            continue
        data, problem = parse_json_line(item.text, first=item.start == 0)
        yield SourceRow(
            data=data,
            position={"key": key, "line": item.number},
            cursor={"key": key, "offset": item.end, "line": item.number},
            problem=problem,
        )


def parse_json_line(text: bytes | None, *, first: bool) -> tuple[dict[str, Any] | None, str | None]:
    if text is None:
        return None, f"longer than {MAX_ROW_BYTES} bytes"
    try:
        decoded = text.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    try:
        data = json.loads(decoded)
    except (ValueError, RecursionError):  # ValueError: also an integer past Python's 4,300 digits
        return None, "not valid JSON"
    if not isinstance(data, dict):
        return None, "not a JSON object"
    return data, None


@dataclass
class _CsvFeed:
    """Feeds decoded lines to ``csv.reader`` and remembers where the last line fed ended."""

    lines: Iterator[Line]
    end: int
    number: int
    bad_text: bool = False
    first_number: int | None = field(default=None)

    def __iter__(self) -> Iterator[str]:
        for item in self.lines:
            self.end, self.number = item.end, item.number
            if self.first_number is None:
                self.first_number = item.number
            if item.text is None:
                self.bad_text = True
                yield "\n"
                continue
            try:
                text = item.text.decode("utf-8-sig" if item.start == 0 else "utf-8")
            except UnicodeDecodeError:
                self.bad_text = True
                text = item.text.decode("utf-8", errors="replace")
            yield text + "\n"

    def start_record(self) -> None:
        self.bad_text = False
        self.first_number = None


def csv_rows(
    key: str, chunks: Iterable[bytes], offset: int, line: int, header: list[str] | None
) -> Iterator[SourceRow]:
    feed = _CsvFeed(split_lines(chunks, offset, line), end=offset, number=line)
    reader = csv.reader(feed, strict=True)
    while True:
        feed.start_record()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield _csv_problem(key, feed, f"not valid CSV ({error})")
            continue
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = [name.strip() for name in cells]
            continue
        yield _csv_row(key, feed, header, cells)


def _csv_row(key: str, feed: _CsvFeed, header: list[str], cells: list[str]) -> SourceRow:
    if feed.bad_text:
        return _csv_problem(key, feed, "not UTF-8 text, or a line longer than the cap")
    if len(cells) > len(header):
        return _csv_problem(key, feed, f"{len(cells)} cells, the header has {len(header)}")
    data = dict(zip(header, cells, strict=False))
    return SourceRow(data=data, position=_csv_position(key, feed), cursor=_csv_cursor(key, feed))


def _csv_problem(key: str, feed: _CsvFeed, problem: str) -> SourceRow:
    return SourceRow(data=None, position=_csv_position(key, feed), cursor=_csv_cursor(key, feed), problem=problem)


def _csv_position(key: str, feed: _CsvFeed) -> Cursor:
    return {"key": key, "line": feed.first_number if feed.first_number is not None else feed.number}


def _csv_cursor(key: str, feed: _CsvFeed) -> Cursor:
    return {"key": key, "offset": feed.end, "line": feed.number}


def read_header(first_line: str) -> list[str]:
    return [name.strip() for name in next(csv.reader([first_line]), [])]


# --- DynamoDB -------------------------------------------------------------------------------------


@dataclass
class TableSource:
    """A table read as ``total_segments`` parallel-scan segments, one after the other, a page at a time."""

    name: str
    total_segments: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    client: DynamoDBClient | None = None

    @cached_property
    def dynamodb(self) -> DynamoDBClient:
        if self.client is not None:
            return self.client
        return new_client("dynamodb")

    @cached_property
    def key_names(self) -> list[str]:
        schema = self.dynamodb.describe_table(TableName=self.name)["Table"]["KeySchema"]
        return [entry["AttributeName"] for entry in schema]

    def rows(self, cursor: Cursor | None = None) -> Iterator[SourceRow]:
        first = int(cursor["segment"]) if cursor else 0
        with readable(f"table {self.name}"):
            for segment in range(first, self.total_segments):
                resume = cursor if cursor and segment == first else None
                yield from self.segment_rows(segment, resume)

    def segment_rows(self, segment: int, cursor: Cursor | None = None) -> Iterator[SourceRow]:
        count = int(cursor["item"]) if cursor else 0
        request: dict[str, Any] = {"TableName": self.name, "Limit": self.page_size}
        if self.total_segments > 1:
            request.update(Segment=segment, TotalSegments=self.total_segments)
        if cursor and cursor.get("after"):
            request["ExclusiveStartKey"] = cursor["after"]
        while True:
            page = self.dynamodb.scan(**request)
            for item in page.get("Items", []):
                count += 1
                after = {name: item[name] for name in self.key_names}
                yield SourceRow(
                    data=plain_item(item),
                    position={"table": self.name, "segment": segment, "item": count},
                    cursor={"segment": segment, "item": count, "after": after},
                )
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def plain_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (wire format) as plain JSON values."""
    from boto3.dynamodb.types import TypeDeserializer  # noqa: PLC0415 - lazy, with boto3

    deserializer = TypeDeserializer()
    return {name: plain_value(deserializer.deserialize(value)) for name, value in item.items()}


def plain_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted(plain_value(v) for v in value)
    if isinstance(value, list):
        return [plain_value(v) for v in value]
    if isinstance(getattr(value, "value", None), bytes):  # boto3's Binary
        return base64.b64encode(value.value).decode("ascii")
    return value
