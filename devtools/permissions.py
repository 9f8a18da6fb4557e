"""Least privilege, proven: run each deployed function with only its own role's permissions.

During the rehearsal every function of the stack is driven with a sample event in a
process of its own, signed with credentials of its deployed role (``sts:AssumeRole``),
while the local engine enforces IAM. An action the code calls and the role does not grant
fails the run, naming the function, its role and the action. Every AWS call the function
makes is recorded (a botocore hook in its process), so the report can say, per role,
which granted actions were used and which were granted but never used.

moto checks IAM at the level of actions only, and the workaround lives here, never in the
template:

- moto checks most services (Batch, ECS, DynamoDB, SNS, Secrets Manager) against the
  resource ``*``, so a statement naming a specific resource never matches;
- an Allow statement with a condition moto cannot evaluate counts as an explicit deny;
- moto's CloudFormation stores a role's inline policies as Python text, not JSON, and
  attaches no managed policy;
- moto matches actions case-sensitively and names some in lower case (``batch:submitjob``);
- moto answers a denied JSON-protocol call with an XML body, so botocore reports the error
  code ``403``, not ``AccessDenied``: the recording hook reads the status and the message.

So each function runs as a *rehearsal role* (``<role logical id>-<variant>-lp``), made
next to the deployed role, which is left untouched: it holds one inline copy of every
policy of the deployed role (the inline ones, and the AWS managed ones SAM attaches) with
each statement's ``Resource`` set to ``*`` and its ``Condition`` removed. The original
documents are kept for the report: the actions and resources granted, and the condition
keys the local engine did not evaluate (``aws:RequestedRegion``, ``ecs:cluster`` ...).
What the rehearsal proves is that every action the code calls is granted by some
statement of the role; that the resources and conditions of those statements fit is left
to the unit tests of the template and to ``cfn-lint``.

    python -m devtools.permissions      # deploy, drive every function, print the report
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.ecs_local import EcsWorkload
from devtools.local_aws import LocalAws, sqs_event
from devtools.rehearse import DeployedStack, RehearsalError
from devtools.template import ROOT

EVENTS = ROOT / "events"
#: What the AWS managed policies SAM attaches to every function role grant.
MANAGED_POLICY_NAMES = ("AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess")
#: Actions Lambda's SQS poller calls with the function's role, for an SQS event source.
SQS_POLLER_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
)
#: Actions AWS authorizes inside another call (tag on create, passing a role), never called.
AUTHORIZED_WITHIN = {
    "batch:TagResource": "batch:SubmitJob",
    "ecs:TagResource": "ecs:RunTask",
    "iam:PassRole": "ecs:RunTask",
}
ACCESS_DENIED_CODES = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation")


class PermissionFailure(Exception):
    """A function failed with only its role's permissions; the message names what it lacked."""


@dataclass(frozen=True)
class FailOnce:
    """An AWS call of the function failed once on purpose, to drive it down the path that
    only a failure reaches (a lookup after a lost answer, a deferral after throttling)."""

    #: The IAM action of the call (``batch:SubmitJob``).
    action: str
    #: ``answer-lost``: the service acted and its answer never came (ReadTimeoutError,
    #: after the engine answered); ``throttled``: refused for its rate past botocore's
    #: retries (ThrottlingException, before the request is sent: nothing was done).
    how: str

    @property
    def error(self) -> str:
        """What the run's error says when the failure reached the handler's caller."""
        return "ReadTimeoutError" if self.how == "answer-lost" else "ClientError"


# ---------------------------------------------------------------- what a role grants


