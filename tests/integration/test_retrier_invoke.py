"""RetrierFunction of a deployed stack run as `make invoke` runs it, against moto over HTTP."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.ecs_local import (
    CLUSTER,
    EcsWorkload,
    create_ecs_workload,
    delay_queue_event,
    sample_event,
)
from devtools.local_aws import LocalAws
from devtools.rehearse import DeployedStack
from tests.integration.invoke import SKIPPED_TYPES, LocalStack, deploy_stack, invoke

pytestmark = [pytest.mark.integration, SKIPPED_TYPES]


@dataclass
class Deployed:
    """A stack whose retrier relaunches into the ECS workload, and a queue on its topic."""

    local: LocalAws
    stack: DeployedStack
    workload: EcsWorkload
    delay_queue: str
    dead_letter_queue: str
    inbox: str

    def invoke(self, event: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
        path = tmp_path / f"event-{uuid.uuid4().hex}.json"
        path.write_text(json.dumps(event))
        run = invoke(self.stack, "RetrierFunction", path)
        assert run.returncode == 0, run.stderr[-3000:]
        result: dict[str, Any] = run.result
        return result

    def take(self, queue: str) -> list[str]:
        sqs = self.local.client("sqs")
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return [message["Body"] for message in messages]


@pytest.fixture(scope="module")
def deployed(local_stack: LocalStack) -> Deployed:
    """The stack deployed with the workload's security group and no backoff, its delay and
    dead-letter queues, and an SQS queue subscribed to its NotificationTopic."""
    local = local_stack.local
    workload = create_ecs_workload(local.client("ec2"), local.client("ecs"))
    stack = deploy_stack(
        local,
        {
            "RetrierClusterNames": CLUSTER,
            "RetrierSecurityGroupIds": workload.security_group,
            "RetrierBackoffIntervalSeconds": "0",
        },
    )
    assert workload.cluster_arn.endswith(f"/{CLUSTER}")
    sqs, sns = local.client("sqs"), local.client("sns")
    inbox = sqs.create_queue(QueueName=f"retrier-inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    topic = stack.physical_ids["NotificationTopic"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    return Deployed(
        local,
        stack,
        workload,
        delay_queue=stack.physical_ids["RetrierDelayQueue"],
        dead_letter_queue=stack.physical_ids["RetrierDeadLetterQueue"],
        inbox=inbox,
    )


def test_exit_1_is_queued_for_relaunch_and_the_due_message_runs_the_task(
    deployed: Deployed, tmp_path: Path
):
    # Given the exit-1 sample event (its subnet made to exist in moto)
    event = sample_event(
        "ecs-task-stopped-exit1.json", subnet=deployed.workload.subnet, fresh_task=True
    )
    origin = event["detail"]["taskArn"].rsplit("/", 1)[-1]

    # When EventBridge invokes the retrier, then SQS hands it the relaunch message
    decided = deployed.invoke(event, tmp_path)
    [body] = deployed.take(deployed.delay_queue)
    answer = deployed.invoke(delay_queue_event(body), tmp_path)

    # Then the task runs again in moto, as attempt 2 of the original
    assert (decided["action"], decided["nextAttempt"]) == ("retry", 2)
    assert answer == {"batchItemFailures": []}
    ecs = deployed.local.client("ecs")
    marker = f"batchwire-retry/2/{origin}"
    [task_arn] = ecs.list_tasks(cluster=deployed.workload.cluster_arn, startedBy=marker)["taskArns"]
    task = ecs.describe_tasks(cluster=deployed.workload.cluster_arn, tasks=[task_arn])["tasks"][0]
    assert task["startedBy"] == marker
    assert task["taskDefinitionArn"] == event["detail"]["taskDefinitionArn"]
    assert task["overrides"]["containerOverrides"][0]["command"][-1] == "2026-11-22"


def test_exit_3_publishes_a_task_rejected_notification(deployed: Deployed, tmp_path: Path):
    # Given the exit-3 sample event
    event = sample_event("ecs-task-stopped-exit3.json", fresh_task=True)

    # When EventBridge invokes the retrier
    result = deployed.invoke(event, tmp_path)

    # Then the notification on the topic follows the contract, and nothing is queued
    assert result["action"] == "reject"
    [body] = deployed.take(deployed.inbox)
    envelope = json.loads(body)
    message = json.loads(envelope["Message"])
    assert envelope["MessageAttributes"]["kind"]["Value"] == "task-rejected"
    assert message["kind"] == "task-rejected"
    assert message["taskArn"] == event["detail"]["taskArn"]
    assert (message["exitCode"], message["attempt"], message["maxAttempts"]) == (3, 1, 3)
    assert deployed.take(deployed.delay_queue) == []
