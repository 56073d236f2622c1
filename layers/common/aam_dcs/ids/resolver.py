"""The ``resolve_ids`` use case: every source in order, then the store, then (only with ``mint``) ``/id``.

What was learned is remembered in the profiles table (when configured) for ``id_sync_ttl``, so a
later call that carries only one of the IDs, or only a declared ID, finds the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aam_dcs.config import Settings, get_settings
from aam_dcs.dcs.breaker import get_gateway
from aam_dcs.ids.cookies import Cookie, parse_cookie_header
from aam_dcs.ids.id_service import IdServiceAnswer, IdServiceClient
from aam_dcs.ids.models import IdentityInput, ResolvedIdentity, Source
from aam_dcs.ids.sources import StoredIdentity, needs_id_service, resolve_identity
from aam_dcs.observability import metrics
from aam_dcs.store.profiles import ProfileStore, configured_store, customer_key, mid_key, uuid_key

DEFAULT_ID_TTL_SECONDS = 604_800  # the ID service's default id_sync_ttl


@dataclass
class IdentityResolver:
    settings: Settings
    store: ProfileStore | None = None
    id_service: IdServiceClient | None = None
    clock: Callable[[], float] = field(default=time.time)

    def resolve(self, request: IdentityInput) -> ResolvedIdentity:
        cookies = parse_cookie_header(request.cookies)
        resolved = self._resolve(request, cookies)
        stored = self._recall(resolved)
        if stored is not None:
            resolved = self._resolve(request, cookies, stored=stored)
        ttl = DEFAULT_ID_TTL_SECONDS
        if needs_id_service(resolved, request.mint):
            answer = self._mint(resolved)
            resolved = self._resolve(request, cookies, stored=stored, answer=answer)
            ttl = answer.ttl_seconds
        self.remember(resolved, ttl_seconds=ttl, known=stored)
        metrics.add_metric(name=f"IdSource_{resolved.id_source or 'none'}", unit="Count", value=1)
        return resolved

    def remember(
        self, resolved: ResolvedIdentity, *, ttl_seconds: int = DEFAULT_ID_TTL_SECONDS, known: StoredIdentity | None
    ) -> None:
        """Store what is known about the visitor under each of its keys, unless nothing changed."""
        if self.store is None or not resolved.has_user_id:
            return
        record = StoredIdentity(
            mid=resolved.mid,
            uuid=resolved.uuid,
            region_id=resolved.region_id,
            blob=resolved.blob,
            opted_out=resolved.opted_out,
            region_source=_region_origin(resolved, known),
        )
        if record != known:
            self.store.put_identity(identity_keys(resolved), record, ttl_seconds)

    def _resolve(
        self,
        request: IdentityInput,
        cookies: tuple[Cookie, ...],
        *,
        stored: StoredIdentity | None = None,
        answer: IdServiceAnswer | None = None,
    ) -> ResolvedIdentity:
        return resolve_identity(
            request,
            self.settings,
            cookies=cookies,
            stored=stored,
            id_service=answer.result if answer else None,
            now=self.clock(),
        )

    def _recall(self, resolved: ResolvedIdentity) -> StoredIdentity | None:
        keys = identity_keys(resolved)
        return self.store.get_identity(keys) if self.store is not None and keys else None

    def _mint(self, resolved: ResolvedIdentity) -> IdServiceAnswer:
        if self.id_service is None:
            raise RuntimeError("minting needs an ID-service client")
        metrics.add_metric(name="IdServiceCalls", unit="Count", value=1)
        return self.id_service.fetch(blob=resolved.blob, customer_ids=resolved.customer_ids)


def _region_origin(resolved: ResolvedIdentity, known: StoredIdentity | None) -> Source | None:
    """Where the region came from in the first place: a region read back from the store keeps its origin,
    so one learned server-side never turns into the visitor's own on the next write."""
    if resolved.region_id is None:
        return None
    if resolved.region_source == "store" and known is not None and known.region_id == resolved.region_id:
        return known.region_source
    return resolved.region_source


def identity_keys(resolved: ResolvedIdentity) -> list[str]:
    """Every key the visitor can be found by: UUID, MID and hashed declared IDs."""
    keys = []
    if resolved.uuid:
        keys.append(uuid_key(resolved.uuid))
    if resolved.mid:
        keys.append(mid_key(resolved.mid))
    for customer in resolved.customer_ids:
        namespace = (
            customer.data_source_id if customer.data_source_id is not None else f"ic:{customer.integration_code}"
        )
        keys.append(customer_key(namespace, customer.id))
    return keys


def default_resolver() -> IdentityResolver:
    """The container's resolver, from the settings: table and ID service as configured."""
    settings = get_settings()
    return IdentityResolver(
        settings=settings,
        store=configured_store(settings.profiles_table),
        id_service=IdServiceClient(settings, get_gateway()),
    )