@dataclass(frozen=True)
class RolePolicies:
    """A deployed function role and its policy documents as the template gave them."""

    function: str
    role: str
    role_name: str
    documents: dict[str, dict[str, Any]]
    #: The policies that serve Lambda itself, not the code: policy name -> why.
    lambda_policies: dict[str, str]
    #: The SQS queue whose messages Lambda's poller reads with this role, if any.
    sqs_source: str | None = None

    def statements(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for name, document in self.documents.items():
            found = document.get("Statement", [])
            for statement in found if isinstance(found, list) else [found]:
                yield name, statement

    @property
    def granted(self) -> dict[str, list[str]]:
        """Allowed action (as written) -> the resources it is allowed on."""
        granted: dict[str, list[str]] = {}
        for _, statement in self.statements():
            if statement.get("Effect") != "Allow":
                continue
            for action in _listed(statement.get("Action")):
                resources = granted.setdefault(action, [])
                resources.extend(
                    r for r in _listed(statement.get("Resource")) if r not in resources
                )
        return granted

    @property
    def condition_keys(self) -> list[str]:
        """Every condition key of the role's statements: none is evaluated locally."""
        keys = {
            key
            for _, statement in self.statements()
            for operator in (statement.get("Condition") or {}).values()
            if isinstance(operator, dict)
            for key in operator
        }
        return sorted(keys)

    def lambda_actions(self) -> dict[str, str]:
        """Granted actions Lambda uses with this role on the function's behalf -> by what."""
        found: dict[str, str] = {}
        if self.sqs_source:
            for action in SQS_POLLER_ACTIONS:
                found[action] = f"Lambda's SQS poller ({self.sqs_source})"
        for name, statement in self.statements():
            if name in self.lambda_policies:
                for action in _listed(statement.get("Action")):
                    found.setdefault(action, self.lambda_policies[name])
        return found


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def _document(text: Any) -> dict[str, Any]:
    """A policy document as IAM returned it: JSON, or the Python text moto's CloudFormation
    stores instead of JSON."""
    if isinstance(text, dict):
        return text
    try:
        loaded = json.loads(text)
    except ValueError:
        loaded = ast.literal_eval(text)
    if not isinstance(loaded, dict):
        raise RehearsalError(f"not a policy document: {str(text)[:200]}")
    if isinstance(loaded.get("Statement"), list):
        # moto's CloudFormation leaves a null where !If chose AWS::NoValue; CloudFormation
        # leaves no statement
        loaded["Statement"] = [s for s in loaded["Statement"] if s is not None]
    return loaded


def _managed_policy(name: str) -> dict[str, Any] | None:
    """An AWS managed policy's document from moto's copy of them (no AWS call)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    entry = json.loads(aws_managed_policies_data).get(name)
    return dict(entry["Document"]) if entry else None


def _role_logical_id(stack: DeployedStack, function: str) -> str:
    role = stack.template["Resources"][function]["Properties"].get("Role", {})
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        target = role["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".")[0])
    raise RehearsalError(f"{function}: its role is not a resource of the stack ({role!r})")


def _sqs_event_source(stack: DeployedStack, function: str) -> str | None:
    """The logical id of an SQS queue feeding ``function`` through an event source mapping."""
    resources = stack.template["Resources"]
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::EventSourceMapping":
            continue
        props = resource.get("Properties", {})
        if props.get("FunctionName") not in ({"Ref": function}, {"Fn::GetAtt": [function, "Arn"]}):
            continue
        source = props.get("EventSourceArn", {})
        target = source.get("Fn::GetAtt", [None])[0] if isinstance(source, dict) else None
        if target and resources.get(target, {}).get("Type") == "AWS::SQS::Queue":
            return f"{target} via {logical_id}"
    return None


def role_policies(stack: DeployedStack, function: str) -> RolePolicies:
    """The deployed role of ``function``: its inline policies as moto holds them, and the AWS
    managed policies the template attaches."""
    iam = stack.local.client("iam")
    role_arn = stack.local.client("lambda").get_function_configuration(
        FunctionName=stack.function_name(function)
    )["Role"]
    role_name = role_arn.rsplit("/", 1)[-1]
    role = _role_logical_id(stack, function)
    documents: dict[str, dict[str, Any]] = {}
    lambda_policies: dict[str, str] = {}
    for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        text = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        documents[name] = _document(text)
        if "EventInvokeConfigOnFailure" in name:
            lambda_policies[name] = "Lambda's on-failure destination"
    role_props = stack.template["Resources"].get(role, {}).get("Properties", {})
    for arn in role_props.get("ManagedPolicyArns", []):
        name = str(arn).rsplit("/", 1)[-1]
        managed = _managed_policy(name)
        if managed is None:
            raise RehearsalError(f"{role}: managed policy {arn} is unknown to the local engine")
        documents[name] = managed
        if name in MANAGED_POLICY_NAMES:
            lambda_policies[name] = f"Lambda itself ({name})"
    source = _sqs_event_source(stack, function)
    return RolePolicies(function, role, role_name, documents, lambda_policies, source)


def relaxed(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` as moto can enforce it: every statement on Resource ``*``, no Condition,
    and each action also in lower case (IAM matches actions ignoring case; moto matches
    them as written and names some, such as ``batch:submitjob``, in lower case)."""
    found = document.get("Statement", [])
    statements = []
    for statement in found if isinstance(found, list) else [found]:
        copy = {k: v for k, v in statement.items() if k not in ("Resource", "NotResource")}
        copy.pop("Condition", None)
        copy["Resource"] = "*"
        if "Action" in copy:
            actions = _listed(copy["Action"])
            copy["Action"] = list(dict.fromkeys([*actions, *(a.lower() for a in actions)]))
        statements.append(copy)
    return {"Version": "2012-10-17", "Statement": statements}


# ---------------------------------------------------------------- running as the role


TRUST_LAMBDA = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def rehearsal_role(stack: DeployedStack, policies: RolePolicies) -> str:
    """Make (or refresh) the rehearsal role of ``policies``: relaxed copies of every policy of
    the deployed role, inline. Returns its ARN; the deployed role is not changed."""
    iam = stack.local.client("iam")
    name = f"{policies.role}-{stack.variant}-lp"[:64]
    try:
        arn: str = iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA),
            Description=f"rehearsal copy of {policies.role_name} (Resource *, no Condition)",
        )["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        for old in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=old)
    for index, (policy, document) in enumerate(policies.documents.items()):
        iam.put_role_policy(
            RoleName=name,
            PolicyName=f"{index}-{''.join(c for c in policy if c.isalnum())}"[:128],
            PolicyDocument=json.dumps(relaxed(document)),
        )
    return arn


def assumed_credentials(local: LocalAws, role_arn: str, session: str) -> dict[str, str]:
    """Credentials of ``role_arn`` as the environment variables Lambda gives a function."""
    found = local.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session[:64])
    credentials = found["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": str(credentials["AccessKeyId"]),
        "AWS_SECRET_ACCESS_KEY": str(credentials["SecretAccessKey"]),
        "AWS_SESSION_TOKEN": str(credentials["SessionToken"]),
    }


