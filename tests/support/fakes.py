"""In-memory fakes of the external systems, for unit tests of the use cases."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aam_dcs.dcs.query import DcsRequest
from aam_dcs.dcs.response import DcsResponse, IdServiceResponse, parse_event_response, parse_id_response

Answer = dict[str, Any] | Exception | Callable[[DcsRequest], dict[str, Any]]


@dataclass
class FakeDcs:
    """Answers DCS calls from a script (or a default), and records every request it received."""

    event_answers: list[Answer] = field(default_factory=list)
    id_answers: list[Answer] = field(default_factory=list)
    default_event: Answer = field(
        default_factory=lambda: {"uuid": "22920112968019678612904394744954398990", "dcs_region": 9, "stuff": []}
    )
    default_id: dict[str, Any] = field(
        default_factory=lambda: {"d_mid": "04512783304617290021837465019283746501", "dcs_region": 7}
    )
    requests: list[DcsRequest] = field(default_factory=list)

    def send(self, request: DcsRequest) -> DcsResponse:
        self.requests.append(request)
        return parse_event_response(self._body(self.event_answers, self.default_event, request))

    def send_id(self, request: DcsRequest) -> IdServiceResponse:
        self.requests.append(request)
        return parse_id_response(self._body(self.id_answers, self.default_id, request))

    @staticmethod
    def _body(script: list[Answer], default: Answer, request: DcsRequest) -> bytes:
        answer = script.pop(0) if script else default
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            answer = answer(request)
        return json.dumps(answer).encode()

    def params(self, index: int = -1) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for key, value in self.requests[index].params:
            found.setdefault(key, []).append(value)
        return found
