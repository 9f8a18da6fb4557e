"""`make rehearse`: deploy template.yaml as CloudFormation receives it, without AWS or Docker.

For each variant (defaults, and ``ExampleWorkload=on``) the rehearsal

1. transforms the template offline with the SAM translator, as ``sam validate`` does;
2. lints the transformed template with cfn-lint and the serverless rules, and scans it with
   checkov (every checkov skip must give its reason);
3. uploads the function package to a local S3 bucket, as ``sam package`` does, and creates
   the stack in moto's CloudFormation (a moto server on 127.0.0.1);
4. checks the wiring of what was deployed: every rule, schedule, subscription and event
   source mapping targets the function the template means, every environment value that
   names a resource of the stack names one that exists, and every handler imports from the
   uploaded package with its deployed environment.

It prints a short report and exits non-zero on any failure. Where moto's CloudFormation
lacks a resource type or gets one wrong, the workaround lives here and the report says
so; the template is never bent for it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from devtools.local_aws import ACCOUNT_ID, REGION, LocalAws, moto_server
from devtools.template import ROOT, TEMPLATE, load_template

#: The example variant also runs the queue dispatcher on the example task definition, with
#: WorkTopic, so that every optional part of the template is created in one of the two.
#: ``{stack}`` stands for the stack's name: the example workload's names derive from it.
VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "example": {
        "ExampleWorkload": "on",
        "RetrierClusterNames": "batch-jobs,{stack}-example",
        "DispatcherTaskFamily": "{stack}-example",
        "DispatcherClusterName": "{stack}-example",
        "DispatcherContainerName": "report",
        "WorkTopicEnabled": "on",
    },
}
ARTIFACT_BUCKET = "batchwire-rehearsal-artifacts"
#: Key prefix of a layer's placeholder object: the rest of the key is its local folder.
WORK_DIR = ROOT / ".aws-sam" / "rehearsal"
#: The only parameter without a default: a secret made in the local Secrets Manager.
SLACK_SECRET_NAME = "batchwire/slack-webhook"
#: Where SAM puts a function's events: the resource types they become.
TRIGGER_TYPES = (
    "AWS::Events::Rule",
    "AWS::Scheduler::Schedule",
    "AWS::SNS::Subscription",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Logs::SubscriptionFilter",
)


class RehearsalError(Exception):
    """A check of the rehearsal failed; the message names the resource and the problem."""


# ---------------------------------------------------------------- transform


def transform(template: dict[str, Any], parameters: Mapping[str, str]) -> dict[str, Any]:
    """``template`` after the SAM transform, offline, as CloudFormation will receive it.

    A local CodeUri stands for the S3 object that ``sam package`` uploads, as in
    ``sam validate``; a layer's local Content is left as the template has it (what cfn-lint
    sees; ``package_layers`` uploads it); managed policy names resolve to their ARNs
    without asking IAM.
    """
    import copy

    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    source = copy.deepcopy(template)
    for part in [source.get("Globals", {}).get("Function", {})] + [
        resource.get("Properties", {})
        for resource in source.get("Resources", {}).values()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]:
        if isinstance(part.get("CodeUri"), str):
            part["CodeUri"] = f"s3://{ARTIFACT_BUCKET}/code.zip"
    session = boto3.Session(
        region_name=REGION, aws_access_key_id="offline", aws_secret_access_key="offline"
    )
    translator = Translator(
        managed_policy_map=None, sam_parser=Parser(), plugins=[], boto_session=session
    )
    result: dict[str, Any] = translator.translate(
        sam_template=source,
        parameter_values=dict(parameters),
        get_managed_policy_map=_ManagedPolicies,
    )
    return result


class _ManagedPolicies(dict[str, str]):
    """Every AWS managed policy name, resolved to its ARN without asking IAM."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and not name.startswith("arn:")

    def __missing__(self, name: str) -> str:
        return f"arn:aws:iam::aws:policy/service-role/{name}"

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self else default  # noqa: SIM401 (__missing__ answers)


# ---------------------------------------------------------------- lint and scan


def _tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def lint(transformed: dict[str, Any]) -> list[str]:
    """cfn-lint with the serverless rules on a transformed template: every finding, each
    naming the resource and the path inside it."""
    from cfnlint.api import ManualArgs
    from cfnlint.api import lint as cfn_lint

    matches = cfn_lint(
        json.dumps(transformed),
        config=ManualArgs(append_rules=["cfn_lint_serverless.rules"], regions=[REGION]),
    )
    findings = []
    for match in matches:
        path = [str(part) for part in match.path]
        where = path[1] if len(path) > 1 and path[0] == "Resources" else "template"
        findings.append(f"{where}: {match.rule.id} {match.message} (at {'/'.join(path)})")
    return findings