#: Services whose request signatures moto cannot verify (every request is refused with
#: SignatureDoesNotMatch under IAM enforcement, whatever the key): their calls are made with
#: enforcement paused and checked against the role's policies by this tool instead.
UNVERIFIABLE_SIGNATURES = frozenset({"scheduler"})


def _reset_auth(local: LocalAws, count: str) -> str:
    return _reset_auth_at(local.endpoint_url, count)


def _reset_auth_at(endpoint_url: str, count: str) -> str:
    request = urllib.request.Request(
        f"{endpoint_url}/moto-api/reset-auth",
        data=count.encode(),
        # a form content type would leave the body to the form parser, and moto reads none
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
    return str(answer.get("PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT", "inf"))


@contextmanager
def enforced_iam(local: LocalAws) -> Iterator[None]:
    """The local engine checks IAM on every request in the block (and, being one process,
    on every request to any moto of this process): only signed, permitted calls pass."""
    previous = _reset_auth(local, "0")
    try:
        yield
    finally:
        _reset_auth(local, previous)


@dataclass
class RoleRun:
    """One invocation of a function with only its role's permissions, and what it called."""

    function: str
    policies: RolePolicies
    used: list[str] = field(default_factory=list)
    #: Calls refused for want of a permission: (action, the engine's message).
    denied: list[tuple[str, str]] = field(default_factory=list)
    result: Any = None
    error: str | None = None
    output: str = ""
    #: Calls made while the engine did not check IAM (UNVERIFIABLE_SIGNATURES).
    unverified: list[str] = field(default_factory=list)
    #: The call failed on purpose (FailOnce), and the error it raised (the run's own).
    failed_once: FailOnce | None = None

    @property
    def role(self) -> str:
        return self.policies.role

    @property
    def failure(self) -> str | None:
        """Why the run failed, naming the function, its role and any action denied."""
        if self.denied:
            actions = ", ".join(sorted({action for action, _ in self.denied}))
            return (
                f"{self.function} (role {self.role}) was denied {actions}: "
                f"{self.denied[0][1]}; grant it in the function's Policies"
            )
        granted = self.policies.granted
        ungranted = [
            action
            for action in self.unverified
            if not any(_matches(pattern, action) for pattern in granted)
        ]
        if ungranted:
            return (
                f"{self.function} (role {self.role}) called {', '.join(ungranted)}, which its "
                "policies do not grant (checked by this tool: moto cannot verify these "
                "signatures); grant it in the function's Policies"
            )
        if self.error and not (
            self.failed_once is not None and self.failed_once.error in self.error
        ):
            return f"{self.function} (role {self.role}) failed: {self.error}"
        return None

    def check(self) -> RoleRun:
        """This run, or PermissionFailure if it failed."""
        if self.failure:
            raise PermissionFailure(self.failure)
        return self


def action_name(service_model: Any, operation: str) -> str:
    """The IAM action of an API call: the service's signing name and the operation name."""
    prefix = service_model.signing_name or service_model.endpoint_prefix
    return f"{prefix}:{operation}"


def run_as_role(
    stack: DeployedStack,
    function: str,
    event: Mapping[str, Any],
    timeout: float = 120,
    fail_once: FailOnce | None = None,
) -> RoleRun:
    """Invoke ``function`` once with ``event``, signed as its rehearsal role, while the local
    engine enforces IAM. Never raises for the function's own failure: see RoleRun.failure.
    With ``fail_once``, that call fails once after the engine answered it (the error it
    raises to the handler's caller is expected)."""
    policies = role_policies(stack, function)
    role_arn = rehearsal_role(stack, policies)
    configuration = stack.local.client("lambda").get_function_configuration(
        FunctionName=stack.function_name(function)
    )
    environment = {
        **{k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "PYTHONPATH")},
        **stack.local.environ,
        **stack.function_environment(function),
        **assumed_credentials(stack.local, role_arn, f"{function}-{uuid.uuid4().hex[:8]}"),
        "AWS_LAMBDA_FUNCTION_NAME": stack.function_name(function),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)]),
    }
    run = RoleRun(function, policies, failed_once=fail_once)
    with tempfile.TemporaryDirectory() as work:
        spec, out = Path(work) / "spec.json", Path(work) / "out.json"
        spec.write_text(
            json.dumps(
                {
                    "function": stack.function_name(function),
                    "handler": configuration["Handler"],
                    "timeout": int(configuration.get("Timeout", 3)),
                    "memory": int(configuration.get("MemorySize", 128)),
                    "event": event,
                    "out": str(out),
                    "failOnce": None
                    if fail_once is None
                    else {"action": fail_once.action, "how": fail_once.how},
                }
            )
        )
        with enforced_iam(stack.local):
            completed = subprocess.run(
                [sys.executable, "-m", "devtools.permissions", "--child", str(spec)],
                env=environment, cwd=ROOT, capture_output=True, text=True,
                check=False, timeout=timeout,
            )  # fmt: skip
        run.output = completed.stderr
        if not out.exists():
            last = (completed.stderr.strip().splitlines() or ["(no output)"])[-1]
            run.error = f"the function's process ended without a result: {last}"
            return run
        outcome = json.loads(out.read_text())
    run.used = list(dict.fromkeys(outcome["calls"]))
    run.unverified = list(dict.fromkeys(outcome.get("unverified", [])))
    run.denied = [(item["action"], item["message"]) for item in outcome["denied"]]
    run.result = outcome.get("result")
    if "errorType" in outcome:
        run.error = f"{outcome['errorType']}: {outcome['errorMessage']}"
    return run


