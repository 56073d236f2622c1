"""The SAM template, samconfig.toml and the sample events keep the bundle's public contracts."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.template import load_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
SAMCONFIG_PATH = ROOT / "samconfig.toml"
EVENTS_DIR = ROOT / "events"

ORG_ID = "0123456789ABCDEF01234567@AdobeOrg"

# function directory -> logical ID in the template
FUNCTIONS = {
    "resolve_ids": "ResolveIdsFunction",
    "send_signals": "SendSignalsFunction",
    "lookup_segments": "LookupSegmentsFunction",
}

# The HTTP API table of the design.
ROUTES = {
    ("GET", "/ids"): "ResolveIdsFunction",
    ("POST", "/ids"): "ResolveIdsFunction",
    ("POST", "/signals"): "SendSignalsFunction",
    ("GET", "/segments"): "LookupSegmentsFunction",
    ("POST", "/segments"): "LookupSegmentsFunction",
}
# CORS preflight goes to the function that owns the path, without an API key.
PREFLIGHT_ROUTES = {("OPTIONS", path): function for (_, path), function in ROUTES.items()}

# The settings table of the design, plus the operational variables every function reads.
SETTINGS = (
    "AAM_PARTNER",
    "AAM_ORG_ID",
    "AAM_DCS_ENDPOINT",
    "AAM_ID_SERVICE_HOST",
    "AAM_DEFAULT_REGION",
    "AAM_SEGMENT_SOURCE",
    "AAM_SEGMENT_COOKIE",
    "AAM_SEGMENT_KEY",
    "AAM_TIMEOUT_MS",
    "AAM_MAX_ATTEMPTS",
    "PROFILES_TABLE",
    "SIGNAL_QUEUE_URL",
    "ENRICH_QUEUE_URL",
    "EVENT_BUS_NAME",
    "ALLOWED_ORIGINS",
)
OPERATIONAL = ("AAM_USER_CALLS_PER_MINUTE", "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "LOG_LEVEL")

# Queue -> (its dead-letter queue, the function that consumes it).
QUEUES = {
    "SignalQueue": ("SignalDeadLetterQueue", "SendSignalsFunction"),
    "EnrichQueue": ("EnrichDeadLetterQueue", "LookupSegmentsFunction"),
}

# Field names of the public contracts (identity input, send_signals and lookup_segments options).
IDENTITY_FIELDS = {"mid", "uuid", "region_id", "amcv", "cookies", "dcs_response", "customer_ids", "mint"}
INPUT_FIELDS = {
    "resolve_ids": IDENTITY_FIELDS,
    "send_signals": IDENTITY_FIELDS
    | {"signals", "trait_ids", "consent", "event_id", "return_segments", "mode", "dry_run"},
    "lookup_segments": IDENTITY_FIELDS | {"max_age_seconds", "refresh"},
}
CUSTOMER_ID_FIELDS = {"data_source_id", "integration_code", "id", "auth_state"}
JOB_KINDS = {"send_signals": "send_signals", "lookup_segments": "enrich_segments"}

FULL_ACCESS = re.compile(r"FullAccess|AdministratorAccess|PowerUserAccess", re.IGNORECASE)


# --------------------------------------------------------------------------- loading


def load_template() -> dict[str, Any]:
    return load_yaml(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def resources(template: dict[str, Any]) -> dict[str, Any]:
    return template["Resources"]


def function_property(template: dict[str, Any], logical_id: str, name: str) -> Any:
    """A function property, falling back to Globals the way SAM does."""
    props = template["Resources"][logical_id]["Properties"]
    if name in props:
        return props[name]
    return template.get("Globals", {}).get("Function", {}).get(name)


def function_environment(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """Globals' variables merged with the function's own, as SAM merges them."""
    global_vars = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    own_vars = template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    return {**global_vars, **own_vars}


def events_of(template: dict[str, Any], logical_id: str, event_type: str) -> dict[str, dict[str, Any]]:
    events = template["Resources"][logical_id]["Properties"].get("Events", {})
    return {name: ev["Properties"] for name, ev in events.items() if ev["Type"] == event_type}


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def refs_in(node: Any) -> set[str]:
    found: set[str] = set()
    for item in walk(node):
        if isinstance(item, dict):
            if isinstance(item.get("Ref"), str):
                found.add(item["Ref"])
            getatt = item.get("Fn::GetAtt")
            if isinstance(getatt, list) and getatt:
                found.add(getatt[0])
            sub = item.get("Fn::Sub")
            text, local_names = "", set()
            if isinstance(sub, str):
                text = sub
            elif isinstance(sub, list) and sub:
                text, local_names = sub[0], set(sub[1] if len(sub) > 1 else {})
            for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                if name not in local_names:
                    found.add(name.split(".")[0] if not name.startswith("AWS::") else name)
    return found


# --------------------------------------------------------------------------- template: shape


def test_template_uses_the_serverless_transform(template: dict[str, Any]) -> None:
    transforms = template["Transform"]
    transforms = transforms if isinstance(transforms, list) else [transforms]
    assert "AWS::Serverless-2016-10-31" in transforms
    # Language extensions must run before the Serverless transform (they resolve Fn::If in Auth).
    if "AWS::LanguageExtensions" in transforms:
        assert transforms.index("AWS::LanguageExtensions") < transforms.index("AWS::Serverless-2016-10-31")


def test_every_ref_names_a_parameter_resource_or_pseudo_parameter(template: dict[str, Any]) -> None:
    known = set(template["Parameters"]) | set(template["Resources"])
    # SAM-generated resources that plain Refs may name.
    known |= {"AamDcsApi.Stage", "AamDcsApi.Deployment"}
    for name in refs_in({k: v for k, v in template.items() if k != "Metadata"}):
        assert name in known or name.startswith("AWS::"), name


def test_conditions_used_are_defined(template: dict[str, Any]) -> None:
    defined = set(template.get("Conditions", {}))
    for item in walk(template["Resources"]):
        if isinstance(item, dict) and "Fn::If" in item:
            assert item["Fn::If"][0] in defined
    for section in ("Resources", "Outputs"):
        for body in template.get(section, {}).values():
            if "Condition" in body:
                assert body["Condition"] in defined


def test_common_layer(resources: dict[str, Any]) -> None:
    layer = resources["CommonLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    props = layer["Properties"]
    assert props["ContentUri"] == "layers/common"
    assert props["CompatibleRuntimes"] == ["python3.13"]
    assert props["CompatibleArchitectures"] == ["arm64"]
    assert layer["Metadata"]["BuildMethod"] == "python3.13"
    assert layer["Metadata"].get("BuildArchitecture", "arm64") == "arm64"


@pytest.mark.parametrize(("directory", "logical_id"), FUNCTIONS.items())
def test_function_contract(template: dict[str, Any], directory: str, logical_id: str) -> None:
    resource = template["Resources"][logical_id]
    assert resource["Type"] == "AWS::Serverless::Function"
    props = resource["Properties"]
    assert props["CodeUri"] == f"functions/{directory}"
    assert props["Handler"] == "app.lambda_handler"
    assert function_property(template, logical_id, "Runtime") == "python3.13"
    assert function_property(template, logical_id, "Architectures") == ["arm64"]
    assert function_property(template, logical_id, "Tracing") == {"Fn::If": ["TracingActive", "Active", "PassThrough"]}
    assert {"Ref": "CommonLayer"} in props["Layers"]
    timeout = function_property(template, logical_id, "Timeout")
    assert isinstance(timeout, int)
    assert 1 <= timeout <= 900


def test_tracing_off_also_turns_off_the_tracer_in_the_code(template: dict[str, Any]) -> None:
    """PassThrough alone would leave Powertools loading the X-Ray SDK in every cold start."""
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_TRACE_DISABLED"] == {"Fn::If": ["TracingActive", "false", "true"]}
    assert template["Conditions"]["TracingActive"] == {"Fn::Equals": [{"Ref": "Tracing"}, "Active"]}


def test_only_the_three_functions_exist(resources: dict[str, Any]) -> None:
    functions = {k for k, v in resources.items() if v["Type"] in {"AWS::Serverless::Function", "AWS::Lambda::Function"}}
    assert functions == set(FUNCTIONS.values())


# --------------------------------------------------------------------------- template: HTTP API


def test_every_route_maps_to_its_function(template: dict[str, Any]) -> None:
    found: dict[tuple[str, str], str] = {}
    for logical_id in FUNCTIONS.values():
        for name, props in events_of(template, logical_id, "Api").items():
            route = (props["Method"].upper(), props["Path"])
            assert route not in found, f"{route} is declared twice ({name})"
            assert props["RestApiId"] == {"Ref": "AamDcsApi"}, name
            found[route] = logical_id
            if route[0] == "OPTIONS":
                assert props["Auth"] == {"ApiKeyRequired": False}, name
    assert found == ROUTES | PREFLIGHT_ROUTES


def test_api_has_tracing_throttling_cors_and_optional_key(template: dict[str, Any], resources: dict[str, Any]) -> None:
    api = resources["AamDcsApi"]
    assert api["Type"] == "AWS::Serverless::Api"
    props = api["Properties"]
    assert props["TracingEnabled"] == {"Fn::If": ["TracingActive", True, False]}
    assert template["Parameters"]["Tracing"]["Default"] == "Active"
    assert props["StageName"] == {"Ref": "StageName"}
    (method_settings,) = props["MethodSettings"]
    assert method_settings["ThrottlingRateLimit"] == {"Ref": "ThrottleRateLimit"}
    assert method_settings["ThrottlingBurstLimit"] == {"Ref": "ThrottleBurstLimit"}
    # CORS is the functions' job (the full allow-list); API Gateway's own Cors names one origin.
    assert "Cors" not in props
    assert props["Auth"]["ApiKeyRequired"] == {"Fn::If": ["RequireApiKey", True, False]}
    assert template["Parameters"]["ApiKeyRequired"]["Default"] == "false"
    for name in ("ApiUsagePlan", "ApiKey", "ApiUsagePlanKey"):
        assert resources[name]["Condition"] == "RequireApiKey", name
    assert template["Outputs"]["ApiKeyId"]["Condition"] == "RequireApiKey"


# --------------------------------------------------------------------------- template: settings


@pytest.mark.parametrize("logical_id", FUNCTIONS.values())
def test_every_setting_reaches_every_function(template: dict[str, Any], logical_id: str) -> None:
    env = function_environment(template, logical_id)
    missing = [name for name in (*SETTINGS, *OPERATIONAL) if name not in env]
    assert not missing, f"{logical_id} lacks {missing}"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "AamDcs"


def test_settings_are_wired_to_parameters_and_resources(template: dict[str, Any]) -> None:
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert env["PROFILES_TABLE"] == {"Ref": "ProfilesTable"}
    assert env["SIGNAL_QUEUE_URL"] == {"Ref": "SignalQueue"}
    assert env["ENRICH_QUEUE_URL"] == {"Ref": "EnrichQueue"}
    assert env["EVENT_BUS_NAME"] == {"Ref": "SegmentsEventBus"}
    parameters = template["Parameters"]
    for name in SETTINGS + OPERATIONAL:
        value = env[name]
        if isinstance(value, dict) and "Ref" in value:
            assert value["Ref"] in parameters or value["Ref"] in template["Resources"], name
    assert parameters["SegmentSource"]["AllowedValues"] == ["stuff", "cts"]
    assert parameters["IdServiceHost"]["Default"] == "dpm.demdex.net"
    assert parameters["DcsEndpoint"]["Default"] == ""
    assert parameters["SegmentKey"]["Default"] == "segs"
    assert parameters["MaxAttempts"]["Default"] == 3
    assert parameters["UserCallsPerMinute"]["Default"] == 30


# --------------------------------------------------------------------------- template: queues


@pytest.mark.parametrize(("queue", "spec"), QUEUES.items())
def test_fifo_queue_high_throughput_with_dead_letter_queue(
    template: dict[str, Any], resources: dict[str, Any], queue: str, spec: tuple[str, str]
) -> None:
    dlq, consumer = spec
    props = resources[queue]["Properties"]
    assert resources[queue]["Type"] == "AWS::SQS::Queue"
    assert props["FifoQueue"] is True
    assert props["ContentBasedDeduplication"] is False
    assert props["DeduplicationScope"] == "messageGroup"
    assert props["FifoThroughputLimit"] == "perMessageGroupId"
    assert props["SqsManagedSseEnabled"] is True
    assert props["VisibilityTimeout"] >= 6 * function_property(template, consumer, "Timeout")
    redrive = props["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq, "Arn"]}
    assert redrive["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    dlq_props = resources[dlq]["Properties"]
    assert dlq_props["FifoQueue"] is True
    assert dlq_props["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_sqs_event_sources_report_batch_failures_and_cap_concurrency(template: dict[str, Any]) -> None:
    consumers: dict[str, str] = {}
    for logical_id in FUNCTIONS.values():
        for name, props in events_of(template, logical_id, "SQS").items():
            assert "ReportBatchItemFailures" in props["FunctionResponseTypes"], name
            assert "MaximumConcurrency" in props["ScalingConfig"], name
            assert 1 <= props["BatchSize"] <= 10, name
            queue = props["Queue"]["Fn::GetAtt"][0]
            consumers[queue] = logical_id
    assert consumers == {queue: spec[1] for queue, spec in QUEUES.items()}
    for name in ("SignalQueueMaxConcurrency", "EnrichQueueMaxConcurrency"):
        assert template["Parameters"][name]["MinValue"] >= 2


def test_scheduled_jobs_default_to_disabled(template: dict[str, Any]) -> None:
    schedules = {logical_id: events_of(template, logical_id, "ScheduleV2") for logical_id in FUNCTIONS.values()}
    assert not schedules["ResolveIdsFunction"]
    assert len(schedules["SendSignalsFunction"]) == 1
    assert len(schedules["LookupSegmentsFunction"]) == 1
    parameters = template["Parameters"]
    for logical_id, job in (("SendSignalsFunction", "send_signals"), ("LookupSegmentsFunction", "enrich_segments")):
        (props,) = schedules[logical_id].values()
        state = parameters[props["State"]["Ref"]]
        assert state["Default"] == "DISABLED"
        job_input = json.loads(parameters[props["Input"]["Ref"]]["Default"])
        assert job_input["job"] == job
        assert set(job_input["source"]) <= {"s3", "table"}
        assert props["RetryPolicy"]["MaximumRetryAttempts"] >= 0
        assert props["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}}
        # A failed job run is not rerun automatically (a rerun could send signals twice).
        invoke_config = template["Resources"][logical_id]["Properties"]["EventInvokeConfig"]
        assert invoke_config["MaximumRetryAttempts"] == 0
        assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == {
            "Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]
        }


# --------------------------------------------------------------------------- template: IAM


def _statements(node: Any) -> Iterator[dict[str, Any]]:
    for item in walk(node):
        if isinstance(item, dict) and ("Action" in item or "NotAction" in item) and "Effect" in item:
            yield item


def test_no_wildcard_actions(resources: dict[str, Any]) -> None:
    for statement in _statements(resources):
        assert "NotAction" not in statement
        for action in _actions(statement):
            assert action != "*"
            assert not action.endswith(":*"), action


def _policy_entries(policies: Any) -> Iterator[Any]:
    for entry in policies if isinstance(policies, list) else [policies]:
        if isinstance(entry, dict) and "Fn::If" in entry:
            for branch in entry["Fn::If"][1:]:
                if branch != {"Ref": "AWS::NoValue"}:
                    yield from _policy_entries(branch)
        else:
            yield entry


@pytest.mark.parametrize("logical_id", FUNCTIONS.values())
def test_function_policies_are_scoped(resources: dict[str, Any], logical_id: str) -> None:
    props = resources[logical_id]["Properties"]
    assert "Role" not in props
    for entry in _policy_entries(props.get("Policies", [])):
        if isinstance(entry, str):
            assert not FULL_ACCESS.search(entry), entry
            continue
        if "Statement" in entry:
            continue  # inline statements are checked by test_no_wildcard_actions
        ((template_name, arguments),) = entry.items()
        assert not FULL_ACCESS.search(template_name), template_name
        assert template_name not in {"S3CrudPolicy", "S3FullAccessPolicy", "SQSPollerPolicy"}, template_name
        for value in walk(arguments):
            assert value != "*", template_name
            assert not (isinstance(value, str) and "*" in value), (template_name, value)


def test_s3_access_only_when_a_job_bucket_is_set(resources: dict[str, Any]) -> None:
    for logical_id in FUNCTIONS.values():
        for entry in resources[logical_id]["Properties"].get("Policies", []):
            if isinstance(entry, dict) and "S3ReadPolicy" in entry:
                pytest.fail(f"{logical_id} reads S3 unconditionally")
            if isinstance(entry, dict) and "Fn::If" in entry:
                condition, when_set, when_unset = entry["Fn::If"]
                assert condition == "HasJobSourceBucket"
                assert when_set == {"S3ReadPolicy": {"BucketName": {"Ref": "JobSourceBucket"}}}
                assert when_unset == {"Ref": "AWS::NoValue"}


def test_each_function_reaches_only_its_own_queue(resources: dict[str, Any]) -> None:
    def queues(logical_id: str) -> set[str]:
        return {
            entry["SQSSendMessagePolicy"]["QueueName"]["Fn::GetAtt"][0]
            for entry in _policy_entries(resources[logical_id]["Properties"].get("Policies", []))
            if isinstance(entry, dict) and "SQSSendMessagePolicy" in entry
        }

    assert queues("ResolveIdsFunction") == set()
    assert queues("SendSignalsFunction") == {"SignalQueue", "SignalDeadLetterQueue"}
    assert queues("LookupSegmentsFunction") == {"EnrichQueue", "EnrichDeadLetterQueue"}


def test_a_worker_may_delay_retries_on_its_own_queue_only(resources: dict[str, Any]) -> None:
    """Retry backoff is ChangeMessageVisibility, which the policy SAM adds for an SQS event lacks."""

    def delayable(logical_id: str) -> set[str]:
        return {
            statement["Resource"]["Fn::GetAtt"][0]
            for entry in _policy_entries(resources[logical_id]["Properties"].get("Policies", []))
            if isinstance(entry, dict) and "Statement" in entry
            for statement in entry["Statement"]
            if "sqs:ChangeMessageVisibility" in _actions(statement)
        }

    assert delayable("ResolveIdsFunction") == set()
    assert delayable("SendSignalsFunction") == {"SignalQueue"}
    assert delayable("LookupSegmentsFunction") == {"EnrichQueue"}


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return actions if isinstance(actions, list) else [actions]


# --------------------------------------------------------------------------- template: data, logs, alarms


def test_profiles_table(resources: dict[str, Any]) -> None:
    table = resources["ProfilesTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {(a["AttributeName"], a["AttributeType"]) for a in props["AttributeDefinitions"]} == {
        ("pk", "S"),
        ("sk", "S"),
    }
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


@pytest.mark.parametrize("logical_id", FUNCTIONS.values())
def test_every_function_has_a_log_group_with_retention(resources: dict[str, Any], logical_id: str) -> None:
    log_group_ref = resources[logical_id]["Properties"]["LoggingConfig"]["LogGroup"]
    log_group = resources[log_group_ref["Ref"]]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_alarms_cover_every_dead_letter_queue_and_function(resources: dict[str, Any]) -> None:
    watched_queues: set[str] = set()
    watched_functions: set[str] = set()
    for resource in resources.values():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        assert props["AlarmActions"] == {
            "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
        }
        (dimension,) = props["Dimensions"]
        if props["Namespace"] == "AWS/SQS":
            assert props["MetricName"] == "ApproximateNumberOfMessagesVisible"
            watched_queues.add(dimension["Value"]["Fn::GetAtt"][0])
        elif props["Namespace"] == "AWS/Lambda":
            assert props["MetricName"] == "Errors"
            watched_functions.add(dimension["Value"]["Ref"])
        assert props["Threshold"] == 0
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
    dead_letter_queues = {k for k in resources if k.endswith("DeadLetterQueue")}
    assert {"SignalDeadLetterQueue", "EnrichDeadLetterQueue"} <= dead_letter_queues
    assert watched_queues == dead_letter_queues
    assert watched_functions == set(FUNCTIONS.values())


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for name in (
        "ApiUrl",
        "SignalQueueUrl",
        "EnrichQueueUrl",
        "SignalDeadLetterQueueUrl",
        "EnrichDeadLetterQueueUrl",
        "ProfilesTableName",
        "EventBusName",
        "ResolveIdsFunctionArn",
        "SendSignalsFunctionArn",
        "LookupSegmentsFunctionArn",
    ):
        assert name in outputs, name
    assert outputs["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${AamDcsApi}.execute-api.${AWS::Region}.amazonaws.com/${StageName}/"
    }


# --------------------------------------------------------------------------- samconfig.toml


def test_samconfig_environments(template: dict[str, Any]) -> None:
    config = tomllib.loads(SAMCONFIG_PATH.read_text(encoding="utf-8"))
    assert str(config["version"]) == "0.1"
    parameters = template["Parameters"]
    required = {name for name, spec in parameters.items() if "Default" not in spec}
    stacks = {}
    for env in ("default", "dev", "prod"):
        assert config[env]["build"]["parameters"]["cached"] is True
        assert config[env]["validate"]["parameters"]["lint"] is True
        deploy = config[env]["deploy"]["parameters"]
        stacks[env] = deploy["stack_name"]
        assert set(deploy["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
        assert deploy["resolve_s3"] is True
        overrides = deploy["parameter_overrides"]
        pairs = overrides if isinstance(overrides, list) else overrides.split()
        names = {pair.split("=", 1)[0] for pair in pairs}
        assert names <= set(parameters), names - set(parameters)
        assert required <= names, required - names
    assert stacks["dev"] == "aam-dcs-dev"
    assert stacks["prod"] == "aam-dcs-prod"
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True


# --------------------------------------------------------------------------- sample events

EVENT_FILES = sorted(EVENTS_DIR.glob("**/*.json"))


def _event_id(path: Path) -> str:
    return str(path.relative_to(EVENTS_DIR))


def test_every_function_has_sample_events() -> None:
    assert {p.parent.name for p in EVENT_FILES} == set(FUNCTIONS)
    names = {(p.parent.name, p.stem) for p in EVENT_FILES}
    for directory in FUNCTIONS:
        assert (directory, "direct") in names
    expected = {
        ("resolve_ids", "api_get"),
        ("resolve_ids", "api_post"),
        ("send_signals", "api_post"),
        ("send_signals", "api_post_async"),
        ("send_signals", "sqs"),
        ("send_signals", "schedule"),
        ("lookup_segments", "api_get"),
        ("lookup_segments", "api_post"),
        ("lookup_segments", "sqs"),
        ("lookup_segments", "schedule_table"),
        ("lookup_segments", "schedule_s3"),
    }
    assert expected <= names


def _check_input(directory: str, payload: dict[str, Any], where: str) -> None:
    unknown = set(payload) - INPUT_FIELDS[directory]
    assert not unknown, f"{where}: fields outside the contract: {unknown}"
    for customer_id in payload.get("customer_ids", []):
        assert set(customer_id) <= CUSTOMER_ID_FIELDS, where
        assert "id" in customer_id, where
        assert ("data_source_id" in customer_id) != ("integration_code" in customer_id), where
    for field in ("mid", "uuid"):
        if field in payload:
            assert re.fullmatch(r"[0-9]{38}", payload[field]), where
    if "dcs_response" in payload:
        assert set(payload["dcs_response"]) <= {"uuid", "dcs_region"}, where


@pytest.mark.parametrize("path", EVENT_FILES, ids=_event_id)
def test_sample_event_has_the_shape_of_its_trigger(template: dict[str, Any], path: Path) -> None:
    event = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(event, dict)
    directory, trigger = path.parent.name, path.stem
    logical_id = FUNCTIONS[directory]
    if trigger.startswith("api_"):
        for key in ("resource", "path", "httpMethod", "headers", "multiValueHeaders", "requestContext", "body"):
            assert key in event, key
        assert event["isBase64Encoded"] is False
        context = event["requestContext"]
        for key in ("requestId", "stage", "resourcePath", "httpMethod"):
            assert context[key], key
        assert context["identity"]["sourceIp"]
        assert context["httpMethod"] == event["httpMethod"]
        assert context["resourcePath"] == event["resource"]
        assert ROUTES[(event["httpMethod"], event["resource"])] == logical_id
        assert {k: [v] for k, v in event["headers"].items()} == event["multiValueHeaders"]
        if event["httpMethod"] == "GET":
            assert event["body"] is None
            cookie = event["headers"]["Cookie"]
            assert f"AMCV_{ORG_ID.replace('@', '%40')}=" in cookie
        else:
            _check_input(directory, json.loads(event["body"]), _event_id(path))
    elif trigger == "sqs":
        records = event["Records"]
        assert records
        for record in records:
            assert record["eventSource"] == "aws:sqs"
            assert record["eventSourceARN"].startswith("arn:aws:sqs:")
            assert record["eventSourceARN"].endswith(".fifo")
            attributes = record["attributes"]
            for key in ("MessageGroupId", "MessageDeduplicationId", "ApproximateReceiveCount", "SequenceNumber"):
                assert attributes[key], key
            body = json.loads(record["body"])
            assert body["kind"] == JOB_KINDS[directory]
            _check_input(directory, body["request"], _event_id(path))
    elif trigger.startswith("schedule"):
        assert event["job"] == JOB_KINDS[directory]
        ((kind, source),) = event["source"].items()
        assert kind in {"s3", "table"}
        if kind == "s3":
            assert source.startswith("s3://")
    else:
        assert trigger == "direct"
        _check_input(directory, event, _event_id(path))
