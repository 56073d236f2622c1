"""The running local stack: gateway -> real handlers, CORS, resources in moto, environment, local endpoints."""

from __future__ import annotations

import base64
import json
import os
import re
import time
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from local.gateway import Gateway, build_event, proxy_response
from local.run import LocalStack
from local.template import ApiRoute

ORG = "0123456789ABCDEF01234567@AdobeOrg"
AMCV_COOKIE = "AMCV_0123456789ABCDEF01234567%40AdobeOrg"


# ------------------------------------------------------------------------------ the gateway and the handlers


def test_get_ids_reaches_the_resolve_ids_handler(stack: LocalStack, http: requests.Session) -> None:
    function = stack.function("resolve_ids")
    before = function.invocations
    response = http.get(f"{stack.api_url}/ids", timeout=10)
    assert function.invocations == before + 1
    assert response.status_code != 502, response.text  # 502 would be the gateway's "Internal server error"
    assert response.headers["Content-Type"].startswith("application/json")
    assert isinstance(response.json(), dict)
    assert response.headers["x-amzn-RequestId"]


def test_get_ids_reads_the_visitor_cookie(stack: LocalStack, http: requests.Session) -> None:
    visitor = http.get(f"{stack.api_url}/_local/visitor", timeout=10).json()
    response = http.get(f"{stack.api_url}/ids", timeout=10)
    assert response.status_code == 200, response.text
    ids = response.json()
    assert ids["mid"] == visitor["mid"]
    assert ids["region_id"] == 9
    assert ids["region_host"] == "usw2.demdex.net"
    assert ids["id_source"] == "amcv"


