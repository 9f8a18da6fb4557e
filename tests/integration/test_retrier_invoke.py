"""RetrierFunction run as `make invoke` runs it, against moto over real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.ecs_local import EcsWorkload, create_ecs_workload, delay_queue_event, sample_event
from devtools.local_aws import LocalAws
from devtools.template import ROOT

pytestmark = pytest.mark.integration


@dataclass
class Deployed:
    """The retrier's queues, topic and table in moto, under names unique to this module."""

    local: LocalAws
    workload: EcsWorkload
    environ: dict[str, str]
    delay_queue: str
    dead_letter_queue: str
    inbox: str

    def invoke(self, event: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
        path = tmp_path / f"event-{uuid.uuid4().hex}.json"
        path.write_text(json.dumps(event))
        params = (
            f"RetrierSecurityGroupIds={self.workload.security_group} "
            "RetrierBackoffIntervalSeconds=0"
        )
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "devtools.invoke",
                "RetrierFunction",
                str(path),
                "--params",
                params,
            ],
            env={**os.environ, **self.local.environ, **self.environ},
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        assert completed.returncode == 0, completed.stderr[-3000:]
        result: dict[str, Any] = json.loads(completed.stdout)
        return result

    def take(self, queue: str) -> list[str]:
        sqs = self.local.client("sqs")
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return [message["Body"] for message in messages]


@pytest.fixture(scope="module")
def deployed(moto_endpoint: LocalAws) -> Deployed:
    suffix = uuid.uuid4().hex[:8]
    sqs, sns = moto_endpoint.client("sqs"), moto_endpoint.client("sns")
    table = f"retrier-it-{suffix}"
    moto_endpoint.client("dynamodb").create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    delay = sqs.create_queue(QueueName=f"retrier-delay-{suffix}")["QueueUrl"]
    dead = sqs.create_queue(QueueName=f"retrier-dead-{suffix}")["QueueUrl"]
    inbox = sqs.create_queue(QueueName=f"retrier-inbox-{suffix}")["QueueUrl"]
    topic = sns.create_topic(Name=f"retrier-notes-{suffix}")["TopicArn"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    workload = create_ecs_workload(moto_endpoint.client("ec2"), moto_endpoint.client("ecs"))
    # Shell values win over the template's, as with `sam local invoke --env-vars`
    environ = {
        "IDEMPOTENCY_TABLE": table,
        "RETRIER_DELAY_QUEUE_URL": delay,
        "RETRIER_DEAD_LETTER_QUEUE_URL": dead,
        "NOTIFICATION_TOPIC_ARN": topic,
    }
    return Deployed(moto_endpoint, workload, environ, delay, dead, inbox)


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
