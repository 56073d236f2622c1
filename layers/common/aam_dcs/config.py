"""Settings from the environment: one pydantic model, read once per container.

Every AWS resource setting left empty turns its feature off, so a function runs with only
``AAM_PARTNER`` and ``AAM_ORG_ID`` set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aam_dcs.dcs.regions import REGION_HOSTS
from aam_dcs.errors import AamDcsError

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_DEMDEX_HOST = re.compile(r"^(?:[a-z0-9-]+\.)+demdex\.net\Z")

ENV_NAMES = {
    "partner": "AAM_PARTNER",
    "org_id": "AAM_ORG_ID",
    "dcs_endpoint": "AAM_DCS_ENDPOINT",
    "id_service_host": "AAM_ID_SERVICE_HOST",
    "default_region": "AAM_DEFAULT_REGION",
    "segment_source": "AAM_SEGMENT_SOURCE",
    "segment_cookie": "AAM_SEGMENT_COOKIE",
    "segment_key": "AAM_SEGMENT_KEY",
    "timeout_ms": "AAM_TIMEOUT_MS",
    "max_attempts": "AAM_MAX_ATTEMPTS",
    "user_calls_per_minute": "AAM_USER_CALLS_PER_MINUTE",
    "breaker_failures": "AAM_BREAKER_FAILURES",
    "breaker_open_seconds": "AAM_BREAKER_OPEN_SECONDS",
    "max_receives": "AAM_MAX_RECEIVES",
    "profiles_table": "PROFILES_TABLE",
    "signal_queue_url": "SIGNAL_QUEUE_URL",
    "enrich_queue_url": "ENRICH_QUEUE_URL",
    "signal_dlq_url": "SIGNAL_DLQ_URL",
    "enrich_dlq_url": "ENRICH_DLQ_URL",
    "event_bus_name": "EVENT_BUS_NAME",
    "allowed_origins": "ALLOWED_ORIGINS",
}


class ConfigurationError(AamDcsError):
    """The deployment's settings are missing or invalid (not the caller's fault)."""

    http_status = 500


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    partner: str
    org_id: str
    dcs_endpoint: str | None = None
    id_service_host: str = "dpm.demdex.net"
    default_region: int | None = None
    segment_source: Literal["stuff", "cts"] = "stuff"
    segment_cookie: str | None = None
    segment_key: str = "segs"
    timeout_ms: int = Field(default=2000, ge=50, le=30000)
    max_attempts: int = Field(default=3, ge=1, le=10)
    user_calls_per_minute: int = Field(default=30, ge=1, le=600)
    #: Consecutive outages (no answer, 5xx, 429 after the retries) that open a DCS host's breaker.
    breaker_failures: int = Field(default=5, ge=1, le=1000)
    #: Seconds an open breaker fails calls at once before it lets one trial call through.
    breaker_open_seconds: int = Field(default=30, ge=1, le=3600)
    #: The queues' maxReceiveCount: a worker dead-letters a message with a reason at its last receive,
    #: before SQS would move it without one (None: leave it to SQS).
    max_receives: int | None = Field(default=None, ge=1, le=1000)
    profiles_table: str | None = None
    signal_queue_url: str | None = None
    enrich_queue_url: str | None = None
    signal_dlq_url: str | None = None
    enrich_dlq_url: str | None = None
    event_bus_name: str | None = None
    allowed_origins: tuple[str, ...] = ()

    @field_validator("partner")
    @classmethod
    def _partner_is_alias(cls, value: str) -> str:
        value = value.strip().lower().removesuffix(".demdex.net")
        if not _DNS_LABEL.match(value):
            raise ValueError("must be the DCS domain alias, e.g. 'acme' for acme.demdex.net")
        return value

    @field_validator("org_id")
    @classmethod
    def _org_id_shape(cls, value: str) -> str:
        if not value.endswith("@AdobeOrg") or len(value) > 64:
            raise ValueError("must be the Experience Cloud org ID, '...@AdobeOrg'")
        return value

    @field_validator("dcs_endpoint")
    @classmethod
    def _endpoint_is_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/?#\s]+\Z", value.rstrip("/")):
            raise ValueError("must be a base URL such as http://127.0.0.1:8700")
        return value.rstrip("/")

    @field_validator("id_service_host")
    @classmethod
    def _id_host_is_demdex(cls, value: str) -> str:
        if not _DEMDEX_HOST.match(value):
            raise ValueError("must be a demdex.net host, e.g. dpm.demdex.net")
        return value

    @field_validator("default_region")
    @classmethod
    def _region_known(cls, value: int | None) -> int | None:
        if value is not None and value not in REGION_HOSTS:
            raise ValueError(f"must be one of the DCS regions {sorted(REGION_HOSTS)}")
        return value

    @property
    def partner_host(self) -> str:
        return f"{self.partner}.demdex.net"

    @property
    def timeout_seconds(self) -> float:
        return self.timeout_ms / 1000


def settings_from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from environment variables; empty values mean 'unset'."""
    environ = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for field, env_name in ENV_NAMES.items():
        value = environ.get(env_name, "").strip()
        if value:
            raw[field] = value
    if "allowed_origins" in raw:
        raw["allowed_origins"] = tuple(o.strip() for o in str(raw["allowed_origins"]).split(",") if o.strip())
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_NAMES.get(str(err['loc'][0]), err['loc'][0]) if err['loc'] else 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The container's settings, read once."""
    return settings_from_env()
