"""The ``lookup_segments`` contract: input (identity fields plus cache options) and result."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from aam_dcs.ids.models import IdentityInput
from aam_dcs.ids.validation import IDENTIFIED_SCHEMA

CacheState = Literal["hit", "miss", "bypass", "stale"]

DEFAULT_MAX_AGE_SECONDS: Final = 300
MAX_AGE_LIMIT_SECONDS: Final = 30 * 24 * 3600


# The identity fields plus cache options: accept a cached answer up to ``max_age_seconds`` old
# (0: always ask the DCS), or skip the cache read altogether with ``refresh``. (Comments, not
# docstrings: a model's docstring becomes its description in the generated OpenAPI document.)
class LookupInput(IdentityInput):
    model_config = ConfigDict(json_schema_extra=IDENTIFIED_SCHEMA)  # a lookup needs an ID (lookup.py)

    max_age_seconds: int = Field(default=DEFAULT_MAX_AGE_SECONDS, ge=0, le=MAX_AGE_LIMIT_SECONDS)
    refresh: bool = False


# The ``lookup_segments`` answer. Beyond the design's fields: ``mid`` (the ECID used) and ``stale``
# (true when a DCS outage or a guard refusal was answered from an older cached entry, ``cache: "stale"``).
class LookupResult(BaseModel):
    segments: list[str]
    segment_source: Literal["stuff", "cts"]
    cache: CacheState
    region_id: int | None = None
    uuid: str | None = None
    mid: str | None = None
    opted_out: bool = False
    fetched_at: str
    stale: bool = False
