"""The denylist guard: a per-visitor cap on DCS calls per minute, on the profiles table."""

import pytest

from aam_dcs.errors import RateLimited
from aam_dcs.ids.models import CustomerId, ResolvedIdentity
from aam_dcs.signals.guard import CallGuard
from aam_dcs.store.memory import InMemoryProfileStore
from tests.support.signals import MID, UUID


def visitor(**fields):
    values = {"mid": MID, "region_id": 9, "region_host": "usw2.demdex.net", "region_source": "amcv"}
    return ResolvedIdentity(**{**values, **fields})


def test_calls_up_to_the_cap_pass_and_the_next_waits_for_the_window():
    now = [600.0 + 12.5]
    guard = CallGuard(InMemoryProfileStore(), calls_per_minute=3, clock=lambda: now[0])
    for _ in range(3):
        guard.admit(visitor())
    with pytest.raises(RateLimited) as info:
        guard.admit(visitor())
    assert info.value.http_status == 429
    assert info.value.retry_after == pytest.approx(47.5)
    assert info.value.details["limit"] == 3
    now[0] = 660.0
    guard.admit(visitor())


def test_each_visitor_has_its_own_count():
    guard = CallGuard(InMemoryProfileStore(), calls_per_minute=1, clock=lambda: 0.0)
    guard.admit(visitor())
    guard.admit(visitor(mid=None, uuid=UUID))
    with pytest.raises(RateLimited):
        guard.admit(visitor())


def test_a_declared_id_shared_by_devices_is_capped_too():
    crm = CustomerId(data_source_id=123, id="shared")
    guard = CallGuard(InMemoryProfileStore(), calls_per_minute=2, clock=lambda: 0.0)
    guard.admit(visitor(customer_ids=[crm]))
    guard.admit(visitor(mid=None, uuid=UUID, customer_ids=[crm]))
    with pytest.raises(RateLimited):
        guard.admit(visitor(mid="1" * 38, customer_ids=[crm]))


def test_without_a_table_the_guard_is_off():
    guard = CallGuard(None, calls_per_minute=1)
    assert guard.enabled is False
    for _ in range(5):
        guard.admit(visitor())


def test_the_device_is_counted_once_by_its_ecid_or_its_uuid():
    store = InMemoryProfileStore()
    guard = CallGuard(store, calls_per_minute=2, clock=lambda: 0.0)
    guard.admit(visitor(uuid=UUID))
    guard.admit(visitor(uuid=UUID))
    guard.admit(visitor(mid=None, uuid=UUID))  # the UUID alone has its own counter
    with pytest.raises(RateLimited):
        guard.admit(visitor())
