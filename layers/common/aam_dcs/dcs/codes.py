"""DCS error codes and what each one means for the caller.

The DCS answers HTTP 200 to almost everything; the ``errors`` codes in the body (or the
``X-Error`` header) say what really happened. Each code falls into one :class:`ErrorClass`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class ErrorClass(StrEnum):
    """What a DCS error code means for the call that received it."""

    WARNING = "warning"  # data was processed; something minor was dropped (3xx)
    OPT_OUT = "opt_out"  # the visitor opted out: no data was kept (171-173, 315)
    BLOCKED = "blocked"  # the geography is blocked: no data was kept (198, 199)
    DENYLISTED = "denylisted"  # an ID or data source is denylisted (303, 304, 306, 307)
    INVALID = "invalid"  # the request is wrong: host, org, IDs, referer (1, 2, 1xx)
    TRANSIENT = "transient"  # the DCS failed internally: try again later (0, 10, 2xx)
    DROPPED = "dropped"  # the whole request was ignored: bad encoding (311)


KNOWN_CODES: Final[dict[int, ErrorClass]] = {
    0: ErrorClass.TRANSIENT,
    1: ErrorClass.INVALID,
    2: ErrorClass.INVALID,
    10: ErrorClass.TRANSIENT,
    100: ErrorClass.INVALID,
    101: ErrorClass.INVALID,
    102: ErrorClass.INVALID,
    104: ErrorClass.WARNING,
    109: ErrorClass.INVALID,
    111: ErrorClass.INVALID,
    171: ErrorClass.OPT_OUT,
    172: ErrorClass.OPT_OUT,
    173: ErrorClass.OPT_OUT,
    198: ErrorClass.BLOCKED,
    199: ErrorClass.BLOCKED,
    **dict.fromkeys(range(200, 206), ErrorClass.TRANSIENT),
    300: ErrorClass.WARNING,
    301: ErrorClass.WARNING,
    302: ErrorClass.WARNING,
    303: ErrorClass.DENYLISTED,
    304: ErrorClass.DENYLISTED,
    306: ErrorClass.DENYLISTED,
    307: ErrorClass.DENYLISTED,
    309: ErrorClass.WARNING,
    310: ErrorClass.WARNING,
    311: ErrorClass.DROPPED,
    312: ErrorClass.WARNING,
    313: ErrorClass.WARNING,
    314: ErrorClass.WARNING,
    315: ErrorClass.OPT_OUT,
}

_CLASS_BY_HUNDRED: Final[dict[int, ErrorClass]] = {
    1: ErrorClass.INVALID,
    2: ErrorClass.TRANSIENT,
    3: ErrorClass.WARNING,
}

#: Classes after which the DCS kept none of the call's data.
DISCARDING_CLASSES: Final[frozenset[ErrorClass]] = frozenset(
    {ErrorClass.OPT_OUT, ErrorClass.BLOCKED, ErrorClass.DENYLISTED, ErrorClass.DROPPED}
)


def classify(code: int) -> ErrorClass:
    """The class of a DCS error code; an unknown code is classed by its hundred."""
    known = KNOWN_CODES.get(code)
    if known is not None:
        return known
    return _CLASS_BY_HUNDRED.get(code // 100, ErrorClass.WARNING)
