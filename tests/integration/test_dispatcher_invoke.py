"""The queue dispatcher of a deployed stack, and the retrier after it, run as `make invoke` runs
them against moto over HTTP: the issue's acceptance.

Messages are really sent to the stack's WorkQueue and received from it, so each SQS event
carries what Lambda's poller would hand over (ids, receipt handles, attributes). The tests
play the poller (they delete what the function did not report as a failure) and ECS (they
stop tasks and build their STOPPED events); everything else is the deployed functions.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devtools.ecs_local import EcsWorkload, create_ecs_workload, delay_queue_event, stopped_event
from devtools.local_aws import LocalAws, sqs_event
from devtools.rehearse import DeployedStack
from tests.integration.invoke import SKIPPED_TYPES, deploy_stack, invoke

pytestmark = [pytest.mark.integration, SKIPPED_TYPES]

#: Runs of a task that always fails (RetrierMaxAttempts).
MAX_ATTEMPTS = 3
#: How often a test redelivers or feeds back at most, so a regression fails, never hangs.
MAX_ROUNDS = 10
DISPATCHED_BY = "batchwire-dispatch"
MESSAGE_ID_TAG = "batchwire:message-id"


@dataclass
class Deployed:
    """A stack whose dispatcher runs one family in a cluster of its own, and its queues."""

    local: LocalAws
    stack: DeployedStack
    workload: EcsWorkload
    family: str
    work_queue: str
    work_queue_arn: str
    delay_queue: str
    dead_letter_queue: str
    inbox: str
    events: Path

    # ----------------------------------------------------------- producer and SQS poller

    def send(self, *bodies: str) -> list[str]:
        """Send ``bodies`` to WorkQueue as a producer does; their SQS message ids."""
        sqs = self.local.client("sqs")
        return [
            sqs.send_message(QueueUrl=self.work_queue, MessageBody=b)["MessageId"] for b in bodies
        ]

    def receive(self, count: int) -> list[dict[str, Any]]:
        """Receive ``count`` messages of WorkQueue, with every attribute, as the poller does."""
        sqs = self.local.client("sqs")
        messages: list[dict[str, Any]] = []
        for _ in range(MAX_ROUNDS):
            if len(messages) >= count:
                break
            messages += sqs.receive_message(
                QueueUrl=self.work_queue,
                MaxNumberOfMessages=min(10, count - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
        assert len(messages) == count, f"WorkQueue gave {len(messages)} of {count} messages"
        return messages

    def sqs_event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The SQS event Lambda's poller builds from received messages."""
        return sqs_event(messages, self.work_queue_arn)

    def dispatch(self, messages: list[dict[str, Any]]) -> set[str]:
        """Invoke the dispatcher on ``messages``; delete the done ones, as the poller does.

        Returns the ids of the batch item failures (left in the queue).
        """
        answer = self.invoke("DispatcherFunction", self.sqs_event(messages))
        failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
        sqs = self.local.client("sqs")
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=self.work_queue, ReceiptHandle=message["ReceiptHandle"])
        return failed

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        path = self.events / f"{function}-{uuid.uuid4().hex}.json"
        path.write_text(json.dumps(event))
        run = invoke(self.stack, function, path)
        assert run.returncode == 0, run.stderr[-3000:]
        return run.result

    def take(self, queue: str) -> list[dict[str, Any]]:
        """Every message waiting in ``queue`` (an SNS envelope's Message unwrapped), deleted."""
        sqs = self.local.client("sqs")
        bodies: list[dict[str, Any]] = []
        for _ in range(MAX_ROUNDS):
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                break
            for message in messages:
                body = json.loads(message["Body"])
                bodies.append(json.loads(body["Message"]) if queue == self.inbox else body)
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    # ----------------------------------------------------------- ECS

    def running(self) -> int:
        """Tasks of the family ECS means to keep running: what the dispatcher counts."""
        arns = self.local.client("ecs").list_tasks(
            cluster=self.workload.cluster_arn, family=self.family, desiredStatus="RUNNING"
        )["taskArns"]
        return len(arns)

    def tasks(self) -> list[dict[str, Any]]:
        """Every task of the family in the cluster, running or stopped, with its tags."""
        ecs = self.local.client("ecs")
        arns = ecs.list_tasks(cluster=self.workload.cluster_arn, family=self.family)["taskArns"]
        described: list[dict[str, Any]] = []
        for start in range(0, len(arns), 100):
            described += ecs.describe_tasks(
                cluster=self.workload.cluster_arn, tasks=arns[start : start + 100], include=["TAGS"]
            )["tasks"]
        return described

    def tasks_for(self, message_id: str) -> list[dict[str, Any]]:
        """The tasks whose container got message ``message_id``, running or stopped."""
        return [task for task in self.tasks() if environment(task).get("MessageId") == message_id]

    def stop(self, task: dict[str, Any]) -> None:
        """The task's container exits: ECS stops the task."""
        self.local.client("ecs").stop_task(
            cluster=self.workload.cluster_arn, task=task["taskArn"], reason="container exited"
        )

    def stop_all(self) -> None:
        ecs = self.local.client("ecs")
        for arn in ecs.list_tasks(
            cluster=self.workload.cluster_arn, family=self.family, desiredStatus="RUNNING"
        )["taskArns"]:
            ecs.stop_task(cluster=self.workload.cluster_arn, task=arn, reason="test over")

    def exits(self, task: dict[str, Any], code: int) -> dict[str, Any]:
        """Container ``app`` of ``task`` exits ``code``: ECS stops it, EventBridge invokes the
        retrier with the STOPPED event. The retrier's answer."""
        self.stop(task)
        result: dict[str, Any] = self.invoke(
            "RetrierFunction", stopped_event(task, {"app": code, "log-router": 0})
        )
        return result