def _child(spec_path: str) -> int:
    """In the function's own process: record every AWS call, then import and run the handler."""
    spec = json.loads(Path(spec_path).read_text())
    calls: list[str] = []
    denied: list[dict[str, str]] = []
    unverified: list[str] = []
    endpoint_url = os.environ["AWS_ENDPOINT_URL"]

    import boto3
    from botocore.exceptions import ClientError, ReadTimeoutError

    boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    assert session is not None

    def before_call(model: Any, **_: Any) -> None:
        calls.append(action_name(model.service_model, model.name))
        if model.service_model.signing_name in UNVERIFIABLE_SIGNATURES:
            unverified.append(action_name(model.service_model, model.name))
            _reset_auth_at(endpoint_url, "inf")

    def after_call(model: Any, http_response: Any, parsed: Any, **_: Any) -> None:
        if model.service_model.signing_name in UNVERIFIABLE_SIGNATURES:
            _reset_auth_at(endpoint_url, "0")
        error = parsed.get("Error", {}) if isinstance(parsed, dict) else {}
        code = str(error.get("Code", ""))
        if code in ACCESS_DENIED_CODES or http_response.status_code == 403:
            action = action_name(model.service_model, model.name)
            text = str(error.get("Message") or code or "HTTP 403")
            said = re.search(r"User: \S+ is not authorized to perform: [\w:*-]+", text)
            message = said.group(0) if said else text[:500]
            denied.append({"action": action, "message": message})

    # the call to fail once (FailOnce), and whether before it is sent or after its answer
    pending: list[dict[str, str]] = []
    if spec.get("failOnce"):
        action, how = spec["failOnce"]["action"], spec["failOnce"]["how"]
        pending.append({"action": action, "when": "after" if how == "answer-lost" else "before"})

    def fail(model: Any, when: str) -> None:
        planned = pending[0] if pending else {}
        if planned.get("when") != when or action_name(model.service_model, model.name) != (
            planned.get("action")
        ):
            return
        pending.clear()
        if when == "after":  # the service acted, and its answer never came back
            raise ReadTimeoutError(endpoint_url=endpoint_url, error="read timeout (rehearsal)")
        raise ClientError(  # refused for its rate, past botocore's retries: nothing was done
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded (rehearsal)"}},
            model.name,
        )

    session.events.register("before-call", before_call)
    session.events.register("before-call", lambda model, **_: fail(model, "before"))
    session.events.register("after-call", after_call)
    session.events.register("after-call", lambda model, **_: fail(model, "after"))

    from devtools.invoke import LocalContext, stdout_to_stderr

    context = LocalContext(
        function_name=spec["function"],
        memory_limit_in_mb=spec["memory"],
        timeout_seconds=spec["timeout"],
        region=os.environ.get("AWS_REGION", "us-east-1"),
    )
    module_name, _, attribute = str(spec["handler"]).rpartition(".")
    outcome: dict[str, Any]
    try:
        with stdout_to_stderr():
            handler = getattr(importlib.import_module(module_name), attribute)
            outcome = {"result": handler(spec["event"], context)}
    except Exception as error:
        traceback.print_exc()
        outcome = {"errorType": type(error).__name__, "errorMessage": str(error)}
    outcome.update(calls=calls, denied=denied, unverified=unverified)
    Path(spec["out"]).write_text(json.dumps(outcome, default=str))
    return 0


