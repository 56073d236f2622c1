"""The OpenAPI document in the repo matches the contract models, the template and the handlers."""

import importlib
import json

import pytest
import yaml

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
