import pytest
from pydantic import ValidationError

from aam_dcs.config import ConfigurationError, Settings, settings_from_env

MINIMAL = {"AAM_PARTNER": "acme", "AAM_ORG_ID": "0123456789ABCDEF01234567@AdobeOrg"}


def test_minimal_settings_turn_every_aws_feature_off():
    settings = settings_from_env(MINIMAL)
    assert settings.partner_host == "acme.demdex.net"
    assert settings.profiles_table is None
    assert settings.signal_queue_url is None
    assert settings.enrich_queue_url is None
    assert settings.event_bus_name is None
    assert settings.allowed_origins == ()
    assert settings.dcs_endpoint is None
    assert settings.id_service_host == "dpm.demdex.net"
    assert settings.max_attempts == 3
    assert settings.segment_source == "stuff"
    assert settings.segment_key == "segs"


def test_empty_values_mean_unset_and_lists_are_split():
    env = {
        **MINIMAL,
        "PROFILES_TABLE": "",
        "AAM_DEFAULT_REGION": "9",
        "ALLOWED_ORIGINS": "https://a.example, https://b.example ,",
        "AAM_DCS_ENDPOINT": "http://127.0.0.1:8700/",
        "AAM_TIMEOUT_MS": "1500",
    }
    settings = settings_from_env(env)
    assert settings.profiles_table is None
    assert settings.default_region == 9
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.dcs_endpoint == "http://127.0.0.1:8700"
    assert settings.timeout_seconds == 1.5


def test_partner_given_as_full_host_is_reduced_to_the_alias():
    assert settings_from_env({**MINIMAL, "AAM_PARTNER": "Acme.demdex.net"}).partner == "acme"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AAM_PARTNER", "evil.example.com/"),
        ("AAM_ORG_ID", "not-an-org"),
        ("AAM_DEFAULT_REGION", "5"),
        ("AAM_ID_SERVICE_HOST", "attacker.example.com"),
        ("AAM_DCS_ENDPOINT", "ftp://x"),
        ("AAM_SEGMENT_SOURCE", "dests"),
        ("AAM_MAX_ATTEMPTS", "0"),
    ],
)
def test_invalid_settings_name_the_variable(name, value):
    with pytest.raises(ConfigurationError) as info:
        settings_from_env({**MINIMAL, name: value})
    assert name in info.value.message


@pytest.mark.parametrize(
    "field", [{"id_service_host": "dpm.demdex.net\n"}, {"dcs_endpoint": "http://127.0.0.1:8700\n"}]
)
def test_a_host_built_in_code_with_a_trailing_line_feed_is_refused(field):
    """The environment's values are stripped first; code that builds Settings itself gets no such help."""
    with pytest.raises(ValidationError):
        Settings(partner="acme", org_id=MINIMAL["AAM_ORG_ID"], **field)


def test_missing_partner_and_org_are_reported_together():
    with pytest.raises(ConfigurationError) as info:
        settings_from_env({})
    assert "AAM_PARTNER" in info.value.message
    assert "AAM_ORG_ID" in info.value.message