# ---------------------------------------------------------------- the report


def _matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


@dataclass
class RoleUse:
    """What the runs of one role showed: actions used, granted, and how each grant served."""

    policies: RolePolicies
    used: list[str]
    for_lambda: dict[str, str]
    within: dict[str, str]
    unused: list[str]
    not_granted: list[str]


def role_use(runs: list[RoleRun]) -> list[RoleUse]:
    """Per role (in order of first run), the union of its runs' calls against its grants."""
    by_role: dict[str, list[RoleRun]] = {}
    for run in runs:
        by_role.setdefault(run.role, []).append(run)
    found = []
    for role_runs in by_role.values():
        policies = role_runs[0].policies
        used = sorted({action for run in role_runs for action in run.used})
        granted = policies.granted
        lambda_actions = policies.lambda_actions()
        code_granted = {
            action
            for name, statement in policies.statements()
            if name not in policies.lambda_policies and statement.get("Effect") == "Allow"
            for action in _listed(statement.get("Action"))
        }
        for_lambda, within, unused = {}, {}, []
        for action in sorted(granted):
            if any(_matches(action, call) for call in used):
                continue
            partner = AUTHORIZED_WITHIN.get(action)
            if partner and partner in used:
                within[action] = partner
            elif action in lambda_actions and (
                # granted only for Lambda, or the poller's, which the template grants itself
                action not in code_granted or action in SQS_POLLER_ACTIONS
            ):
                for_lambda[action] = lambda_actions[action]
            else:
                unused.append(action)
        not_granted = [call for call in used if not any(_matches(a, call) for a in granted)]
        found.append(RoleUse(policies, used, for_lambda, within, unused, not_granted))
    return found


