"""resolve_ids: find the visitor's user ID (ECID/MID or AAM UUID) and DCS region.

Triggers: API Gateway (``GET /ids`` reads the Cookie header and ``mid``/``uuid``/``region_id``
query parameters; ``POST /ids`` takes the identity input as JSON) and direct invocation.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aam_dcs.api import build_resolver, query_input, request_json, with_request_cookies
from aam_dcs.ids.models import IdentityInput, parse_identity
from aam_dcs.ids.resolver import IdentityResolver, default_resolver
from aam_dcs.observability import logger, metrics, tracer
from aam_dcs.triggers import dispatch

QUERY_FIELDS = ("mid", "uuid", "region_id")

app = build_resolver()


@cache
def resolver() -> IdentityResolver:
    return default_resolver()


@app.get("/ids")
def get_ids() -> dict[str, Any]:
    return resolve(query_input(app, QUERY_FIELDS))


@app.post("/ids")
def post_ids() -> dict[str, Any]:
    return resolve(with_request_cookies(app, request_json(app)))


def resolve(data: Any) -> dict[str, Any]:
    return resolver().resolve(parse_identity(data, IdentityInput)).model_dump(mode="json")


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: Any, context: Any) -> Any:
    return dispatch(event, context, api=app.resolve, direct=lambda data, _: resolve(data))
