"""The OpenAPI document of the bundle's REST API, generated from the pydantic contract models.

``python -m local.openapi`` rewrites ``local/openapi.yaml``; a test fails when the committed
document drifts from the models or from the routes in template.yaml.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from aam_dcs.ids.models import IdentityInput, ResolvedIdentity
from aam_dcs.segments.models import LookupInput, LookupResult
from aam_dcs.signals.models import SendSignalsInput, SendSignalsResult

DOCUMENT = Path(__file__).with_name("openapi.yaml")
REF = "#/components/schemas/{model}"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "the typed error's class name, e.g. InvalidRequest"},
        "message": {"type": "string"},
        "field": {"type": "string", "description": "the input that broke a rule"},
        "rule": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
        "codes": {"type": "array", "items": {"type": "integer"}, "description": "DCS error codes"},
        "tid": {"type": "string", "description": "DCS transaction ID, for support"},
        "setting": {"type": "string", "description": "the missing setting (503)"},
        "retry_after": {"type": "number", "description": "seconds to wait before trying again (429, 503)"},
        "dcs_host": {"type": "string", "description": "the DCS host whose circuit breaker is open (503)"},
    },
}

IDENTITY_QUERY = [
    ("mid", "ECID/MID, 38 digits"),
    ("uuid", "AAM UUID, 38 digits"),
    ("region_id", "DCS region ID"),
]
LOOKUP_QUERY = [
    *IDENTITY_QUERY,
    ("max_age_seconds", "accept a cached answer up to this age"),
    ("refresh", "bypass the cache"),
]


def build_document() -> dict[str, Any]:
    models: list[type[BaseModel]] = [
        IdentityInput,
        ResolvedIdentity,
        SendSignalsInput,
        SendSignalsResult,
        LookupInput,
        LookupResult,
    ]
    _, schemas = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    components = {**schemas.get("$defs", {}), "Error": ERROR_SCHEMA}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "AAM DCS server-to-server bundle",
            "version": "0.1.0",
            "description": "ID resolution, signal sending and segment lookup against Adobe Audience Manager's DCS.",
        },
        "paths": {
            "/ids": {
                "get": _get(
                    "resolve_ids",
                    "Resolve the visitor's IDs from the Cookie header",
                    _query(IdentityInput, IDENTITY_QUERY),
                    "ResolvedIdentity",
                ),
                "post": _post("resolve_ids", "Resolve the visitor's IDs", "IdentityInput", {"200": "ResolvedIdentity"}),
            },
            "/signals": {
                "post": _post(
                    "send_signals",
                    "Send signals and declared IDs to the visitor's regional DCS",
                    "SendSignalsInput",
                    {"200": "SendSignalsResult", "202": "SendSignalsResult"},
                ),
            },
            "/segments": {
                "get": _get(
                    "lookup_segments",
                    "The visitor's segments (Cookie header)",
                    _query(LookupInput, LOOKUP_QUERY),
                    "LookupResult",
                ),
                "post": _post("lookup_segments", "The visitor's segments", "LookupInput", {"200": "LookupResult"}),
            },
        },
        "components": {"schemas": components},
    }


def _query(model: type[BaseModel], fields: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Query parameters with the body field's schema (its formats and limits), never null."""
    properties = model.model_json_schema()["properties"]
    return [
        {"name": name, "in": "query", "required": False, "description": text, "schema": _not_null(properties[name])}
        for name, text in fields
    ]


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``{"anyOf": [X, {"type": "null"}], ...}`` → ``{...X, ...}``: never null; the parameter has the description."""
    kept = {key: value for key, value in schema.items() if key not in ("anyOf", "title", "default", "description")}
    for branch in schema.get("anyOf", []):
        if branch != {"type": "null"}:
            kept.update(branch)
    if "enum" in kept:
        kept["enum"] = [value for value in kept["enum"] if value is not None]
    return kept


def _get(function: str, summary: str, parameters: list[dict[str, Any]], result: str) -> dict[str, Any]:
    parameters = [*parameters]
    parameters.append({"name": "Cookie", "in": "header", "required": False, "schema": {"type": "string"}})
    return {
        "operationId": f"{function}_get",
        "summary": summary,
        "parameters": parameters,
        "responses": _responses({"200": result}),
    }


def _post(function: str, summary: str, body: str, results: dict[str, str]) -> dict[str, Any]:
    return {
        "operationId": f"{function}_post",
        "summary": summary,
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=body)}}},
        },
        "responses": _responses(results),
    }


def _responses(results: dict[str, str]) -> dict[str, Any]:
    responses: dict[str, Any] = {
        status: {
            "description": "success",
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model)}}},
        }
        for status, model in results.items()
    }
    errors = {
        "400": "bad input: the body names the field and the rule",
        "413": "a body or field over its size cap",
        "429": "the per-visitor call cap was reached (Retry-After)",
        "502": "the DCS failed after the retry budget (codes, tid)",
        "503": "a needed setting is unset (setting), or the DCS host's circuit breaker is open (CircuitOpen, "
        "Retry-After)",
        "504": "the DCS did not answer in time",
    }
    for status, text in errors.items():
        responses[status] = {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
        }
        if status in ("429", "503"):
            responses[status]["headers"] = _retry_after_header()
    return responses


def _retry_after_header() -> dict[str, Any]:
    """A new dict each time: a shared one would come out as a YAML anchor."""
    return {
        "Retry-After": {
            "description": "whole seconds to wait before trying again",
            "schema": {"type": "integer", "minimum": 1},
        }
    }


def render() -> str:
    return yaml.safe_dump(build_document(), sort_keys=False, allow_unicode=True, width=110)


if __name__ == "__main__":
    DOCUMENT.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {DOCUMENT.name}\n")
