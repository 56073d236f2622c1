"""The ``AMCV_<org>`` cookie value, read as Adobe's VisitorAPI.js reads it (reference 2.3-2.5).

Grammar, after percent-decoding (``%7C`` or a raw ``|`` both work)::

    [<digest>|]<KEY>[-<expiry>[s]]|<value>|<KEY>[-<expiry>[s]]|<value>|...

- a first token matching ``^-?[0-9]+$`` is the library's settings digest, not a field: dropped;
- tokens pair up as key/value, in any order; an odd trailing token is dropped; a later duplicate
  key wins; a key is matched on its part before the first ``-`` (the rest is the expiry);
- the whole value ``T`` (a write test) or an empty value means nothing;
- expired ``MCAAMLH`` (region) and ``MCAAMB`` (blob) are still used, as the libraries do: their
  expiry is kept on the result for callers that want to refresh;
- ``MCOPTOUT`` other than ``NONE`` means opted out, even when its expiry has passed;
- ``MCMID`` must be a valid user ID (``NONE``/``NOTARGET`` read as no ID); an unknown region or an
  invalid blob is dropped.

Nothing here raises, whatever the input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Final
from urllib.parse import unquote

from aam_dcs.dcs.regions import parse_region
from aam_dcs.ids.validation import clean_blob, valid_user_id

MAX_AMCV_CHARS: Final = 4096
MAX_DECODE_ROUNDS: Final = 3
MAX_AMCV_COPIES: Final = 20
NOT_OPTED_OUT: Final = "NONE"

_DIGEST = re.compile(r"-?[0-9]+", re.ASCII)
_EXPIRY = re.compile(r"([0-9]{1,12})(s?)", re.ASCII)


@dataclass(frozen=True)
class AmcvEntry:
    """One ``KEY[-expiry[s]]|value`` pair; ``session`` is the trailing ``s`` on the expiry."""

    value: str
    expires_at: int | None = None
    session: bool = False


@dataclass(frozen=True)
class AmcvFields:
    """What an AMCV cookie says. ``fields`` holds every raw value by key name (later duplicates won)."""

    mid: str | None = None
    region_id: int | None = None
    region_expires_at: int | None = None
    blob: str | None = None
    blob_expires_at: int | None = None
    opted_out: bool = False
    optout_value: str | None = None
    optout_expires_at: int | None = None
    digest: int | None = None
    version: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)


def decode_value(value: str, rounds: int = MAX_DECODE_ROUNDS) -> str:
    """Percent-decode until the text stops changing, at most ``rounds`` times (some pipelines double-encode)."""
    for _ in range(rounds):
        decoded = unquote(value)
        if decoded == value:
            break
        value = decoded
    return value


def unwrap_quotes(value: str) -> str:
    """Strip spaces and one pair of surrounding double quotes (a quoted cookie value, RFC 6265)."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parse_amcv(value: object) -> AmcvFields | None:
    """The fields of one AMCV value, or ``None`` when it says nothing (empty, ``T``, too long, not text)."""
    text = _decoded_text(value)
    if text is None:
        return None
    tokens = text.split("|")
    digest, tokens = _split_digest(tokens)
    entries = read_entries(tokens)
    if not entries:
        return None
    return _fields_from(entries, digest)


def pick_amcv(values: Iterable[object]) -> AmcvFields | None:
    """Choose among several AMCV cookies of the same name (different domains or paths).

    The header order is not reliable, so: a copy with a valid ``MCMID`` first; among those, the
    latest ``MCAAMLH`` expiry (the freshest region). An opt-out in any copy is kept.
    """
    parsed = [fields for value in islice(values, MAX_AMCV_COPIES) if (fields := parse_amcv(value)) is not None]
    if not parsed:
        return None
    best = max(parsed, key=_rank)
    opted_out = next((fields for fields in parsed if fields.opted_out), None)
    if opted_out is not None and not best.opted_out:
        best = replace(
            best,
            opted_out=True,
            optout_value=opted_out.optout_value,
            optout_expires_at=opted_out.optout_expires_at,
        )
    return best


def read_entries(tokens: list[str]) -> dict[str, AmcvEntry]:
    """Pair ``KEY[-expiry[s]]`` tokens with values; an odd trailing token is dropped; later keys win."""
    entries: dict[str, AmcvEntry] = {}
    for index in range(0, len(tokens) - 1, 2):
        name, _, expiry = tokens[index].partition("-")
        if name:
            entries[name] = _entry(tokens[index + 1], expiry)
    return entries


def _decoded_text(value: object) -> str | None:
    if not isinstance(value, str) or len(value) > MAX_AMCV_CHARS:
        return None
    text = decode_value(unwrap_quotes(value))
    if text.strip() in ("", "T"):
        return None
    return text


def _split_digest(tokens: list[str]) -> tuple[int | None, list[str]]:
    if not _DIGEST.fullmatch(tokens[0]):
        return None, tokens
    digits = tokens[0].lstrip("-")
    # A longer run of digits is still dropped as a digest, but not turned into a number.
    digest = int(tokens[0]) if len(digits) <= 11 else None
    return digest, tokens[1:]


def _entry(value: str, expiry: str) -> AmcvEntry:
    match = _EXPIRY.fullmatch(expiry)
    if match is None:
        return AmcvEntry(value)
    return AmcvEntry(value, int(match.group(1)), match.group(2) == "s")


def _fields_from(entries: Mapping[str, AmcvEntry], digest: int | None) -> AmcvFields:
    region = parse_region(_value(entries, "MCAAMLH"))
    blob = clean_blob(_value(entries, "MCAAMB"))
    optout = _value(entries, "MCOPTOUT") or None
    return AmcvFields(
        mid=valid_user_id(_value(entries, "MCMID")),
        region_id=region,
        region_expires_at=_expiry(entries, "MCAAMLH") if region is not None else None,
        blob=blob,
        blob_expires_at=_expiry(entries, "MCAAMB") if blob is not None else None,
        opted_out=optout is not None and optout != NOT_OPTED_OUT,
        optout_value=optout,
        optout_expires_at=_expiry(entries, "MCOPTOUT") if optout is not None else None,
        digest=digest,
        version=_value(entries, "vVersion"),
        fields={name: entry.value for name, entry in entries.items()},
    )


def _value(entries: Mapping[str, AmcvEntry], name: str) -> str | None:
    entry = entries.get(name)
    return entry.value if entry is not None else None


def _expiry(entries: Mapping[str, AmcvEntry], name: str) -> int | None:
    entry = entries.get(name)
    return entry.expires_at if entry is not None else None


def _rank(fields: AmcvFields) -> tuple[bool, int, bool]:
    expires = fields.region_expires_at if fields.region_expires_at is not None else -1
    return fields.mid is not None, expires, fields.region_id is not None
