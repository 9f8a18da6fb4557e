"""The notifier's section of template.yaml: least privilege, failure paths, one filter per group.

CloudFormation is not available offline, so the few intrinsic functions this section uses
(Ref, Join, Split, Select, If, Equals, Not, Sub) are evaluated here for given parameters.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from devtools.template import load_template

TEMPLATE = load_template()
DEFAULT_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:team-AbCdEf"
ONCALL_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:oncall-AbCdEf"
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "eu-west-1", "AWS::AccountId": "123456789012"}


def parameters(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in TEMPLATE["Parameters"].items():
        default = spec.get("Default")
        if spec["Type"] == "CommaDelimitedList" and isinstance(default, str):
            default = default.split(",") if default else [""]
        values[name] = default
    values["SlackWebhookSecretArn"] = DEFAULT_ARN
    values.update(overrides)
    return values


def evaluate(node: Any, params: dict[str, Any]) -> Any:
    """The value CloudFormation would give ``node`` with ``params`` (this section's subset)."""
    if isinstance(node, list):
        return [evaluate(item, params) for item in node]
    if not isinstance(node, dict):
        return node
    if len(node) != 1:
        return {key: evaluate(value, params) for key, value in node.items()}
    ((name, arg),) = node.items()
    if name == "Ref":
        return {**PSEUDO, **params}.get(arg, f"<{arg}>")
    if name == "Condition":
        return evaluate(TEMPLATE["Conditions"][arg], params)
    if name == "Fn::Join":
        return arg[0].join(evaluate(arg[1], params))
    if name == "Fn::Split":
        return evaluate(arg[1], params).split(arg[0])
    if name == "Fn::Select":
        return evaluate(arg[1], params)[arg[0]]
    if name == "Fn::Equals":
        return evaluate(arg[0], params) == evaluate(arg[1], params)
    if name == "Fn::Not":
        return not evaluate(arg[0], params)
    if name == "Fn::If":
        chosen = arg[1] if evaluate({"Condition": arg[0]}, params) else arg[2]
        return evaluate(chosen, params)
    if name == "Fn::Sub":
        text, variables = (arg, {}) if isinstance(arg, str) else arg
        scope = {**PSEUDO, **params, **{k: evaluate(v, params) for k, v in variables.items()}}
        return re.sub(r"\$\{([^}]+)\}", lambda match: str(scope[match.group(1)]), text)
    return {name: evaluate(arg, params)}


def notifier_statements(params: dict[str, Any]) -> dict[str, Any]:
    policy = TEMPLATE["Resources"]["NotifierFunction"]["Properties"]["Policies"][0]
    statements = [evaluate(statement, params) for statement in policy["Statement"]]
    # a statement under !If [..., !Ref AWS::NoValue] is left out when its condition is false
    return {s["Sid"]: s for s in statements if s != "<AWS::NoValue>"}


def created(logical_id: str, params: dict[str, Any]) -> bool:
    condition = TEMPLATE["Resources"][logical_id].get("Condition")
    return condition is None or bool(evaluate({"Condition": condition}, params))


def test_function_reads_only_the_default_webhook_secret_by_default() -> None:
    statements = notifier_statements(parameters())
    assert statements["ReadConfiguredWebhookSecrets"]["Resource"] == [DEFAULT_ARN]


def test_function_reads_the_route_secrets_it_is_given_and_no_other() -> None:
    statements = notifier_statements(parameters(SlackRouteWebhookSecretArns=[ONCALL_ARN]))
    assert statements["ReadConfiguredWebhookSecrets"]["Resource"] == [DEFAULT_ARN, ONCALL_ARN]


def test_no_notifier_statement_has_a_wildcard_resource() -> None:
    for sid, statement in notifier_statements(parameters()).items():
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        assert "*" not in resources, sid


@pytest.mark.parametrize(
    "groups",
    [
        ["/aws/batch/job"],
        ["/aws/batch/job", "/ecs/reports"],
        ["/a", "/b", "/c", "/ecs/d", "/ecs/e-1"],
    ],
)
def test_one_subscription_and_permission_per_configured_log_group(groups: list[str]) -> None:
    # Given the log group parameter
    params = parameters(NotifierLogGroupNames=",".join(groups))
    resources = TEMPLATE["Resources"]

    def of_type(kind: str) -> list[dict[str, Any]]:
        return [
            evaluate(resource["Properties"], params)
            for resource in resources.values()
            if resource["Type"] == kind
            and evaluate({"Condition": resource.get("Condition", "")}, params)
        ]

    # Then each group has a subscription filter and an invoke permission scoped to it
    filters = of_type("AWS::Logs::SubscriptionFilter")
    assert [f["LogGroupName"] for f in filters] == groups
    permissions = [
        p for p in of_type("AWS::Lambda::Permission") if p["Principal"] == "logs.amazonaws.com"
    ]
    assert [p["SourceArn"] for p in permissions] == [
        f"arn:aws:logs:eu-west-1:123456789012:log-group:{group}:*" for group in groups
    ]
    # and each filter waits for its own permission (CloudWatch Logs tests the invoke)
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::Logs::SubscriptionFilter":
            suffix = logical_id.removeprefix("NotifierSubscription")
            assert resource["DependsOn"] == f"NotifierLogsPermission{suffix}"


def test_no_log_group_means_no_subscription() -> None:
    params = parameters(NotifierLogGroupNames="")
    subscribed = [
        logical_id
        for logical_id, resource in TEMPLATE["Resources"].items()
        if resource["Type"] in ("AWS::Logs::SubscriptionFilter", "AWS::Lambda::Permission")
        and str(resource.get("Condition", "")).startswith("NotifierHasLogGroup")
        and evaluate({"Condition": resource["Condition"]}, params)
    ]
    assert subscribed == []


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("/aws/batch/job", True),
        ("", True),
        ("/a,/b,/c,/d,/e", True),
        ("/a,/b,/c,/d,/e,/f", False),  # a 6th group: refused before anything deploys
        ("/a, /b", False),
    ],
)
def test_more_log_groups_than_the_stack_subscribes_are_refused_at_deploy(
    value: str, accepted: bool
) -> None:
    # CloudFormation checks the parameter's pattern before it creates anything
    spec = TEMPLATE["Parameters"]["NotifierLogGroupNames"]
    assert bool(re.fullmatch(spec["AllowedPattern"], value)) is accepted
    assert "at most 5 log group names" in spec["ConstraintDescription"]


def test_failed_invocations_reach_the_on_failure_queue_and_concurrency_is_reserved() -> None:
    properties = TEMPLATE["Resources"]["NotifierFunction"]["Properties"]
    on_failure = properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure["Destination"] == {"Fn::GetAtt": ["FailedInvocationsQueue", "Arn"]}
    assert properties["ReservedConcurrentExecutions"] == {
        "Fn::If": [
            "NotifierReservesConcurrency",
            {"Ref": "NotifierReservedConcurrency"},
            {"Ref": "AWS::NoValue"},
        ]
    }
    assert TEMPLATE["Parameters"]["NotifierReservedConcurrency"]["Default"] == 1
    assert TEMPLATE["Conditions"]["NotifierReservesConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "NotifierReservedConcurrency"}, 0]}]
    }


def test_no_environment_value_holds_a_webhook_url() -> None:
    variables = TEMPLATE["Resources"]["NotifierFunction"]["Properties"]["Environment"]["Variables"]
    values = evaluate(variables, parameters())
    assert not any("hooks.slack" in str(value) for value in values.values())
    assert values["SLACK_WEBHOOK_SECRET_ARN"] == DEFAULT_ARN
