"""What a DCS answer teaches about the visitor, for both use cases that call ``/event``.

The answer's UUID is the visitor's AAM device ID. Its region is kept only when none was known: the
call then went to the partner alias, and GSLB routed it by the Lambda's location, not the visitor's,
so the region is recorded as ``partner``-sourced and any region from the visitor beats it later.
"""

from __future__ import annotations

from aam_dcs.dcs.regions import region_host
from aam_dcs.ids.models import ResolvedIdentity


def learned_from_answer(
    resolved: ResolvedIdentity,
    *,
    uuid: str | None,
    dcs_region: int | None,
    opted_out: bool,
    partner_host: str,
) -> ResolvedIdentity | None:
    """The identity updated with what the answer taught, or ``None`` when it taught nothing new."""
    updates: dict[str, object] = {}
    if uuid and uuid != resolved.uuid:
        updates["uuid"] = uuid
    if resolved.region_id is None and dcs_region is not None:
        updates.update(region_id=dcs_region, region_host=region_host(dcs_region, partner_host), region_source="partner")
    if opted_out and not resolved.opted_out:
        updates["opted_out"] = True
    return resolved.model_copy(update=updates) if updates else None
