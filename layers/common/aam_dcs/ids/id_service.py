"""The Experience Cloud ID service client (``/id``): mints an ECID when nothing else identifies the visitor.

Called only when the caller asks for it (``mint``). The region it answers names the data centre
that served the Lambda, not the visitor's, and the resolution order ranks it accordingly.
"""

from __future__ import annotations

from dataclasses import dataclass

from aam_dcs.config import Settings
from aam_dcs.dcs.http import DcsGateway
from aam_dcs.dcs.query import DcsRequest
from aam_dcs.dcs.response import IdServiceResponse
from aam_dcs.errors import DcsRejected
from aam_dcs.ids.models import CustomerId
from aam_dcs.ids.params import declared_id_params
from aam_dcs.ids.sources import IdServiceResult


@dataclass(frozen=True)
class IdServiceAnswer:
    result: IdServiceResult
    ttl_seconds: int
    tid: str | None


class IdServiceClient:
    def __init__(self, settings: Settings, gateway: DcsGateway) -> None:
        self.settings = settings
        self.gateway = gateway

    def fetch(
        self,
        *,
        mid: str | None = None,
        blob: str | None = None,
        region_id: int | None = None,
        customer_ids: list[CustomerId] | None = None,
    ) -> IdServiceAnswer:
        params = id_call_params(self.settings.org_id, mid=mid, blob=blob, region_id=region_id)
        params += declared_id_params(customer_ids or [])
        answer = self.gateway.send_id(DcsRequest.id_call(self.settings, params))
        return _answer_from(answer)


def id_call_params(org_id: str, *, mid: str | None, blob: str | None, region_id: int | None) -> list[tuple[str, str]]:
    params = [("d_ver", "2"), ("d_rtbd", "json"), ("d_orgid", org_id)]
    if mid:
        params.append(("d_mid", mid))
    if blob:
        params.append(("d_blob", blob))
    if region_id is not None:
        params.append(("dcs_region", str(region_id)))
    return params


def _answer_from(answer: IdServiceResponse) -> IdServiceAnswer:
    if answer.d_mid is None and not answer.opted_out:
        raise DcsRejected(
            "the ID service returned no ECID",
            codes=answer.codes,
            tid=answer.tid,
            reason=answer.error_msg or "no d_mid in the answer",
        )
    result = IdServiceResult(
        mid=answer.d_mid, region_id=answer.dcs_region, blob=answer.d_blob, opted_out=answer.opted_out
    )
    ttl = answer.d_ottl if answer.opted_out else answer.id_sync_ttl
    return IdServiceAnswer(result=result, ttl_seconds=ttl, tid=answer.tid)
