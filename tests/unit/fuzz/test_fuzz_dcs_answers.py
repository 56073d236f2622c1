"""Fuzzing the DCS answers: whatever ``/event`` or ``/id`` sends back (status, headers, bytes), the
client and every reader of its answer raise nothing but a typed ``DcsError``."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aam_dcs.config import Settings, settings_from_env
from aam_dcs.dcs.http import DcsClient
from aam_dcs.dcs.query import DcsRequest
from aam_dcs.dcs.response import DcsResponse, IdServiceResponse, parse_error_header
from aam_dcs.dcs.transport import RawAnswer
from aam_dcs.errors import DcsError
from aam_dcs.ids.id_service import IdServiceClient
from aam_dcs.ids.models import ResolvedIdentity
from aam_dcs.segments.extract import CookieFormat, extract_segments
from aam_dcs.signals.outcome import interpret, learned_identity
from tests.unit.fuzz import strategies as fuzz

ORG = "0123456789ABCDEF01234567@AdobeOrg"
MID = "04512783304617290021837465019283746501"
SETTINGS = settings_from_env({"AAM_PARTNER": "acme", "AAM_ORG_ID": ORG})
EVENT_FIELDS = ["uuid", "u", "dcs_region", "d_region", "region", "tid", "stuff", "dests", "segments", "traits"]
ID_FIELDS = ["d_mid", "id_sync_ttl", "d_blob", "d_ottl", "d_optout", "error_msg", "error_message", "subdomain"]
ENTRY_FIELDS = ["errors", "code", "msg", "cn", "cv", "ttl", "dmn", "c", "e", "y", "id"]
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class ScriptedTransport:
    """Stands in for the urllib3 transport: answers with the drawn status, headers and body."""

    answer: RawAnswer
    calls: list[tuple[str, str]] = field(default_factory=list)

    def fetch(self, method: str, base_url: str, target: str, **_: Any) -> RawAnswer:
        self.calls.append((method, target))
        return self.answer

    def close(self) -> None:
        pass


def client_answering(answer: RawAnswer, settings: Settings = SETTINGS) -> DcsClient:
    client = DcsClient(settings)
    client._transport = ScriptedTransport(answer)  # type: ignore[assignment]
    return client


def raw(body: bytes, *, status: int = 200, headers: Mapping[str, str] | None = None) -> RawAnswer:
    return RawAnswer(status=status, headers=dict(headers or {}), body=body, attempts=1, retry_after=None)


answer_objects = fuzz.objects_with(EVENT_FIELDS + ID_FIELDS + ENTRY_FIELDS)
json_bodies = st.one_of(answer_objects.map(fuzz.dumps), fuzz.json_values().map(fuzz.dumps))
bodies = st.one_of(
    json_bodies.map(fuzz.as_bytes),
    st.binary(max_size=300),
    st.tuples(fuzz.noise, json_bodies.map(fuzz.as_bytes), fuzz.noise).map(b"".join),
    st.sampled_from([fuzz.deep(5000).encode(), b'{"errors": [{"code": ' + b"7" * 5000 + b"}]}", b"", b"  \n"]),
)
statuses = st.one_of(st.just(200), st.sampled_from([204, 301, 400, 404, 429, 500, 503]), st.integers(100, 599))
x_errors = (
    st.none()
    | fuzz.text
    | st.lists(st.integers(-(10**20), 10**20), max_size=4).map(lambda codes: ",".join(map(str, codes)))
)


def event_request() -> DcsRequest:
    return DcsRequest.event(SETTINGS, [("d_rtbd", "json"), ("d_mid", MID), ("c_x", "1")], region_id=9)


def read_event_answer(response: DcsResponse) -> None:
    """Everything the use cases read from an ``/event`` answer."""
    for source in ("stuff", "cts"):
        segments = extract_segments(response, source, CookieFormat(cookie_name=None))
        assert all(isinstance(segment, str) for segment in segments)
    delivery = interpret(response)
    identity = ResolvedIdentity(mid=MID, region_host="acme.demdex.net", region_source="partner")
    learned_identity(identity, delivery, "acme.demdex.net")
    delivery.result(region_id=response.dcs_region, segments=None)
    response.model_dump(mode="json")


@FUZZ
@given(body=bodies, status=statuses, x_error=x_errors)
def test_an_event_answer_is_read_or_refused_with_a_typed_error(body: bytes, status: int, x_error: str | None) -> None:
    headers = {"X-Error": x_error} if x_error is not None else {}
    client = client_answering(raw(body, status=status, headers=headers))
    with contextlib.suppress(DcsError):
        read_event_answer(client.send(event_request()))


@FUZZ
@given(body=bodies, status=statuses, x_error=x_errors)
def test_an_id_service_answer_is_read_or_refused_with_a_typed_error(
    body: bytes, status: int, x_error: str | None
) -> None:
    headers = {"X-Error": x_error} if x_error is not None else {}
    client = IdServiceClient(SETTINGS, client_answering(raw(body, status=status, headers=headers)))
    try:
        answer = client.fetch(mid=MID)
    except DcsError:
        return
    assert isinstance(answer.ttl_seconds, int)
    assert answer.result.mid is None or isinstance(answer.result.mid, str)


@FUZZ
@given(answer_objects)
def test_every_view_of_any_json_object_answer_works(payload: dict[str, Any]) -> None:
    body = fuzz.as_bytes(fuzz.dumps(payload))
    try:
        response = DcsResponse.model_validate_json(body)
        id_response = IdServiceResponse.model_validate_json(body)
    except ValueError:
        return  # a lone surrogate or an oversized number: the client turns it into DcsBadResponse
    for view in (response, id_response):
        assert all(isinstance(code, int) for code in view.codes)
        assert view.dcs_region is None or isinstance(view.dcs_region, int)
        view.warnings  # noqa: B018 - every view works
        view.model_dump(mode="json")
    with contextlib.suppress(DcsError):
        read_event_answer(response)


@given(fuzz.text | st.text(alphabet="0123456789,- x", max_size=60))
def test_the_x_error_header_gives_integers_or_nothing(value: str) -> None:
    assert all(isinstance(code, int) for code in parse_error_header(value))


@pytest.mark.parametrize("depth", [100, 10_000])
def test_deeply_nested_answers_are_bad_responses_not_crashes(depth: int) -> None:
    body = ('{"errors": ' + fuzz.deep(depth, '{"code": 1}') + "}").encode()
    client = client_answering(raw(body))
    with contextlib.suppress(DcsError):
        client.send(event_request())
