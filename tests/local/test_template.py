"""template.yaml as the local stack reads it: routes, event sources, resources, resolved environment."""

from __future__ import annotations

import json

import pytest

from local.template import Evaluator, Template, TemplateError, load_yaml, match_path

ORG = "0123456789ABCDEF01234567@AdobeOrg"
REQUIRED = {"Partner": "acme", "OrgId": ORG}


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load()


@pytest.fixture
def evaluator(template: Template) -> Evaluator:
    return template.evaluator(REQUIRED)


def test_short_form_tags_load_as_long_form() -> None:
    data = load_yaml()
    globals_env = data["Globals"]["Function"]["Environment"]["Variables"]
    assert globals_env["AAM_PARTNER"] == {"Ref": "Partner"}
    assert data["Conditions"]["HasJobSourceBucket"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "JobSourceBucket"}, ""]}]}
    queue = data["Resources"]["SignalQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["SignalDeadLetterQueue", "Arn"]}
    assert queue["QueueName"] == {"Fn::Sub": "${AWS::StackName}-signals.fifo"}


def test_routes_of_the_design_go_to_the_right_functions(template: Template) -> None:
    routes = {(r.method, r.path): r.function_id for r in template.api_routes()}
    design = {
        ("GET", "/ids"): "ResolveIdsFunction",
        ("POST", "/ids"): "ResolveIdsFunction",
        ("POST", "/signals"): "SendSignalsFunction",
        ("GET", "/segments"): "LookupSegmentsFunction",
        ("POST", "/segments"): "LookupSegmentsFunction",
    }
    assert design.items() <= routes.items()
    owners = {path: function for (_, path), function in design.items()}
    for (method, path), function in routes.items():
        assert method in ("GET", "POST", "OPTIONS"), (method, path)
        assert owners[path] == function  # a preflight route goes to the function that owns the path


def test_api_key_requirement(template: Template) -> None:
    assert not any(r.api_key_required for r in template.api_routes(template.evaluator(REQUIRED)))
    keyed = {
        (r.method, r.path): r.api_key_required
        for r in template.api_routes(template.evaluator({**REQUIRED, "ApiKeyRequired": "true"}))
    }
    assert keyed[("GET", "/ids")] is True
    assert keyed[("POST", "/signals")] is True
    assert all(not required for (method, _), required in keyed.items() if method == "OPTIONS")


def test_functions_have_code_and_handler(template: Template) -> None:
    functions = {f.logical_id: f for f in template.functions()}
    assert set(functions) == {"ResolveIdsFunction", "SendSignalsFunction", "LookupSegmentsFunction"}
    for function in functions.values():
        assert function.handler == "app.lambda_handler"
        assert function.code_uri == f"functions/{function.name}"
        assert function.module_file.name == "app.py"
        assert function.handler_attr == "lambda_handler"
    assert template.function("send_signals").logical_id == "SendSignalsFunction"
    with pytest.raises(KeyError):
        template.function("nope")


def test_sqs_event_sources(template: Template, evaluator: Evaluator) -> None:
    sources = {s.function_id: s for s in template.sqs_sources(evaluator)}
    signals = sources["SendSignalsFunction"]
    assert signals.queue_id == "SignalQueue"
    assert signals.batch_size == 10
    assert signals.report_batch_item_failures is True
    assert signals.maximum_concurrency == 5
    assert sources["LookupSegmentsFunction"].queue_id == "EnrichQueue"
    assert sources["LookupSegmentsFunction"].maximum_concurrency == 3
    overridden = template.sqs_sources(template.evaluator({**REQUIRED, "SignalQueueMaxConcurrency": "7"}))
    assert {s.function_id: s.maximum_concurrency for s in overridden}["SendSignalsFunction"] == 7


def test_schedules_carry_their_parsed_input(template: Template) -> None:
    job_input = {"job": "send_signals", "source": {"s3": "s3://local-jobs/signals/"}}
    evaluator = template.evaluator({**REQUIRED, "SendSignalsJobInput": json.dumps(job_input)})
    schedules = {s.event_id: s for s in template.schedules(evaluator)}
    assert schedules["SendSignalsSchedule"].input == job_input
    assert schedules["SendSignalsSchedule"].function_id == "SendSignalsFunction"
    assert schedules["EnrichSchedule"].input == {"job": "enrich_segments", "source": {"table": "profiles"}}
    assert schedules["EnrichSchedule"].state == "DISABLED"
    assert schedules["EnrichSchedule"].expression == "rate(1 day)"


def test_queues_from_their_definitions(template: Template, evaluator: Evaluator) -> None:
    queues = {q.logical_id: q for q in template.queues(evaluator)}
    signal = queues["SignalQueue"]
    assert signal.name == "aam-dcs-local-signals.fifo"
    assert signal.fifo is True
    assert signal.attributes["DeduplicationScope"] == "messageGroup"
    assert signal.attributes["FifoThroughputLimit"] == "perMessageGroupId"
    assert signal.attributes["VisibilityTimeout"] == "1800"
    assert signal.dead_letter_queue_id == "SignalDeadLetterQueue"
    assert signal.max_receive_count == 10
    redrive = json.loads(signal.attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == "arn:aws:sqs:us-west-2:123456789012:aam-dcs-local-signals-dlq.fifo"
    assert queues["ScheduleDeadLetterQueue"].fifo is False
    order = [q.logical_id for q in template.queues(evaluator)]
    assert order.index("SignalDeadLetterQueue") < order.index("SignalQueue")  # a DLQ exists before its source


def test_tables_and_buses(template: Template, evaluator: Evaluator) -> None:
    (table,) = template.tables(evaluator)
    assert table.logical_id == "ProfilesTable"
    assert [k["AttributeName"] for k in table.properties["KeySchema"]] == ["pk", "sk"]
    assert table.properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    (bus,) = template.event_buses(evaluator)
    assert bus.name == "aam-dcs-local-segments"


def test_environment_resolves_to_local_values(template: Template) -> None:
    evaluator = template.evaluator(
        {**REQUIRED, "DcsEndpoint": "http://127.0.0.1:8700", "AllowedOrigins": "http://127.0.0.1:3000"},
        physical_ids={
            "ProfilesTable": "profiles-local",
            "SignalQueue": "http://127.0.0.1:5000/123456789012/aam-dcs-local-signals.fifo",
        },
        sqs_endpoint="http://127.0.0.1:5000",
    )
    env = template.environment("send_signals", evaluator)
    assert env["AAM_PARTNER"] == "acme"
    assert env["AAM_ORG_ID"] == ORG
    assert env["AAM_DCS_ENDPOINT"] == "http://127.0.0.1:8700"
    assert env["PROFILES_TABLE"] == "profiles-local"
    assert env["SIGNAL_QUEUE_URL"] == "http://127.0.0.1:5000/123456789012/aam-dcs-local-signals.fifo"
    # no physical ID given: the queue URL is built from the template's name and the endpoint
    assert env["ENRICH_QUEUE_URL"] == "http://127.0.0.1:5000/123456789012/aam-dcs-local-enrich.fifo"
    assert env["EVENT_BUS_NAME"] == "aam-dcs-local-segments"
    assert env["ALLOWED_ORIGINS"] == "http://127.0.0.1:3000"
    assert env["AAM_TIMEOUT_MS"] == "2000"  # parameter default, as a string like every env value
    assert env["AAM_DEFAULT_REGION"] == ""
    assert env["POWERTOOLS_SERVICE_NAME"] == "send_signals"  # the function's own value beats Globals
    assert template.environment("resolve_ids", evaluator)["POWERTOOLS_SERVICE_NAME"] == "resolve_ids"


def test_intrinsic_functions(template: Template, evaluator: Evaluator) -> None:
    first_origin = {
        "Fn::Sub": ["'${Origin}'", {"Origin": {"Fn::Select": [0, {"Fn::Split": [",", {"Ref": "AllowedOrigins"}]}]}}]
    }
    assert evaluator.evaluate(first_origin) == "'https://www.example.com'"
    two = template.evaluator({**REQUIRED, "AllowedOrigins": "http://a.test,http://b.test"})
    assert two.evaluate(first_origin) == "'http://a.test'"
    assert evaluator.condition("RequireApiKey") is False
    assert template.evaluator({**REQUIRED, "ApiKeyRequired": "true"}).condition("RequireApiKey") is True
    assert evaluator.evaluate({"Fn::If": ["HasJobSourceBucket", "yes", "no"]}) == "no"
    policies = evaluator.evaluate(template.resources["SendSignalsFunction"]["Properties"]["Policies"])
    assert all(policies)  # the !If ... AWS::NoValue entry disappears
    assert not any("S3ReadPolicy" in p for p in policies)
    with_bucket = template.evaluator({**REQUIRED, "JobSourceBucket": "jobs"})
    policies = with_bucket.evaluate(template.resources["SendSignalsFunction"]["Properties"]["Policies"])
    assert {"S3ReadPolicy": {"BucketName": "jobs"}} in policies
    assert evaluator.evaluate({"Fn::GetAtt": ["SignalQueue", "QueueName"]}) == "aam-dcs-local-signals.fifo"
    assert evaluator.evaluate({"Fn::Sub": "${AWS::Region}/${Partner}/${!Literal}"}) == "us-west-2/acme/${Literal}"
    assert evaluator.evaluate({"Fn::Sub": ["${X}-${SignalQueue.Arn}", {"X": {"Ref": "StageName"}}]}) == (
        "v1-arn:aws:sqs:us-west-2:123456789012:aam-dcs-local-signals.fifo"
    )
    assert evaluator.evaluate({"Fn::Join": ["-", ["a", {"Ref": "Partner"}]]}) == "a-acme"


def test_parameters_must_exist_and_required_ones_be_given(template: Template) -> None:
    with pytest.raises(TemplateError, match="unknown template parameters"):
        template.evaluator({"Partnr": "acme"})
    with pytest.raises(TemplateError, match="has no default"):
        template.evaluator({}).parameter("Partner")
    assert template.parameter_defaults()["StageName"] == "v1"


@pytest.mark.parametrize(
    ("resource", "path", "expected"),
    [
        ("/ids", "/ids", {}),
        ("/ids", "/ids/x", None),
        ("/items/{id}", "/items/42", {"id": "42"}),
        ("/files/{proxy+}", "/files/a/b", {"proxy": "a/b"}),
        ("/segments", "/signals", None),
    ],
)
def test_path_matching(resource: str, path: str, expected: dict[str, str] | None) -> None:
    assert match_path(resource, path) == expected
