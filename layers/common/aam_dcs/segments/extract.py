"""Segment IDs from a DCS ``/event`` answer: cookie destinations in ``stuff``, or ``d_cts`` arrays.

Two sources (reference 4.3), chosen by ``AAM_SEGMENT_SOURCE``:

- ``stuff`` (default): the entries of ``stuff`` whose ``cn`` is ``AAM_SEGMENT_COOKIE`` (unset: every
  entry). Each ``cv`` is percent-decoded once (AAM encodes ``;`` as ``%3B``, space as ``%20``), split
  into pairs on ``;`` or ``&``, each pair into key and value on its first ``=``, and the values of the
  pairs whose key is ``AAM_SEGMENT_KEY`` (default ``segs``) on ``,``. So ``segs=1,2``,
  ``segs%3D1%2C2``, ``a=x;segs=1,2`` and ``a=x&segs=1&segs=2`` all give ``["1", "2"]``. A pair
  without ``=`` is skipped; a key is compared exactly, after trimming spaces.
- ``cts``: the ``segments`` array the DCS adds when the call asks ``d_cts=2``.

Either way the result is strings, in order of appearance, without duplicates or blanks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import unquote

from aam_dcs.config import Settings
from aam_dcs.dcs.response import DcsResponse, StuffEntry

SegmentSource = Literal["stuff", "cts"]

DEFAULT_KEY: Final = "segs"
DEFAULT_PAIR_SEPARATORS: Final = ";&"
DEFAULT_KEY_VALUE_SEPARATOR: Final = "="
DEFAULT_VALUE_SEPARATOR: Final = ","


@dataclass(frozen=True)
class CookieFormat:
    """How a cookie destination writes segments into ``cv`` (the delimiters set in the AAM UI)."""

    cookie_name: str | None = None
    key: str = DEFAULT_KEY
    pair_separators: str = DEFAULT_PAIR_SEPARATORS
    key_value_separator: str = DEFAULT_KEY_VALUE_SEPARATOR
    value_separator: str = DEFAULT_VALUE_SEPARATOR

    def __post_init__(self) -> None:
        if not self.pair_separators or not self.key_value_separator or not self.value_separator:
            raise ValueError("cookie delimiters must not be empty")

    @classmethod
    def from_settings(cls, settings: Settings) -> CookieFormat:
        return cls(cookie_name=settings.segment_cookie, key=settings.segment_key)

    def matches(self, entry: StuffEntry) -> bool:
        return self.cookie_name is None or entry.cn == self.cookie_name


def extract_segments(response: DcsResponse, source: SegmentSource, cookie_format: CookieFormat) -> list[str]:
    """The visitor's segments in the answer, from ``stuff`` or from the ``d_cts`` ``segments`` array."""
    if source == "cts":
        return unique(response.segments)
    return segments_from_stuff(response.stuff, cookie_format)


def segments_from_stuff(entries: Sequence[StuffEntry], cookie_format: CookieFormat) -> list[str]:
    """The segment values of every matching cookie destination, in order."""
    values = (
        value
        for entry in entries
        if cookie_format.matches(entry) and entry.cv
        for value in segments_from_cookie_value(entry.cv, cookie_format)
    )
    return unique(values)


def segments_from_cookie_value(cookie_value: str, cookie_format: CookieFormat) -> list[str]:
    """The values of ``cookie_format.key`` inside one ``cv``."""
    decoded = unquote(cookie_value)
    pairs = re.split(f"[{re.escape(cookie_format.pair_separators)}]", decoded)
    values: list[str] = []
    for pair in pairs:
        key, separator, value = pair.partition(cookie_format.key_value_separator)
        if separator and key.strip() == cookie_format.key:
            values += value.split(cookie_format.value_separator)
    return unique(values)


def unique(values: Iterable[str]) -> list[str]:
    """Trimmed, non-blank values without duplicates, first occurrence first."""
    return list(dict.fromkeys(text for value in values if (text := value.strip())))
