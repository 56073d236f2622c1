"""The shared REST resolver setup and the one error-to-HTTP mapping.

Every handler builds its resolver here so that CORS, body limits and error bodies are the same
on every route: bad input is a 4xx naming the field, a DCS failure a 502/504 (503 while the circuit
breaker is open), never a stack trace.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from pydantic import ValidationError

from aam_dcs.config import get_settings
from aam_dcs.errors import AamDcsError, InvalidRequest, PayloadTooLarge
from aam_dcs.observability import logger
from aam_dcs.validation import invalid_request_from

MAX_BODY_BYTES = 64 * 1024


def build_resolver() -> APIGatewayRestResolver:
    """A REST (API Gateway v1 proxy) resolver with the configured CORS allow-list and error mapping."""
    app = APIGatewayRestResolver(cors=_cors_config(get_settings().allowed_origins))
    app.exception_handler(AamDcsError)(error_response)
    app.exception_handler(ValidationError)(lambda exc: error_response(invalid_request_from(exc)))
    app.exception_handler(ServiceError)(_service_error)
    app.exception_handler(Exception)(_unexpected_error)
    return app


def _cors_config(origins: tuple[str, ...]) -> CORSConfig | None:
    # No origins configured: no CORS headers at all, so browsers refuse cross-origin calls.
    if not origins:
        return None
    return CORSConfig(
        allow_origin=origins[0],
        extra_origins=list(origins[1:]),
        allow_headers=["Content-Type", "X-Api-Key"],
        max_age=600,
    )


def error_response(exc: AamDcsError) -> Response[str]:
    headers: dict[str, str] = {}
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int | float):
        headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if exc.http_status >= 500:
        logger.warning("request failed", extra={"error": type(exc).__name__, "status": exc.http_status})
    return json_response(exc.http_status, exc.to_dict(), headers)


def _service_error(exc: ServiceError) -> Response[str]:
    """Routing errors of the resolver itself: unknown route (404), method not allowed..."""
    return json_response(exc.status_code, {"error": type(exc).__name__, "message": exc.msg})


def _unexpected_error(exc: Exception) -> Response[str]:
    logger.exception("unexpected error")
    return json_response(500, {"error": "InternalError", "message": "internal error; see the function's logs"})


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=headers or {},
    )


def request_json(app: APIGatewayRestResolver) -> dict[str, Any]:
    """The request body as a JSON object: empty means ``{}``; oversized or malformed is a 4xx."""
    raw = app.current_event.body
    if not raw:
        return {}
    if app.current_event.is_base64_encoded:
        raw = _decode_base64_body(raw)
    if len(raw.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise PayloadTooLarge(
            f"the request body exceeds {MAX_BODY_BYTES} bytes", field="body", rule=f"at most {MAX_BODY_BYTES} bytes"
        )
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # ValueError: bad JSON, or an integer past 4300 digits
        raise InvalidRequest("the request body is not valid JSON", field="body", rule="must be JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object", field="body", rule="must be a JSON object")
    return data


def _decode_base64_body(raw: str) -> str:
    if len(raw) > MAX_BODY_BYTES * 4 // 3 + 4:
        raise PayloadTooLarge("the request body is too large", field="body", rule=f"at most {MAX_BODY_BYTES} bytes")
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, or a non-ASCII base64 text
        raise InvalidRequest("the request body is not UTF-8 JSON", field="body", rule="must be JSON") from None


def query_input(app: APIGatewayRestResolver, names: Iterable[str]) -> dict[str, Any]:
    """Named query parameters plus the request's Cookie header, as an input dict for the models."""
    params = app.current_event.query_string_parameters or {}
    data: dict[str, Any] = {name: params[name] for name in names if params.get(name) not in (None, "")}
    cookies = request_cookies(app)
    if cookies:
        data["cookies"] = cookies
    return data


def request_cookies(app: APIGatewayRestResolver) -> str | None:
    """The raw Cookie header; several Cookie headers are joined as browsers would."""
    multi = app.current_event.multi_value_headers or {}
    values = next((v for k, v in multi.items() if k.lower() == "cookie" and v), None)
    if values:
        return "; ".join(values)
    return app.current_event.headers.get("cookie") or None


def with_request_cookies(app: APIGatewayRestResolver, data: dict[str, Any]) -> dict[str, Any]:
    """A POST body without ``cookies`` or ``amcv`` uses the request's own Cookie header (browser calls)."""
    if "cookies" in data or "amcv" in data:
        return data
    cookies = request_cookies(app)
    return {**data, "cookies": cookies} if cookies else data
