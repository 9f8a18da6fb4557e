"""Reading template.yaml the way the SAM CLI does (its own loader, its own providers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from samcli.yamlhelper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


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
    return resource == "*" or (resource.split(":")[-1] == "*" and resource.count(":") >= 5)


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
