"""Fuzzing the request side: raw API bodies, query strings, every input model, declared IDs and the
first-party cookies. Bad input is ``InvalidRequest`` (a 4xx naming the field), never another error;
good input becomes a DCS call that carries no control character from the caller."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from aam_dcs import api
from aam_dcs.config import get_settings, settings_from_env
from aam_dcs.dcs.query import DECLARED_ID_SEPARATOR, DcsRequest
from aam_dcs.errors import InvalidRequest
from aam_dcs.ids.cookies import extract_cookie_ids, parse_cookie_header
from aam_dcs.ids.models import IdentityInput, parse_identity
from aam_dcs.ids.params import identity_params
from aam_dcs.ids.sources import resolve_identity
from aam_dcs.ids.validation import has_control_chars, is_user_id
from aam_dcs.segments.models import LookupInput
from aam_dcs.signals.models import SendSignalsInput
from aam_dcs.signals.wire import CONTROL_PARAMS, event_request
from aam_dcs.validation import parse_model
from tests.support.events import FakeLambdaContext, api_event
from tests.unit.fuzz import strategies as fuzz
from tests.unit.ids import strategies as amcv

ORG = "0123456789ABCDEF01234567@AdobeOrg"
MID = "04512783304617290021837465019283746501"
ENV = {"AAM_PARTNER": "acme", "AAM_ORG_ID": ORG}
SETTINGS = settings_from_env(ENV)
NOW = 1_800_000_000.0
IDENTITY_FIELDS = ["mid", "uuid", "region_id", "amcv", "cookies", "dcs_response", "customer_ids", "mint"]
SIGNAL_FIELDS = [
    *IDENTITY_FIELDS, "signals", "trait_ids", "consent", "event_id", "return_segments", "mode", "dry_run",
    "user_agent", "referer", "c_color", "gdpr", "gdpr_consent", "d_mid",
]  # fmt: skip
LOOKUP_FIELDS = [*IDENTITY_FIELDS, "max_age_seconds", "refresh"]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------- raw bodies


@pytest.fixture(scope="module")
def echo_app() -> Iterator[APIGatewayRestResolver]:
    """The shared resolver (error mapping included) with one route that reads the JSON body."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in ENV.items():
            patch.setenv(name, value)
        get_settings.cache_clear()
        app = api.build_resolver()

        @app.post("/echo")
        def echo() -> dict[str, Any]:
            return {"keys": len(api.request_json(app))}

        @app.get("/query")
        def query() -> dict[str, Any]:
            return {"keys": len(api.query_input(app, ("mid", "uuid", "region_id")))}

        yield app
    get_settings.cache_clear()


