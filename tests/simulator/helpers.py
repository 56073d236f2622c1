"""Helpers for the DCS simulator's own tests: a raw HTTP client that never re-encodes what it sends."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

ORG = "0123456789ABCDEF01234567@AdobeOrg"
PARTNER_HOST = "acme.demdex.net"


@dataclass
class Result:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_codes(self) -> list[int]:
        return [e["code"] for e in self.json().get("errors", [])]

    @property
    def x_error(self) -> list[int]:
        value = self.headers.get("X-Error")
        return [int(c) for c in value.split(",")] if value else []


def encode(params: list[tuple[str, str]] | dict[str, str] | str) -> str:
    """A query string: raw strings pass through untouched; pairs are encoded like a careful client would."""
    if isinstance(params, str):
        return params
    return urlencode(params, quote_via=quote)


class Client:
    """A raw HTTP client (http.client): sends exactly the bytes given, never re-encodes the query."""

    def __init__(self, base_url: str) -> None:
        split = urlsplit(base_url)
        self.host = split.hostname or "127.0.0.1"
        self.port = split.port or 80

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | str | None = None,
        timeout: float = 5.0,
        omit_host: bool = False,
    ) -> Result:
        """One request on a fresh connection; ``omit_host`` sends no Host header at all."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            send_headers = dict(headers or {})
            if "Host" in send_headers or omit_host:
                conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            else:
                conn.putrequest(method, path, skip_accept_encoding=True)
            payload = body.encode() if isinstance(body, str) else body
            if payload is not None:
                send_headers.setdefault("Content-Length", str(len(payload)))
            for name, value in send_headers.items():
                conn.putheader(name, value)
            conn.endheaders(payload)
            response = conn.getresponse()
            return Result(response.status, response.headers, response.read())
        finally:
            conn.close()

    def event(
        self,
        params: list[tuple[str, str]] | dict[str, str] | str = "",
        *,
        target: str | None = "usw2.demdex.net",
        host: str | None = PARTNER_HOST,
        json_response: bool = True,
        method: str = "GET",
        headers: dict[str, str] | None = None,
        timeout: float = 5.0,
    ) -> Result:
        """``/event`` as the layer sends it: Host = partner alias, X-Forwarded-Host = the host it would call."""
        query = encode(params)
        if json_response:
            query = "d_rtbd=json&d_jsonv=1" + (f"&{query}" if query else "")
        send = self._headers(target, host, headers)
        if method == "POST":
            send.setdefault("Content-Type", "application/x-www-form-urlencoded")
            return self.request("POST", "/event", headers=send, body=query, timeout=timeout)
        return self.request("GET", f"/event?{query}", headers=send, timeout=timeout)

    def id(
        self,
        params: list[tuple[str, str]] | dict[str, str] | str = "",
        *,
        target: str | None = "dpm.demdex.net",
        host: str | None = PARTNER_HOST,
    ) -> Result:
        query = encode(params)
        return self.request("GET", f"/id?{query}", headers=self._headers(target, host, None))

    def optout(self, params: list[tuple[str, str]] | dict[str, str] | str, *, path: str = "/demoptout.jpg") -> Result:
        return self.request("GET", f"{path}?{encode(params)}", headers=self._headers(None, PARTNER_HOST, None))

    def admin(self, method: str, route: str, payload: Any = None) -> Result:
        body = json.dumps(payload) if payload is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        return self.request(method, f"/_admin/{route}", headers=headers, body=body)

    @staticmethod
    def _headers(target: str | None, host: str | None, extra: dict[str, str] | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if host is not None:
            headers["Host"] = host
        if target is not None:
            headers["X-Forwarded-Host"] = target
        headers.update(extra or {})
        return headers


def cid(dpid: str | int, uid: str, auth: int | None = None) -> str:
    """A declared ID value with the raw \\x01 separator (the query encoder turns it into %01)."""
    parts = [str(dpid), uid] + ([str(auth)] if auth is not None else [])
    return "\x01".join(parts)
