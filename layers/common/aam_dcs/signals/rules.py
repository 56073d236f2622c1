"""What a caller may send as a signal, and how it goes on the wire.

Identity and control parameters (``d_*``, ``h_*``, ``dcs_region``, consent) come only from typed
fields, never from signal keys: a signal key that could set them is refused, whatever its case.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Final

from aam_dcs.errors import InvalidRequest
from aam_dcs.ids.validation import IDENTIFIED_SCHEMA, NO_CONTROL_CHARS

if TYPE_CHECKING:
    from pydantic.config import JsonDict

MAX_SIGNALS: Final = 200
MAX_KEY_LENGTH: Final = 100
MAX_VALUE_LENGTH: Final = 1024
MAX_LIST_LENGTH: Final = 100
MAX_TRAIT_IDS: Final = 100

# Letters, digits, "-" and "_", with at least one letter (AAM's trait key-name rule).
KEY_PATTERN: Final = "^[A-Za-z0-9_-]*[A-Za-z][A-Za-z0-9_-]*$"  # also the OpenAPI document's
_RESERVED_PREFIXES: Final = ("d_", "h_")
_RESERVED_KEYS: Final = frozenset({"dcs_region", "gdpr", "gdpr_consent", "dpid", "dpuuid", "ts", "_ts"})
# C0 and C1 controls, DEL, and lone surrogates (which cannot be sent as UTF-8).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def _any_case(text: str) -> str:
    """``gdpr`` → ``[gG][dD][pP][rR]``: JSON Schema patterns have no flag for case."""
    return "".join(f"[{char.lower()}{char.upper()}]" if char.isalpha() else char for char in text)


# JSON Schema hints for the OpenAPI document (ECMA-262 patterns): never looser than the checks below.
_RESERVED_KEY_PATTERN: Final = (
    "^("
    + "|".join([*map(_any_case, _RESERVED_PREFIXES), *(f"{_any_case(key)}$" for key in sorted(_RESERVED_KEYS))])
    + ")"
)
_SCALAR_SCHEMA: Final[JsonDict] = {
    "anyOf": [
        {"type": "string", "maxLength": MAX_VALUE_LENGTH, "pattern": NO_CONTROL_CHARS},
        {"type": "number"},
        {"type": "boolean"},
    ]
}
SIGNALS_SCHEMA: Final[JsonDict] = {
    "maxProperties": MAX_SIGNALS,
    "propertyNames": {
        "pattern": KEY_PATTERN,
        "maxLength": MAX_KEY_LENGTH,
        "not": {"pattern": _RESERVED_KEY_PATTERN},
    },
    "additionalProperties": {
        "anyOf": [
            _SCALAR_SCHEMA,
            {"type": "array", "items": _SCALAR_SCHEMA, "minItems": 1, "maxItems": MAX_LIST_LENGTH},
        ]
    },
}
SEND_SCHEMA: Final[JsonDict] = {
    "allOf": [
        {  # something to send
            "anyOf": [
                {"required": ["signals"], "properties": {"signals": {"minProperties": 1}}},
                {"required": ["trait_ids"], "properties": {"trait_ids": {"minItems": 1}}},
                {"required": ["customer_ids"], "properties": {"customer_ids": {"minItems": 1}}},
            ]
        },
        {  # a queued call names its visitor: the queue's message group
            "if": {"required": ["mode"], "properties": {"mode": {"const": "async"}}},
            "then": IDENTIFIED_SCHEMA,
        },
    ]
}
TRAIT_IDS_SCHEMA: Final[JsonDict] = {"items": {"type": "integer", "minimum": 1}}

Scalar = str | int | float | bool
SignalValue = Scalar | Sequence[Scalar]


def check_key(key: str) -> str:
    field = f"signals.{key[:40]}"
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or not re.fullmatch(KEY_PATTERN, key):
        raise InvalidRequest(
            "signal keys are letters, digits, '-' and '_' with at least one letter",
            field=field if _printable(key) else "signals",
            rule=f"key must match [A-Za-z0-9_-]+ with a letter, at most {MAX_KEY_LENGTH} characters",
        )
    lowered = key.lower()
    if lowered.startswith(_RESERVED_PREFIXES) or lowered in _RESERVED_KEYS:
        raise InvalidRequest(
            f"signal key {key!r} is reserved for the DCS; identity, consent and control values come from typed fields",
            field=field,
            rule="no d_ or h_ keys, no dcs_region, gdpr or gdpr_consent",
        )
    return key


def wire_values(key: str, value: object) -> list[str]:
    """The string values a signal sends: a list becomes repeated keys, one value per item."""
    if isinstance(value, list | tuple):
        if not value or len(value) > MAX_LIST_LENGTH:
            raise InvalidRequest(
                "a list signal needs 1 to 100 values", field=f"signals.{key}", rule=f"1..{MAX_LIST_LENGTH} values"
            )
        return [_scalar(key, item) for item in value]
    return [_scalar(key, value)]


def signal_params(signals: Mapping[str, object]) -> list[tuple[str, str]]:
    """Validated (key, value) pairs for the DCS query, in the caller's order."""
    if len(signals) > MAX_SIGNALS:
        raise InvalidRequest(
            f"at most {MAX_SIGNALS} signals per call", field="signals", rule=f"at most {MAX_SIGNALS} keys"
        )
    pairs: list[tuple[str, str]] = []
    for key, value in signals.items():
        check_key(key)  # before the values: a value's error names the key, which must be printable
        pairs += [(key, text) for text in wire_values(key, value)]
    return pairs


def trait_params(trait_ids: Sequence[int]) -> list[tuple[str, str]]:
    """``d_sid`` with the trait IDs serialized by commas, as the DCS documents."""
    if not trait_ids:
        return []
    if len(trait_ids) > MAX_TRAIT_IDS:
        raise InvalidRequest("too many trait IDs", field="trait_ids", rule=f"at most {MAX_TRAIT_IDS}")
    return [("d_sid", ",".join(str(t) for t in dict.fromkeys(trait_ids)))]


def _scalar(key: str, value: object) -> str:
    field = f"signals.{key}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequest("numbers must be finite", field=field, rule="finite number")
        return repr(value)
    if isinstance(value, str):
        if _CONTROL.search(value):
            raise InvalidRequest("control characters are not allowed", field=field, rule="no control characters")
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidRequest("value too long", field=field, rule=f"at most {MAX_VALUE_LENGTH} characters")
        return value
    raise InvalidRequest(
        "signal values are strings, numbers, booleans or lists of them", field=field, rule="scalar or list"
    )


def _printable(key: object) -> bool:
    return isinstance(key, str) and not _CONTROL.search(key)
