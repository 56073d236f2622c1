"""The resolve_ids use case with in-memory fakes: store memory, minting only on request."""

import pytest

from aam_dcs.config import settings_from_env
from aam_dcs.errors import DcsRejected
from aam_dcs.ids.id_service import IdServiceClient
from aam_dcs.ids.models import IdentityInput
from aam_dcs.ids.resolver import IdentityResolver
from aam_dcs.store.memory import InMemoryProfileStore
from tests.support.fakes import FakeDcs

ORG = "0123456789ABCDEF01234567@AdobeOrg"
MID = "04512783304617290021837465019283746501"
UUID = "22920112968019678612904394744954398990"
AMCV = f"1585540135|MCMID|{MID}|MCAAMLH-1728004800|6|MCOPTOUT-1727407200s|NONE"


@pytest.fixture
def settings():
    return settings_from_env({"AAM_PARTNER": "acme", "AAM_ORG_ID": ORG})


@pytest.fixture
def dcs():
    return FakeDcs()


def make_resolver(settings, dcs, store=None):
    return IdentityResolver(
        settings=settings, store=store, id_service=IdServiceClient(settings, dcs), clock=lambda: 1e9
    )


def test_nothing_known_and_no_mint_means_no_id_service_call(settings, dcs):
    resolved = make_resolver(settings, dcs).resolve(IdentityInput())
    assert dcs.requests == []
    assert resolved.mid is None
    assert resolved.region_source == "partner"
    assert resolved.region_host == "acme.demdex.net"


def test_mint_calls_the_id_service_once_and_keeps_its_region_below_the_default(settings, dcs):
    resolved = make_resolver(settings, dcs).resolve(IdentityInput(mint=True))
    assert resolved.mid == MID
    assert resolved.id_source == "id_service"
    assert resolved.region_id == 7
    assert resolved.region_source == "id_service"
    request = dcs.requests[0]
    assert request.path == "/id"
    assert request.target_host == "dpm.demdex.net"
    assert dcs.params() == {"d_ver": ["2"], "d_rtbd": ["json"], "d_orgid": [ORG]}


def test_mint_is_not_needed_when_the_cookie_identifies_the_visitor(settings, dcs):
    resolved = make_resolver(settings, dcs).resolve(IdentityInput(amcv=AMCV, mint=True))
    assert dcs.requests == []
    assert (resolved.mid, resolved.region_id, resolved.region_source) == (MID, 6, "amcv")


def test_minting_sends_declared_ids_and_rejects_an_answer_without_an_ecid(settings, dcs):
    dcs.id_answers.append({"d_mid": None, "error_msg": "bad org", "errors": [{"code": 2, "msg": "Invalid d_orgid"}]})
    request = IdentityInput(mint=True, customer_ids=[{"data_source_id": 123, "id": "crm-1", "auth_state": 1}])
    with pytest.raises(DcsRejected) as info:
        make_resolver(settings, dcs).resolve(request)
    assert info.value.codes == [2]
    assert dcs.params()["d_cid"] == ["123\x01crm-1\x011"]


def test_an_opted_out_id_service_answer_marks_the_visitor(settings, dcs):
    dcs.id_answers.append({"d_mid": MID, "dcs_region": 7, "d_optout": ["global"]})
    assert make_resolver(settings, dcs).resolve(IdentityInput(mint=True)).opted_out is True


def test_the_store_remembers_what_one_call_learned_for_the_next(settings, dcs):
    store = InMemoryProfileStore(clock=lambda: 1e9)
    resolver = make_resolver(settings, dcs, store)
    customer = {"data_source_id": 123, "id": "crm-1"}
    first = resolver.resolve(IdentityInput(amcv=AMCV, customer_ids=[customer]))
    assert first.region_source == "amcv"
    later = resolver.resolve(IdentityInput(customer_ids=[customer]))
    assert (later.mid, later.region_id, later.id_source) == (MID, 6, "store")
    assert later.region_source == "store"
    assert dcs.requests == []


def test_a_minted_id_is_reused_instead_of_minting_again(settings, dcs):
    store = InMemoryProfileStore(clock=lambda: 1e9)
    resolver = make_resolver(settings, dcs, store)
    customer = {"integration_code": "crm", "id": "abc"}
    resolver.resolve(IdentityInput(mint=True, customer_ids=[customer]))
    again = resolver.resolve(IdentityInput(mint=True, customer_ids=[customer]))
    assert len(dcs.requests) == 1
    assert again.mid == MID
    assert again.id_source == "store"


def test_a_server_side_region_read_back_from_the_store_keeps_its_origin(settings, dcs):
    store = InMemoryProfileStore(clock=lambda: 1e9)
    resolver = make_resolver(settings, dcs, store)
    customer = {"data_source_id": 7, "id": "crm-9"}
    resolver.resolve(IdentityInput(mint=True, customer_ids=[customer]))  # region 7 from /id
    again = resolver.resolve(IdentityInput(customer_ids=[customer]))
    assert again.region_id == 7
    stored = store.get_identity([f"mid#{MID}"])
    assert stored.region_source == "id_service"
    with_default = settings.model_copy(update={"default_region": 6})
    later = IdentityResolver(settings=with_default, store=store, clock=lambda: 1e9).resolve(
        IdentityInput(customer_ids=[customer])
    )
    assert (later.region_id, later.region_source) == (6, "default")
