"""README.md's "Make it yours" steps, run as written against the local engine.

Each step is read from the README itself: the YAML pasted into template.yaml, the files
and ``aws ssm put-parameter`` commands of the shell blocks, and the ``parameter_overrides``
the prose and TOML blocks add. The stack is deployed with them, and the change does what
the README says it does.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from samcli.yamlhelper import yaml_parse

from devtools.ecs_local import create_network, sample_event
from devtools.local_aws import create_batch_workload
from devtools.rehearse import DeployedStack, lint, resolved_properties, transform
from devtools.sample_events import subscription_event
from devtools.slack_receiver import SlackReceiver, slack_receiver
from devtools.template import load_template
from tests.integration.invoke import (
    ROOT,
    SKIPPED_TYPES,
    UNANSWERED_WEBHOOK,
    LocalStack,
    deploy_stack,
    invoke,
    rule_matches,
)

pytestmark = [pytest.mark.integration, SKIPPED_TYPES]

README = (ROOT / "README.md").read_text()
EVENTS = ROOT / "events"
STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


# ---------------------------------------------------------------- reading the README


def step(title: str) -> str:
    """The text of the README's ``### title`` step."""
    match = re.search(rf"(?ms)^### {re.escape(title)}\n(.*?)(?=^##)", README)
    assert match, f'README.md has no "### {title}" step'
    return match.group(1)


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"(?ms)^```{language}\n(.*?)^```", text)


def run_shell_block(text: str, local: LocalStack, directory: Path) -> list[str]:
    """Carry out a README shell block: its ``cat > FILE <<'EOF'`` files, then each
    ``aws ssm put-parameter`` against the local engine. Returns the parameter names."""
    [block] = blocks(text, "sh")
    for name, body in re.findall(r"(?ms)^cat > (\S+) <<'EOF'\n(.*?)^EOF$", block):
        (directory / name).write_text(body)
    names = []
    for line in block.splitlines():
        if not line.startswith("aws ssm put-parameter"):
            continue
        words = shlex.split(line)
        option = {words[i]: words[i + 1] for i in range(3, len(words) - 1, 2)}
        value = option["--value"]
        if value.startswith("file://"):
            value = (directory / value.removeprefix("file://")).read_text()
        local.client("ssm").put_parameter(
            Name=option["--name"], Type=option["--type"], Value=value, Overwrite=True
        )
        names.append(option["--name"])
    assert names, "the step stores nothing in Parameter Store"
    return names


def overrides_in_prose(text: str) -> dict[str, str]:
    """The ``Name=Value`` the step says to add to ``parameter_overrides``."""
    found = re.findall(r"`(\w+=[^`\s]+)` to `parameter_overrides`", text)
    assert found, "the step names no parameter override"
    return dict(item.split("=", 1) for item in found)


def overrides_in_toml(text: str) -> dict[str, str]:
    [block] = blocks(text, "toml")
    line = tomllib.loads(block)["parameter_overrides"]
    return dict(item.split("=", 1) for item in shlex.split(line))


def deploy(
    local: LocalStack, parameters: dict[str, str], sam_template: dict[str, Any] | None = None
) -> DeployedStack:
    return deploy_stack(local.local, parameters, sam_template)


def write(directory: Path, event: dict[str, Any]) -> Path:
    path = directory / f"event-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(event))
    return path


def run(stack: DeployedStack, function: str, event: dict[str, Any], directory: Path) -> Any:
    invocation = invoke(stack, function, write(directory, event))
    assert invocation.returncode == 0, invocation.stderr[-3000:]
    return invocation.result


def jobs_named(local: LocalStack, queue: str, prefix: str) -> list[dict[str, Any]]:
    batch = local.client("batch")
    ids = [
        summary["jobId"]
        for status in STATUSES
        for summary in batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"]
        if summary["jobName"].startswith(prefix)
    ]
    found: list[dict[str, Any]] = batch.describe_jobs(jobs=ids)["jobs"] if ids else []
    return found


@pytest.fixture(scope="module")
def definitions(local_stack: LocalStack) -> dict[str, str]:
    """The job definitions the README's examples name, in the workload's queue feeds."""
    return create_batch_workload(
        local_stack.client, "feeds", ("feedstream-reports", "feedstream-publish")
    )


# ---------------------------------------------------------------- the steps


def test_add_a_schedule(local_stack: LocalStack, definitions: dict[str, str], tmp_path: Path):
    # Given template.yaml with the README's event pasted under SubmitterFunction's Events
    text = step("Add a schedule")
    [snippet] = blocks(text, "yaml")
    template = load_template()
    events = template["Resources"]["SubmitterFunction"]["Properties"]["Events"]
    pasted = yaml_parse(snippet)
    events.update(pasted)
    [name] = pasted

    # When it is deployed: as CloudFormation receives it, it lints clean and creates a stack
    assert lint(transform(copy.deepcopy(template), {"SlackWebhookSecretArn": "x"})) == []
    stack = deploy(local_stack, {"ScheduleState": "ENABLED"}, template)

    # Then the schedule is in the stack's group, on with ScheduleState, its role under the
    # stack's permissions boundary when one is set
    schedule = f"SubmitterFunction{name}"
    raw = stack.template["Resources"][schedule]["Properties"]
    assert raw["GroupName"] == {"Ref": "ScheduleGroup"}
    resolved = resolved_properties(stack, schedule)
    assert resolved["State"] == "ENABLED"
    role = stack.template["Resources"][f"{schedule}Role"]["Properties"]
    assert role["PermissionsBoundary"]["Fn::If"][0] == "HasPermissionsBoundary"
    # and its firing submits the job it names
    target = resolved["Target"]
    firing = (
        target["Input"]
        .replace("<aws.scheduler.schedule-arn>", f"arn:aws:scheduler:::schedule/x/{name}")
        .replace("<aws.scheduler.scheduled-time>", "2026-11-30T07:00:00Z")
    )
    result = run(stack, "SubmitterFunction", json.loads(firing), tmp_path)
    assert result["submittedNow"] == 1
    [job] = jobs_named(local_stack, "feeds", "reports-2026113007")
    assert "job-definition/feedstream-reports:" in job["jobDefinition"]


