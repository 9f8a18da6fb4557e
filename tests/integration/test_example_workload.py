"""The example workload is apart from your configuration: off, nothing of it runs; on, its loop.

Deployed with defaults, the stack has no enabled schedule or rule that reaches an example
resource, and the rules it has take only the queues and clusters you configure. Deployed
with ExampleWorkload=on, each step of the example's loop is driven as AWS would drive it:
its schedule's input submits the import job, the message that job publishes chains the
consume job, that job's failure reaches Slack, and its failing ECS task is retried.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.ecs_local import create_network, stopped_event
from devtools.local_stack import running_local_stack
from devtools.rehearse import DeployedStack, resolved_properties
from devtools.slack_receiver import SlackReceiver, slack_receiver
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

EVENTS = ROOT / "events"
TRIGGERS = ("AWS::Events::Rule", "AWS::Scheduler::Schedule")
STATUSES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")


def triggers(stack: DeployedStack) -> dict[str, dict[str, Any]]:
    """Every rule and schedule of the deployed stack, with its properties resolved."""
    resources = stack.template["Resources"]
    present = set(stack.physical_ids) | {i for ids in stack.skipped.values() for i in ids}
    return {
        logical_id: resolved_properties(stack, logical_id)
        for logical_id in sorted(present)
        if resources[logical_id]["Type"] in TRIGGERS
    }


def batch_event(status: str, queue_arn: str, job_name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "batch-job-failed.json").read_text())
    event["id"] = str(uuid.uuid4())
    event["detail"].update(status=status, jobQueue=queue_arn, jobName=job_name)
    return event


def write(tmp_path: Path, event: dict[str, Any]) -> Path:
    path = tmp_path / f"event-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(event))
    return path


# ---------------------------------------------------------------- defaults


def test_with_defaults_nothing_runs_that_you_did_not_configure(local_stack: LocalStack) -> None:
    # Given the stack deployed with its defaults
    stack = local_stack.stack

    # Then no example resource exists, and your one schedule waits, disabled
    assert not [logical_id for logical_id in stack.physical_ids if logical_id.startswith("Example")]
    found = triggers(stack)
    enabled_schedules = [
        logical_id
        for logical_id, props in found.items()
        if "ScheduleExpression" in props and props.get("State", "ENABLED") == "ENABLED"
    ]
    assert enabled_schedules == []
    assert found["SubmitterFunctionNightlySchedule"]["State"] == "DISABLED"
    assert found["WatchFunctionEveryFiveMinutes"]["State"] == "DISABLED"
    # and nothing enabled names an example: no input, target or pattern
    for logical_id, props in found.items():
        if props.get("State", "ENABLED") == "ENABLED":
            assert "-example" not in json.dumps(props), logical_id
    # and the chainer holds no rule you did not write
    environment = stack.function_environment("ChainerFunction")
    assert json.loads(environment["CHAIN_RULES"]) == {"rules": []}
    assert environment.get("EXAMPLE_CHAIN_RULES", "") == ""


def test_batch_rules_take_only_the_configured_queues_and_job_names(local_stack: LocalStack) -> None:
    # Given a stack deployed for queue feeds and nightly-* jobs
    stack = deploy_stack(
        local_stack.local, {"JobQueueNames": "feeds", "ChainJobNames": "nightly-*,import-*"}
    )

    def succeeded(event: dict[str, Any]) -> bool:
        return rule_matches(stack, "ChainerFunctionBatchJobSucceeded", event)

    def failed(event: dict[str, Any]) -> bool:
        return rule_matches(stack, "NotifierFunctionBatchJobFailed", event)

    feeds = "arn:aws:batch:us-east-1:123456789012:job-queue/feeds"
    other = "arn:aws:batch:us-east-1:123456789012:job-queue/someone-elses"

    # Then a nightly job of feeds reaches the chainer when it succeeds, the notifier when it
    # fails; a job of another queue, or named otherwise, reaches neither
    assert succeeded(batch_event("SUCCEEDED", feeds, "nightly-20261130"))
    assert succeeded(batch_event("SUCCEEDED", feeds, "import-orders"))
    assert not succeeded(batch_event("SUCCEEDED", feeds, "adhoc-backfill"))
    assert not succeeded(batch_event("SUCCEEDED", other, "nightly-20261130"))
    assert failed(batch_event("FAILED", feeds, "adhoc-backfill"))
    assert not failed(batch_event("FAILED", other, "nightly-20261130"))


# ---------------------------------------------------------------- ExampleWorkload=on


@dataclass
class Example:
    stack: DeployedStack
    slack: SlackReceiver

    @property
    def name(self) -> str:
        return f"{self.stack.name}-example"

    def invoke(self, function: str, event: dict[str, Any], tmp_path: Path) -> Any:
        run = invoke(self.stack, function, write(tmp_path, event))
        assert run.returncode == 0, run.stderr[-3000:]
        return run.result

    def jobs(self, definition: str) -> list[dict[str, Any]]:
        batch = self.stack.local.client("batch")
        ids = [
            summary["jobId"]
            for status in STATUSES
            for summary in batch.list_jobs(jobQueue=self.name, jobStatus=status)["jobSummaryList"]
        ]
        found = batch.describe_jobs(jobs=ids)["jobs"] if ids else []
        return [
            job
            for job in found
            if f"job-definition/{self.name}-{definition}:" in job["jobDefinition"]
        ]


@pytest.fixture(scope="module")
def example(local_stack: LocalStack) -> Iterator[Example]:
    """The stack deployed with ExampleWorkload=on and no backoff, posting to a Slack stand-in."""
    local = local_stack.local
    subnet, group = create_network(local.client("ec2"), "example workload")
    secrets = local.client("secretsmanager")
    with slack_receiver() as slack:
        secret = secrets.create_secret(
            Name=f"batchwire/example-{uuid.uuid4().hex[:8]}", SecretString=UNANSWERED_WEBHOOK
        )["ARN"]
        secrets.put_secret_value(SecretId=secret, SecretString=slack.url)
        stack = deploy_stack(
            local,
            {
                "ExampleWorkload": "on",
                "ExampleSubnetIds": subnet,
                "ExampleSecurityGroupIds": group,
                "RetrierSecurityGroupIds": group,
                "RetrierBackoffIntervalSeconds": "0",
                "SlackWebhookSecretArn": secret,
            },
        )
        yield Example(stack, slack)


def test_the_example_schedules_are_enabled_and_in_the_stacks_group(example: Example) -> None:
    found = triggers(example.stack)
    for logical_id in ("ExampleNightlySchedule", "ExampleTaskSchedule", "ExampleCronRule"):
        assert found[logical_id]["State"] == "ENABLED", logical_id
    # (the group is a type moto lacks: its reference is read as CloudFormation receives it)
    resources = example.stack.template["Resources"]
    for logical_id in ("ExampleNightlySchedule", "ExampleTaskSchedule"):
        group = resources[logical_id]["Properties"]["GroupName"]
        assert group == {"Ref": "ScheduleGroup"}, logical_id
    assert resources["SubmitterFunctionNightlySchedule"]["Properties"]["GroupName"] == {
        "Ref": "ScheduleGroup"
    }
    # and yours stays as you set it
    assert found["SubmitterFunctionNightlySchedule"]["State"] == "DISABLED"
    assert found["WatchFunctionEveryFiveMinutes"]["State"] == "DISABLED"


def test_the_example_loop_runs_end_to_end(example: Example, tmp_path: Path) -> None:
    stack = example.stack
    schedules = triggers(stack)

    # When the example schedule fires (its input, as Scheduler fills the placeholders)
    schedule = schedules["ExampleNightlySchedule"]
    firing = (
        schedule["Target"]["Input"]
        .replace(
            "<aws.scheduler.schedule-arn>",
            f"arn:aws:scheduler:us-east-1:123456789012:schedule/x/{uuid.uuid4().hex}",
        )
        .replace("<aws.scheduler.scheduled-time>", "2026-11-30T02:00:00Z")
    )
    submitted = example.invoke("SubmitterFunction", json.loads(firing), tmp_path)

    # Then the import job is submitted to the example's queue
    [import_job] = example.jobs("import")
    assert import_job["jobName"] == "example-import-20261130"
    assert submitted["submittedNow"] == 1

    # When the import job publishes what its command publishes, to ChainTopic
    command = stack.local.client("batch").describe_job_definitions(
        jobDefinitionName=f"{example.name}-import", status="ACTIVE"
    )["jobDefinitions"][0]["containerProperties"]["command"]
    message = command[command.index("--message") + 1]
    attributes = json.loads(command[command.index("--message-attributes") + 1])
    record: dict[str, Any] = json.loads((EVENTS / "sns-job-finished.json").read_text())
    sns = record["Records"][0]["Sns"]
    sns.update(
        MessageId=str(uuid.uuid4()), TopicArn=stack.physical_ids["ChainTopic"], Message=message
    )
    sns["MessageAttributes"] = {
        name: {"Type": value["DataType"], "Value": value["StringValue"]}
        for name, value in attributes.items()
    }
    example.invoke("ChainerFunction", record, tmp_path)

    # Then the example's chain rule starts the consume job with the message
    [consume_job] = example.jobs("consume")
    environment = {e["name"]: e["value"] for e in consume_job["container"]["environment"]}
    assert json.loads(environment["DOWNLOAD_MESSAGE"])["feed"] == "broadbean"

    # When the consume job fails: its Batch event matches the notifier's rule
    failed = batch_event("FAILED", consume_job["jobQueue"], consume_job["jobName"])
    assert rule_matches(stack, "NotifierFunctionBatchJobFailed", failed)
    example.invoke("NotifierFunction", failed, tmp_path)

    # Then one Slack post names the failed job
    assert len(example.slack.requests) == 1
    assert consume_job["jobName"] in json.dumps(example.slack.requests[0])

    # When the example task runs as its schedule runs it, and exits 1
    target = schedules["ExampleTaskSchedule"]["Target"]
    ecs = stack.local.client("ecs")
    network = target["EcsParameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    task = ecs.run_task(
        cluster=target["Arn"],
        taskDefinition=target["EcsParameters"]["TaskDefinitionArn"],
        launchType="FARGATE",
        startedBy="chronos-example",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": network["Subnets"],
                "securityGroups": network["SecurityGroups"],
            }
        },
    )["tasks"][0]
    stopped = stopped_event(task, {"report": 1})

    # Then the retrier's rule takes it, and the retrier decides to run it again
    assert rule_matches(stack, "RetrierFunctionTaskStopped", stopped)
    decided = example.invoke("RetrierFunction", stopped, tmp_path)
    assert (decided["action"], decided["nextAttempt"]) == ("retry", 2)


def test_make_local_stack_deploys_the_example_in_the_workloads_network() -> None:
    # Given `make local-stack PARAMS="ExampleWorkload=on"`: no subnet or group named
    with running_local_stack({"ExampleWorkload": "on"}) as running:
        # Then the stack deploys, and the example's compute runs in the workload's network
        compute = resolved_properties(running.stack, "ExampleComputeEnvironment")
        resources = compute["ComputeResources"]
        assert resources["Subnets"] == [running.ecs.subnet]
        assert resources["SecurityGroupIds"] == [running.ecs.security_group]
