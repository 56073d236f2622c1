"""The denylist guard: a per-visitor cap on DCS calls per minute, shared by every function.

The DCS denylists an ID (AAM UUID, ECID, customer ID) that it sees "unusually often" in a short
window, and a denylisted ID can never be used again. The guard counts each call under the device
(its ECID, else its AAM UUID: the two always travel together, so one counter covers both) and under
each declared ID it carries (a CRM ID may be shared by several devices), with the same keys as the
identity records (``mid#``, ``uuid#``, hashed ``cid#``), in fixed one-minute windows of the
profiles table (``store.count_call``). A call is refused when any count passed
``AAM_USER_CALLS_PER_MINUTE``: ``RateLimited`` with ``retry_after`` = seconds until the window
ends. A synchronous call answers 429; a queued one waits in the queue.

Refused attempts count too, so a visitor hammered past the cap stays refused until the window ends.
Fixed windows let up to twice the cap through across a window boundary: keep the cap well below
any rate that could look abusive. No profiles table: no counters, and the guard is off.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from aam_dcs.errors import RateLimited
from aam_dcs.ids.models import ResolvedIdentity
from aam_dcs.ids.resolver import identity_keys
from aam_dcs.observability import metrics
from aam_dcs.store.profiles import ProfileStore, mid_key, uuid_key

WINDOW_SECONDS: Final = 60
COUNTER_TTL_SECONDS: Final = 180
CUSTOMER_KEY_PREFIX: Final = "cid#"


@dataclass
class CallGuard:
    store: ProfileStore | None
    calls_per_minute: int
    clock: Callable[[], float] = field(default=time.time)

    @property
    def enabled(self) -> bool:
        return self.store is not None

    def admit(self, resolved: ResolvedIdentity) -> None:
        """Count one call for the visitor; raise ``RateLimited`` when it would pass the cap."""
        keys = guard_keys(resolved)
        if self.store is None or not keys:
            return
        now = self.clock()
        window = int(now // WINDOW_SECONDS)
        counts = [self.store.count_call(key, window, COUNTER_TTL_SECONDS) for key in keys]
        if max(counts) > self.calls_per_minute:
            metrics.add_metric(name="DenylistGuardRefusals", unit="Count", value=1)
            raise RateLimited(
                f"the visitor reached {self.calls_per_minute} DCS calls per minute; try again later",
                retry_after=(window + 1) * WINDOW_SECONDS - now,
                limit=self.calls_per_minute,
            )


def guard_keys(resolved: ResolvedIdentity) -> list[str]:
    """The device (ECID, else UUID) and each declared ID, as identity-record keys."""
    device = [mid_key(resolved.mid)] if resolved.mid else [uuid_key(resolved.uuid)] if resolved.uuid else []
    declared = [key for key in identity_keys(resolved) if key.startswith(CUSTOMER_KEY_PREFIX)]
    return list(dict.fromkeys([*device, *declared]))
