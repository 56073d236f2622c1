"""What the client puts on the wire, checked without a network."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aam_dcs.config import Settings, get_settings
from aam_dcs.dcs.http import DEFAULT_USER_AGENT, DcsClient, get_client, reset_client
from aam_dcs.dcs.query import DcsRequest

JSON = [("d_rtbd", "json"), ("d_jsonv", "1")]
REPO = Path(__file__).resolve().parents[3]


def test_production_url_is_the_target_host_over_https(settings: Settings) -> None:
    request = DcsRequest.event(settings, [*JSON, ("d_uuid", "1")], region_id=9)
    assert DcsClient(settings).url_for(request) == "https://usw2.demdex.net/event?d_rtbd=json&d_jsonv=1&d_uuid=1"


def test_local_endpoint_replaces_scheme_and_host(local_settings: Settings) -> None:
    request = DcsRequest.event(local_settings, [*JSON, ("d_uuid", "1")], region_id=9)
    assert DcsClient(local_settings).url_for(request) == "http://127.0.0.1:8700/event?d_rtbd=json&d_jsonv=1&d_uuid=1"


def test_post_url_has_no_query(settings: Settings) -> None:
    request = DcsRequest.event(settings, [*JSON, ("c_x", "a" * 9000)], region_id=9)
    assert DcsClient(settings).url_for(request) == "https://usw2.demdex.net/event"


def test_event_headers_in_production(settings: Settings) -> None:
    request = DcsRequest.event(settings, JSON, region_id=9)
    assert DcsClient(settings).headers_for(request) == {
        "Host": "acme.demdex.net",
        "User-Agent": DEFAULT_USER_AGENT,
        "Accept": "application/json",
    }


def test_event_headers_with_a_local_endpoint(local_settings: Settings) -> None:
    request = DcsRequest.event(
        local_settings, JSON, region_id=6, user_agent="Mozilla/5.0", referer="https://a.example/"
    )
    assert DcsClient(local_settings).headers_for(request) == {
        "Host": "acme.demdex.net",
        "User-Agent": "Mozilla/5.0",
        "Accept": "application/json",
        "Referer": "https://a.example/",
        "X-Forwarded-Host": "irl1.demdex.net",
    }


def test_id_headers(local_settings: Settings) -> None:
    request = DcsRequest.id_call(local_settings, [("d_ver", "2"), *JSON])
    headers = DcsClient(local_settings).headers_for(request)
    assert headers["Host"] == "dpm.demdex.net"
    assert headers["X-Forwarded-Host"] == "dpm.demdex.net"


def test_post_headers(settings: Settings) -> None:
    request = DcsRequest.event(settings, [*JSON, ("c_x", "a" * 9000)], region_id=9)
    assert DcsClient(settings).headers_for(request)["Content-Type"] == "application/x-www-form-urlencoded"


def test_user_agent_names_the_bundle() -> None:
    assert DEFAULT_USER_AGENT.startswith("aam-dcs-bundle/")


@pytest.mark.parametrize(
    ("path", "host"),
    [
        ("/event", "evil.demdex.net"),
        ("/event", "dpm.demdex.net"),
        ("/id", "usw2.demdex.net"),
        ("/id", "acme.demdex.net"),
    ],
)
def test_hosts_outside_the_table_and_settings_are_refused_before_any_call(
    settings: Settings, path: str, host: str
) -> None:
    request = DcsRequest(path=path, target_host=host, params=JSON)  # type: ignore[arg-type]
    client = DcsClient(settings)
    send = client.send if path == "/event" else client.send_id
    with pytest.raises(ValueError, match="may only call"):
        send(request)


def test_each_method_sends_its_own_path(settings: Settings) -> None:
    client = DcsClient(settings)
    with pytest.raises(ValueError, match="/event"):
        client.send(DcsRequest.id_call(settings, JSON))
    with pytest.raises(ValueError, match="/id"):
        client.send_id(DcsRequest.event(settings, JSON, region_id=9))


def test_nothing_heavy_at_import() -> None:
    script = textwrap.dedent(
        """
        import sys
        import aam_dcs.dcs.codes, aam_dcs.dcs.query, aam_dcs.dcs.response
        from aam_dcs.dcs.http import DcsClient, get_client, reset_client
        assert "urllib3" not in sys.modules, "urllib3 loaded at import"
        """
    )
    env = {"PYTHONPATH": f"{REPO / 'layers' / 'common'}:{REPO}", "PATH": ""}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=REPO)


class TestContainerClient:
    @pytest.fixture(autouse=True)
    def _fresh(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        monkeypatch.setenv("AAM_PARTNER", "acme")
        monkeypatch.setenv("AAM_ORG_ID", "ABC123@AdobeOrg")
        monkeypatch.setenv("AAM_MAX_ATTEMPTS", "2")
        get_settings.cache_clear()
        reset_client()
        yield
        reset_client()
        get_settings.cache_clear()

    def test_one_client_per_container_built_from_the_settings(self) -> None:
        client = get_client()
        assert get_client() is client
        assert client.settings.partner == "acme"
        assert client.settings.max_attempts == 2

    def test_reset_builds_a_new_one(self) -> None:
        first = get_client()
        reset_client()
        assert get_client() is not first

    def test_concurrent_first_calls_share_one_client(self) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            clients = list(pool.map(lambda _: get_client(), range(32)))
        assert len({id(client) for client in clients}) == 1
