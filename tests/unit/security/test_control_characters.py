"""CR/LF and other control characters: refused with a 400 naming the field, never sent to the DCS.

They could split the headers the bundle forwards (User-Agent, Referer), or reach the DCS inside a
signal or a declared ID. The incoming request's own headers are never forwarded at all.
"""

from __future__ import annotations

from typing import Any

import pytest

from aam_dcs.config import settings_from_env
from aam_dcs.dcs.http import DcsClient
from aam_dcs.dcs.query import DcsRequest
from aam_dcs.errors import InvalidRequest
from aam_dcs.signals.models import SendSignalsInput
from aam_dcs.signals.rules import check_key, wire_values
from tests.support.signals import MID, ORG
from tests.unit.security.conftest import SignalsApi

CONTROL_CHARACTERS = {
    "CR": "\r",
    "LF": "\n",
    "CRLF": "\r\n",
    "NUL": "\x00",
    "ESC": "\x1b",
    "DEL": "\x7f",
    "NEL": "\x85",
}
GOOD = {"mid": MID, "signals": {"c_x": "1"}}

#: Where a caller's text goes: (request body with ``{}`` for the text, the field a refusal names).
PLACES: dict[str, tuple[Any, str]] = {
    "signal key": (lambda text: {"signals": {f"c_{text}": "1"}}, "signals"),
    "signal value": (lambda text: {"signals": {"c_color": text}}, "signals.c_color"),
    "signal list item": (lambda text: {"signals": {"c_sizes": ["m", text]}}, "signals.c_sizes"),
    "declared ID": (lambda text: {"customer_ids": [{"data_source_id": 1, "id": text}]}, "customer_ids[0].id"),
    "integration code": (
        lambda text: {"customer_ids": [{"integration_code": text, "id": "abc"}]},
        "customer_ids[0].integration_code",
    ),
    "user_agent": (lambda text: {"user_agent": text}, "user_agent"),
    "referer": (lambda text: {"referer": text}, "referer"),
    "gdpr_consent": (lambda text: {"consent": {"gdpr": True, "gdpr_consent": text}}, "consent.gdpr_consent"),
    "event_id": (lambda text: {"event_id": text}, "event_id"),
}


@pytest.mark.parametrize("where", ["start", "middle", "end"])
@pytest.mark.parametrize("name", sorted(CONTROL_CHARACTERS))
@pytest.mark.parametrize("place", sorted(PLACES))
def test_a_control_character_is_refused_naming_the_field(signals_api: SignalsApi, place: str, name: str, where: str):
    char = CONTROL_CHARACTERS[name]
    text = {"start": f"{char}abc", "middle": f"ab{char}c", "end": f"abc{char}"}[where]
    build, field = PLACES[place]
    status, body = signals_api.post({**GOOD, **build(text)})
    assert status == 400, body
    assert body["field"].startswith(field), body
    assert body["rule"]
    assert signals_api.dcs.requests == []


@pytest.mark.parametrize("place", sorted(PLACES))
def test_the_same_places_accept_clean_text(signals_api: SignalsApi, place: str):
    build, _ = PLACES[place]
    status, body = signals_api.post({**GOOD, **build("abc")})
    assert status == 200, body
    assert len(signals_api.dcs.requests) == 1


def test_the_callers_own_headers_never_reach_the_dcs(signals_api: SignalsApi):
    hostile = {
        "User-Agent": "Mozilla/5.0\r\nX-Injected: 1",
        "Referer": "https://shop.example/\r\nX-Injected: 1",
        "X-Forwarded-For": "203.0.113.9\r\nX-Injected: 1",
        "X-Forwarded-Host": "evil.example",
    }
    status, body = signals_api.post(GOOD, headers=hostile)
    assert status == 200, body
    (request,) = signals_api.dcs.requests
    assert (request.user_agent, request.referer) == (None, None)
    headers = DcsClient(settings_from_env({"AAM_PARTNER": "acme", "AAM_ORG_ID": ORG})).headers_for(request)
    assert set(headers) == {"Host", "User-Agent", "Accept"}
    assert not any(ch in value for value in headers.values() for ch in "\r\n")


def test_forwarded_header_values_are_checked_again_where_the_call_is_built():
    settings = settings_from_env({"AAM_PARTNER": "acme", "AAM_ORG_ID": ORG})
    for header in ("user_agent", "referer"):
        for text in ("Mozilla\n", "Mozilla\r\nX: 1", "\x00"):
            with pytest.raises(InvalidRequest) as refused:
                DcsRequest.event(settings, [("d_rtbd", "json")], region_id=9, **{header: text})
            assert refused.value.field == header


@pytest.mark.parametrize("key", ["c_color\n", "c_color\r\n", "\nc_color"])
def test_a_line_break_at_either_end_of_a_signal_key_is_refused(key: str):
    with pytest.raises(InvalidRequest):
        check_key(key)


@pytest.mark.parametrize("value", ["blue\x85", "blue\x9b", "\ud800"])
def test_c1_controls_and_lone_surrogates_in_a_value_are_refused(value: str):
    with pytest.raises(InvalidRequest) as refused:
        wire_values("c_color", value)
    assert refused.value.field == "signals.c_color"


@pytest.mark.parametrize("field", ["event_id", "user_agent", "referer"])
def test_the_model_patterns_do_not_let_a_trailing_newline_through(field: str):
    with pytest.raises(ValueError, match=field):
        SendSignalsInput.model_validate({field: "abc\n"})
