"""Two stacks of the template side by side in one account, as samconfig.toml deploys them.

``sam deploy`` makes the ``[default]`` stack (development) and ``sam deploy --config-env
prod`` the ``[prod]`` one, both in one account and region. Each is rehearsed with its own
parameter overrides into the same local engine, and every name the stacks give their
resources is compared: AWS refuses a second queue, cluster, schedule or dashboard of the
same name, and moto does not always, so the names are checked here as AWS would.
"""

from __future__ import annotations

import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from devtools.local_aws import LocalAws
from devtools.rehearse import DeployedStack, VariantReport, rehearse_variant, resolved_properties
from devtools.template import ROOT

SAMCONFIG = ROOT / "samconfig.toml"

#: The property holding a resource's own name, for each type the template uses; None for
#: types whose names AWS always generates (or that have none).
NAME_PROPERTY: dict[str, str | None] = {
    "AWS::Batch::ComputeEnvironment": "ComputeEnvironmentName",
    "AWS::Batch::JobDefinition": "JobDefinitionName",
    "AWS::Batch::JobQueue": "JobQueueName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::ECS::Cluster": "ClusterName",
    "AWS::ECS::TaskDefinition": "Family",
    "AWS::Events::Rule": "Name",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::Policy": None,  # inline in its roles
    "AWS::IAM::Role": "RoleName",
    "AWS::Lambda::EventInvokeConfig": None,
    "AWS::Lambda::EventSourceMapping": None,
    "AWS::Lambda::Function": "FunctionName",
    # AWS adds a version to a layer of the same name; each stack keeps its versions apart
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::Lambda::Permission": None,
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Logs::SubscriptionFilter": None,  # named per log group by the stack's resource
    "AWS::S3::Bucket": "BucketName",
    "AWS::S3::BucketPolicy": None,
    "AWS::SNS::Subscription": None,
    "AWS::SNS::Topic": "TopicName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SQS::QueuePolicy": None,
    "AWS::Scheduler::Schedule": "Name",  # unique within its GroupName
    "AWS::Scheduler::ScheduleGroup": "Name",
    "AWS::SSM::Parameter": "Name",
}


@dataclass
class SideBySide:
    """What the two stacks' deploys and names came to."""

    reports: list[VariantReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigEnv:
    """What ``sam deploy --config-env NAME`` deploys."""

    stack_name: str
    parameters: dict[str, str]
    tags: dict[str, str]


def _pairs(text: str) -> dict[str, str]:
    """``Name=Value Name2="a value"`` as samconfig.toml writes overrides and tags."""
    return {name: value for name, _, value in (item.partition("=") for item in shlex.split(text))}


def config_envs(path: Any = SAMCONFIG) -> dict[str, ConfigEnv]:
    """samconfig.toml environment -> what its deploy creates."""
    config = tomllib.loads(path.read_text())
    envs = {}
    for env, commands in config.items():
        if not isinstance(commands, dict) or "deploy" not in commands:
            continue
        stack = commands.get("global", {}).get("parameters", {}).get("stack_name")
        deploy = commands["deploy"].get("parameters", {})
        envs[env] = ConfigEnv(
            str(stack),
            _pairs(deploy.get("parameter_overrides", "")),
            _pairs(deploy.get("tags", "")),
        )
    return envs


def resource_names(stack: DeployedStack) -> tuple[dict[str, str], list[str]]:
    """Name as AWS would key it -> the logical id that claims it; and the unknown types.

    A resource left without a name gets one CloudFormation makes unique, so it claims none.
    A schedule's name is unique within its group, so the group is part of its key.
    """
    names: dict[str, str] = {}
    unknown = []
    resources = stack.template["Resources"]
    in_stack = set(stack.physical_ids) | {i for ids in stack.skipped.values() for i in ids}
    for logical_id in sorted(in_stack):
        kind = resources[logical_id]["Type"]
        if kind not in NAME_PROPERTY:
            unknown.append(f"{logical_id} ({kind})")
            continue
        name_property = NAME_PROPERTY[kind]
        raw = resources[logical_id].get("Properties", {})
        if name_property is None or name_property not in raw:
            continue
        resolved = resolved_properties(stack, logical_id)
        key = f"{kind} {resolved[name_property]}"
        if kind == "AWS::Scheduler::Schedule":
            key = f"{kind} {_group_of(stack, raw, resolved)}/{resolved[name_property]}"
        names[key] = logical_id
    return names, unknown


def _group_of(stack: DeployedStack, raw: Mapping[str, Any], resolved: Mapping[str, Any]) -> str:
    """A schedule's group; a group the stack creates without a name is unique to it."""
    group = raw.get("GroupName")
    if group is None:
        return "default"
    if isinstance(group, dict) and "Ref" in group:
        target = stack.template["Resources"].get(group["Ref"])
        if target is not None and "Name" not in target.get("Properties", {}):
            return f"(generated for {stack.name})"
    return str(resolved["GroupName"])


def rehearse_side_by_side(
    local: LocalAws, sam_template: dict[str, Any], secret_arn: str | None = None
) -> SideBySide:
    """Deploy every samconfig environment's stack into one local account; compare names."""
    result = SideBySide()
    claimed: dict[str, tuple[str, str]] = {}
    for env, config in sorted(config_envs().items()):
        stack_name = config.stack_name
        parameters = dict(config.parameters)
        if secret_arn:
            parameters["SlackWebhookSecretArn"] = secret_arn
        report = rehearse_variant(
            local, f"samconfig {env}", sam_template, parameters, False, stack_name, config.tags
        )
        result.reports.append(report)
        if report.stack is None:
            continue
        cloudformation = local.client("cloudformation")
        described = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
        tags = {tag["Key"]: tag["Value"] for tag in described.get("Tags", [])}
        if not config.tags or tags != config.tags:
            result.problems.append(
                f"{stack_name}: stack tags {tags} are not samconfig.toml's {config.tags}"
            )
        result.tags[stack_name] = tags
        names, unknown = resource_names(report.stack)
        result.problems += [
            f"{stack_name}: no name rule for {item}; add its type to NAME_PROPERTY"
            for item in unknown
        ]
        for key, logical_id in names.items():
            if key in claimed:
                other_stack, other_id = claimed[key]
                result.problems.append(
                    f"{stack_name} {logical_id} and {other_stack} {other_id} both claim {key}"
                )
            claimed[key] = (stack_name, logical_id)
    return result
