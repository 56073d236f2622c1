"""The identity part of a DCS call: who the visitor is, as ``d_uuid``/``d_mid``/``d_cid`` pairs."""

from __future__ import annotations

from collections.abc import Sequence

from aam_dcs.dcs.query import declared_id_value
from aam_dcs.ids.models import CustomerId, ResolvedIdentity


def identity_params(resolved: ResolvedIdentity, org_id: str) -> list[tuple[str, str]]:
    """``d_uuid`` and/or ``d_mid`` + ``d_orgid`` (as Adobe's SDKs send them), the blob, declared IDs."""
    params: list[tuple[str, str]] = []
    if resolved.uuid:
        params.append(("d_uuid", resolved.uuid))
    if resolved.mid:
        params += [("d_mid", resolved.mid), ("d_orgid", org_id)]
    if resolved.blob:
        params.append(("d_blob", resolved.blob))
    return params + declared_id_params(resolved.customer_ids)


def declared_id_params(customer_ids: Sequence[CustomerId]) -> list[tuple[str, str]]:
    """One ``d_cid`` (data source ID) or ``d_cid_ic`` (integration code) per declared ID."""
    params = []
    for customer in customer_ids:
        if customer.data_source_id is not None:
            params.append(("d_cid", declared_id_value(customer.data_source_id, customer.id, customer.auth_state)))
        else:
            code = customer.integration_code or ""
            params.append(("d_cid_ic", declared_id_value(code, customer.id, customer.auth_state)))
    return params
