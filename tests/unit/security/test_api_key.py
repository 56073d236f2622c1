"""The API key: with ``ApiKeyRequired=true`` every route but the CORS preflights wants one, and the
key is usable (a usage plan on the API's stage, the key attached to it); by default none is needed."""

from __future__ import annotations

from typing import Any

import pytest

from local.template import ApiRoute, Template

REQUIRED = {"Partner": "acme", "OrgId": "0123456789ABCDEF01234567@AdobeOrg"}


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load()


def routes(template: Template, **parameters: str) -> list[ApiRoute]:
    return template.api_routes(template.evaluator({**REQUIRED, **parameters}))


def test_with_the_parameter_on_every_route_but_options_requires_the_key(template: Template) -> None:
    found = routes(template, ApiKeyRequired="true")
    assert {route.method for route in found} >= {"GET", "POST", "OPTIONS"}
    for route in found:
        assert route.api_key_required is (route.method != "OPTIONS"), route


def test_by_default_no_route_requires_a_key(template: Template) -> None:
    assert not any(route.api_key_required for route in routes(template))


def test_only_preflight_routes_override_the_apis_key_setting(template: Template) -> None:
    for function in template.functions():
        for event in function.events.values():
            props: dict[str, Any] = event.get("Properties") or {}
            if event.get("Type") != "Api" or "Auth" not in props:
                continue
            assert str(props["Method"]).upper() == "OPTIONS", props
            assert props["Auth"] == {"ApiKeyRequired": False}, props


def test_the_key_belongs_to_a_usage_plan_on_the_apis_stage(template: Template) -> None:
    resources = template.resources
    (stage,) = resources["ApiUsagePlan"]["Properties"]["ApiStages"]
    assert stage["ApiId"] == {"Ref": "AamDcsApi"}
    key = resources["ApiUsagePlanKey"]["Properties"]
    assert key == {"KeyId": {"Ref": "ApiKey"}, "KeyType": "API_KEY", "UsagePlanId": {"Ref": "ApiUsagePlan"}}
    evaluator = template.evaluator({**REQUIRED, "ApiKeyRequired": "true"})
    assert evaluator.condition("RequireApiKey") is True
    assert template.evaluator(REQUIRED).condition("RequireApiKey") is False