def scan(path: Path, template: dict[str, Any]) -> tuple[dict[str, int], list[str]]:
    """checkov on a transformed template: its counts, and the failed checks or bare skips."""
    completed = subprocess.run(
        [_tool("checkov"), "--file", str(path), "--framework", "cloudformation",
         "--output", "json", "--quiet", "--skip-download"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        return {}, [f"checkov gave no report: {completed.stderr.strip()[-500:]}"]
    summary = report.get("summary", {})
    counts = {key: summary.get(key, 0) for key in ("passed", "failed", "skipped")}
    problems = [
        f"{check['resource']}: {check['check_id']} {check['check_name']}"
        for check in report.get("results", {}).get("failed_checks", [])
    ]
    for logical_id, resource in template.get("Resources", {}).items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            if not str(skip.get("comment", "")).strip():
                problems.append(f"{logical_id}: checkov skip {skip.get('id')} gives no reason")
    return counts, problems


# ---------------------------------------------------------------- package and deploy


def package_functions(local: LocalAws, template: dict[str, Any]) -> str:
    """Zip the CodeUri folder and upload it to the local artifact bucket, as ``sam package``.

    Every function of the transformed template is pointed at the object, and every layer at
    its own (``package_layers``); returns the functions' key.
    """
    code_uri = load_template().get("Globals", {}).get("Function", {}).get("CodeUri", "functions")
    source = ROOT / str(code_uri)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.relative_to(source).as_posix())
    key = _upload(local, buffer.getvalue())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            resource["Properties"]["Code"] = {"S3Bucket": ARTIFACT_BUCKET, "S3Key": key}
    package_layers(local, template)
    return key


def _upload(local: LocalAws, body: bytes) -> str:
    key = f"{hashlib.sha256(body).hexdigest()}.zip"
    s3 = local.client("s3")
    s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    s3.put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=body)
    return key


def package_layers(local: LocalAws, template: dict[str, Any]) -> dict[str, str]:
    """Each layer of the template zipped for this machine and uploaded; layer -> its key.

    ``sam build`` installs a layer for arm64 and Python 3.13 (layer/Makefile), which this
    machine may not run; the rehearsal zips the same requirements from the installed
    distributions instead (``host_layer``), so the handlers import with them on the path.
    """
    keys = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::LayerVersion":
            continue
        content = resource["Properties"].get("Content")
        if not isinstance(content, str):
            continue  # an S3 object of its own: nothing to build
        keys[logical_id] = _upload(local, host_layer(str(ROOT / content), logical_id))
        resource["Properties"]["Content"] = {"S3Bucket": ARTIFACT_BUCKET, "S3Key": keys[logical_id]}
    return keys


@functools.cache
def host_layer(content: str, logical_id: str) -> bytes:
    """The layer ``logical_id`` as a zip of python/, from the distributions installed here.

    What layer/Makefile installs for the runtime: the requirements of ``content`` that the
    layer keeps (``LAYERS`` in layer/artifacts.py) and their dependencies, less the AWS SDK
    and its dependencies (the runtime's); here for this machine's Python, without bytecode.
    """
    from layer.artifacts import RUNTIME_PROVIDED, canonical, layer_requirements

    requirements = layer_requirements(Path(content) / "requirements.txt", logical_id)
    names = installed_closure(requirements) - {canonical(name) for name in RUNTIME_PROVIDED}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(names):
            distribution = metadata.distribution(name)
            for file in distribution.files or []:
                parts = Path(file).parts
                if parts[0] == ".." or "__pycache__" in parts:
                    continue  # console scripts, bytecode of this Python
                path = Path(str(distribution.locate_file(file)))
                if path.is_file():
                    archive.write(path, f"python/{Path(file).as_posix()}")
    return buffer.getvalue()


