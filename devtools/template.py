"""Reading template.yaml the way the SAM CLI does (its own loader, its own providers)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from samcli.yamlhelper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
#: Where a running ``make local-stack`` says which endpoint and stack ``make invoke`` uses.
LOCAL_STACK_STATE = ROOT / ".aws-sam" / "local-stack.json"


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as a dict, CloudFormation short-form tags (!Ref, !Sub...) included."""
    parsed: dict[str, Any] = yaml_parse(path.read_text())
    return parsed


ASYNC_EVENT_TYPES = {
    "Schedule",
    "ScheduleV2",
    "SNS",
    "EventBridgeRule",
    "CloudWatchEvent",
    "CloudWatchLogs",
    "S3",
}
#: Actions AWS only grants on Resource "*" (no resource-level permissions), with the reason.
WILDCARD_ONLY_ACTIONS = {
    "ecs:DescribeTaskDefinition": "ECS has no resource-level permissions for it",
    "xray:PutTraceSegments": "X-Ray has no resource-level permissions",
    "xray:PutTelemetryRecords": "X-Ray has no resource-level permissions",
    "cloudwatch:PutMetricData": "CloudWatch metrics have no resource ARNs",
}
READ_ONLY_PREFIXES = ("Get", "List", "Describe", "BatchGet", "Query", "Scan", "Lookup")


class _NoManagedPolicies:
    """The SAM translator asks IAM for managed policy names; the template uses none by name."""

    def load(self) -> dict[str, str]:
        return {}


def transformed_template(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template after the SAM transform (what CloudFormation deploys), offline."""
    import copy
    import os

    from samtranslator.translator.transform import transform

    source = copy.deepcopy(template if template is not None else load_template())
    # The translator wants an S3 location; sam deploy uploads functions/ and writes one.
    source.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = "s3://bucket/code.zip"
    for resource in source.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource.get("Properties", {}).pop("CodeUri", None)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    result: dict[str, Any] = transform(source, {}, _NoManagedPolicies())
    return result


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _is_wildcard(resource: Any) -> bool:
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        resource = _as_list(resource["Fn::Sub"])[0]
    if not isinstance(resource, str):
        return False
    # "*" itself, or an ARN whose resource part is only "*" (every resource of a service)
    # (a revision wildcard such as task-definition/NAME:* names one family, not the service)
    plain = re.sub(r"\$\{[^}]*\}", "x", resource)  # ${AWS::Region} holds colons of its own
    return plain == "*" or (plain.count(":") >= 5 and plain.split(":", 5)[5] == "*")


def _is_mutating(action: str) -> bool:
    name = action.split(":", 1)[-1]
    return not name.startswith(READ_ONLY_PREFIXES)


def wildcard_grants(template: dict[str, Any]) -> list[str]:
    """Every mutating action granted on a wildcard resource, as ``Role/Sid: action``.

    Actions in WILDCARD_ONLY_ACTIONS are left out: AWS accepts nothing narrower for them.
    """
    found = []
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") not in ("AWS::IAM::Role", "AWS::IAM::Policy"):
            continue
        props = resource.get("Properties", {})
        documents = [p.get("PolicyDocument", {}) for p in props.get("Policies", [])]
        if "PolicyDocument" in props:
            documents.append(props["PolicyDocument"])
        for document in documents:
            for statement in _as_list(document.get("Statement", [])):
                if statement.get("Effect") != "Allow":
                    continue
                resources = statement.get("Resource", [])
                if not any(_is_wildcard(r) for r in _as_list(resources)):
                    continue
                for action in _as_list(statement.get("Action", [])):
                    if isinstance(action, str) and (
                        "*" in action
                        or (_is_mutating(action) and action not in WILDCARD_ONLY_ACTIONS)
                    ):
                        found.append(f"{logical_id}/{statement.get('Sid', '?')}: {action}")
    return found


@dataclass
class FunctionSetup:
    """What a function runs with: handler, environment, limits."""

    logical_id: str
    handler: str
    environment: dict[str, str]
    memory: int
    timeout: int
    function_name: str = ""


def function_setup(
    logical_id: str,
    params: Mapping[str, str] | None = None,
    template: Path = TEMPLATE,
    shell_env: Mapping[str, str] | None = None,
) -> FunctionSetup:
    """A function's handler and environment as ``sam local invoke`` resolves them.

    The SAM CLI's own providers read the template: Refs to parameters resolve from
    ``params`` or their defaults, Refs to resources to their logical ids. Used to read
    values the template gives (chain rules); ``make invoke`` runs deployed functions.
    """
    from samcli.lib.providers.sam_function_provider import SamFunctionProvider
    from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
    from samcli.local.lambdafn.env_vars import EnvironmentVariables

    shell = dict(os.environ if shell_env is None else shell_env)
    region = shell.get("AWS_REGION") or shell.get("AWS_DEFAULT_REGION") or "us-east-1"
    stacks, _ = SamLocalStackProvider.get_stacks(
        str(template),
        parameter_overrides=dict(params or {}),
        global_parameter_overrides={"AWS::Region": region},
    )
    provider = SamFunctionProvider(stacks, use_raw_codeuri=True)
    function = provider.get(logical_id)
    if function is None:
        known = ", ".join(sorted(f.name for f in provider.get_all()))
        raise SystemExit(f"FN={logical_id}: no such function in {template.name} (have: {known})")
    variables = (function.environment or {}).get("Variables", {})
    environment = EnvironmentVariables(
        function.name,
        function.memory,
        function.timeout,
        function.handler,
        function.logging_config,
        variables=variables,
        shell_env_values=shell,
        aws_creds={
            "region": region,
            "key": shell.get("AWS_ACCESS_KEY_ID", "testing"),
            "secret": shell.get("AWS_SECRET_ACCESS_KEY", "testing"),
            "sessiontoken": shell.get("AWS_SESSION_TOKEN", "testing"),
        },
    ).resolve()
    return FunctionSetup(
        logical_id=logical_id,
        handler=str(function.handler),
        environment={k: str(v) for k, v in environment.items()},
        memory=int(function.memory or 128),
        timeout=int(function.timeout or 3),
    )
