import base64
import json

import pytest
from pydantic import BaseModel, Field

from aam_dcs import api
from aam_dcs.config import get_settings
from aam_dcs.errors import DcsTimeout, DcsUnavailable, InvalidRequest, RateLimited
from aam_dcs.validation import parse_model
from tests.support.events import FakeLambdaContext, api_event


class Body(BaseModel):
    region_id: int | None = None
    names: list[str] = Field(default_factory=list, max_length=2)


@pytest.fixture
def app(monkeypatch):
    monkeypatch.setenv("AAM_PARTNER", "acme")
    monkeypatch.setenv("AAM_ORG_ID", "0123456789ABCDEF01234567@AdobeOrg")
    monkeypatch.setenv("ALLOWED_ORIGINS", "https://shop.example,https://www.shop.example")
    get_settings.cache_clear()
    resolver = api.build_resolver()

    @resolver.post("/echo")
    def echo():
        return parse_model(Body, api.request_json(resolver)).model_dump()

    @resolver.get("/query")
    def query():
        return api.query_input(resolver, ("mid", "region_id"))

    @resolver.get("/slow")
    def slow():
        raise DcsTimeout("the DCS did not answer in time", tid="abc")

    @resolver.get("/busy")
    def busy():
        raise DcsUnavailable("rate limited", codes=[], retry_after=7.2)

    @resolver.get("/capped")
    def capped():
        raise RateLimited("too many calls for this visitor", retry_after=12.3)

    @resolver.get("/bug")
    def bug():
        raise KeyError("secret-customer-id")

    yield resolver
    get_settings.cache_clear()


def call(app, event):
    response = app.resolve(event, FakeLambdaContext())
    return response["statusCode"], json.loads(response["body"]) if response["body"] else None, response


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ("{not json", "body", 400),
        ("[1, 2]", "body", 400),
        (json.dumps({"region_id": "nine"}), "region_id", 400),
        (json.dumps({"names": ["a", "b", "c"]}), "names", 400),
        ("x" * (api.MAX_BODY_BYTES + 1), "body", 413),
    ],
)
def test_bad_bodies_get_a_4xx_naming_the_field(app, body, field, status):
    code, payload, _ = call(app, api_event("POST", "/echo", body=body))
    assert code == status
    assert payload["field"] == field
    assert payload["error"] in {"InvalidRequest", "PayloadTooLarge"}


def test_validation_errors_never_echo_the_rejected_value(app):
    code, payload, _ = call(app, api_event("POST", "/echo", body={"region_id": "secret-value"}))
    assert code == 400
    assert "secret-value" not in json.dumps(payload)


def test_empty_and_base64_bodies_are_accepted(app):
    assert call(app, api_event("POST", "/echo"))[1] == {"region_id": None, "names": []}
    event = api_event("POST", "/echo", body=base64.b64encode(b'{"region_id": 9}').decode())
    event["isBase64Encoded"] = True
    assert call(app, event)[1]["region_id"] == 9


def test_dcs_errors_map_to_502_and_504_with_retry_after(app):
    code, payload, _ = call(app, api_event("GET", "/slow"))
    assert code == 504
    assert payload == {"error": "DcsTimeout", "message": "the DCS did not answer in time", "tid": "abc"}
    code, payload, response = call(app, api_event("GET", "/busy"))
    assert code == 502
    assert response["multiValueHeaders"]["Retry-After"] == ["8"]  # rounded up: never too early


def test_unexpected_errors_are_500_without_details(app):
    code, payload, _ = call(app, api_event("GET", "/bug"))
    assert code == 500
    assert "secret-customer-id" not in json.dumps(payload)


def test_query_input_takes_named_parameters_and_the_cookie_header(app):
    event = api_event("GET", "/query", query={"mid": "1" * 38, "other": "x"}, headers={"Cookie": "a=1; b=2"})
    assert call(app, event)[1] == {"mid": "1" * 38, "cookies": "a=1; b=2"}


def test_cors_allows_only_configured_origins(app):
    allowed = api_event("GET", "/query", headers={"Origin": "https://www.shop.example"})
    _, _, response = call(app, allowed)
    assert response["multiValueHeaders"]["Access-Control-Allow-Origin"] == ["https://www.shop.example"]
    denied = api_event("GET", "/query", headers={"Origin": "https://evil.example"})
    _, _, response = call(app, denied)
    assert "Access-Control-Allow-Origin" not in response["multiValueHeaders"]


def test_invalid_request_body_lists_every_problem(app):
    code, payload, _ = call(app, api_event("POST", "/echo", body={"region_id": "x", "names": [1, 2, 3]}))
    assert code == 400
    assert {p["field"] for p in payload["errors"]} >= {"region_id", "names"}
    assert isinstance(InvalidRequest("x").to_dict(), dict)


def test_preflight_answers_each_allowed_origin_and_no_other(app):
    for origin in ("https://shop.example", "https://www.shop.example"):
        headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
        _, _, response = call(app, api_event("OPTIONS", "/echo", headers=headers))
        assert response["statusCode"] == 204
        assert response["multiValueHeaders"]["Access-Control-Allow-Origin"] == [origin]
    headers = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    _, _, response = call(app, api_event("OPTIONS", "/echo", headers=headers))
    assert "Access-Control-Allow-Origin" not in response["multiValueHeaders"]


def test_rate_limited_is_429_with_retry_after_rounded_up(app):
    code, payload, response = call(app, api_event("GET", "/capped"))
    assert code == 429
    assert payload["error"] == "RateLimited"
    assert response["multiValueHeaders"]["Retry-After"] == ["13"]