def test_chain_a_job_to_another(
    local_stack: LocalStack, definitions: dict[str, str], tmp_path: Path
):
    # Given the README's rules stored as it says, and the stack deployed with its override
    text = step("Chain a job to another")
    run_shell_block(text, local_stack, tmp_path)
    stack = deploy(local_stack, overrides_in_prose(text))

    # When an import job of feeds succeeds (its Batch event, as EventBridge delivers it)
    event: dict[str, Any] = json.loads((EVENTS / "batch-job-succeeded.json").read_text())
    detail = event["detail"]
    detail.update(
        jobName="import-orders",
        jobId=str(uuid.uuid4()),
        jobQueue="arn:aws:batch:us-east-1:123456789012:job-queue/feeds",
    )
    event["id"] = str(uuid.uuid4())
    assert rule_matches(stack, "ChainerFunctionBatchJobSucceeded", event)
    before = {job["jobId"] for job in jobs_named(local_stack, "feeds", "publish-")}
    run(stack, "ChainerFunction", event, tmp_path)

    # Then the rule starts the publish job, handing it the finished job's id
    [job] = [j for j in jobs_named(local_stack, "feeds", "publish-") if j["jobId"] not in before]
    assert "job-definition/feedstream-publish:" in job["jobDefinition"]
    environment = {e["name"]: e["value"] for e in job["container"]["environment"]}
    assert environment["UPSTREAM_JOB_ID"] == detail["jobId"]


@pytest.fixture
def slack(local_stack: LocalStack) -> Iterator[tuple[str, SlackReceiver]]:
    """A webhook secret of the test's own, pointing at a Slack stand-in."""
    secrets = local_stack.client("secretsmanager")
    with slack_receiver() as receiver:
        arn: str = secrets.create_secret(
            Name=f"batchwire/mine-{uuid.uuid4().hex[:8]}", SecretString=UNANSWERED_WEBHOOK
        )["ARN"]
        secrets.put_secret_value(SecretId=arn, SecretString=receiver.url)
        yield arn, receiver


def test_route_alerts_in_slack(
    local_stack: LocalStack, slack: tuple[str, SlackReceiver], tmp_path: Path
):
    # Given the README's routes stored as it says, and the stack deployed with its override
    text = step("Route alerts in Slack")
    run_shell_block(text, local_stack, tmp_path)
    secret, receiver = slack
    stack = deploy(local_stack, {**overrides_in_prose(text), "SlackWebhookSecretArn": secret})

    # When a Batch job logs a fatal error, then another job an ordinary one
    fatal = subscription_event(
        "/aws/batch/job", "feedstream-Broadbean/default/1a2b", ["FATAL cannot open feed database"]
    )
    ordinary = subscription_event(
        "/aws/batch/job", "feedstream-Broadbean/default/3c4d", ["ERROR row 12 skipped"]
    )
    run(stack, "NotifierFunction", fatal, tmp_path)
    run(stack, "NotifierFunction", ordinary, tmp_path)

    # Then the critical one mentions the team the route names, the ordinary one nobody
    first, second = (json.dumps(request) for request in receiver.requests)
    assert "<!subteam^S0123ABC>" in first
    assert "<!subteam^S0123ABC>" not in second
    assert "<!here>" not in second
    assert "<!channel>" not in second


def test_retry_another_task_family(local_stack: LocalStack, tmp_path: Path):
    # Given the stack deployed with the README's parameter_overrides
    text = step("Retry another task family")
    overrides = overrides_in_toml(text)
    _, group = create_network(local_stack.client("ec2"), "make it yours")
    stack = deploy(
        local_stack,
        {**overrides, "RetrierSecurityGroupIds": group, "RetrierBackoffIntervalSeconds": "0"},
    )

    def stopped(family: str) -> dict[str, Any]:
        event = sample_event("ecs-task-stopped-exit1.json", fresh_task=True)
        detail = event["detail"]
        detail["taskDefinitionArn"] = detail["taskDefinitionArn"].replace("nightly-report", family)
        return event

    # Then the families it lists reach the retrier, and one it does not list does not
    assert rule_matches(stack, "RetrierFunctionTaskStopped", stopped("nightly-report"))
    assert rule_matches(stack, "RetrierFunctionTaskStopped", stopped("feeds-loader"))
    assert not rule_matches(stack, "RetrierFunctionTaskStopped", stopped("billing-export"))
    # and a failed nightly-report task is run again
    decided = run(stack, "RetrierFunction", stopped("nightly-report"), tmp_path)
    assert (decided["action"], decided["nextAttempt"]) == ("retry", 2)
