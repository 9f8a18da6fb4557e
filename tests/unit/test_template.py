"""template.yaml: what a platform team relies on when it deploys batchwire."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from devtools.template import (
    ASYNC_EVENT_TYPES,
    load_template,
    transformed_template,
    wildcard_grants,
)

TEMPLATE = load_template()
FUNCTIONS = {
    name: resource
    for name, resource in TEMPLATE["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
}


@pytest.fixture(scope="module")
def deployed() -> dict[str, Any]:
    return transformed_template(TEMPLATE)


def test_every_parameter_is_described() -> None:
    undocumented = [
        name
        for name, parameter in TEMPLATE["Parameters"].items()
        if len(parameter.get("Description", "")) < 20
    ]
    assert undocumented == []


def _queue_mappings(function: str) -> list[str]:
    """Queues consumed by an explicit event source mapping of ``function``."""
    return [
        resource["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]
        for resource in TEMPLATE["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
        and resource["Properties"]["FunctionName"] == {"Ref": function}
    ]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_has_a_trigger(name: str) -> None:
    triggers = FUNCTIONS[name]["Properties"].get("Events") or _queue_mappings(name)
    assert triggers, f"{name} has no trigger"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_queue_mapping_has_a_dead_letter_queue(name: str) -> None:
    for queue_id in _queue_mappings(name):
        redrive = TEMPLATE["Resources"][queue_id]["Properties"].get("RedrivePolicy", {})
        assert redrive.get("deadLetterTargetArn"), f"{name}: queue {queue_id}"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_trigger_has_a_failure_path(name: str) -> None:
    # Given a function's triggers
    props = FUNCTIONS[name]["Properties"]
    events = props.get("Events", {})

    # Then asynchronous ones end in an on-failure destination, queues in a dead-letter queue,
    # and Scheduler / EventBridge targets in their own dead-letter queue
    kinds = {event["Type"] for event in events.values()}
    if kinds & ASYNC_EVENT_TYPES:
        destination = props.get("EventInvokeConfig", {}).get("DestinationConfig", {})
        assert destination.get("OnFailure", {}).get("Destination"), name
    for event_name, event in events.items():
        if event["Type"] in ("Schedule", "ScheduleV2"):
            assert event["Properties"].get("DeadLetterConfig"), f"{name}/{event_name}"
        if event["Type"] == "SQS":
            queue_id = event["Properties"]["Queue"]["Fn::GetAtt"][0]
            redrive = TEMPLATE["Resources"][queue_id]["Properties"].get("RedrivePolicy", {})
            assert redrive.get("deadLetterTargetArn"), f"{name}/{event_name} queue {queue_id}"


def test_no_mutating_action_on_a_wildcard_resource(deployed: dict[str, Any]) -> None:
    assert wildcard_grants(deployed) == []


#: AWS managed policies a function role may carry. Both are attached by SAM: the basic
#: execution role (write-only CloudWatch Logs, how Lambda ships every function's logs)
#: and X-Ray write access (X-Ray has no resource-level permissions).
ALLOWED_MANAGED_POLICIES = {"AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}


def test_function_roles_carry_no_broad_managed_policy(deployed: dict[str, Any]) -> None:
    # A SAM SQS event would attach AWSLambdaSQSQueueExecutionRole: DeleteMessage on any queue
    attached = {
        (name, str(arn).rsplit("/", 1)[-1])
        for name, resource in deployed["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role" and name.endswith("FunctionRole")
        for arn in resource["Properties"].get("ManagedPolicyArns", [])
    }
    assert {policy for _, policy in attached} <= ALLOWED_MANAGED_POLICIES, attached


def test_every_queue_event_source_has_a_dead_letter_queue() -> None:
    mappings = [
        resource["Properties"]
        for resource in TEMPLATE["Resources"].values()
        if resource["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    assert len(mappings) >= 2
    for mapping in mappings:
        queue_id = mapping["EventSourceArn"]["Fn::GetAtt"][0]
        redrive = TEMPLATE["Resources"][queue_id]["Properties"].get("RedrivePolicy", {})
        assert redrive.get("deadLetterTargetArn"), queue_id
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"], queue_id


def test_the_wildcard_check_catches_a_widened_policy() -> None:
    # Given the submitter allowed to submit to any queue
    widened = copy.deepcopy(TEMPLATE)
    statements = widened["Resources"]["SubmitterFunction"]["Properties"]["Policies"][0]["Statement"]
    statements[0]["Resource"] = "*"

    # When the deployed form is checked, Then the widened grant is named
    assert wildcard_grants(transformed_template(widened)) == [
        "SubmitterFunctionRole/SubmitToConfiguredQueuesAndDefinitions: batch:SubmitJob"
    ]


def test_the_wildcard_check_catches_a_service_wide_arn() -> None:
    # Given a statement granting DeleteItem on every table of the account
    widened = copy.deepcopy(TEMPLATE)
    statements = widened["Resources"]["SubmitterFunction"]["Properties"]["Policies"][0]["Statement"]
    statements.append(
        {
            "Sid": "Everything",
            "Effect": "Allow",
            "Action": "dynamodb:DeleteItem",
            "Resource": {"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:*:*"},
        }
    )

    # Then it is named
    assert wildcard_grants(transformed_template(widened)) == [
        "SubmitterFunctionRole/Everything: dynamodb:DeleteItem"
    ]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_logs_to_a_group_with_retention(name: str) -> None:
    group = FUNCTIONS[name]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert TEMPLATE["Resources"][group]["Properties"]["RetentionInDays"] == {
        "Ref": "LogRetentionDays"
    }


def test_globals_set_runtime_architecture_and_tracing_once() -> None:
    function_globals = TEMPLATE["Globals"]["Function"]
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Tracing"] == "Active"
    assert function_globals["LoggingConfig"]["LogFormat"] == "JSON"
    for name, function in FUNCTIONS.items():
        assert "Architectures" not in function["Properties"], name


def test_no_secret_values_in_environment() -> None:
    # Secrets are referenced by ARN and read at run time, never placed in the environment
    suspicious = ("hooks.slack.com", "xoxb-", "AKIA", "password")
    for name, function in FUNCTIONS.items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        for variable, value in variables.items():
            assert not any(marker in str(value) for marker in suspicious), f"{name}.{variable}"


def _alarmed(namespace: str, metric: str) -> set[str]:
    """Logical ids whose metric has an alarm (FunctionName / QueueName dimension)."""
    found = set()
    for resource in TEMPLATE["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] != "AWS::CloudWatch::Alarm" or props.get("MetricName") != metric:
            continue
        if props.get("Namespace") != namespace:
            continue
        for dimension in props.get("Dimensions", []):
            value = dimension["Value"]
            if isinstance(value, dict):
                found.add(value.get("Ref") or value.get("Fn::GetAtt", [""])[0])
    return found


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_has_an_alarm_on(metric: str) -> None:
    assert set(FUNCTIONS) - _alarmed("AWS/Lambda", metric) == set()


def _dead_letter_queues(node: Any, inside: str = "") -> set[str]:
    """Queues named by an OnFailure destination, a DeadLetterConfig or a RedrivePolicy."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("OnFailure", "DeadLetterConfig", "RedrivePolicy"):
                found |= _dead_letter_queues(value, key)
            elif inside and key == "Fn::GetAtt":
                found.add(value[0])
            else:
                found |= _dead_letter_queues(value, inside)
    elif isinstance(node, list):
        for item in node:
            found |= _dead_letter_queues(item, inside)
    return found