def format_permissions(runs: list[RoleRun]) -> str:
    """Per role a summary line (used; granted but unused; conditions not evaluated locally),
    then what was granted for Lambda's own use or authorized inside another call."""
    lines = []
    for use in role_use(runs):
        role = use.policies.role
        keys = use.policies.condition_keys
        lines.append(
            f"{role}: used {', '.join(use.used) or 'nothing'}; "
            f"granted but unused: {', '.join(use.unused) or 'none'}; "
            f"conditions not evaluated locally: {', '.join(keys) or 'none'}"
        )
        by_whom: dict[str, list[str]] = {}
        for action, who in use.for_lambda.items():
            by_whom.setdefault(who, []).append(action)
        for who, actions in sorted(by_whom.items()):
            lines.append(f"   granted for {who}: {', '.join(actions)}")
        if use.within:
            within = ", ".join(f"{action} (in {partner})" for action, partner in use.within.items())
            lines.append(f"   authorized inside another call, not checked locally: {within}")
        unverified = sorted({a for run in runs if run.role == role for a in run.unverified})
        if unverified:
            lines.append(
                "   checked against the role's policies by this tool, not by the engine (moto "
                f"cannot verify their signatures): {', '.join(unverified)}"
            )
        if use.not_granted:
            lines.append(f"   FAILED called but not granted: {', '.join(use.not_granted)}")
        lines.extend(f"   FAILED {run.failure}" for run in runs if run.role == role and run.failure)
    return "\n".join(lines)


# ---------------------------------------------------------------- the whole proof


def deploy_stack(
    local: LocalAws,
    sam_template: dict[str, Any] | None = None,
    overrides: Mapping[str, str] | None = None,
    variant: str = "default",
) -> DeployedStack:
    """Transform and deploy ``sam_template`` (template.yaml by default) without the static
    checks, the webhook secret defaulting to the rehearsal's local one."""
    from devtools.rehearse import deploy, local_slack_secret, transform
    from devtools.template import load_template

    parameters = dict(overrides or {})
    if "SlackWebhookSecretArn" not in parameters:
        parameters["SlackWebhookSecretArn"] = local_slack_secret(local)
    template = sam_template if sam_template is not None else load_template()
    return deploy(local, transform(template, parameters), variant, parameters)


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