def environment(task: dict[str, Any]) -> dict[str, str]:
    """The environment overrides of the task's ``app`` container."""
    for container in task.get("overrides", {}).get("containerOverrides", []):
        if container.get("name") == "app":
            return {item["name"]: item["value"] for item in container.get("environment", [])}
    return {}


def tags(task: dict[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in task.get("tags", [])}


def deploy_dispatcher(
    moto_endpoint: LocalAws, events: Path, max_tasks: int, **parameters: str
) -> Deployed:
    """A cluster and family of their own, the stack deployed onto them, an inbox on its topic.

    Backoff 0: a relaunch is due at once, and a deferred message is visible again at once.
    """
    local = moto_endpoint
    name = f"work-{uuid.uuid4().hex[:8]}"
    workload = create_ecs_workload(local.client("ec2"), local.client("ecs"), name, family=name)
    stack = deploy_stack(
        local,
        {
            "DispatcherTaskFamily": name,
            "DispatcherClusterName": name,
            "RetrierClusterNames": name,
            "DispatcherContainerName": "app",
            "DispatcherSubnetIds": workload.subnet,
            "DispatcherSecurityGroupIds": workload.security_group,
            "RetrierSecurityGroupIds": workload.security_group,
            "RetrierBackoffIntervalSeconds": "0",
            "RetrierMaxAttempts": str(MAX_ATTEMPTS),
            "DispatcherMaxTasks": str(max_tasks),
            **parameters,
        },
    )
    sqs, sns = local.client("sqs"), local.client("sns")
    work_queue = stack.physical_ids["WorkQueue"]
    work_queue_arn = queue_arn(local, work_queue)
    # The tests are WorkQueue's poller. moto's own would run the function in Docker (absent
    # here): it would receive each message as it is sent, counting a receive, and put it back.
    lambda_ = local.client("lambda")
    mappings = lambda_.list_event_source_mappings(EventSourceArn=work_queue_arn)
    for mapping in mappings["EventSourceMappings"]:
        lambda_.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    inbox = sqs.create_queue(QueueName=f"dispatch-inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sns.subscribe(
        TopicArn=stack.physical_ids["NotificationTopic"],
        Protocol="sqs",
        Endpoint=queue_arn(local, inbox),
    )
    return Deployed(
        local,
        stack,
        workload,
        family=name,
        work_queue=work_queue,
        work_queue_arn=work_queue_arn,
        delay_queue=stack.physical_ids["RetrierDelayQueue"],
        dead_letter_queue=stack.physical_ids["RetrierDeadLetterQueue"],
        inbox=inbox,
        events=events,
    )


def queue_arn(local: LocalAws, url: str) -> str:
    attributes = local.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


@pytest.fixture(scope="module")
def deployed_stack(moto_endpoint: LocalAws, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    """The stack with the template's default of 10 tasks at once."""
    return deploy_dispatcher(moto_endpoint, tmp_path_factory.mktemp("dispatcher-events"), 10)


@pytest.fixture(scope="module")
def two_task_stack(moto_endpoint: LocalAws, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    """A second stack, on a cluster and family of its own, that runs 2 tasks at once at most,
    a deferred message coming back at once."""
    return deploy_dispatcher(
        moto_endpoint,
        tmp_path_factory.mktemp("dispatcher-events"),
        2,
        DispatcherBusyBackoffSeconds="0",
    )


@pytest.fixture
def deployed(deployed_stack: Deployed) -> Iterator[Deployed]:
    """The stack with nothing left over: its queues empty before, its tasks finished after."""
    for queue in (
        deployed_stack.delay_queue,
        deployed_stack.dead_letter_queue,
        deployed_stack.inbox,
    ):
        deployed_stack.take(queue)
    yield deployed_stack
    deployed_stack.stop_all()


def dispatched_task(deployed: Deployed, body: str) -> tuple[str, dict[str, Any]]:
    """Queue ``body`` and let the dispatcher start its task: (message id, the task)."""
    [message_id] = deployed.send(body)
    assert deployed.dispatch(deployed.receive(1)) == set()
    [task] = deployed.tasks_for(message_id)
    return message_id, task


# --------------------------------------------------------------------- one task per message


def test_ten_messages_start_ten_tasks_each_with_its_own_message(deployed: Deployed):
    # Given 10 messages in the deployed WorkQueue
    bodies = [json.dumps({"feed": "broadbean", "part": n}) for n in range(10)]
    sent = dict(zip(deployed.send(*bodies), bodies, strict=True))
    messages = deployed.receive(10)

    # When Lambda's poller hands them to the dispatcher in one batch
    failed = deployed.dispatch(messages)

    # Then every message has started exactly one task, none is left in the queue
    assert failed == set()
    assert deployed.running() == 10
    for message in messages:
        [task] = deployed.tasks_for(message["MessageId"])
        env = environment(task)
        # ... whose container has that message and its SQS attributes in its environment
        assert env["Message"] == sent[message["MessageId"]]
        assert env["MessageId"] == message["MessageId"]
        assert env["SentTimestamp"] == message["Attributes"]["SentTimestamp"]
        assert (
            env["ApproximateFirstReceiveTimestamp"]
            == message["Attributes"]["ApproximateFirstReceiveTimestamp"]
        )
        assert env["ApproximateReceiveCount"] == "1"
        assert env["SentTimestamp"].isdigit()
        assert env["ApproximateFirstReceiveTimestamp"].isdigit()
        # ... started by the dispatcher, and tagged with the message it was started for
        assert task["startedBy"] == DISPATCHED_BY
        assert tags(task)[MESSAGE_ID_TAG] == message["MessageId"]


def test_a_message_delivered_twice_starts_one_task(deployed: Deployed):
    # Given a message whose task the dispatcher started, but which SQS delivers again
    # (at least once: the poller's delete was lost, the message became visible again)
    [message_id] = deployed.send(json.dumps({"feed": "broadbean", "part": "again"}))
    [first] = deployed.receive(1)
    assert deployed.invoke("DispatcherFunction", deployed.sqs_event([first])) == {
        "batchItemFailures": []
    }
    deployed.local.client("sqs").change_message_visibility(
        QueueUrl=deployed.work_queue, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    [second] = deployed.receive(1)
    assert (second["MessageId"], second["Attributes"]["ApproximateReceiveCount"]) == (
        message_id,
        "2",
    )

    # When the dispatcher gets the second delivery
    failed = deployed.dispatch([second])

    # Then it is done (the poller deletes it), and the message still has one task
    assert failed == set()
    assert len(deployed.tasks_for(message_id)) == 1


def test_max_tasks_holds_back_what_does_not_fit_until_tasks_finish(two_task_stack: Deployed):
    # Given a stack that runs 2 tasks of the family at once, and 5 messages queued
    deployed = two_task_stack
    message_ids = deployed.send(*(json.dumps({"part": n}) for n in range(5)))

    # When the dispatcher gets them in one batch
    failed = deployed.dispatch(deployed.receive(5))

    # Then 2 tasks start and the other 3 messages are batch item failures, left queued
    assert deployed.running() == 2
    assert len(failed) == 3
    assert failed < set(message_ids)

    # When the running tasks finish and SQS delivers the waiting messages again, each time
    started_per_round = [5 - len(failed)]
    for _ in range(MAX_ROUNDS):
        if not failed:
            break
        for task in deployed.tasks():
            if task["desiredStatus"] == "RUNNING":
                deployed.stop(task)
        waiting = len(failed)
        failed = deployed.dispatch(deployed.receive(waiting))
        started_per_round.append(waiting - len(failed))
        # Then never more than 2 of the family run
        assert deployed.running() <= 2

    # ... and in the end every message has had exactly one task
    assert failed == set()
    assert started_per_round == [2, 2, 1]
    assert all(len(deployed.tasks_for(message_id)) == 1 for message_id in message_ids)


# --------------------------------------------------------------------- exit-code contract


@pytest.mark.parametrize(
    ("code", "action", "notified", "dead_lettered"),
    [
        (0, "done", [], []),
        (3, "reject", ["task-rejected"], []),
        (4, "park", [], ["task-not-processed"]),
    ],
    ids=["exit-0-done", "exit-3-rejected", "exit-4-not-processed"],
)
def test_a_dispatched_task_that_exits_with_a_contract_code_is_not_run_again(
    deployed: Deployed, code: int, action: str, notified: list[str], dead_lettered: list[str]
):
    # Given a task the dispatcher started for a message
    message_id, task = dispatched_task(deployed, json.dumps({"feed": "broadbean", "exit": code}))

    # When its container exits with the code and the deployed retrier gets the STOPPED event
    result = deployed.exits(task, code)

    # Then the retrier follows the contract: no relaunch, and only the notice or record due
    assert result["action"] == action
    assert deployed.take(deployed.delay_queue) == []
    assert len(deployed.tasks_for(message_id)) == 1
    notes = deployed.take(deployed.inbox)
    records = deployed.take(deployed.dead_letter_queue)
    assert [note["kind"] for note in notes] == notified
    assert [record["kind"] for record in records] == dead_lettered
    # ... and whatever it sends names the task and the message it was started for
    for sent in notes + records:
        assert (sent["taskArn"], sent["messageId"]) == (task["taskArn"], message_id)


def test_a_dispatched_task_that_always_fails_runs_three_times_then_is_given_up(
    deployed: Deployed,
):
    # Given a task the dispatcher started for a message, whose container always exits 1
    body = json.dumps({"feed": "broadbean", "exit": 1})
    message_id, task = dispatched_task(deployed, body)
    origin = task["taskArn"].rsplit("/", 1)[-1]

    # When each run's STOPPED event goes to the deployed retrier, and each relaunch it
    # queues comes due in its delay queue
    actions = []
    for _ in range(MAX_ROUNDS):
        result = deployed.exits(task, 1)
        actions.append(result["action"])
        if result["action"] != "retry":
            break
        [relaunch] = deployed.local.client("sqs").receive_message(
            QueueUrl=deployed.delay_queue, MaxNumberOfMessages=10
        )["Messages"]
        deployed.local.client("sqs").delete_message(
            QueueUrl=deployed.delay_queue, ReceiptHandle=relaunch["ReceiptHandle"]
        )
        started = deployed.invoke("RetrierFunction", delay_queue_event(relaunch["Body"]))
        assert started == {"batchItemFailures": []}
        [task] = [t for t in deployed.tasks_for(message_id) if t["desiredStatus"] == "RUNNING"]

    # Then the message's task ran exactly 3 times, each run with the same message
    assert actions == ["retry", "retry", "exhausted"]
    runs = deployed.tasks_for(message_id)
    assert len(runs) == MAX_ATTEMPTS
    assert {environment(run)["Message"] for run in runs} == {body}
    assert sorted(run["startedBy"] for run in runs) == [
        DISPATCHED_BY,
        f"batchwire-retry/2/{origin}",
        f"batchwire-retry/3/{origin}",
    ]
    assert deployed.take(deployed.delay_queue) == []
    # ... then one dead-letter record and one notification, which name the message
    [record] = deployed.take(deployed.dead_letter_queue)
    assert (record["kind"], record["messageId"], record["attempt"]) == (
        "task-retries-exhausted",
        message_id,
        MAX_ATTEMPTS,
    )
    [note] = deployed.take(deployed.inbox)
    assert (note["kind"], note["messageId"], note["attempt"]) == (
        "task-retries-exhausted",
        message_id,
        MAX_ATTEMPTS,
    )
    assert note["taskArn"] == task["taskArn"]
    assert f"for message {message_id}" in note["summary"]


TWENTY_KB = json.dumps({"rows": "x" * 20_000})


def test_a_20_kb_message_reaches_its_task_through_the_stacks_bucket(deployed_stack: Deployed):
    # Given a message of 20 KB, too large for a task's environment
    [message_id] = deployed_stack.send(TWENTY_KB)

    # When the deployed dispatcher takes it
    failed = deployed_stack.dispatch(deployed_stack.receive(1))

    # Then its task gets MessageS3Uri, in the stack's WorkPayloadBucket, holding the message
    assert failed == set()
    [task] = deployed_stack.tasks_for(message_id)
    env = environment(task)
    assert "Message" not in env
    bucket = deployed_stack.stack.physical_ids["WorkPayloadBucket"]
    assert env["MessageS3Uri"].startswith(f"s3://{bucket}/work-messages/")
    key = env["MessageS3Uri"].removeprefix(f"s3://{bucket}/")
    stored = deployed_stack.local.client("s3").get_object(Bucket=bucket, Key=key)
    assert stored["Body"].read().decode() == TWENTY_KB
    deployed_stack.stop(task)


def test_with_the_bucket_off_a_20_kb_message_lands_in_the_dead_letter_queue_with_its_size(
    moto_endpoint: LocalAws, tmp_path: Path
):
    # Given a stack deployed with WorkPayloadBucketEnabled=off, and a message of 20 KB
    deployed = deploy_dispatcher(moto_endpoint, tmp_path, 10, WorkPayloadBucketEnabled="off")
    [message_id] = deployed.send(TWENTY_KB)

    # When the deployed dispatcher takes it
    failed = deployed.dispatch(deployed.receive(1))

    # Then no task runs, and the message waits in WorkDeadLetterQueue, its size named
    assert failed == set()
    assert deployed.tasks_for(message_id) == []
    [kept] = deployed.local.client("sqs").receive_message(
        QueueUrl=deployed.stack.physical_ids["WorkDeadLetterQueue"],
        MessageAttributeNames=["All"],
    )["Messages"]
    assert kept["Body"] == TWENTY_KB
    reason = kept["MessageAttributes"]["batchwire-refused"]["StringValue"]
    assert f"message {message_id} is {len(TWENTY_KB):,} bytes" in reason
    assert "DISPATCHER_PAYLOAD_BUCKET" in reason
