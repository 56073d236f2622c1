"""The ``send_signals`` contract: input (identity fields plus the signal fields) and result."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aam_dcs.ids.models import IdentityInput
from aam_dcs.signals import rules

if TYPE_CHECKING:
    from pydantic.config import JsonDict

SendStatus = Literal["sent", "queued", "skipped_opted_out", "discarded", "dry_run"]

# One pattern per rule, for the validator (``fullmatch``: a trailing newline cannot pass ``$``) and
# for the OpenAPI document.
_TC_STRING: Final = "^[A-Za-z0-9_.-]+$"
_EVENT_ID: Final = "^[!-~]{1,128}$"  # printable ASCII, no space
_HEADER_VALUE: Final = "^[ -~]*$"  # printable ASCII


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def _schema(pattern: str) -> JsonDict:
    return {"pattern": pattern}


class Consent(BaseModel):
    """IAB TCF consent: ``gdpr`` and ``gdpr_consent`` only together (the DCS needs both)."""

    model_config = ConfigDict(extra="forbid")

    gdpr: bool
    gdpr_consent: str = Field(min_length=1, max_length=4096, json_schema_extra=_schema(_TC_STRING))

    @field_validator("gdpr_consent")
    @classmethod
    def _tc_string(cls, value: str) -> str:
        if not _matches(_TC_STRING, value):
            raise ValueError("must be a URL-safe TC string (letters, digits, '-', '_', '.')")
        return value

    def params(self) -> list[tuple[str, str]]:
        return [("gdpr", "1" if self.gdpr else "0"), ("gdpr_consent", self.gdpr_consent)]


class SendSignalsInput(IdentityInput):
    model_config = ConfigDict(json_schema_extra=rules.SEND_SCHEMA)

    signals: dict[str, Any] = Field(default_factory=dict, json_schema_extra=rules.SIGNALS_SCHEMA)
    trait_ids: list[int] = Field(
        default_factory=list, max_length=rules.MAX_TRAIT_IDS, json_schema_extra=rules.TRAIT_IDS_SCHEMA
    )
    consent: Consent | None = None
    event_id: str | None = Field(default=None, json_schema_extra=_schema(_EVENT_ID))
    return_segments: bool = False
    mode: Literal["sync", "async"] = "sync"
    dry_run: bool = False
    user_agent: str | None = Field(default=None, max_length=1024, json_schema_extra=_schema(_HEADER_VALUE))
    referer: str | None = Field(default=None, max_length=2048, json_schema_extra=_schema(_HEADER_VALUE))

    @field_validator("trait_ids")
    @classmethod
    def _positive_traits(cls, value: list[int]) -> list[int]:
        if any(t <= 0 for t in value):
            raise ValueError("trait IDs are positive integers")
        return value

    @field_validator("event_id")
    @classmethod
    def _event_id(cls, value: str | None) -> str | None:
        if value is not None and not _matches(_EVENT_ID, value):
            raise ValueError("must be 1-128 printable ASCII characters without spaces")
        return value

    @field_validator("user_agent", "referer")
    @classmethod
    def _header_value(cls, value: str | None) -> str | None:
        if value is not None and not _matches(_HEADER_VALUE, value):
            raise ValueError("must be printable ASCII: no CR, LF or control characters")
        return value

    @property
    def has_data(self) -> bool:
        return bool(self.signals or self.trait_ids or self.customer_ids)


class Warning_(BaseModel):
    code: int
    msg: str = ""


class SendSignalsResult(BaseModel):
    status: SendStatus
    region_id: int | None = None
    tid: str | None = None
    warnings: list[Warning_] = Field(default_factory=list)
    segments: list[str] | None = None
    request: str | None = None
    opted_out: bool = False
