"""Pydantic validation at the boundary, with one translation of errors into ``InvalidRequest``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from aam_dcs.errors import InvalidRequest


def parse_model[M: BaseModel](model: type[M], data: Any) -> M:
    """Validate caller input; a failure names every bad field and rule, never the rejected value."""
    if not isinstance(data, Mapping):
        raise InvalidRequest("the request must be a JSON object", field="body", rule="must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_request_from(exc) from None


def invalid_request_from(exc: ValidationError) -> InvalidRequest:
    problems = [
        {"field": field_path(err["loc"]), "rule": err["msg"].removeprefix("Value error, ")}
        for err in exc.errors(include_input=False)
    ]
    first = problems[0] if problems else {"field": "body", "rule": "invalid"}
    return InvalidRequest(
        f"invalid {first['field']}: {first['rule']}", field=first["field"], rule=first["rule"], errors=problems
    )


def field_path(loc: tuple[int | str, ...]) -> str:
    """``('customer_ids', 3, 'auth_state')`` → ``customer_ids[3].auth_state``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"