def installed_closure(requirements: list[str]) -> set[str]:
    """Canonical names of the installed distributions ``requirements`` pull in, extras and
    environment markers honoured; a requirement not installed here is an error."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[tuple[str, str]] = set()
    names: set[str] = set()
    pending = [Requirement(text.split("#", 1)[0]) for text in requirements if _requirement(text)]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        extras = set(requirement.extras) | {""}
        if all((name, extra) in seen for extra in extras):
            continue
        seen.update((name, extra) for extra in extras)
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise RehearsalError(
                f"the layer needs {name}, which is not installed here (make test installs "
                "layer/requirements.txt into .venv)"
            ) from None
        names.add(name)
        for text in distribution.requires or []:
            dependency = Requirement(text)
            marker = dependency.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras):
                pending.append(dependency)
    return names


def _requirement(line: str) -> bool:
    text = line.split("#", 1)[0].strip()
    return bool(text) and not text.startswith("-")


@dataclass
class Workarounds:
    """What the rehearsal did for the local engine that CloudFormation would not need."""

    applied: Counter[str] = field(default_factory=Counter)


@contextmanager
def moto_workarounds() -> Iterator[Workarounds]:
    """Patch moto's CloudFormation where it differs from CloudFormation, and count each use.

    - an EventPattern given as a JSON string is encoded once more by moto: decode it first;
    - a Batch compute environment without ServiceRole uses the service-linked role in
      CloudFormation; moto requires the property;
    - a Batch job definition without RetryStrategy is one attempt; moto requires it;
    - a container of a Fargate task definition may leave its memory to the task's; moto
      places tasks by container memory and fails RunTask without it;
    - the Ref of a layer version is its ARN; moto gives its object, which no function takes;
    - moto leaves out a function's Layers: given to the function once moto has made it.
    """
    from moto.awslambda.models import LambdaFunction, LayerVersion
    from moto.batch.models import ComputeEnvironment, JobDefinition
    from moto.ecs.models import TaskDefinition
    from moto.events.models import Rule

    done = Workarounds()
    originals: list[tuple[type, Any]] = []

    def wrap(
        model: type,
        fix: Callable[[dict[str, Any], str], str | None],
        then: Callable[[Any, dict[str, Any]], str | None] | None = None,
    ) -> None:
        original = model.__dict__["create_from_cloudformation_json"]
        originals.append((model, original))

        def create(
            cls: type, /, name: str, cfn: dict[str, Any], account_id: str, region: str, **kw: Any
        ) -> Any:
            props = cfn.setdefault("Properties", {})
            notes = [fix(props, account_id)]
            made = original.__func__(cls, name, cfn, account_id, region, **kw)
            notes += [then(made, props)] if then else []
            for note in filter(None, notes):
                done.applied[note] += 1
            return made

        model.create_from_cloudformation_json = classmethod(create)  # type: ignore[attr-defined]

    def pattern(props: dict[str, Any], _: str) -> str | None:
        if isinstance(props.get("EventPattern"), str):
            props["EventPattern"] = json.loads(props["EventPattern"])
            return "AWS::Events::Rule: EventPattern given as a JSON string decoded before moto"
        return None

    def service_role(props: dict[str, Any], account_id: str) -> str | None:
        if "ServiceRole" not in props:
            from moto.iam.models import iam_backends

            roles = iam_backends[account_id]["aws"].roles.values()
            props["ServiceRole"] = next(
                role.arn for role in roles if role.path == "/aws-service-role/batch.amazonaws.com/"
            )
            return "AWS::Batch::ComputeEnvironment: service-linked role named for moto"
        return None

    def retry_strategy(props: dict[str, Any], _: str) -> str | None:
        if "RetryStrategy" not in props:
            props["RetryStrategy"] = {"Attempts": 1}
            return "AWS::Batch::JobDefinition: default RetryStrategy (1 attempt) given to moto"
        return None

    def container_memory(props: dict[str, Any], _: str) -> str | None:
        containers = props.get("ContainerDefinitions", [])
        bare = [c for c in containers if "Memory" not in c and "MemoryReservation" not in c]
        if bare and props.get("Memory"):
            for container in bare:
                container["Memory"] = int(props["Memory"]) // len(containers)
            return "AWS::ECS::TaskDefinition: the task's memory given to its containers for moto"
        return None

    def layer_ref(props: dict[str, Any], _: str) -> str | None:
        if not refs_layer_arn:
            return None
        return "AWS::Lambda::LayerVersion: its Ref made the version's ARN for moto"

    def no_fix(props: dict[str, Any], _: str) -> str | None:
        return None

    def function_layers(function: Any, props: dict[str, Any]) -> str | None:
        if not props.get("Layers"):
            return None
        function.layers = function._get_layers_data(props["Layers"])
        return "AWS::Lambda::Function: its Layers given to the function moto made"

    wrap(Rule, pattern)
    wrap(TaskDefinition, container_memory)
    wrap(ComputeEnvironment, service_role)
    wrap(JobDefinition, retry_strategy)
    wrap(LayerVersion, layer_ref)
    wrap(LambdaFunction, no_fix, function_layers)
    refs_layer_arn = not hasattr(LayerVersion, "physical_resource_id")
    if refs_layer_arn:
        LayerVersion.physical_resource_id = property(lambda layer: layer.arn)  # type: ignore[attr-defined]
    try:
        yield done
    finally:
        if refs_layer_arn:
            del LayerVersion.physical_resource_id  # type: ignore[attr-defined]
        for model, original in originals:
            model.create_from_cloudformation_json = original  # type: ignore[attr-defined]


@dataclass
class DeployedStack:
    """A stack created in the local engine: names, resources, and what moto skipped."""

    name: str
    variant: str
    template: dict[str, Any]
    parameters: dict[str, str]
    physical_ids: dict[str, str]
    created: Counter[str]
    skipped: dict[str, list[str]]
    workarounds: Counter[str]
    local: LocalAws

    def function_name(self, logical_id: str) -> str:
        """The deployed name of a function of the template."""
        try:
            return self.physical_ids[logical_id]
        except KeyError:
            raise RehearsalError(f"{logical_id}: no such resource in stack {self.name}") from None

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """A function's environment exactly as the local Lambda API reports it."""
        configuration = self.local.client("lambda").get_function_configuration(
            FunctionName=self.function_name(logical_id)
        )
        variables = configuration.get("Environment", {}).get("Variables", {})
        return {name: str(value) for name, value in variables.items()}

    def functions(self) -> list[str]:
        return sorted(
            logical_id
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == "AWS::Lambda::Function" and logical_id in self.physical_ids
        )


