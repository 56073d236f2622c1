from __future__ import annotations

import itertools

import pytest
from aws_lambda_powertools import Tracer

from aam_dcs.observability import PassThroughTracer, tracing_enabled

SETTINGS = {
    "LAMBDA_TASK_ROOT": (None, "/var/task"),
    "POWERTOOLS_TRACE_DISABLED": (None, "true", "1", "false", "0"),
    "AWS_SAM_LOCAL": (None, "true"),
    "AWS_CHALICE_CLI_MODE": (None, "true"),
}


@pytest.mark.parametrize("values", list(itertools.product(*SETTINGS.values())))
def test_tracing_runs_exactly_where_powertools_would_trace(
    values: tuple[str | None, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = {}
    for name, value in zip(SETTINGS, values, strict=True):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
            environ[name] = value
    assert tracing_enabled(environ) is not bool(Tracer._is_tracer_disabled())


def test_the_pass_through_tracer_leaves_handlers_untouched() -> None:
    tracer = PassThroughTracer()

    def handler(event: dict[str, int], context: object) -> int:
        return event["n"] + 1

    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_method(handler) is handler
    assert tracer.capture_lambda_handler(capture_response=False)(handler) is handler
    assert tracer.capture_method(capture_error=False)(handler) is handler
    tracer.put_annotation("region", 9)
    tracer.put_metadata("answer", {"n": 1})
    assert handler({"n": 1}, None) == 2
