"""The OpenAPI document in the repo matches the contract models, the template and the handlers."""

import importlib
import json
import re

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from aam_dcs.errors import InvalidRequest
from aam_dcs.ids import validation as rules
from aam_dcs.ids.models import IdentityInput, parse_identity
from aam_dcs.segments.models import LookupInput
from aam_dcs.signals.models import SendSignalsInput
from local.openapi import DOCUMENT, build_document, render
from local.template import Template
from tests.support.events import FakeLambdaContext, api_event


def documented_routes():
    document = build_document()
    return {
        (path, method.upper(), operation["operationId"].rsplit("_", 1)[0])
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


def test_the_committed_document_is_generated_from_the_models():
    assert DOCUMENT.read_text(encoding="utf-8") == render(), "run: python -m local.openapi"


def test_the_document_is_valid_yaml_with_every_referenced_schema():
    document = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    text = json.dumps(document)
    schemas = document["components"]["schemas"]
    for name in {part.split('"')[0] for part in text.split("#/components/schemas/")[1:]}:
        assert name in schemas


def test_the_documented_routes_are_the_template_routes():
    template_routes = {
        (r.path, r.method.upper(), _function_name(r.function_id))
        for r in Template.load().api_routes()
        if r.method.upper() != "OPTIONS"
    }
    assert documented_routes() == template_routes


@pytest.mark.parametrize(("path", "method", "function"), sorted(documented_routes()))
def test_every_documented_route_is_served_by_its_handler(path, method, function, monkeypatch):
    monkeypatch.setenv("AAM_PARTNER", "acme")
    monkeypatch.setenv("AAM_ORG_ID", "0123456789ABCDEF01234567@AdobeOrg")
    handler = importlib.reload(importlib.import_module(f"functions.{function}.app"))
    # Bad input on purpose: the route must exist (not 404) and refuse it before any DCS call.
    if method == "GET":
        event = api_event(method, path, query={"region_id": "5"})
    else:
        event = api_event(method, path, body="{")
    response = handler.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 400
    unknown = handler.lambda_handler(api_event("DELETE", path), FakeLambdaContext())
    assert unknown["statusCode"] in (404, 405)


def _function_name(logical_id):
    names = {"ResolveIdsFunction": "resolve_ids", "SendSignalsFunction": "send_signals"}
    return names.get(logical_id, "lookup_segments" if logical_id == "LookupSegmentsFunction" else logical_id)


# --- the formats: what the document allows, the models accept ------------------------------------

BODY_MODELS = {"/ids": IdentityInput, "/signals": SendSignalsInput, "/segments": LookupInput}


def generated_operations():
    schema = schemathesis.openapi.from_path(DOCUMENT)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("operation", generated_operations(), ids=lambda op: f"{op.method.upper()} {op.path}")
def test_every_request_the_document_allows_passes_the_models(operation):
    model = BODY_MODELS[operation.path]

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def check(case):
        data = case.query if operation.method.upper() == "GET" else case.body
        refused = refusal(data if isinstance(data, dict) else {}, model)
        # The one rule a JSON Schema cannot state: it spans entries of customer_ids.
        assert refused is None or refused.startswith(f"at most {rules.MAX_IDS_PER_DATA_SOURCE} declared IDs per data")

    check()


def refusal(data, model):
    try:
        parse_identity(data, model)
    except InvalidRequest as refused:
        return refused.rule
    return None


@pytest.mark.parametrize(
    ("path", "field", "keyword"),
    [
        ("IdentityInput", "mid", "pattern"),
        ("IdentityInput", "region_id", "enum"),
        ("CustomerId", "id", "pattern"),
        ("CustomerId", "data_source_id", "maximum"),
        ("SendSignalsInput", "signals", "propertyNames"),
        ("SendSignalsInput", "event_id", "pattern"),
        ("Consent", "gdpr_consent", "pattern"),
    ],
)
def test_the_document_spells_out_the_formats(path, field, keyword):
    document = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    assert keyword in document["components"]["schemas"][path]["properties"][field]


@pytest.mark.parametrize("key", ["d_mid", "D_MID", "h_referer", "dcs_region", "GDPR", "Gdpr_Consent", "_ts", "dpuuid"])
def test_reserved_signal_keys_are_outside_the_documented_key_pattern(key):
    names = rules_schema()["propertyNames"]
    assert re.search(names["pattern"], key)
    assert re.search(names["not"]["pattern"], key)


@pytest.mark.parametrize("key", ["c_color", "dx", "ts2", "gdpr_x", "dcs", "hd_x"])
def test_ordinary_signal_keys_are_inside_it(key):
    assert not re.search(rules_schema()["propertyNames"]["not"]["pattern"], key)


def rules_schema():
    return yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))["components"]["schemas"]["SendSignalsInput"][
        "properties"
    ]["signals"]
