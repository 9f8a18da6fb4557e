"""Which stack the command reads, and its resources and outputs, read once.

``--stack NAME`` reads a deployed stack where boto3 points (``--region``, ``--profile``,
``AWS_ENDPOINT_URL``, the usual credential chain). Without it, the stack of a running
``make local-stack`` / ``make demo``: its state file ``.aws-sam/local-stack.json`` (looked
for in the current directory and its parents) names the stack and the moto endpoint.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from batchwire_cli.errors import CliError

#: Where ``make local-stack`` writes its endpoint and stack name, from the repository root.
LOCAL_STATE = Path(".aws-sam") / "local-stack.json"
#: Names another state file (tests, or a local stack started from elsewhere).
LOCAL_STATE_VARIABLE = "BATCHWIRE_LOCAL_STACK_STATE"
#: moto accepts any credentials; these never leave the machine.
LOCAL_CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "aws_session_token": "testing",
}
LOCAL_REGION = "us-east-1"
NO_STACK = "no stack given and no local stack found: run `make local-stack`, or give --stack NAME"
# a terminal command: fail fast on a dead endpoint instead of retrying for a minute
CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3})


@dataclass(frozen=True)
class Target:
    """A stack name and the boto3 session (and endpoint) that reach it."""

    stack_name: str
    session: boto3.Session
    endpoint_url: str | None = None
    where: str = ""

    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` for the stack's account, region and endpoint."""
        return self.session.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            config=CLIENT_CONFIG,
        )


@dataclass(frozen=True)
class StackResource:
    logical_id: str
    physical_id: str
    resource_type: str


@dataclass
class Stack:
    """A deployed stack: its resources by logical id and its outputs by key."""

    target: Target
    resources: dict[str, StackResource] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.target.stack_name

    def physical_id(self, logical_id: str) -> str | None:
        """The physical id of a resource of the stack, or None when it is not deployed."""
        resource = self.resources.get(logical_id)
        return resource.physical_id if resource and resource.physical_id else None

    def of_type(self, resource_type: str) -> list[StackResource]:
        return [r for r in self.resources.values() if r.resource_type == resource_type]


def find_local_state(start: Path) -> Path | None:
    """``.aws-sam/local-stack.json`` in ``start`` or the nearest parent holding one."""
    for directory in (start, *start.parents):
        candidate = directory / LOCAL_STATE
        if candidate.is_file():
            return candidate
    return None


def resolve_target(
    stack: str | None,
    region: str | None = None,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Target:
    """The stack to read: ``--stack`` where boto3 points, or the running local stack."""
    env = os.environ if environ is None else environ
    if stack:
        try:
            session = boto3.Session(profile_name=profile or None, region_name=region or None)
        except ProfileNotFound:
            raise CliError(f"AWS profile {profile!r} not found in your AWS config") from None
        if not session.region_name:
            raise CliError(f"stack {stack}: no AWS region: give --region or set AWS_REGION")
        endpoint = env.get("AWS_ENDPOINT_URL")
        where = f"region {session.region_name}" + (f" at {endpoint}" if endpoint else "")
        return Target(stack, session, None, where)
    if env.get(LOCAL_STATE_VARIABLE):
        state_path: Path | None = Path(env[LOCAL_STATE_VARIABLE])
    else:
        state_path = find_local_state(cwd or Path.cwd())
    if state_path is None or not state_path.is_file():
        raise CliError(NO_STACK)
    try:
        state = json.loads(state_path.read_text())
        name, endpoint = str(state["stack"]), str(state["endpoint"])
    except (OSError, ValueError, KeyError, TypeError):
        raise CliError(
            f"{state_path}: not a local stack state (stack, endpoint); "
            "run `make local-stack` again, or give --stack NAME"
        ) from None
    session = boto3.Session(
        aws_access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
        aws_session_token=LOCAL_CREDENTIALS["aws_session_token"],
        region_name=region or LOCAL_REGION,
    )
    return Target(name, session, endpoint, f"the local stack at {endpoint}")


@contextmanager
def aws_errors(target: Target, doing: str) -> Iterator[None]:
    """Turn boto3's exceptions into one-line CliErrors that say what was being done."""
    try:
        yield
    except (NoCredentialsError, PartialCredentialsError):
        raise CliError(
            f"{doing}: no AWS credentials: set a profile (--profile, AWS_PROFILE) or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `make local-stack` and drop --stack"
        ) from None
    except NoRegionError:
        raise CliError(f"{doing}: no AWS region: give --region or set AWS_REGION") from None
    except EndpointConnectionError as error:
        hint = " (is `make local-stack` still running?)" if target.endpoint_url else ""
        raise CliError(f"{doing}: cannot reach {error.kwargs.get('endpoint_url')}{hint}") from None
    except ClientError as error:
        details = error.response.get("Error", {})
        code, message = details.get("Code", "Error"), details.get("Message", str(error))
        raise CliError(f"{doing}: {code}: {message}") from None
    except BotoCoreError as error:
        raise CliError(f"{doing}: {error}") from None


def read_stack(target: Target) -> Stack:
    """The stack's resources (every page) and outputs; CliError naming a missing stack."""
    cloudformation = target.client("cloudformation")
    with aws_errors(target, f"reading stack {target.stack_name}"):
        try:
            described = cloudformation.describe_stacks(StackName=target.stack_name)["Stacks"][0]
        except ClientError as error:
            if "does not exist" in str(error.response.get("Error", {}).get("Message", "")):
                raise CliError(
                    f"stack {target.stack_name} not found in {target.where} "
                    "(check --stack, --region and --profile)"
                ) from None
            raise
        outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in described.get("Outputs", [])}
        resources: dict[str, StackResource] = {}
        paginator = cloudformation.get_paginator("list_stack_resources")
        for page in paginator.paginate(StackName=target.stack_name):
            for summary in page["StackResourceSummaries"]:
                resources[summary["LogicalResourceId"]] = StackResource(
                    logical_id=summary["LogicalResourceId"],
                    physical_id=summary.get("PhysicalResourceId", ""),
                    resource_type=summary["ResourceType"],
                )
    return Stack(target=target, resources=resources, outputs=outputs)
