"""A local API Gateway (REST API, Lambda proxy integration) in front of the in-process functions.

Each HTTP request on a route of ``template.yaml`` becomes the API Gateway REST proxy event
(payload 1.0) that Lambda would receive, the function named for that route in the template is
invoked with it, and its proxy answer (statusCode, headers, multiValueHeaders, body,
isBase64Encoded) is written back. Only the template's routes exist: the CORS preflight works
because the template routes ``OPTIONS`` to the functions (their Powertools CORS answers it).
Routes that require an API key (the API's or the event's ``Auth.ApiKeyRequired``) want
``X-Api-Key``; unknown routes get a JSON 404.

Besides the API, the gateway serves the demo page (``/`` and ``/demo/...``) and a few local-only
endpoints under ``/_local/``: ``visitor`` (what VisitorAPI.js does in a browser), ``jobs/<name>``
(run a scheduled job now, with the schedule's input), ``events`` (``SegmentsChanged`` events seen
on the event bus) and ``health``.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.template import LOCAL_ACCOUNT, ApiRoute

DEMO_DIR = Path(__file__).resolve().parent / "demo"
NOT_FOUND_BODY = {"message": "Missing Authentication Token"}
INTERNAL_ERROR_BODY = {"message": "Internal server error"}

Invoke = Callable[[str, dict[str, Any]], Any]


@dataclass
class LocalEndpoints:
    """The ``/_local/`` endpoints' collaborators (all optional)."""

    visitor: Any = None  # local.visitor.VisitorEmulator
    jobs: dict[str, Callable[[dict[str, Any] | None], Any]] = field(default_factory=dict)
    events: Callable[[], list[dict[str, Any]]] | None = None
    health: Callable[[], dict[str, Any]] | None = None


