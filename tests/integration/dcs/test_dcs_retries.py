"""Retry rules against a real socket: what is retried, how often, how long the waits are."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from itertools import pairwise

import pytest

from aam_dcs.dcs.http import DcsClient
from aam_dcs.dcs.query import DcsRequest
from aam_dcs.dcs.response import DcsResponse
from aam_dcs.errors import DcsBadResponse, DcsRejected, DcsTimeout, DcsUnavailable
from tests.support.http_server import Reply, ScriptedServer, closed_port

pytestmark = pytest.mark.integration

JSON = [("d_rtbd", "json"), ("d_jsonv", "1")]
SIGNALS = [*JSON, ("d_uuid", "1"), ("c_color", "blue")]
LOOKUP = [*JSON, ("d_uuid", "1"), ("d_cts", "2")]
SLOWER_THAN_THE_TIMEOUT = 1.5


def signal_call(client: DcsClient) -> DcsRequest:
    request = DcsRequest.event(client.settings, SIGNALS, region_id=9)
    assert not request.idempotent
    return request


def lookup_call(client: DcsClient) -> DcsRequest:
    request = DcsRequest.event(client.settings, LOOKUP, region_id=9)
    assert request.idempotent
    return request


def gaps(server: ScriptedServer) -> list[float]:
    times = [received.received_at for received in server.requests]
    return [later - earlier for earlier, later in pairwise(times)]


class TestStatusRetries:
    @pytest.mark.parametrize("status", [503, 429])
    def test_retry_after_is_honoured(self, client: DcsClient, server: ScriptedServer, status: int) -> None:
        server.enqueue(Reply(status=status, headers={"Retry-After": "0.2"}), Reply.json({"uuid": "1"}))
        response = client.send(signal_call(client))

        assert response.uuid == "1"
        assert len(server.requests) == 2
        assert gaps(server)[0] >= 0.2
        assert server.requests[0].raw_query == server.requests[1].raw_query

    def test_retry_after_beyond_the_cap_is_not_waited_for(self, client: DcsClient, server: ScriptedServer) -> None:
        server.enqueue(Reply(status=429, headers={"Retry-After": "30"}))
        started = time.monotonic()
        with pytest.raises(DcsUnavailable) as info:
            client.send(signal_call(client))

        assert time.monotonic() - started < 30
        assert len(server.requests) == 1
        assert info.value.retry_after == 30
        assert info.value.details["status"] == 429
        assert info.value.codes == []

    def test_retry_after_as_an_http_date(self, client: DcsClient, server: ScriptedServer) -> None:
        in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
        server.enqueue(Reply(status=503, headers={"Retry-After": in_a_minute}))
        with pytest.raises(DcsUnavailable) as info:
            client.send(lookup_call(client))

        assert len(server.requests) == 1
        assert info.value.retry_after is not None
        assert 50 < info.value.retry_after <= 61

    def test_5xx_without_retry_after_gets_backoff_then_succeeds(
        self, client: DcsClient, server: ScriptedServer
    ) -> None:
        server.enqueue(Reply(status=500), Reply(status=502), Reply.json({"uuid": "1"}))
        assert client.send(signal_call(client)).uuid == "1"
        assert len(server.requests) == 3

    def test_budget_exhausted(self, client: DcsClient, server: ScriptedServer) -> None:
        server.enqueue(*[Reply(status=503, headers={"Retry-After": "0.05"})] * 3)
        with pytest.raises(DcsUnavailable) as info:
            client.send(lookup_call(client))

        assert len(server.requests) == 3  # max_attempts defaults to 3, the first included
        assert all(gap >= 0.05 for gap in gaps(server))
        assert info.value.details == {"status": 503, "retry_after": 0.05, "attempts": 3}
        assert info.value.http_status == 502

    def test_attempts_come_from_the_settings(
        self, make_client: Callable[..., DcsClient], server: ScriptedServer
    ) -> None:
        client = make_client(max_attempts=2)
        server.enqueue(*[Reply(status=500)] * 3)
        with pytest.raises(DcsUnavailable):
            client.send(lookup_call(client))
        assert len(server.requests) == 2

    def test_single_attempt(self, make_client: Callable[..., DcsClient], server: ScriptedServer) -> None:
        client = make_client(max_attempts=1)
        server.enqueue(Reply(status=503))
        with pytest.raises(DcsUnavailable):
            client.send(lookup_call(client))
        assert len(server.requests) == 1

    @pytest.mark.parametrize("status", [400, 403, 404, 413])
    def test_4xx_is_refused_without_retry(self, client: DcsClient, server: ScriptedServer, status: int) -> None:
        server.enqueue(Reply(status=status, headers={"Retry-After": "0"}))
        with pytest.raises(DcsRejected) as info:
            client.send(lookup_call(client))
        assert len(server.requests) == 1
        assert info.value.details["status"] == status

    def test_redirects_are_not_followed(self, client: DcsClient, server: ScriptedServer) -> None:
        server.enqueue(Reply(status=302, headers={"Location": "http://example.com/"}))
        with pytest.raises(DcsBadResponse):
            client.send(lookup_call(client))
        assert len(server.requests) == 1


class TestNeverRetryAnAnswer:
    def test_200_with_warnings(self, client: DcsClient, server: ScriptedServer) -> None:
        server.enqueue(Reply.json({"uuid": "1", "errors": [{"code": 309, "msg": "discarded"}, {"code": 0}]}))
        response = client.send(signal_call(client))

        assert isinstance(response, DcsResponse)
        assert [w.code for w in response.warnings] == [309]
        assert response.transient == [0]
        assert len(server.requests) == 1

    def test_empty_200(self, client: DcsClient, server: ScriptedServer) -> None:
        server.enqueue(Reply(status=200))
        with pytest.raises(DcsBadResponse):
            client.send(lookup_call(client))
        assert len(server.requests) == 1


class TestTimeouts:
    def test_a_signal_call_that_times_out_is_sent_once(self, client: DcsClient, server: ScriptedServer) -> None:
        server.enqueue(Reply.json({"uuid": "1"}, delay=SLOWER_THAN_THE_TIMEOUT))
        with pytest.raises(DcsTimeout) as info:
            client.send(signal_call(client))

        assert len(server.requests) == 1
        assert info.value.http_status == 504
        assert info.value.details["may_have_processed"] is True
        assert info.value.details["attempts"] == 1

    def test_an_idempotent_call_that_times_out_is_retried(self, client: DcsClient, server: ScriptedServer) -> None:
        server.enqueue(Reply.json({"uuid": "1"}, delay=SLOWER_THAN_THE_TIMEOUT), Reply.json({"uuid": "2"}))
        assert client.send(lookup_call(client)).uuid == "2"
        assert len(server.requests) == 2

    def test_an_idempotent_call_that_always_times_out(self, client: DcsClient, server: ScriptedServer) -> None:
        server.enqueue(*[Reply.json({}, delay=SLOWER_THAN_THE_TIMEOUT)] * 3)
        with pytest.raises(DcsTimeout) as info:
            client.send_id(DcsRequest.id_call(client.settings, [("d_ver", "2"), *JSON]))

        assert len(server.requests) == 3
        assert info.value.details["may_have_processed"] is False
        assert info.value.details["attempts"] == 3


class TestDroppedConnections:
    def test_a_signal_call_reset_after_sending_is_not_retried(self, client: DcsClient, server: ScriptedServer) -> None:
        server.enqueue(Reply.reset_connection(), Reply.json({"uuid": "never sent"}))
        with pytest.raises(DcsTimeout) as info:
            client.send(signal_call(client))

        assert len(server.requests) == 1  # the server did receive it
        assert server.pending == 1
        assert info.value.details["may_have_processed"] is True

    def test_an_idempotent_call_reset_is_retried(self, client: DcsClient, server: ScriptedServer) -> None:
        server.enqueue(Reply.reset_connection(), Reply.json({"uuid": "1"}))
        assert client.send(lookup_call(client)).uuid == "1"
        assert len(server.requests) == 2

    def test_an_idempotent_call_always_reset(self, client: DcsClient, server: ScriptedServer) -> None:
        server.enqueue(*[Reply.reset_connection()] * 3)
        with pytest.raises(DcsUnavailable):
            client.send(lookup_call(client))
        assert len(server.requests) == 3

    @pytest.mark.parametrize("kind", ["signal", "lookup"])
    def test_refused_connections_are_retried_then_unavailable(
        self, make_client: Callable[..., DcsClient], kind: str
    ) -> None:
        client = make_client(endpoint=f"http://127.0.0.1:{closed_port()}")
        request = signal_call(client) if kind == "signal" else lookup_call(client)
        with pytest.raises(DcsUnavailable) as info:
            client.send(request)

        assert info.value.details["attempts"] == 3
        assert info.value.details["may_have_processed"] is False
        assert "127.0.0.1" not in info.value.message
