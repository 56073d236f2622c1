"""The ``/event`` call of a ``send_signals`` request: its parameters, and the masked URL of a dry run.

Parameter order: ``d_rtbd=json&d_jsonv=1``, the identity (``d_uuid``, ``d_mid`` + ``d_orgid``,
``d_blob``, ``d_cid``/``d_cid_ic``), the signals in the caller's order, ``d_sid``, consent
(``gdpr``, ``gdpr_consent``) and ``d_cts=2`` when segments are asked for and the segment source is
``cts``. Encoding happens once, in :class:`DcsRequest`.

A dry run answers the exact call with the identity values masked: ``d_uuid``, ``d_mid``,
``d_blob``, ``gdpr_consent`` and the ID part of each declared ID become ``***`` (the data source or
integration code and the auth state stay). Everything else is encoded exactly as it is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from urllib.parse import quote

from aam_dcs.config import Settings
from aam_dcs.dcs.query import DECLARED_ID_SEPARATOR, DcsRequest
from aam_dcs.errors import InvalidRequest
from aam_dcs.ids.models import ResolvedIdentity
from aam_dcs.ids.params import identity_params
from aam_dcs.signals.models import SendSignalsInput
from aam_dcs.signals.rules import signal_params, trait_params

Params = list[tuple[str, str]]

CONTROL_PARAMS: Final[tuple[tuple[str, str], ...]] = (("d_rtbd", "json"), ("d_jsonv", "1"))
MASK: Final = "***"
MASKED_KEYS: Final = frozenset({"d_uuid", "d_mid", "d_blob", "gdpr_consent"})
DECLARED_ID_KEYS: Final = frozenset({"d_cid", "d_cid_ic"})
NOTHING_TO_SEND_RULE: Final = "give at least one of signals, trait_ids or customer_ids"


def data_params(request: SendSignalsInput) -> Params:
    """Signals and trait IDs, validated; a request without any data at all is refused."""
    if not request.has_data:
        raise InvalidRequest("there is nothing to send", field="signals", rule=NOTHING_TO_SEND_RULE)
    return signal_params(request.signals) + trait_params(request.trait_ids)


def event_params(
    request: SendSignalsInput, resolved: ResolvedIdentity, settings: Settings, *, data: Params | None = None
) -> Params:
    """Every parameter of the call, in the documented order."""
    params: Params = [*CONTROL_PARAMS, *identity_params(resolved, settings.org_id)]
    params += data_params(request) if data is None else data
    if request.consent is not None:
        params += request.consent.params()
    if request.return_segments and settings.segment_source == "cts":
        params.append(("d_cts", "2"))
    return params


def event_request(
    request: SendSignalsInput, resolved: ResolvedIdentity, settings: Settings, *, data: Params | None = None
) -> DcsRequest:
    """The call to the visitor's regional host (the partner alias when the region is unknown).

    Size rules are checked here, before any network call (``PayloadTooLarge``).
    """
    return DcsRequest.event(
        settings,
        event_params(request, resolved, settings, data=data),
        region_id=resolved.region_id,
        user_agent=request.user_agent,
        referer=request.referer,
    )


def masked_url(request: DcsRequest) -> str:
    """``https://<host>/event?<query>`` (GET) or ``POST https://<host>/event <form body>``, IDs masked."""
    url = f"https://{request.target_host}{request.path}"
    query = masked_query(request.params)
    return f"{url}?{query}" if request.method == "GET" else f"POST {url} {query}"


def masked_query(params: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{_encode(key)}={_masked_value(key, value)}" for key, value in params)


def _masked_value(key: str, value: str) -> str:
    if key in MASKED_KEYS:
        return MASK
    if key in DECLARED_ID_KEYS:
        parts = [_encode(part) for part in value.split(DECLARED_ID_SEPARATOR)]
        if len(parts) > 1:
            parts[1] = MASK
        return _encode(DECLARED_ID_SEPARATOR).join(parts)
    return _encode(value)


def _encode(text: str) -> str:
    return quote(text, safe="")