def build_event(
    *,
    method: str,
    path: str,
    query: str,
    headers: list[tuple[str, str]],
    body: bytes,
    route: ApiRoute,
    path_parameters: dict[str, str] | None,
    stage: str,
    source_ip: str,
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The API Gateway REST proxy event (payload format 1.0) for one request."""
    now = time.time() if now is None else now
    request_id = request_id or str(uuid.uuid4())
    single_headers: dict[str, str] = {}
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        single_headers[name] = value  # the last value wins, as in API Gateway
        multi_headers.setdefault(name, []).append(value)
    params = parse_qsl(query, keep_blank_values=True)
    single_query: dict[str, str] = {}
    multi_query: dict[str, list[str]] = {}
    for name, value in params:
        single_query[name] = value
        multi_query.setdefault(name, []).append(value)
    if body:
        try:
            text, is_base64 = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, is_base64 = base64.b64encode(body).decode("ascii"), True
    else:
        text, is_base64 = None, False
    header_lookup = {k.lower(): v for k, v in single_headers.items()}
    return {
        "resource": route.path,
        "path": path,
        "httpMethod": method,
        "headers": single_headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": route.path,
            "httpMethod": method,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{stage}{path}",
            "accountId": LOCAL_ACCOUNT,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": "localhost",
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": header_lookup.get("user-agent"),
                "user": None,
                "apiKey": None,
                "apiKeyId": None,
            },
            "domainName": header_lookup.get("host", "localhost"),
            "apiId": "local",
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }


class Gateway:
    """``ThreadingHTTPServer`` on ``host:port`` that routes requests to the template's functions."""

    def __init__(
        self,
        routes: list[ApiRoute],
        invoke: Invoke,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        stage: str = "local",
        local: LocalEndpoints | None = None,
        static_dir: Path = DEMO_DIR,
        access_log: bool = False,
        api_key: str | None = None,
    ) -> None:
        self.routes = list(routes)
        self.api_key = api_key  # the value X-Api-Key must carry on routes that require a key
        self.invoke = invoke
        self.host = host
        self.port = port
        self.stage = stage
        self.local = local or LocalEndpoints()
        self.static_dir = static_dir
        self.access_log = access_log
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> str:
        """Bind and serve; returns the base URL."""
        self.bind()
        return self.serve()

    def bind(self) -> str:
        """Bind the port (known from now on) without answering yet: early clients wait in the backlog."""
        if self._server is None:
            gateway = self

            class Handler(_RequestHandler):
                pass

            Handler.gateway = gateway
            server = _Server((self.host, self.port), Handler)
            self._server = server
            self.port = server.server_address[1]
        return self.url

    def serve(self) -> str:
        """Start answering requests (after :meth:`bind`)."""
        assert self._server is not None, "bind() first"
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="local-gateway", daemon=True
            )
            self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def find_route(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
        """The route for ``method path`` (an exact method first, then ``ANY``)."""
        for wanted in (method, "ANY"):
            for route in self.routes:
                if route.method != wanted:
                    continue
                params = route.matches(path)
                if params is not None:
                    return route, params
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    #: socketserver's listen backlog is 5: a burst of new connections (a load test's clients opening
    #: their pool) overflows it, and each dropped SYN costs its client a one-second retransmission.
    request_queue_size = 128


class _RequestHandler(BaseHTTPRequestHandler):
    gateway: Gateway
    protocol_version = "HTTP/1.1"
    server_version = "local-api-gateway"
    # Headers and body go out in two writes: with Nagle's algorithm on, the body waits for the
    # client's delayed ACK of the headers (40 ms on Linux) on every keep-alive response.
    disable_nagle_algorithm = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # one access line per request is written by _send

    def log_message(self, format: str, *args: Any) -> None:
        if self.gateway.access_log:
            sys.stderr.write(f"[api] {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    # -- dispatch

    def _dispatch(self) -> None:
        split = urlsplit(self.path)
        path = split.path or "/"
        body = self._read_body()
        try:
            if path in ("/", "/index.html") and self.command in ("GET", "HEAD"):
                self._static("index.html")
            elif path.startswith("/demo/") and self.command in ("GET", "HEAD"):
                self._static(path[len("/demo/") :])
            elif path == "/favicon.ico":
                self._send(204, [], b"")
            elif path.startswith("/_local/"):
                self._local(path, split.query, body)
            else:
                self._api(path, split.query, body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:
            traceback.print_exc()
            self._json(500, {"message": "local gateway error"})

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _api(self, path: str, query: str, body: bytes) -> None:
        gateway = self.gateway
        found = gateway.find_route(self.command, path)
        if found is None:
            self._json(404, NOT_FOUND_BODY, [("x-amzn-ErrorType", "MissingAuthenticationTokenException")])
            return
        route, params = found
        if route.api_key_required and self.headers.get("X-Api-Key") != gateway.api_key:
            self._json(403, {"message": "Forbidden"}, [("x-amzn-ErrorType", "ForbiddenException")])
            return
        headers = list(self.headers.items())
        client_ip = self.client_address[0]
        lower = {k.lower() for k, _ in headers}
        if "x-forwarded-for" not in lower:
            headers.append(("X-Forwarded-For", client_ip))
        if "x-forwarded-proto" not in lower:
            headers.append(("X-Forwarded-Proto", "http"))
        if "x-forwarded-port" not in lower:
            headers.append(("X-Forwarded-Port", str(gateway.port)))
        request_id = str(uuid.uuid4())
        event = build_event(
            method=self.command,
            path=path,
            query=query,
            headers=headers,
            body=body,
            route=route,
            path_parameters=params,
            stage=gateway.stage,
            source_ip=client_ip,
            request_id=request_id,
        )
        started = time.monotonic()
        try:
            result = gateway.invoke(route.function_id, event)
        except Exception as exc:
            _report(f"{route.function_id} on {self.command} {path}", exc)
            self._json(502, INTERNAL_ERROR_BODY, [("x-amzn-RequestId", request_id)])
            return
        elapsed_ms = (time.monotonic() - started) * 1000
        status, out_headers, out_body = proxy_response(result)
        if status == 502 and out_body == json.dumps(INTERNAL_ERROR_BODY).encode():
            sys.stderr.write(f"[api] {route.function_id} returned a malformed proxy response: {result!r:.300}\n")
        out_headers.append(("x-amzn-RequestId", request_id))
        self._note = f"{route.function_id} {elapsed_ms:.0f} ms"
        self._send(status, out_headers, out_body)

    # -- /_local/

    def _local(self, path: str, query: str, body: bytes) -> None:
        local = self.gateway.local
        name = path[len("/_local/") :].strip("/")
        if name == "health" and local.health is not None:
            self._json(200, local.health())
        elif name == "visitor" and local.visitor is not None and self.command in ("GET", "POST"):
            status, cookies, payload = local.visitor.handle(self.headers.get("Cookie"))
            headers = [("Set-Cookie", c) for c in cookies] + [("Cache-Control", "no-store")]
            self._json(status, payload, headers)
        elif name == "events" and local.events is not None and self.command == "GET":
            events = local.events()
            self._json(200, {"events": events, "count": len(events)})
        elif name.startswith("jobs/") and self.command == "POST":
            job = name.split("/", 1)[1]
            run = local.jobs.get(job)
            if run is None:
                self._json(404, {"error": "UnknownJob", "message": f"no job {job!r}", "jobs": sorted(local.jobs)})
                return
            override = None
            if body.strip():
                try:
                    override = json.loads(body)
                except json.JSONDecodeError:
                    self._json(400, {"error": "InvalidRequest", "message": "the body must be a JSON job input"})
                    return
            try:
                result = run(override)
            except Exception as exc:
                _report(f"job {job}", exc)
                self._json(500, _error_payload(exc))
                return
            self._json(200, result)
        else:
            self._json(404, {"error": "NotFound", "message": f"no local endpoint {self.command} {path}"})

    # -- static files

    def _static(self, relative: str) -> None:
        root = self.gateway.static_dir.resolve()
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            self._json(404, {"error": "NotFound", "message": f"no file {relative}"})
            return
        content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type in ("application/javascript", "application/json"):
            content_type += "; charset=utf-8"
        self._send(200, [("Content-Type", content_type), ("Cache-Control", "no-cache")], target.read_bytes())

    # -- writing

    def _json(self, status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> None:
        body = json.dumps(payload).encode()
        self._send(status, [("Content-Type", "application/json"), *(headers or [])], body)

    def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        if self.gateway.access_log:
            note = getattr(self, "_note", "")
            sys.stderr.write(f"[api] {self.command} {self.path} -> {status}{' ' + note if note else ''}\n")
        self._note = ""
        self.send_response(status)
        for name, value in headers:
            if name.lower() in ("content-length", "connection", "transfer-encoding"):
                continue
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)


def proxy_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, headers, body bytes) from a Lambda proxy answer; 502 when it is malformed."""
    malformed = (502, [("Content-Type", "application/json")], json.dumps(INTERNAL_ERROR_BODY).encode())
    if not isinstance(result, dict) or "statusCode" not in result:
        return malformed
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError):
        return malformed
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, values in (result.get("multiValueHeaders") or {}).items():
        for value in values or []:
            headers.append((name, str(value)))
        seen.add(name.lower())
    for name, value in (result.get("headers") or {}).items():
        if name.lower() not in seen:
            headers.append((name, str(value)))
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    body = result.get("body")
    if body is None:
        data = b""
    elif result.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body)
        except (ValueError, TypeError):
            return malformed
    else:
        data = str(body).encode("utf-8")
    return status, headers, data


def _error_payload(exc: Exception) -> dict[str, Any]:
    payload = getattr(exc, "payload", None)
    if callable(payload):
        return {k: v for k, v in payload().items() if k != "stackTrace"}
    return {"errorType": type(exc).__name__, "errorMessage": str(exc)}


def _report(what: str, exc: Exception) -> None:
    """Log a failed invocation like Lambda's log would: the error, and the traceback of handler errors."""
    sys.stderr.write(f"[api] {what} failed: {type(exc).__name__}: {exc}\n")
    if not hasattr(exc, "error_type"):  # an error raised by the handler itself, not by the local runtime
        traceback.print_exception(exc)
