"""The ``lookup_segments`` contract: input (identity fields plus cache options) and result."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from aam_dcs.ids.models import IdentityInput

CacheState = Literal["hit", "miss", "bypass", "stale"]


class LookupInput(IdentityInput):
    max_age_seconds: int = Field(default=300, ge=0, le=30 * 24 * 3600)
    refresh: bool = False


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
