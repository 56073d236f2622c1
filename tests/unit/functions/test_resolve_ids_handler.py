import json

import pytest

from aam_dcs.config import get_settings
from aam_dcs.errors import InvalidRequest
from aam_dcs.ids.id_service import IdServiceClient
from aam_dcs.ids.resolver import IdentityResolver
from tests.support.events import FakeLambdaContext, api_event
from tests.support.fakes import FakeDcs

ORG_COOKIE = "AMCV_0123456789ABCDEF01234567%40AdobeOrg"
MID = "04512783304617290021837465019283746501"
AMCV = f"1585540135%7CMCMID%7C{MID}%7CMCAAMLH-1728004800%7C9%7CMCOPTOUT-1727407200s%7CNONE"


@pytest.fixture
def handler(load_function, monkeypatch):
    module = load_function("resolve_ids")
    dcs = FakeDcs()
    settings = get_settings()
    monkeypatch.setattr(
        module, "resolver", lambda: IdentityResolver(settings=settings, id_service=IdServiceClient(settings, dcs))
    )
    module.dcs = dcs
    return module


def invoke(handler, event):
    return handler.lambda_handler(event, FakeLambdaContext())


def test_get_reads_the_cookie_header(handler):
    event = api_event("GET", "/ids", headers={"Cookie": f"other=1; {ORG_COOKIE}={AMCV}"})
    response = invoke(handler, event)
    assert response["statusCode"] == 200
    body = json.loads(response["body"])
    assert body["mid"] == MID
    assert body["region_id"] == 9
    assert body["region_host"] == "usw2.demdex.net"
    assert body["id_source"] == "amcv"
    assert body["opted_out"] is False


def test_post_takes_the_identity_input(handler):
    event = api_event("POST", "/ids", body={"uuid": "2" * 38, "region_id": 6})
    body = json.loads(invoke(handler, event)["body"])
    assert (body["uuid"], body["region_id"], body["id_source"], body["region_source"]) == (
        "2" * 38,
        6,
        "request",
        "request",
    )


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (api_event("GET", "/ids", query={"mid": "12345"}), "mid"),
        (api_event("GET", "/ids", query={"region_id": "5"}), "region_id"),
        (api_event("POST", "/ids", body={"customer_ids": [{"id": "x", "auth_state": 7, "data_source_id": 1}]}), None),
        (api_event("POST", "/ids", body={"unknown": 1}), "unknown"),
        (api_event("POST", "/ids", body="{"), "body"),
    ],
)
def test_bad_input_through_the_api_is_a_400_naming_the_field(handler, event, field):
    response = invoke(handler, event)
    assert response["statusCode"] == 400
    body = json.loads(response["body"])
    assert body["error"] == "InvalidRequest"
    if field:
        assert body["field"] == field
    else:
        assert body["field"].startswith("customer_ids[0]")


def test_direct_invocation_returns_plain_json(handler):
    result = invoke(handler, {"mint": True})
    assert result["mid"] == MID
    assert result["id_source"] == "id_service"
    assert handler.dcs.requests[0].path == "/id"


def test_direct_invocation_with_bad_input_raises_a_typed_error(handler):
    with pytest.raises(InvalidRequest) as info:
        invoke(handler, {"uuid": "not-an-id"})
    assert info.value.field == "uuid"


def test_sqs_events_are_refused_by_name(handler):
    with pytest.raises(InvalidRequest):
        invoke(handler, {"Records": [{"eventSource": "aws:sqs", "body": "{}"}]})