def test_post_ids_passes_the_json_body(stack: LocalStack) -> None:
    mid = "04512783304617290021837465019283746501"
    response = requests.post(f"{stack.api_url}/ids", json={"mid": mid, "region_id": 6}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["mid"] == mid
    assert response.json()["region_id"] == 6


def test_query_parameters_reach_the_handler(stack: LocalStack) -> None:
    mid = "04512783304617290021837465019283746501"
    response = requests.get(f"{stack.api_url}/ids", params={"mid": mid, "region_id": "11"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["mid"] == mid
    assert response.json()["region_id"] == 11


def test_bad_input_is_a_4xx_from_the_handler(stack: LocalStack) -> None:
    response = requests.post(
        f"{stack.api_url}/ids", data="{not json", headers={"Content-Type": "application/json"}, timeout=10
    )
    assert 400 <= response.status_code < 500
    assert isinstance(response.json(), dict)


@pytest.mark.parametrize("path", ["/ids", "/signals", "/segments"])
def test_cors_preflight_for_an_allowed_origin(stack: LocalStack, path: str) -> None:
    origin = stack.api_url.replace("127.0.0.1", "localhost")
    response = requests.options(
        f"{stack.api_url}{path}",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=10,
    )
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "content-type" in response.headers["Access-Control-Allow-Headers"].lower()


def test_cors_headers_only_for_allowed_origins(stack: LocalStack) -> None:
    allowed = requests.get(f"{stack.api_url}/ids", headers={"Origin": stack.api_url}, timeout=10)
    assert allowed.headers.get("Access-Control-Allow-Origin") == stack.api_url
    other = requests.get(f"{stack.api_url}/ids", headers={"Origin": "https://evil.example"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = requests.options(
        f"{stack.api_url}/ids",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        timeout=10,
    )
    assert "Access-Control-Allow-Origin" not in preflight.headers


def test_unknown_routes_get_api_gateways_answer(stack: LocalStack) -> None:
    for method, path in (("GET", "/nope"), ("DELETE", "/ids"), ("GET", "/signals"), ("GET", "/ids/extra")):
        response = requests.request(method, f"{stack.api_url}{path}", timeout=10)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"message": "Missing Authentication Token"}


def test_routes_that_require_an_api_key() -> None:
    routes = [
        ApiRoute("F", "Get", "/things", "GET", api_key_required=True),
        ApiRoute("F", "Options", "/things", "OPTIONS", api_key_required=False),
    ]
    seen: list[dict[str, Any]] = []

    def invoke(function_id: str, event: dict[str, Any]) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": '{"ok": true}'}

    gateway = Gateway(routes, invoke, port=0, api_key="secret")
    url = gateway.start()
    try:
        assert requests.get(f"{url}/things", timeout=5).status_code == 403
        assert requests.get(f"{url}/things", headers={"X-Api-Key": "wrong"}, timeout=5).status_code == 403
        answer = requests.get(f"{url}/things", headers={"X-Api-Key": "secret"}, timeout=5)
        assert answer.status_code == 200
        assert answer.json() == {"ok": True}
        assert requests.options(f"{url}/things", timeout=5).status_code == 200  # preflight needs no key
        assert [e["httpMethod"] for e in seen] == ["GET", "OPTIONS"]
        assert seen[0]["resource"] == "/things"
    finally:
        gateway.stop()


def test_demo_page_and_static_files(stack: LocalStack) -> None:
    page = requests.get(f"{stack.api_url}/", timeout=10)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert 'data-testid="hero-banner"' in page.text
    for name, kind in (("app.js", "javascript"), ("styles.css", "text/css")):
        response = requests.get(f"{stack.api_url}/demo/{name}", timeout=10)
        assert response.status_code == 200
        assert kind in response.headers["Content-Type"]
    assert requests.get(f"{stack.api_url}/demo/../run.py", timeout=10).status_code == 404
    assert requests.get(f"{stack.api_url}/demo/%2e%2e/run.py", timeout=10).status_code == 404


# ------------------------------------------------------------------------------ the API Gateway event


def test_proxy_event_shape() -> None:
    route = ApiRoute("ResolveIdsFunction", "ApiGetIds", "/ids", "GET")
    event = build_event(
        method="GET",
        path="/ids",
        query="mid=1&region_id=9&region_id=6&empty=",
        headers=[("Host", "127.0.0.1:3000"), ("Cookie", "a=1"), ("X-Multi", "x"), ("X-Multi", "y")],
        body=b"",
        route=route,
        path_parameters={},
        stage="local",
        source_ip="127.0.0.1",
        request_id="req-1",
    )
    assert event["resource"] == "/ids"
    assert event["path"] == "/ids"
    assert event["httpMethod"] == "GET"
    assert event["headers"]["Cookie"] == "a=1"
    assert event["headers"]["X-Multi"] == "y"
    assert event["multiValueHeaders"]["X-Multi"] == ["x", "y"]
    assert event["queryStringParameters"] == {"mid": "1", "region_id": "6", "empty": ""}
    assert event["multiValueQueryStringParameters"]["region_id"] == ["9", "6"]
    assert event["pathParameters"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["requestId"] == "req-1"
    assert context["stage"] == "local"
    assert context["path"] == "/local/ids"
    assert context["resourcePath"] == "/ids"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    binary = build_event(
        method="POST",
        path="/ids",
        query="",
        headers=[],
        body=b"\xff\x00",
        route=route,
        path_parameters=None,
        stage="local",
        source_ip="127.0.0.1",
    )
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\xff\x00"
    assert binary["queryStringParameters"] is None


def test_proxy_response_handling() -> None:
    status, headers, body = proxy_response(
        {
            "statusCode": 201,
            "headers": {"X-One": "1"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": base64.b64encode(b"\x89PNG").decode(),
            "isBase64Encoded": True,
        }
    )
    assert status == 201
    assert ("Set-Cookie", "a=1") in headers
    assert ("Set-Cookie", "b=2") in headers
    assert ("X-One", "1") in headers
    assert body == b"\x89PNG"
    assert proxy_response({"body": "no status"})[0] == 502
    assert proxy_response("not a dict")[0] == 502


# ------------------------------------------------------------------------------ resources and environment


def test_resources_exist_with_the_templates_attributes(stack: LocalStack) -> None:
    dynamodb = stack.client("dynamodb")
    table = stack.environment["PROFILES_TABLE"]
    description = dynamodb.describe_table(TableName=table)["Table"]
    assert [(k["AttributeName"], k["KeyType"]) for k in description["KeySchema"]] == [("pk", "HASH"), ("sk", "RANGE")]
    assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}

    sqs = stack.client("sqs")
    signal_url = stack.environment["SIGNAL_QUEUE_URL"]
    attrs = sqs.get_queue_attributes(QueueUrl=signal_url, AttributeNames=["All"])["Attributes"]
    assert attrs["FifoQueue"] == "true"
    assert attrs["ContentBasedDeduplication"] == "false"
    assert attrs["DeduplicationScope"] == "messageGroup"
    assert attrs["FifoThroughputLimit"] == "perMessageGroupId"
    assert attrs["VisibilityTimeout"] == "1800"
    redrive = json.loads(attrs["RedrivePolicy"])
    dlq_url = stack.queue_url("SignalDeadLetterQueue")
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert redrive["deadLetterTargetArn"] == dlq_arn
    assert int(redrive["maxReceiveCount"]) == 10
    assert signal_url.endswith("/aam-dcs-local-signals.fifo")
    enrich = sqs.get_queue_attributes(QueueUrl=stack.environment["ENRICH_QUEUE_URL"], AttributeNames=["All"])
    assert enrich["Attributes"]["FifoQueue"] == "true"
    assert "RedrivePolicy" in enrich["Attributes"]

    events = stack.client("events")
    bus = stack.environment["EVENT_BUS_NAME"]
    assert events.describe_event_bus(Name=bus)["Name"] == bus

    objects = stack.client("s3").list_objects_v2(Bucket="local-jobs", Prefix="signals/")
    assert any(o["Key"].endswith(".jsonl") for o in objects.get("Contents", []))


def test_handler_environment_points_at_local_resources(stack: LocalStack) -> None:
    env = os.environ
    assert env["AWS_ENDPOINT_URL"] == stack.aws_endpoint
    assert env["AAM_DCS_ENDPOINT"] == stack.simulator_url
    assert env["AAM_PARTNER"] == "acme"
    assert env["AAM_ORG_ID"] == ORG
    assert env["SIGNAL_QUEUE_URL"] == stack.queue_url("SignalQueue")
    assert env["ENRICH_QUEUE_URL"] == stack.queue_url("EnrichQueue")
    assert env["PROFILES_TABLE"] == "aam-dcs-local-ProfilesTable"
    assert env["EVENT_BUS_NAME"] == "aam-dcs-local-segments"
    port = stack.api_url.rsplit(":", 1)[1]
    assert env["ALLOWED_ORIGINS"] == f"http://127.0.0.1:{port},http://localhost:{port}"
    assert env["AWS_DEFAULT_REGION"] == "us-west-2"
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert env["POWERTOOLS_METRICS_NAMESPACE"]


# ------------------------------------------------------------------------------ local endpoints


def test_visitor_endpoint_mints_and_sets_a_real_amcv_cookie(stack: LocalStack, http: requests.Session) -> None:
    stack.simulator.clear_calls()
    response = http.get(f"{stack.api_url}/_local/visitor", timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert re.fullmatch(r"[0-9]{38}", body["mid"])
    assert body["region"] == 9  # the visitor's home (GSLB) region, not the ID service's own
    assert body["source"] == "id_service"
    raw = response.headers["Set-Cookie"]
    assert raw.startswith(f"{AMCV_COOKIE}=")
    assert "Path=/" in raw
    assert "SameSite=Lax" in raw
    value = http.cookies.get(AMCV_COOKIE)
    assert value is not None
    assert "|" not in value
    assert "%7C" in value
    pattern = (
        r"-?\d+\|MCIDTS\|\d+\|MCMID\|(\d{38})\|MCAAMLH-(\d+)\|9\|MCAAMB-(\d+)\|([A-Za-z0-9_-]*)"
        r"\|MCOPTOUT-(\d+)s\|NONE\|vVersion\|5\.5\.0"
    )
    match = re.fullmatch(pattern, unquote(value))
    assert match is not None, unquote(value)
    assert match.group(1) == body["mid"]
    assert int(match.group(2)) > time.time()
    (call,) = stack.simulator.calls("/id")
    assert ["d_orgid", ORG] in call["params"]
    assert call["target_host"] == "dpm.demdex.net"
    assert call["headers"]["Host"] == "dpm.demdex.net"

    again = http.get(f"{stack.api_url}/_local/visitor", timeout=10)
    assert again.json()["mid"] == body["mid"]
    assert again.json()["source"] == "cookie"
    assert "Set-Cookie" not in again.headers
    assert len(stack.simulator.calls("/id")) == 1  # an existing cookie means no new /id call


def test_health(stack: LocalStack) -> None:
    health = requests.get(f"{stack.api_url}/_local/health", timeout=10).json()
    assert health["status"] == "ok"
    assert health["simulator"] == stack.simulator_url
    assert set(health["functions"]) == {"ResolveIdsFunction", "SendSignalsFunction", "LookupSegmentsFunction"}
    assert health["jobs"] == ["enrich", "send-batch"]


def test_unknown_job(stack: LocalStack) -> None:
    response = requests.post(f"{stack.api_url}/_local/jobs/nope", timeout=10)
    assert response.status_code == 404
    assert "enrich" in response.json()["jobs"]


def test_events_tap_shows_segments_changed(stack: LocalStack) -> None:
    detail = {"uuid": "tap-test", "segments": ["2001"], "previous": []}
    stack.client("events").put_events(
        Entries=[
            {
                "EventBusName": stack.environment["EVENT_BUS_NAME"],
                "Source": "aam-dcs",
                "DetailType": "SegmentsChanged",
                "Detail": json.dumps(detail),
            },
            {
                "EventBusName": stack.environment["EVENT_BUS_NAME"],
                "Source": "aam-dcs",
                "DetailType": "SomethingElse",
                "Detail": "{}",
            },
        ]
    )
    deadline = time.monotonic() + 10
    seen: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        seen = requests.get(f"{stack.api_url}/_local/events", timeout=10).json()["events"]
        if any(e.get("detail") == detail for e in seen):
            break
        time.sleep(0.2)
    assert any(e.get("detail") == detail and e["detail-type"] == "SegmentsChanged" for e in seen)
    assert all(e["detail-type"] == "SegmentsChanged" for e in seen)


def test_invoke_by_name_runs_the_handler_in_process(stack: LocalStack) -> None:
    mid = "04512783304617290021837465019283746501"
    result = stack.invoke("ResolveIdsFunction", {"mid": mid, "region_id": 9})
    assert result["mid"] == mid
    assert result["region_host"] == "usw2.demdex.net"
    assert stack.invoke("resolve_ids", {"mid": mid})["mid"] == mid


# ------------------------------------------------------------------------------ scheduled jobs through the stack


def test_send_batch_job_fans_out_and_the_workers_send(stack: LocalStack) -> None:
    stack.simulator.clear_calls()
    response = requests.post(f"{stack.api_url}/_local/jobs/send-batch", timeout=60)
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["job"] == "send_signals"
    assert summary["read"] == 5  # local/demo/jobs/signals/demo-batch.jsonl, seeded into s3://local-jobs/signals/
    assert summary["queued"] == 5
    assert stack.wait_for_queues(30)
    sent = [dict(call["params"]) for call in stack.simulator.calls("/event")]
    assert sorted(p.get("c_category", "") for p in sent) == ["backpacks", "jackets", "shoes", "tents", "tents"]


def test_enrich_job_reads_the_profiles_table(stack: LocalStack, http: requests.Session) -> None:
    http.get(f"{stack.api_url}/_local/visitor", timeout=10)
    assert http.post(f"{stack.api_url}/signals", json={"signals": {"c_category": "tents"}}, timeout=10).ok
    assert "2001" in http.get(f"{stack.api_url}/segments?refresh=true", timeout=10).json()["segments"]
    response = requests.post(f"{stack.api_url}/_local/jobs/enrich", timeout=60)
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["job"] == "enrich_segments"
    assert summary["read"] >= 1
    assert stack.wait_for_queues(30)
