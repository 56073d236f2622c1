"""What a caller may send as a signal, and how it goes on the wire.

Identity and control parameters (``d_*``, ``h_*``, ``dcs_region``, consent) come only from typed
fields, never from signal keys: a signal key that could set them is refused, whatever its case.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Final

from aam_dcs.errors import InvalidRequest

MAX_SIGNALS: Final = 200
MAX_KEY_LENGTH: Final = 100
MAX_VALUE_LENGTH: Final = 1024
MAX_LIST_LENGTH: Final = 100
MAX_TRAIT_IDS: Final = 100

# Letters, digits, "-" and "_", with at least one letter (AAM's trait key-name rule).
_KEY = re.compile(r"^(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]+\Z")
_RESERVED_PREFIXES: Final = ("d_", "h_")
_RESERVED_KEYS: Final = frozenset({"dcs_region", "gdpr", "gdpr_consent", "dpid", "dpuuid", "ts", "_ts"})
# C0 and C1 controls, DEL, and lone surrogates (which cannot be sent as UTF-8).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

Scalar = str | int | float | bool
SignalValue = Scalar | Sequence[Scalar]


def check_key(key: str) -> str:
    field = f"signals.{key[:40]}"
    if not isinstance(key, str) or not _KEY.match(key) or len(key) > MAX_KEY_LENGTH:
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