def resolve(app: APIGatewayRestResolver, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = app.resolve(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"])


raw_bodies = st.one_of(
    fuzz.json_values().map(fuzz.dumps),
    fuzz.objects_with(SIGNAL_FIELDS).map(fuzz.dumps),
    fuzz.text,
    st.just(fuzz.deep(50_000)),
    st.just('{"mid": ' + fuzz.HUGE_INTEGER_TEXT + "}"),
    st.integers(api.MAX_BODY_BYTES - 2, api.MAX_BODY_BYTES + 2).map(lambda size: '{"a":"' + "x" * (size - 8) + '"}'),
)


@FUZZ
@given(body=raw_bodies, encoded=st.booleans())
def test_any_body_is_read_or_refused_with_a_4xx(echo_app: APIGatewayRestResolver, body: str, encoded: bool) -> None:
    event = api_event("POST", "/echo", body=body)
    if encoded:
        event["body"] = base64.b64encode(fuzz.as_bytes(body)).decode()
        event["isBase64Encoded"] = True
    status, answer = resolve(echo_app, event)
    assert status in (200, 400, 413), answer
    if status != 200:
        assert answer["error"] in ("InvalidRequest", "PayloadTooLarge")
        assert answer["field"] == "body"


@FUZZ
@given(base64_text=fuzz.text | st.binary(max_size=80).map(lambda data: base64.b64encode(data).decode()))
def test_any_base64_body_is_read_or_refused_with_a_4xx(echo_app: APIGatewayRestResolver, base64_text: str) -> None:
    event = api_event("POST", "/echo", body=base64_text)
    event["isBase64Encoded"] = True
    status, answer = resolve(echo_app, event)
    assert status in (200, 400, 413), answer


@FUZZ
@given(
    query=st.dictionaries(st.sampled_from(["mid", "uuid", "region_id", "x"]), fuzz.text, max_size=4),
    cookie=st.none() | fuzz.text,
)
def test_any_query_string_and_cookie_header_are_read(
    echo_app: APIGatewayRestResolver, query: dict[str, str], cookie: str | None
) -> None:
    event = api_event("GET", "/query", query=query or None, headers={"Cookie": cookie} if cookie is not None else None)
    status, answer = resolve(echo_app, event)
    assert status == 200, answer


# ------------------------------------------------------------------------------------- input models


def parsed_or_refused(model: type[BaseModel], data: Any) -> None:
    parsed = fuzz.attempt(lambda: parse_model(model, data), InvalidRequest)
    assert isinstance(parsed, model) or (isinstance(parsed, InvalidRequest) and parsed.field and parsed.rule)


@FUZZ
@given(
    model=st.sampled_from([IdentityInput, SendSignalsInput, LookupInput]),
    data=fuzz.objects_with(SIGNAL_FIELDS + LOOKUP_FIELDS) | fuzz.json_values(),
)
def test_every_input_model_parses_or_refuses_with_the_field(model: type[BaseModel], data: Any) -> None:
    parsed_or_refused(model, data)


hostile_text = fuzz.text | st.text(max_size=20)
#: One hostile value in an otherwise good request: (where it goes, the field a refusal must name).
PLACES: dict[str, Any] = {
    "signal value": (lambda value: {"signals": {"c_color": value}}, "signals.c_color"),
    "list item": (lambda value: {"signals": {"c_sizes": ["m", value]}}, "signals.c_sizes"),
    "signal key": (lambda value: {"signals": {value: "x"}}, "signals"),
    "declared ID": (lambda value: {"customer_ids": [{"data_source_id": 1, "id": value}]}, "customer_ids[0].id"),
    "integration code": (
        lambda value: {"customer_ids": [{"integration_code": value, "id": "abc"}]},
        "customer_ids[0].integration_code",
    ),
    "user_agent": (lambda value: {"user_agent": value}, "user_agent"),
    "referer": (lambda value: {"referer": value}, "referer"),
    "consent": (lambda value: {"consent": {"gdpr": True, "gdpr_consent": value}}, "consent.gdpr_consent"),
    "event_id": (lambda value: {"event_id": value}, "event_id"),
}


def sent_values(request: DcsRequest) -> Iterator[str]:
    """Every key and value on the wire, declared IDs split into their parts; and the forwarded headers."""
    for key, value in request.params:
        yield key
        yield from value.split(DECLARED_ID_SEPARATOR) if key in ("d_cid", "d_cid_ic") else [value]
    yield from (header for header in (request.user_agent, request.referer) if header is not None)


@FUZZ
@given(place=st.sampled_from(sorted(PLACES)), value=hostile_text)
def test_no_control_character_from_the_caller_reaches_the_dcs_call(place: str, value: str) -> None:
    build, field = PLACES[place]
    data = {"mid": MID, "signals": {"c_x": "1"}, **build(value)}
    call = fuzz.attempt(lambda: signal_call(data), InvalidRequest)
    if isinstance(call, InvalidRequest):
        event("refused")
        assert (call.field or "").startswith(field), (call.field, field)
    else:
        event("sent")
        assert not any(has_control_chars(text) for text in sent_values(call))


def signal_call(data: dict[str, Any]) -> DcsRequest:
    request = parse_identity(data, SendSignalsInput)
    return event_request(request, resolve_identity(request, SETTINGS, now=NOW), SETTINGS)


@FUZZ
@given(data=fuzz.objects_with(LOOKUP_FIELDS))
def test_a_lookup_input_becomes_a_call_or_a_refusal(data: dict[str, Any]) -> None:
    call = fuzz.attempt(lambda: lookup_call(data), InvalidRequest)
    assert isinstance(call, DcsRequest) or (isinstance(call, InvalidRequest) and call.field)


def lookup_call(data: dict[str, Any]) -> DcsRequest:
    request = parse_identity(data, LookupInput)
    resolved = resolve_identity(request, SETTINGS, now=NOW)
    return DcsRequest.event(SETTINGS, [*CONTROL_PARAMS, *identity_params(resolved, ORG)], region_id=resolved.region_id)


# ------------------------------------------------------------------------------------- cookies

CARRIERS = [
    f"AMCV_{ORG}",
    amcv.amcv_name(ORG, encoded=True),
    "s_ecid",
    "aam_uuid",
    "aam_did",
    "kndctr_0123456789ABCDEF01234567_AdobeOrg_identity",
    "adobe_mc",
]
carrier_values = st.one_of(
    fuzz.text,
    st.text(alphabet="%|=;,.-_0123456789ABCDEFMCIDTSOPUabcdef@", max_size=60),
    st.binary(max_size=60).map(lambda data: base64.urlsafe_b64encode(data).decode()),
    st.builds(amcv.kndctr_value, amcv.user_ids, before=amcv.proto_noise, after=amcv.proto_noise),
    st.builds(lambda ts, mid: f"TS={ts}|MCMID={mid}|MCORGID={ORG}", st.integers(-5, 2 * 10**9), fuzz.text),
)
cookie_headers = st.lists(
    st.tuples(st.sampled_from(CARRIERS) | fuzz.keys, carrier_values).map("=".join), max_size=8
).map("; ".join)


@FUZZ
@given(header=cookie_headers, now=st.floats(0, 4 * 10**9))
def test_every_first_party_carrier_gives_a_valid_id_or_nothing(header: str, now: float) -> None:
    found = extract_cookie_ids(parse_cookie_header(header), ORG, now)
    for value in (found.s_ecid_mid, found.kndctr_mid, found.adobe_mc_mid, found.aam_uuid):
        assert value is None or is_user_id(value)
    resolved = fuzz.attempt(
        lambda: resolve_identity(parse_identity({"cookies": header}), SETTINGS, now=now), InvalidRequest
    )
    if isinstance(resolved, InvalidRequest):
        assert resolved.field == "cookies"  # over the 8 KB cap
    else:
        assert resolved.mid is None or is_user_id(resolved.mid)
        assert resolved.uuid is None or is_user_id(resolved.uuid)
