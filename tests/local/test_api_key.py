"""The local stack with ``ApiKeyRequired=true``: API Gateway's answer without the key, on every route."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from local.run import LOCAL_API_KEY, LocalStack

MID = "04512783304617290021837465019283746501"
ROUTES = [("GET", "/ids"), ("POST", "/ids"), ("POST", "/signals"), ("GET", "/segments"), ("POST", "/segments")]
BODY = {"mid": MID, "signals": {"c_x": "1"}}


@pytest.fixture(scope="module")
def keyed_stack() -> Iterator[LocalStack]:
    with LocalStack(api_port=0, dcs_port=0, pollers=False, parameters={"ApiKeyRequired": "true"}) as running:
        yield running


def call(stack: LocalStack, method: str, path: str, headers: dict[str, str] | None = None) -> requests.Response:
    body = BODY if method == "POST" else None
    return requests.request(method, f"{stack.api_url}{path}", json=body, headers=headers, timeout=30)


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize("key", [None, "", "wrong-key", LOCAL_API_KEY.upper()])
def test_a_request_without_the_right_key_gets_403_and_reaches_nothing(
    keyed_stack: LocalStack, method: str, path: str, key: str | None
) -> None:
    calls_before = len(keyed_stack.simulator.calls("/event"))
    headers = {"X-Api-Key": key} if key is not None else None
    response = call(keyed_stack, method, path, headers)
    assert response.status_code == 403
    assert response.json() == {"message": "Forbidden"}
    assert response.headers["x-amzn-ErrorType"] == "ForbiddenException"
    assert len(keyed_stack.simulator.calls("/event")) == calls_before


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_the_key_opens_every_route(keyed_stack: LocalStack, method: str, path: str) -> None:
    response = call(keyed_stack, method, path, {"x-api-key": LOCAL_API_KEY})
    assert response.status_code < 500, response.text
    assert response.status_code != 403, response.text


def test_the_cors_preflight_needs_no_key(keyed_stack: LocalStack) -> None:
    origin = keyed_stack.api_url
    response = requests.options(
        f"{keyed_stack.api_url}/signals",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key",
        },
        timeout=30,
    )
    assert response.status_code in (200, 204)
    assert "x-api-key" in response.headers["Access-Control-Allow-Headers"].lower()
