"""Validation rules for identity values (reference: id-resolution, sections 4 and 7).

Two kinds of helpers, on purpose:

- *readers* (``valid_user_id``, ``clean_blob``) for values from untrusted carriers (cookies, a
  stored record, an ``/id`` answer): a bad value is dropped and ``None`` comes back, never an error;
- *checks* (``check_*``) for explicit caller input: they raise ``RuleError`` carrying the rule.
  The models turn it into a pydantic error (so ``parse_identity`` names the field), and
  ``require`` turns it into ``InvalidRequest`` for code that validates outside a model.

Blob policy: a blob read from a cookie, the store or ``/id`` is dropped silently when it breaks
the rule (the call still works without it); a blob given explicitly is refused (``check_blob``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Final, TypeGuard

from aam_dcs.dcs.regions import REGION_HOSTS, parse_region
from aam_dcs.errors import InvalidRequest
from aam_dcs.json_numbers import json_integer

if TYPE_CHECKING:
    from pydantic.config import JsonDict

USER_ID_LENGTH: Final = 38
INT64_MAX: Final = 2**63 - 1
MAX_BLOB_BYTES: Final = 512
MAX_CUSTOMER_IDS: Final = 10
MAX_IDS_PER_DATA_SOURCE: Final = 3
MAX_CUSTOMER_ID_CHARS: Final = 256
MAX_INTEGRATION_CODE_CHARS: Final = 255
AUTH_STATES: Final[dict[str, int]] = {"unknown": 0, "authenticated": 1, "logged_out": 2}

_USER_ID = re.compile(r"[0-9]{38}", re.ASCII)
_BLOB = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_ASCII_INT = re.compile(r"[0-9]{1,19}", re.ASCII)
# Cc: C0 and C1 controls, DEL (\x01, CR, LF...); Cs: lone surrogates, which cannot be sent as UTF-8.
_FORBIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cs"})

USER_ID_RULE: Final = "must be exactly 38 ASCII digits, as a string (an ECID/MID or an AAM UUID)"
REGION_RULE: Final = "must be a known DCS region ID: " + ", ".join(str(r) for r in sorted(REGION_HOSTS))
BLOB_RULE: Final = f"must be 1 to {MAX_BLOB_BYTES} characters of A-Z, a-z, 0-9, '_' and '-'"
AUTH_STATE_RULE: Final = "must be 0, 1 or 2, or one of the names unknown, authenticated, logged_out"
DATA_SOURCE_RULE: Final = f"must be a positive integer (at most {INT64_MAX})"
INTEGRATION_CODE_RULE: Final = f"must be 1 to {MAX_INTEGRATION_CODE_CHARS} characters without control characters"
CUSTOMER_ID_RULE: Final = f"must be 1 to {MAX_CUSTOMER_ID_CHARS} characters, not blank, without control characters"
NAMESPACE_RULE: Final = "exactly one of data_source_id and integration_code is required"
TOO_MANY_IDS_RULE: Final = f"at most {MAX_CUSTOMER_IDS} declared IDs per request"


# --- JSON Schema hints: the same rules for the OpenAPI document (ECMA-262 patterns) -------------

# Not the rules themselves (the checks below are) but never looser: what a schema allows, they accept.
# Cc as a character-class range. Lone surrogates (Cs) are left out: many regex engines refuse them in a
# pattern, and the checks refuse them anyway.
_CONTROLS: Final = r"\u0000-\u001f\u007f-\u009f"
NO_CONTROL_CHARS: Final = f"^[^{_CONTROLS}]*$"
USER_ID_SCHEMA: Final[JsonDict] = {"pattern": f"^[0-9]{{{USER_ID_LENGTH}}}$", "description": "38 ASCII digits"}
REGION_SCHEMA: Final[JsonDict] = {"enum": [*sorted(REGION_HOSTS), None], "description": "a region ID of the DCS table"}
AUTH_STATE_SCHEMA: Final[JsonDict] = {
    "enum": [0, 1, 2],
    "description": "0 unknown, 1 authenticated, 2 logged_out (the names are accepted too)",
}
DATA_SOURCE_SCHEMA: Final[JsonDict] = {"minimum": 1, "maximum": INT64_MAX}
INTEGRATION_CODE_SCHEMA: Final[JsonDict] = {
    "minLength": 1,
    "maxLength": MAX_INTEGRATION_CODE_CHARS,
    "pattern": NO_CONTROL_CHARS,
}
CUSTOMER_ID_SCHEMA: Final[JsonDict] = {
    "minLength": 1,
    "maxLength": MAX_CUSTOMER_ID_CHARS,
    "pattern": f"^[^{_CONTROLS}]*[^\\s{_CONTROLS}][^{_CONTROLS}]*$",  # not blank
}
CUSTOMER_IDS_SCHEMA: Final[JsonDict] = {"maxItems": MAX_CUSTOMER_IDS}
ONE_NAMESPACE_SCHEMA: Final[JsonDict] = {
    "anyOf": [
        {
            "required": ["data_source_id"],
            "properties": {"data_source_id": {"type": "integer"}, "integration_code": {"type": "null"}},
        },
        {
            "required": ["integration_code"],
            "properties": {"integration_code": {"type": "string"}, "data_source_id": {"type": "null"}},
        },
    ]
}


def _given(field: str, schema: JsonDict) -> JsonDict:
    return {"required": [field], "properties": {field: schema}}


#: Something that names the visitor: what a lookup and a queued send need.
IDENTIFIED_SCHEMA: Final[JsonDict] = {
    "anyOf": [
        *(_given(field, {"type": "string"}) for field in ("mid", "uuid", "amcv", "cookies")),
        _given("dcs_response", _given("uuid", {"type": "string"})),
        _given("customer_ids", {"minItems": 1}),
    ]
}


class RuleError(ValueError):
    """A value breaks a rule. ``kind`` is a short machine name, ``rule`` the sentence for callers."""

    def __init__(self, kind: str, rule: str) -> None:
        super().__init__(rule)
        self.kind = kind
        self.rule = rule


# --- readers: never raise -------------------------------------------------------------------


def is_user_id(value: object) -> TypeGuard[str]:
    """True for exactly 38 ASCII digits (``NONE``, ``NOTARGET``, ``''`` and non-ASCII digits fail)."""
    return isinstance(value, str) and _USER_ID.fullmatch(value) is not None


def valid_user_id(value: object) -> str | None:
    """The value when it is a valid user ID, else ``None``."""
    return value if is_user_id(value) else None


def fits_int64_halves(user_id: str) -> bool:
    """Stricter, optional check: both 19-digit halves fit a signed int64 (how Adobe's generators mint IDs).

    An inference from every real ID observed, not a documented rule: not enforced by default.
    """
    return is_user_id(user_id) and int(user_id[:19]) <= INT64_MAX and int(user_id[19:]) <= INT64_MAX


def is_blob(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) <= MAX_BLOB_BYTES and _BLOB.fullmatch(value) is not None


def clean_blob(value: object) -> str | None:
    """The blob when it is valid, else ``None`` (a blob from an untrusted carrier is dropped, not refused)."""
    return value if is_blob(value) else None


def has_control_chars(value: str) -> bool:
    return any(unicodedata.category(char) in _FORBIDDEN_CATEGORIES for char in value)


# --- checks: raise RuleError --------------------------------------------------------------------


def check_user_id(value: object) -> str:
    if is_user_id(value):
        return value
    raise RuleError("user_id", USER_ID_RULE)


def check_region(value: object) -> int:
    """A known region from an int or a numeric string (query parameters arrive as strings)."""
    region = parse_region(value)
    if region is None:
        raise RuleError("region", REGION_RULE)
    return region


def check_blob(value: object) -> str:
    if is_blob(value):
        return value
    raise RuleError("blob", BLOB_RULE)


def check_auth_state(value: object) -> int:
    """0, 1 or 2 (int or digit string), or a state name in any case."""
    number = json_integer(value)
    if number in (0, 1, 2):
        return number
    if isinstance(value, str):
        text = value.strip().lower()
        if text in AUTH_STATES:
            return AUTH_STATES[text]
        if text in ("0", "1", "2"):
            return int(text)
    raise RuleError("auth_state", AUTH_STATE_RULE)


def check_data_source_id(value: object) -> int:
    """A positive integer, from a JSON integer or an ASCII digit string; booleans are refused."""
    number = json_integer(value)
    if isinstance(value, str) and _ASCII_INT.fullmatch(value):
        number = int(value)
    if number is None or not 0 < number <= INT64_MAX:
        raise RuleError("data_source_id", DATA_SOURCE_RULE)
    return number


def check_integration_code(value: str) -> str:
    if not 1 <= len(value) <= MAX_INTEGRATION_CODE_CHARS or has_control_chars(value):
        raise RuleError("integration_code", INTEGRATION_CODE_RULE)
    return value


def check_customer_id_value(value: str) -> str:
    """The declared ID itself: kept exactly as sent (case-sensitive, unencoded, not stripped)."""
    if not 1 <= len(value) <= MAX_CUSTOMER_ID_CHARS or not value.strip() or has_control_chars(value):
        raise RuleError("customer_id", CUSTOMER_ID_RULE)
    return value


def check_customer_id_count(count: int) -> None:
    if count > MAX_CUSTOMER_IDS:
        raise RuleError("customer_ids_limit", TOO_MANY_IDS_RULE)


def check_ids_per_data_source(namespaces: Sequence[Hashable]) -> None:
    """At most 3 declared IDs per data source (same ``data_source_id`` or same ``integration_code``).

    The rule names the entries by index, never by value.
    """
    positions: dict[Hashable, list[int]] = {}
    for index, namespace in enumerate(namespaces):
        positions.setdefault(namespace, []).append(index)
    for indexes in positions.values():
        if len(indexes) > MAX_IDS_PER_DATA_SOURCE:
            shared = ", ".join(str(i) for i in indexes)
            raise RuleError(
                "customer_ids_per_data_source",
                f"at most {MAX_IDS_PER_DATA_SOURCE} declared IDs per data source; entries {shared} share one",
            )


def require[T](check: Callable[[object], T], value: object, field: str) -> T:
    """Run a check on explicit input; a broken rule becomes ``InvalidRequest`` naming ``field``."""
    try:
        return check(value)
    except RuleError as exc:
        raise InvalidRequest(f"invalid {field}: {exc.rule}", field=field, rule=exc.rule) from None