@dataclass(frozen=True)
class Workloads:
    """What the functions act on, made in the local engine before the stack is deployed."""

    ecs: EcsWorkload
    #: A job queue of the rehearsal's own: moto keeps one state per process, shared with
    #: anything else this process runs against a moto server.
    job_queue: str = "rehearsal-feeds"
    #: Its chain rules, in SSM as a user keeps a rule set (ChainRulesParameterName).
    chain_rules_parameter: str = "/batchwire/rehearsal/chain-rules"
    #: A queue and the ECS service of its consumers, for the scaler (at 0 tasks).
    consumer_queue: str = "rehearsal-work"
    consumer_service: str = ""

    @property
    def overrides(self) -> dict[str, str]:
        return {
            "RetrierSecurityGroupIds": self.ecs.security_group,
            "RetrierBackoffIntervalSeconds": "0",
            "JobQueueNames": self.job_queue,
            "ScheduleJobQueue": self.job_queue,
            "ChainRulesParameterName": self.chain_rules_parameter,
            "ScalerQueueNames": self.consumer_queue,
            "ScalerServices": self.consumer_service,
            # the queue dispatcher, on the same sample task definition the retrier runs
            "DispatcherTaskFamily": self.ecs.task_definition_arn.rpartition("/")[2].split(":")[0],
            "DispatcherClusterName": self.ecs.cluster_arn.rpartition("/")[2],
            "DispatcherContainerName": "app",
            "DispatcherSubnetIds": self.ecs.subnet,
            "DispatcherSecurityGroupIds": self.ecs.security_group,
        }

    def schedule_event(self) -> dict[str, Any]:
        """events/schedule.json with its jobs sent to the rehearsal's queue."""
        event = sample("schedule.json")
        for job in event["jobs"]:
            job["jobQueue"] = self.job_queue
        return event


def create_workloads(local: LocalAws) -> Workloads:
    """A Batch queue and job definitions for the submitter and chainer, an ECS cluster and
    task definition for the retrier (cluster ``batch-jobs``, the stack's default)."""
    from devtools.ecs_local import create_consumer_service, create_ecs_workload
    from devtools.local_aws import create_batch_workload, feed_chain_rules, put_chain_rules

    ecs = create_ecs_workload(local.client("ec2"), local.client("ecs"))
    service = create_consumer_service(local.client("ecs"), ecs, "rehearsal-consumers")
    workloads = Workloads(ecs, consumer_service=service)
    create_batch_workload(local.client, queue=workloads.job_queue)
    local.client("sqs").create_queue(QueueName=workloads.consumer_queue)
    rules = feed_chain_rules(queue=workloads.job_queue)
    put_chain_rules(local.client, rules, workloads.chain_rules_parameter)
    return workloads