def stack_parameters(template: dict[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    """Every parameter's value, defaults included.

    moto splits a CommaDelimitedList only when its value is passed, so the rehearsal passes
    every value, as CloudFormation would resolve them.
    """
    values = {
        name: str(spec["Default"])
        for name, spec in template.get("Parameters", {}).items()
        if "Default" in spec
    }
    values.update(overrides)
    missing = sorted(set(template.get("Parameters", {})) - set(values))
    if missing:
        raise RehearsalError(f"parameters without a value: {', '.join(missing)}")
    return values


def _service_linked_roles(local: LocalAws) -> None:
    """The roles an account gets on first use of a service, which a stack may rely on."""
    iam = local.client("iam")
    for service in ("batch.amazonaws.com", "ecs.amazonaws.com"):
        already_there = (
            iam.exceptions.InvalidInputException,
            iam.exceptions.EntityAlreadyExistsException,
        )
        with contextlib.suppress(*already_there):
            iam.create_service_linked_role(AWSServiceName=service)


def _create_scheduler_resources(
    local: LocalAws, stack: Any, template: dict[str, Any], skipped: Mapping[str, list[str]]
) -> dict[str, str]:
    """The Scheduler group and schedules moto's CloudFormation skips, made as CloudFormation
    would make them (a group without a name gets one of the stack's), so the local stack
    has them like a deployed one; their logical id -> name. The group's Ref outputs are
    given to the stack, whose outputs moto leaves out when they name a skipped resource."""
    from moto.cloudformation.parsing import Output, clean_json

    scheduler = local.client("scheduler")
    resources = template["Resources"]
    names: dict[str, str] = {}
    for logical_id in skipped.get("AWS::Scheduler::ScheduleGroup", []):
        group = resources[logical_id].get("Properties", {}).get("Name")
        names[logical_id] = group or f"{stack.name}-{logical_id}"[:64]
        scheduler.create_schedule_group(Name=names[logical_id])
    for logical_id in skipped.get("AWS::Scheduler::Schedule", []):
        raw = resources[logical_id]["Properties"]
        props = clean_json(json.loads(json.dumps(raw)), stack.resource_map)
        group_ref = raw.get("GroupName")
        group = names.get(group_ref["Ref"], "") if isinstance(group_ref, dict) else group_ref
        name = props.get("Name") or f"{stack.name}-{logical_id}"[:64]
        target = dict(props["Target"])
        network = (target.get("EcsParameters") or {}).pop("NetworkConfiguration", None)
        if network:  # the API spells it awsvpcConfiguration
            target["EcsParameters"]["NetworkConfiguration"] = {
                "awsvpcConfiguration": network["AwsvpcConfiguration"]
            }
        optional = ("Description", "ScheduleExpressionTimezone", "State", "StartDate", "EndDate")
        try:
            scheduler.create_schedule(
                Name=name,
                GroupName=group or "default",
                ScheduleExpression=props["ScheduleExpression"],
                FlexibleTimeWindow=props["FlexibleTimeWindow"],
                Target=target,
                **{key: props[key] for key in optional if props.get(key)},
            )
        except scheduler.exceptions.ConflictException as error:
            # what CloudFormation would fail the deploy with: the name is another stack's
            raise RehearsalError(
                f"{logical_id}: schedule {name} in group {group or 'default'} already "
                f"exists (another stack holds the name): {error}"
            ) from None
        names[logical_id] = name
    for key, output in template.get("Outputs", {}).items():
        value = output.get("Value")
        if isinstance(value, dict) and value.get("Ref") in names:
            resolved = names[value["Ref"]]
            stack.output_map._parsed_outputs[key] = Output(key, resolved, output.get("Description"))
            stack.output_map._output_json_map[key] = {"Value": resolved}
    return names


def _environment_refs_to_groups(
    local: LocalAws,
    template: dict[str, Any],
    physical_ids: Mapping[str, str],
    scheduler_ids: Mapping[str, str],
) -> int:
    """Give each function the names of the Scheduler groups its environment Refs, as
    CloudFormation would; the number of values set."""
    groups = {
        logical_id: name
        for logical_id, name in scheduler_ids.items()
        if template["Resources"][logical_id]["Type"] == "AWS::Scheduler::ScheduleGroup"
    }
    lambda_client = local.client("lambda")
    count = 0
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Lambda::Function" or logical_id not in physical_ids:
            continue
        declared = resource["Properties"].get("Environment", {}).get("Variables", {})
        refs = {
            variable: groups[value["Ref"]]
            for variable, value in declared.items()
            if isinstance(value, dict) and value.get("Ref") in groups
        }
        if not refs:
            continue
        name = physical_ids[logical_id]
        current = lambda_client.get_function_configuration(FunctionName=name)
        held = current.get("Environment", {}).get("Variables", {})
        variables = {**{key: str(value) for key, value in held.items()}, **refs}
        lambda_client.update_function_configuration(
            FunctionName=name, Environment={"Variables": variables}
        )
        count += len(refs)
    return count


def stack_name_of(variant: str) -> str:
    """The rehearsal's stack of ``variant``."""
    return f"batchwire-rehearsal-{variant}"


def _moto_stack(name: str) -> Any:
    from moto.cloudformation.models import cloudformation_backends

    backend = cloudformation_backends[ACCOUNT_ID][REGION]
    for stack in backend.stacks.values():
        if stack.name == name and stack.status != "DELETE_COMPLETE":
            return stack
    raise RehearsalError(f"stack {name} is not in the local engine")


def deploy(
    local: LocalAws,
    transformed: dict[str, Any],
    variant: str,
    overrides: Mapping[str, str],
    stack_name: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> DeployedStack:
    """Create the transformed template as a stack in the local engine (CREATE_COMPLETE)."""
    from moto.cloudformation.parsing import get_model_map

    template = json.loads(json.dumps(transformed))
    package_functions(local, template)
    parameters = stack_parameters(template, overrides)
    name = stack_name or stack_name_of(variant)
    _service_linked_roles(local)
    cloudformation = local.client("cloudformation")
    with moto_workarounds() as workarounds:
        try:
            cloudformation.create_stack(
                StackName=name,
                TemplateBody=json.dumps(template),
                Parameters=[
                    {"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()
                ],
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
                Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()],
            )
        except Exception as error:
            raise RehearsalError(f"{variant}: CreateStack failed: {error}") from error
    status = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    if status["StackStatus"] != "CREATE_COMPLETE":
        raise RehearsalError(
            f"{variant}: stack {name} is {status['StackStatus']}: "
            f"{status.get('StackStatusReason', '')}"
        )
    stack = _moto_stack(name)
    conditions = stack.resource_map.lazy_condition_map
    supported = get_model_map()
    physical_ids: dict[str, str] = {}
    created: Counter[str] = Counter()
    skipped: dict[str, list[str]] = {}
    for logical_id, resource in template["Resources"].items():
        condition = resource.get("Condition")
        if condition and not conditions[condition]:
            continue
        kind = resource["Type"]
        if kind not in supported:
            skipped.setdefault(kind, []).append(logical_id)
            continue
        created[kind] += 1
        instance = stack.resource_map[logical_id]
        physical = getattr(instance, "physical_resource_id", None)
        if physical is None and kind == "AWS::Lambda::LayerVersion":
            physical = instance.arn
        physical_ids[logical_id] = str(physical) if physical is not None else ""
    scheduler_ids = _create_scheduler_resources(local, stack, template, skipped)
    if scheduler_ids:
        physical_ids.update(scheduler_ids)
        workarounds.applied[
            "AWS::Scheduler::ScheduleGroup, AWS::Scheduler::Schedule: created through "
            "moto's Scheduler API from their resolved properties"
        ] += len(scheduler_ids)
    named = _environment_refs_to_groups(local, template, physical_ids, scheduler_ids)
    if named:
        workarounds.applied[
            "AWS::Lambda::Function: an environment value that is the Ref of a Scheduler "
            "group (which moto resolves to '') set to the group's name"
        ] += named
    return DeployedStack(
        name=name,
        variant=variant,
        template=template,
        parameters=parameters,
        physical_ids=physical_ids,
        created=created,
        skipped=skipped,
        workarounds=workarounds.applied,
        local=local,
    )


# ---------------------------------------------------------------- wiring


def resolved_properties(stack: DeployedStack, logical_id: str) -> dict[str, Any]:
    """A resource's properties with every intrinsic resolved against the deployed stack.

    Used for the types moto's CloudFormation skips, so their wiring is still checked.
    """
    from moto.cloudformation.parsing import clean_json

    properties = json.loads(json.dumps(stack.template["Resources"][logical_id]["Properties"]))
    result: dict[str, Any] = clean_json(properties, _moto_stack(stack.name).resource_map)
    return result


def _function_arn(stack: DeployedStack, logical_id: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{stack.function_name(logical_id)}"


def expected_triggers(sam_template: dict[str, Any]) -> dict[str, str]:
    """Trigger resource (logical id after the transform) -> the function it must invoke.

    A SAM event ``E`` of function ``F`` becomes ``FE`` (a rule, schedule, subscription or
    event source mapping). Explicit mappings and subscription filters name their function
    with a Ref or GetAtt.
    """
    expected = {}
    types = {
        logical_id: resource.get("Type")
        for logical_id, resource in sam_template.get("Resources", {}).items()
    }
    for logical_id, resource in sam_template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function":
            for event in props.get("Events", {}):
                expected[f"{logical_id}{event}"] = logical_id
        elif resource.get("Type") in TRIGGER_TYPES:
            targets = [props.get("FunctionName", props.get("DestinationArn"))]
            targets += [(props.get("Target") or {}).get("Arn")]
            targets += [target.get("Arn") for target in props.get("Targets") or []]
            for named in filter(None, map(_referenced_resource, targets)):
                # a schedule may run an ECS task instead: only functions are checked here
                if types.get(named) == "AWS::Serverless::Function":
                    expected[logical_id] = named
    return expected


def _referenced_resource(value: Any) -> str | None:
    """The resource a Ref or GetAtt names (None for anything else)."""
    if isinstance(value, dict) and ("Ref" in value or "Fn::GetAtt" in value):
        return next(_names_in(value), None)
    return None


def trigger_targets(stack: DeployedStack, logical_id: str) -> list[str]:
    """The function ARNs (or names) a deployed or skipped trigger resource invokes."""
    kind = stack.template["Resources"][logical_id]["Type"]
    if kind == "AWS::Events::Rule" and logical_id in stack.physical_ids:
        events = stack.local.client("events")
        rule = stack.physical_ids[logical_id].rsplit("/", 1)[-1]
        return [t["Arn"] for t in events.list_targets_by_rule(Rule=rule)["Targets"]]
    if kind == "AWS::Lambda::EventSourceMapping" and logical_id in stack.physical_ids:
        mapping = stack.local.client("lambda").get_event_source_mapping(
            UUID=stack.physical_ids[logical_id]
        )
        return [mapping["FunctionArn"]]
    props = resolved_properties(stack, logical_id)
    if kind == "AWS::Scheduler::Schedule":
        return [props["Target"]["Arn"]]
    if kind == "AWS::SNS::Subscription":
        return [props["Endpoint"]]
    if kind == "AWS::Logs::SubscriptionFilter":
        return [props["DestinationArn"]]
    if kind == "AWS::Events::Rule":
        return [target["Arn"] for target in props.get("Targets", [])]
    if kind == "AWS::Lambda::EventSourceMapping":
        return [props["FunctionName"]]
    return []


def check_triggers(stack: DeployedStack, sam_template: dict[str, Any]) -> list[str]:
    """Every trigger invokes the function the template means; returns the problems."""
    problems = []
    resources = stack.template["Resources"]
    in_stack = set(stack.physical_ids) | {i for ids in stack.skipped.values() for i in ids}
    for trigger, function in sorted(expected_triggers(sam_template).items()):
        if trigger not in resources or trigger not in in_stack:
            continue  # an event of a kind that makes no trigger resource, or off by condition
        want = {_function_arn(stack, function), stack.function_name(function)}
        for target in trigger_targets(stack, trigger):
            if target not in want:
                problems.append(f"{trigger} invokes {target}, not {function}")
    return problems


def environment_references(sam_template: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Function -> environment variable -> the resource of the template its value names."""
    found: dict[str, dict[str, str]] = {}
    resources = sam_template.get("Resources", {})
    parameters = set(sam_template.get("Parameters", {}))
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        for variable, value in variables.items():
            for name in _names_in(value):
                if name not in parameters and not name.startswith("AWS::"):
                    found.setdefault(logical_id, {})[variable] = name
    return found


def _names_in(value: Any) -> Iterator[str]:
    """Resource and parameter names an intrinsic refers to (Ref, GetAtt, Sub)."""
    import re

    if isinstance(value, dict):
        if "Ref" in value:
            yield str(value["Ref"])
        elif "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            yield str(target[0] if isinstance(target, list) else target.split(".")[0])
        elif "Fn::Sub" in value:
            sub = value["Fn::Sub"]
            text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
            for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                if name.split(".")[0] not in variables:
                    yield name.split(".")[0]
            for item in variables.values():
                yield from _names_in(item)
        else:
            for item in value.values():
                yield from _names_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _names_in(item)


def undeclared_references(sam_template: dict[str, Any]) -> list[str]:
    """Environment values that refer to a resource the template does not declare."""
    declared = sam_template.get("Resources", {})
    return [
        f"{function}: {variable} refers to {resource}, which the template does not declare"
        for function, variables in sorted(environment_references(sam_template).items())
        for variable, resource in sorted(variables.items())
        if resource not in declared
    ]


def check_environment(stack: DeployedStack, sam_template: dict[str, Any]) -> list[str]:
    """Every environment value that names a stack resource names one that exists."""
    problems = []
    declared = sam_template.get("Resources", {})
    for function, variables in sorted(environment_references(sam_template).items()):
        if function not in stack.physical_ids:
            continue
        deployed = stack.function_environment(function)
        for variable, resource in sorted(variables.items()):
            if resource not in declared:
                continue  # reported by undeclared_references before the deploy
            value = deployed.get(variable, "")
            kind = declared[resource].get("Type", "")
            if not _exists(stack.local, kind, value):
                problems.append(
                    f"{function}: {variable}={value!r} names {resource} ({kind}), "
                    "which does not exist in the deployed stack"
                )
    return problems


def _exists(local: LocalAws, kind: str, value: str) -> bool:
    """Whether the resource a deployed value names can be found through its service's API."""
    from botocore.exceptions import ClientError

    probes: dict[str, Callable[[], Any]] = {
        "AWS::SQS::Queue": lambda: local.client("sqs").get_queue_attributes(QueueUrl=value),
        "AWS::SNS::Topic": lambda: local.client("sns").get_topic_attributes(TopicArn=value),
        "AWS::DynamoDB::Table": lambda: local.client("dynamodb").describe_table(TableName=value),
        "AWS::Logs::LogGroup": lambda: _log_group(local, value),
    }
    probe = probes.get(kind)
    if not value:
        return False
    if probe is None:
        return True  # a kind no variable names today: existence is left to CloudFormation
    try:
        probe()
    except (ClientError, LookupError):
        return False
    return True


def _log_group(local: LocalAws, name: str) -> None:
    groups = local.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    if not any(group["logGroupName"] == name for group in groups):
        raise LookupError(name)


def check_handlers_import(stack: DeployedStack) -> list[str]:
    """Each function's handler imports from the uploaded package with its deployed environment.

    As in Lambda: the function's package is the first entry of the path, its layers are
    unzipped in order into one folder whose python/ comes next (/opt/python), then the AWS
    SDK the runtime provides; nothing else of this machine's site-packages. Importing a
    handler reads and validates its settings, so a wrong or missing environment value fails
    here, naming the variable, and so does a dependency the layers lack.
    """
    s3 = stack.local.client("s3")
    problems = []
    lam = stack.local.client("lambda")
    layers_by_arn = {
        stack.physical_ids[logical_id]: resource["Properties"]["Content"]
        for logical_id, resource in stack.template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::LayerVersion" and logical_id in stack.physical_ids
    }

    def unzip(code: Mapping[str, str], into: Path) -> None:
        body = s3.get_object(Bucket=code["S3Bucket"], Key=code["S3Key"])["Body"].read()
        zipfile.ZipFile(io.BytesIO(body)).extractall(into)

    with tempfile.TemporaryDirectory() as unpacked:
        runtime = runtime_sdk(Path(unpacked) / "runtime")
        for function in stack.functions():
            configuration = lam.get_function(FunctionName=stack.function_name(function))
            code = stack.template["Resources"][function]["Properties"]["Code"]
            task, opt = Path(unpacked) / function / "task", Path(unpacked) / function / "opt"
            unzip(code, task)
            for layer in configuration["Configuration"].get("Layers", []):
                if layer["Arn"] not in layers_by_arn:
                    problems.append(f"{function}: layer {layer['Arn']} is not in the stack")
                    continue
                unzip(layers_by_arn[layer["Arn"]], opt)
            handler = configuration["Configuration"]["Handler"]
            module, _, attribute = handler.rpartition(".")
            environment = {
                **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
                **stack.local.environ,
                **stack.function_environment(function),
                "PYTHONPATH": os.pathsep.join(map(str, (task, opt / "python", runtime))),
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
            completed = subprocess.run(
                [sys.executable, "-S", "-c", f"import {module}; getattr({module}, {attribute!r})"],
                env=environment, cwd=unpacked, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if completed.returncode != 0:
                last = (completed.stderr.strip().splitlines() or ["(no output)"])[-1]
                problems.append(f"{function}: handler {handler} does not import: {last}")
    return problems


def runtime_sdk(into: Path) -> Path:
    """A folder holding what the Lambda runtime adds to the path: the AWS SDK for Python and
    its dependencies (``RUNTIME_PROVIDED``), linked from this machine's installation."""
    from layer.artifacts import RUNTIME_PROVIDED

    into.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PROVIDED:
        distribution = metadata.distribution(name)
        tops = {Path(file).parts[0] for file in distribution.files or []}
        for top in sorted(tops - {".."}):
            if top.endswith((".dist-info", ".data")) or top == "__pycache__":
                continue
            source = Path(str(distribution.locate_file(top)))
            if source.exists() and not (into / top).exists():
                (into / top).symlink_to(source)
    return into


# ---------------------------------------------------------------- the whole rehearsal


@dataclass
class VariantReport:
    variant: str
    lint_findings: list[str] = field(default_factory=list)
    checkov: dict[str, int] = field(default_factory=dict)
    checkov_problems: list[str] = field(default_factory=list)
    stack: DeployedStack | None = None
    wiring_problems: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [
            *(f"cfn-lint: {finding}" for finding in self.lint_findings),
            *(f"checkov: {problem}" for problem in self.checkov_problems),
            *(f"wiring: {problem}" for problem in self.wiring_problems),
        ]


def local_slack_secret(local: LocalAws, url: str | None = None) -> str:
    """The webhook secret the stack's one required parameter names, in the local engine.

    With ``url``, the secret holds that URL from now on (moto keeps one state per process:
    another caller may have made the secret, pointing at its own Slack stand-in); without,
    an existing secret is left as it is, and a new one points at nothing that answers."""
    secrets = local.client("secretsmanager")
    try:
        arn: str = secrets.create_secret(
            Name=SLACK_SECRET_NAME, SecretString=url or "http://127.0.0.1:9/rehearsal"
        )["ARN"]
    except secrets.exceptions.ResourceExistsException:
        arn = secrets.describe_secret(SecretId=SLACK_SECRET_NAME)["ARN"]
        if url is not None:
            secrets.put_secret_value(SecretId=arn, SecretString=url)
    return arn


def example_network(local: LocalAws) -> dict[str, str]:
    """A VPC, subnet and security group for the example workload, as a user brings their own."""
    from devtools.ecs_local import create_network

    subnet, group = create_network(local.client("ec2"), "batchwire example tasks")
    return {"ExampleSubnetIds": subnet, "ExampleSecurityGroupIds": group}


def rehearse_variant(
    local: LocalAws,
    variant: str,
    sam_template: dict[str, Any] | None = None,
    overrides: Mapping[str, str] | None = None,
    checkov: bool = True,
    stack_name: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> VariantReport:
    """Transform, lint, scan, deploy and check one variant; never raises for a found problem."""
    sam_template = sam_template if sam_template is not None else load_template()
    stack_name = stack_name or stack_name_of(variant)
    parameters = {
        name: value.replace("{stack}", stack_name)
        for name, value in {**VARIANTS.get(variant, {}), **(overrides or {})}.items()
    }
    if "SlackWebhookSecretArn" not in parameters:
        parameters["SlackWebhookSecretArn"] = local_slack_secret(local)
    if parameters.get("ExampleWorkload") == "on":
        for name, value in example_network(local).items():
            parameters.setdefault(name, value)
            parameters.setdefault(name.replace("Example", "Dispatcher", 1), value)
    report = VariantReport(variant)
    try:
        transformed = transform(sam_template, parameters)
    except Exception as error:
        report.lint_findings.append(f"the SAM transform refused the template: {error}")
        return report
    report.lint_findings = lint(transformed)
    if checkov:
        WORK_DIR.mkdir(parents=True, exist_ok=True)
        path = WORK_DIR / f"{variant}.json"
        path.write_text(json.dumps(transformed, indent=1))
        report.checkov, report.checkov_problems = scan(path, transformed)
    report.wiring_problems += undeclared_references(sam_template)
    try:
        report.stack = deploy(local, transformed, variant, parameters, stack_name, tags)
    except RehearsalError as error:
        report.wiring_problems.append(str(error))
        return report
    report.wiring_problems += check_triggers(report.stack, sam_template)
    report.wiring_problems += check_environment(report.stack, sam_template)
    report.wiring_problems += check_handlers_import(report.stack)
    return report


def format_report(
    reports: list[VariantReport],
    seconds: float,
    sam_template: dict[str, Any],
    side_by_side: list[str] | None = None,
    side_notes: list[str] | None = None,
) -> str:
    lines = []
    for report in reports:
        given = report.stack.parameters if report.stack else {}
        shown = {
            name: given.get(name, value) for name, value in VARIANTS.get(report.variant, {}).items()
        }
        if report.variant not in VARIANTS and report.stack is not None:
            shown = {k: v for k, v in given.items() if k != "SlackWebhookSecretArn"}
            shown = {
                k: v
                for k, v in shown.items()
                if str(sam_template["Parameters"][k].get("Default")) != v
            }
        lines.append(f"== {report.variant} ({_describe(shown)})")
        lines.append(
            "   cfn-lint + serverless rules on the transformed template: "
            f"{len(report.lint_findings)} findings"
        )
        if report.checkov:
            counts = report.checkov
            lines.append(
                f"   checkov: {counts['passed']} passed, {counts['failed']} failed, "
                f"{counts['skipped']} skipped (each with its reason)"
            )
        stack = report.stack
        if stack is not None:
            total = sum(stack.created.values())
            lines.append(f"   stack {stack.name}: CREATE_COMPLETE, {total} resources created")
            for kind, count in sorted(stack.created.items()):
                lines.append(f"     {count:3d}  {kind}")
            if stack.skipped:
                lines.append("   skipped by the local engine (no moto support; wiring checked "
                             "on their resolved properties):")  # fmt: skip
                for kind, ids in sorted(stack.skipped.items()):
                    lines.append(f"     {len(ids):3d}  {kind}")
            for note, count in sorted(stack.workarounds.items()):
                lines.append(f"   worked around for moto ({count}x): {note}")
            lines.append(
                f"   wiring: {len(expected_triggers(sam_template))} triggers, "
                f"{sum(len(v) for v in environment_references(sam_template).values())} "
                f"resource names in environments, {len(stack.functions())} handlers imported "
                f"with their layers ({_describe_layers(stack)})"
            )
        for problem in report.problems:
            lines.append(f"   FAILED {problem}")
    if side_by_side is not None and len(reports) > len(VARIANTS):
        together = ", ".join(r.stack.name for r in reports[len(VARIANTS) :] if r.stack)
        lines.append(f"== side by side in one account: {together}")
        lines.append("   names of every named resource compared: "
                     f"{'no collision' if not side_by_side else 'COLLISIONS'}")  # fmt: skip
        lines += [f"   {note}" for note in side_notes or []]
        lines += [f"   FAILED {problem}" for problem in side_by_side]
    failed = sum(len(report.problems) for report in reports) + len(side_by_side or [])
    verdict = "rehearsal passed" if not failed else f"rehearsal FAILED: {failed} problems"
    lines.append(f"{verdict} in {seconds:.1f} s")
    return "\n".join(lines)


def _describe_layers(stack: DeployedStack) -> str:
    layers = sorted(
        logical_id
        for logical_id, resource in stack.template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::LayerVersion" and logical_id in stack.physical_ids
    )
    return ", ".join(layers) or "none"


def _describe(parameters: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in parameters.items()) or "parameter defaults"


def main(argv: list[str] | None = None) -> int:
    import logging
    import warnings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--variant", choices=sorted(VARIANTS), action="append")
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument("--no-checkov", action="store_true", help="skip the checkov scan")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    # moto names each type it skips, once per resource; the report counts them by type
    logging.getLogger("moto").setLevel(logging.ERROR)
    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse AWS::")
    started = time.monotonic()
    sam_template = load_template(args.template)
    reports = []
    side_problems: list[str] = []
    side_notes: list[str] = []
    with moto_server() as local:
        for variant in args.variant or list(VARIANTS):
            reports.append(
                rehearse_variant(local, variant, sam_template, checkov=not args.no_checkov)
            )
        if not args.variant:
            from devtools.side_by_side import rehearse_side_by_side

            side = rehearse_side_by_side(local, sam_template)
            reports += side.reports
            side_problems = side.problems
            side_notes = [
                f"stack tags of {name}: " + " ".join(f"{k}={v}" for k, v in tags.items())
                for name, tags in side.tags.items()
            ]
    seconds = time.monotonic() - started
    print(format_report(reports, seconds, sam_template, side_problems, side_notes))
    return 1 if side_problems or any(report.problems for report in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