def test_every_dead_letter_queue_has_a_depth_alarm() -> None:
    # Given every queue something dead-letters into
    queues = _dead_letter_queues(TEMPLATE["Resources"])
    assert {"FailedInvocationsQueue", "SchedulerDeadLetterQueue"} <= queues

    # Then each has an alarm on visible messages
    assert queues - _alarmed("AWS/SQS", "ApproximateNumberOfMessagesVisible") == set()


def test_dashboard_shows_metrics_the_functions_emit() -> None:
    # Given the dashboard body with its ${...} references filled in
    import json
    import re
    from pathlib import Path

    body = TEMPLATE["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]
    sources = "".join(
        path.read_text() for path in (Path(__file__).parents[2] / "functions").rglob("*.py")
    )

    # Then every batchwire metric it plots is one a function emits, under its service name
    plotted = [
        (metric[1], metric[3])
        for widget in widgets
        for metric in widget["properties"]["metrics"]
        if metric[0] == "batchwire/x"  # batchwire/${AWS::StackName}: one namespace per stack
    ]
    services = {
        function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for function in FUNCTIONS.values()
    }
    assert len(plotted) >= 4
    for name, service in plotted:
        assert f'"{name}"' in sources, name
        assert service in services, service


def test_example_workload_is_off_by_default_and_wholly_conditional() -> None:
    assert TEMPLATE["Parameters"]["ExampleWorkload"]["Default"] == "off"
    examples = {name: r for name, r in TEMPLATE["Resources"].items() if name.startswith("Example")}
    assert len(examples) >= 10
    assert {r.get("Condition") for r in examples.values()} == {"CreateExampleWorkload"}


def test_example_workload_is_named_after_the_stack_and_uses_none_of_your_settings() -> None:
    # Given the example resources
    resources = TEMPLATE["Resources"]
    examples = {name: r for name, r in resources.items() if name.startswith("Example")}

    # Then its queue, definitions, cluster and family are named after the stack, so two
    # stacks never share one and none is a name you gave for your own jobs
    props = {name: r["Properties"] for name, r in examples.items()}
    assert props["ExampleJobQueue"]["JobQueueName"] == {"Fn::Sub": "${AWS::StackName}-example"}
    assert props["ExampleProducerJobDefinition"]["JobDefinitionName"] == {
        "Fn::Sub": "${AWS::StackName}-example-import"
    }
    assert props["ExampleConsumerJobDefinition"]["JobDefinitionName"] == {
        "Fn::Sub": "${AWS::StackName}-example-consume"
    }
    assert props["ExampleCluster"]["ClusterName"] == {"Fn::Sub": "${AWS::StackName}-example"}
    assert props["ExampleTaskDefinition"]["Family"] == {"Fn::Sub": "${AWS::StackName}-example"}
    yours = {"ScheduleJobQueue", "ScheduleJobDefinition", "ScheduleState", "RetrierClusterNames"}
    text = json.dumps(examples)
    for name in yours:
        assert f'"Ref": "{name}"' not in text, name
        assert "${" + name + "}" not in text, name
    # and its chain rules ride apart from yours, only with ExampleWorkload=on
    variables = resources["ChainerFunction"]["Properties"]["Environment"]["Variables"]
    assert json.loads(variables["CHAIN_RULES"]) == {"rules": []}
    assert variables["EXAMPLE_CHAIN_RULES"]["Fn::If"][0] == "CreateExampleWorkload"
    assert variables["EXAMPLE_CHAIN_RULES"]["Fn::If"][2] == ""  # no rules


@pytest.mark.parametrize("example", ["off", "on"])
def test_every_role_the_stack_makes_takes_the_permissions_boundary(example: str) -> None:
    # Given the template as CloudFormation receives it (after the SAM transform)
    from devtools.rehearse import transform

    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:slack-AbCdEf"
    deployed = transform(TEMPLATE, {"SlackWebhookSecretArn": secret, "ExampleWorkload": example})
    roles = {
        name: resource["Properties"]
        for name, resource in deployed["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
    }

    # Then every role, the functions', the schedule's and the example's, has the boundary
    # when PermissionsBoundaryArn is set, and none when it is empty
    boundary = {
        "Fn::If": [
            "HasPermissionsBoundary",
            {"Ref": "PermissionsBoundaryArn"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert len(roles) >= (5 if example == "off" else 8)
    for name, properties in roles.items():
        assert properties.get("PermissionsBoundary") == boundary, name


def test_every_alarm_reaches_slack_in_alarm_and_back_to_ok() -> None:
    # Given the stack's alarms and the notifier's triggers
    resources = TEMPLATE["Resources"]
    alarms = {
        n: r["Properties"] for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    events = resources["NotifierFunction"]["Properties"]["Events"]

    # Then each alarm publishes both its ALARM and its OK to AlarmTopic, which the notifier
    # takes (undeliverable notifications wait in SubscriptionDeadLetterQueue)
    assert len(alarms) >= 20
    for name, properties in alarms.items():
        assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert properties["OKActions"] == [{"Ref": "AlarmTopic"}], name
    subscription = events["AlarmNotifications"]["Properties"]
    assert subscription["Topic"] == {"Ref": "AlarmTopic"}
    assert subscription["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["SubscriptionDeadLetterQueue", "Arn"]
    }
    # and lost events and unrouted records alarm too
    assert {"ChainUnroutedAlarm", "DestinationDeliveryFailuresAlarm"} <= set(alarms)
    assert "DeadLetterDeliveryFailuresAlarm" in alarms
