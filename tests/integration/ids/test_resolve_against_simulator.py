"""resolve_ids with the real transport and ID-service client against the DCS simulator (and moto)."""

import boto3
import pytest
from moto import mock_aws

from aam_dcs.config import settings_from_env
from aam_dcs.dcs.http import DcsClient
from aam_dcs.ids.id_service import IdServiceClient
from aam_dcs.ids.models import IdentityInput
from aam_dcs.ids.resolver import IdentityResolver
from aam_dcs.store.dynamodb import DynamoDbProfileStore
from local.dcs_simulator import DcsSimulator, SimulatorConfig
from tests.support.aws import create_profiles_table

pytestmark = pytest.mark.integration

ORG = "0123456789ABCDEF01234567@AdobeOrg"


@pytest.fixture
def simulator():
    with DcsSimulator(config=SimulatorConfig.load(), port=0) as sim:
        yield sim


@pytest.fixture
def settings(simulator):
    return settings_from_env({"AAM_PARTNER": "acme", "AAM_ORG_ID": ORG, "AAM_DCS_ENDPOINT": simulator.url})


def resolver_for(settings, store=None):
    client = DcsClient(settings)
    return IdentityResolver(settings=settings, store=store, id_service=IdServiceClient(settings, client))


def id_calls(simulator):
    return simulator.calls(path="/id")


def test_mint_gets_a_fresh_ecid_from_the_id_service(simulator, settings):
    resolved = resolver_for(settings).resolve(IdentityInput(mint=True))
    assert resolved.mid is not None
    assert len(resolved.mid) == 38
    assert resolved.mid.isdigit()
    assert (resolved.id_source, resolved.region_id, resolved.region_source) == ("id_service", 7, "id_service")
    (call,) = id_calls(simulator)
    assert call["target_host"] == "dpm.demdex.net"
    params = dict(call["params"])
    assert params["d_ver"] == "2"
    assert params["d_orgid"] == ORG
    assert params["d_rtbd"] == "json"
    assert "Cookie" not in call["headers"]
    assert call["response"]["d_mid"] == resolved.mid


def test_declared_ids_travel_to_the_id_service_with_each_part_encoded(simulator, settings):
    customer = {"data_source_id": 123, "id": "a&b=c %d+é", "auth_state": "authenticated"}
    resolver_for(settings).resolve(IdentityInput(mint=True, customer_ids=[customer]))
    (call,) = id_calls(simulator)
    assert ("d_cid", "123\x01a&b=c %d+é\x011") in [tuple(pair) for pair in call["params"]]
    assert "%01" in call["query"]


def test_without_mint_nothing_calls_the_id_service(simulator, settings):
    resolved = resolver_for(settings).resolve(IdentityInput(customer_ids=[{"integration_code": "crm", "id": "x"}]))
    assert resolved.mid is None
    assert resolved.region_source == "partner"
    assert id_calls(simulator) == []


def test_a_visitors_cookie_region_beats_the_id_service_region(simulator, settings):
    amcv = "MCMID|04512783304617290021837465019283746501|MCAAMLH-1728004800|6"
    resolved = resolver_for(settings).resolve(IdentityInput(amcv=amcv, mint=True))
    assert (resolved.region_id, resolved.region_source, resolved.region_host) == (6, "amcv", "irl1.demdex.net")
    assert id_calls(simulator) == []


@mock_aws
def test_a_minted_id_is_remembered_in_the_profiles_table_and_reused(simulator, settings):
    create_profiles_table(boto3.client("dynamodb"), "profiles")
    resolver = resolver_for(settings, DynamoDbProfileStore("profiles"))
    customer = {"data_source_id": 123, "id": "crm-42"}
    first = resolver.resolve(IdentityInput(mint=True, customer_ids=[customer]))
    again = resolver.resolve(IdentityInput(mint=True, customer_ids=[customer]))
    assert again.mid == first.mid
    assert again.id_source == "store"
    assert len(id_calls(simulator)) == 1