def drive_functions(stack: DeployedStack, workloads: Workloads) -> list[RoleRun]:
    """Each function with a sample event, as its role; the retrier twice: a task STOPPED with
    exit 1, then the relaunch that event queued. Stack and workloads as create_workloads
    and deploy_stack(overrides=workloads.overrides) made them."""
    from devtools.ecs_local import delay_queue_event, run_scheduled_task, stopped_event

    runs = [
        run_as_role(stack, "SubmitterFunction", workloads.schedule_event()),
        run_as_role(stack, "ChainerFunction", sample("sns-job-finished.json")),
        run_as_role(stack, "NotifierFunction", sample("cloudwatch-logs-batch-traceback.json")),
        run_as_role(stack, "DispatcherFunction", sample("sqs-work-messages.json")),
    ]
    # the scaler, with one message waiting: it reads the queue and starts a consumer
    sqs = stack.local.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=workloads.consumer_queue)["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="{}")
    runs.append(run_as_role(stack, "ScalerFunction", sample("scaler-tick.json")))
    runs.append(run_as_role(stack, "WatchFunction", missed_firing_tick(stack, workloads)))
    runs.extend(failure_paths(stack, workloads))
    task = run_scheduled_task(stack.local.client("ecs"), workloads.ecs)
    stopped = stopped_event(task, {"app": 1, "log-router": 0})
    runs.append(run_as_role(stack, "RetrierFunction", stopped))
    queue = stack.function_environment("RetrierFunction")["RETRIER_DELAY_QUEUE_URL"]
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    if messages:
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        relaunch = delay_queue_event(*(message["Body"] for message in messages))
        runs.append(run_as_role(stack, "RetrierFunction", relaunch))
    return runs


#: A SubmitJob that created its job, and whose answer never came back.
SUBMIT_ANSWER_LOST = FailOnce("batch:SubmitJob", "answer-lost")
#: A RunTask refused for its rate past botocore's retries.
RUN_TASK_THROTTLED = FailOnce("ecs:RunTask", "throttled")


def failure_paths(stack: DeployedStack, workloads: Workloads) -> list[RoleRun]:
    """The calls only a failure reaches, each made as the role: the submitter's and the
    chainer's lookup of a job whose SubmitJob answer was lost (batch:ListJobs and
    batch:DescribeJobs, in the event's redelivery, which finds the job by its submission's
    tag), and the dispatcher's deferral of a message whose RunTask was throttled
    (sqs:ChangeMessageVisibility). The delivery whose answer was lost fails, as it would."""
    firing = workloads.schedule_event()
    firing["scheduledTime"] = "2026-11-24T02:00:00Z"
    finished = sample("sns-job-finished.json")
    finished["Records"][0]["Sns"]["MessageId"] = str(uuid.uuid4())
    runs = []
    for function, event in (("SubmitterFunction", firing), ("ChainerFunction", finished)):
        runs.append(run_as_role(stack, function, event, fail_once=SUBMIT_ANSWER_LOST))
        runs.append(run_as_role(stack, function, event))
    runs.append(
        run_as_role(stack, "DispatcherFunction", work_message(stack), fail_once=RUN_TASK_THROTTLED)
    )
    return runs


def work_message(stack: DeployedStack) -> dict[str, Any]:
    """A message sent to the stack's WorkQueue, as Lambda's poller receives it."""
    sqs = stack.local.client("sqs")
    url = stack.function_environment("DispatcherFunction")["DISPATCHER_WORK_QUEUE_URL"]
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"feed": "orders", "rows": 12}))
    [message] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, AttributeNames=["All"])[
        "Messages"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return sqs_event([message], arn)


def missed_firing_tick(stack: DeployedStack, workloads: Workloads) -> dict[str, Any]:
    """A watched schedule in the stack's group, and the watch's event for a time after its
    first expected firing (which never happened): the watch reads, publishes and records."""
    from datetime import timedelta

    from devtools.watched import create_watched_schedule, next_firing, watch_tick

    lambda_client = stack.local.client("lambda")
    submitter = lambda_client.get_function(FunctionName=stack.function_name("SubmitterFunction"))
    schedule = create_watched_schedule(
        stack.local.client("scheduler"),
        group=stack.physical_ids["ScheduleGroup"],
        name="rehearsal-watched",
        target_arn=submitter["Configuration"]["FunctionArn"],
        role_arn=submitter["Configuration"]["Role"],
        jobs=workloads.schedule_event()["jobs"],
        expect={"withinMinutes": 60},
    )
    return watch_tick(next_firing(schedule) + timedelta(minutes=70))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child)

    import logging
    import warnings

    from devtools.local_aws import moto_server
    from devtools.rehearse import local_slack_secret
    from devtools.slack_receiver import slack_receiver

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse AWS::")
    started = time.monotonic()
    with moto_server() as local, slack_receiver() as slack:
        local_slack_secret(local, slack.url)
        workloads = create_workloads(local)
        stack = deploy_stack(local, overrides=workloads.overrides)
        runs = drive_functions(stack, workloads)
    print(format_permissions(runs))
    failed = [run for run in runs if run.failure] + [
        use for use in role_use(runs) if use.not_granted
    ]
    verdict = "least privilege proven" if not failed else f"FAILED: {len(failed)} runs"
    print(f"{verdict}: {len(runs)} runs as their own roles in {time.monotonic() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
